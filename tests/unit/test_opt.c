/* lib/opt.c: each kind of option value checked and converted as the
 * commands' tables declare them, and --help's listing of a table. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "opt.h"
#include "tap.h"

static const char *const colours[] = { "never", "auto", "always", NULL };
static const struct hs_opt tab[] = {
	{ .name = "json", .key = 'j', .help = "one JSON document" },
	{ .name = "top", .key = 't', .kind = HS_OPT_COUNT, .min = 1, .max = 100, .arg = "K",
	  .help = "the K callers with most bytes" },
	{ .name = "watch", .key = 'w', .kind = HS_OPT_COUNT, .has_arg = optional_argument, .val = 2, .max = 60,
	  .arg = "S", .help = "again every S seconds (2)" },
	{ .name = "wait", .key = 'W', .kind = HS_OPT_MS, .min = 0, .arg = "MS",
	  .help = "how long to retry while a thread is inside malloc, a long help text that has to be wrapped" },
	{ .name = "pad", .key = 'p', .kind = HS_OPT_SIZE },
	{ .name = "output", .key = 'o', .kind = HS_OPT_STR, .letter = 'o', .arg = "FILE", .help = "write to FILE" },
	{ .name = "color", .key = 'c', .kind = HS_OPT_CHOICE, .choices = colours },
	{ 0 },
};

int main(void)
{
	struct hs_optval v;
	long n;
	OK(hs_parse_count("42", 1, 100, &n) == 0 && n == 42, "a count in range");
	OK(hs_parse_count("0", 1, 100, &n) == -EINVAL && hs_parse_count("101", 1, 100, &n) == -EINVAL,
	   "a count out of range is refused");
	OK(hs_parse_count("", 0, 9, &n) == -EINVAL && hs_parse_count("4x", 0, 9, &n) == -EINVAL &&
	   hs_parse_count("99999999999999999999", 0, LONG_MAX, &n) == -EINVAL, "empty, trailing junk, overflow refused");

	OK(hs_opt_value(&tab[0], NULL, &v) == 0 && v.set && v.n == 0, "a flag is set");
	OK(hs_opt_value(&tab[1], "7", &v) == 0 && v.n == 7 && hs_opt_value(&tab[1], "0", &v) == -EINVAL,
	   "a count within its table's range");
	OK(hs_opt_value(&tab[2], NULL, &v) == 0 && v.n == 2 && hs_opt_value(&tab[2], "5", &v) == 0 && v.n == 5,
	   "an optional argument: val when absent");
	OK(hs_opt_value(&tab[3], "2147483647", &v) == 0 && hs_opt_value(&tab[3], "2147483648", &v) == -EINVAL &&
	   hs_opt_value(&tab[3], "-1", &v) == -EINVAL, "milliseconds: 0 to INT_MAX");
	OK(hs_opt_value(&tab[4], "4K", &v) == 0 && v.u == 4096 && hs_opt_value(&tab[4], "4Q", &v) == -EINVAL,
	   "a size with a suffix");
	OK(hs_opt_value(&tab[5], "x.json", &v) == 0 && !strcmp(v.s, "x.json"), "a string as given");
	OK(hs_opt_value(&tab[6], "always", &v) == 0 && v.n == 2 && hs_opt_value(&tab[6], "sometimes", &v) == -EINVAL,
	   "a choice: its index, or refused");
	OK(hs_opt_has_arg(&tab[0]) == no_argument && hs_opt_has_arg(&tab[1]) == required_argument &&
	   hs_opt_has_arg(&tab[2]) == optional_argument, "getopt's has_arg from the kind");

	struct hs_opt_getopt go;
	const struct hs_opt *both[] = { tab, NULL, tab + 1 };
	hs_opt_getopt_init(&go, both, 3);
	OK(go.n == 13 && !strcmp(go.shorts, "o:o:") && go.lo[2].has_arg == optional_argument && go.lo[13].name == NULL,
	   "getopt's tables: every option of every group, the short ones with ':' for an argument");
	OK(hs_opt_getopt_find(&go, 256 + 5) == &tab[5] && hs_opt_getopt_find(&go, 'o') == &tab[5] &&
	   hs_opt_getopt_find(&go, '?') == NULL && hs_opt_getopt_find(&go, 256 + 13) == NULL,
	   "getopt's return value to the option");

	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	const struct hs_opt *groups[] = { tab, NULL };
	hs_opt_help(fp, groups, 2);
	fclose(fp);
	const char *want =
		"  --json           one JSON document\n"
		"  --top K          the K callers with most bytes\n"
		"  --watch[=S]      again every S seconds (2)\n"
		"  --wait MS        how long to retry while a thread is inside malloc, a long\n"
		"                   help text that has to be wrapped\n"
		"  -o, --output FILE\n"
		"                   write to FILE\n";
	OK(!strcmp(buf, want), "--help lists the options with help, wrapped at 79 columns");
	if (strcmp(buf, want))     /* what it printed, as TAP comments */
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			printf("# %s\n", line);
	free(buf);
	return tap_done();
}
