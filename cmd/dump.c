/* heapscope dump: a region's bytes, or the strings in it, in one pass. */
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <unistd.h>

#include "common.h"
#include "dump.h"
#include "dump_out.h"
#include "format.h"

static const char help[] =
	"usage: heapscope dump [options] PID RANGE\n"
	"\n"
	"The bytes of a region of PID, raw or as the printable strings in them.\n"
	"RANGE: 0xSTART-0xEND, 0xSTART+LEN (LEN may end in K, M or G), arena:N (every\n"
	"heap of arena N, as heapscope arenas numbers them), heap:ADDR (the heap holding\n"
	"ADDR), [heap], [stack], the start address of a mapping, or a mapped file's path.\n"
	"Unmapped and PROT_NONE parts are skipped and reported.\n"
	"\n"
	"Exit status: 0 ok, 1 partial (something was skipped), 2 fatal, 64 usage.\n";

static void warn(void *ctx, const char *msg)
{
	hs_cli_warn(ctx, "%s", msg);
}

static void progress(void *ctx, uint64_t done, uint64_t total, bool last)
{
	(void)ctx;
	char a[HS_SIZE_BUF], b[HS_SIZE_BUF];
	fprintf(stderr, "\rheapscope: dump: %s of %s%s", hs_fmt_size(done, a), hs_fmt_size(total, b), last ? "\n" : "");
}

/* The options: 0, or the usage status. */
static int setup(struct hs_cli *cli, bool strings, pid_t *pid, regex_t *re, bool *grep)
{
	const char *g = hs_cli_str(cli, 'g');
	if (cli->argc != 2)
		return hs_cli_usage(cli, cli->argc < 2 ? "missing PID or RANGE" : "too many arguments");
	int r = hs_cli_pid(cli, 1, cli->argv, 0, pid);
	if (r)
		return r;
	struct hs_err serr = { 0 };
	if (hs_range_check(cli->argv[1], &serr) < 0)
		return hs_cli_usage(cli, "%s", serr.msg);
	if (strings && cli->opt['o'].set)
		return hs_cli_usage(cli, "-o writes raw bytes; --strings, --grep and --top print to stdout");
	if (cli->json && !strings)
		return hs_cli_usage(cli, "--json goes with --strings or --top (raw bytes are not JSON)");
	if (!strings && !cli->opt['o'].set && isatty(STDOUT_FILENO))
		return hs_cli_usage(cli, "refusing to write raw memory to a terminal: use -o FILE or a pipe");
	if (g && hs_strsink_grep(re, g, &serr) < 0)
		return hs_cli_usage(cli, "bad --grep regex: %s", serr.msg);
	*grep = g != NULL;
	return 0;
}

static int cmd_dump(struct hs_cli *cli)
{
	pid_t pid;
	regex_t re;
	bool grep = false, strings = cli->opt['s'].set || cli->opt['t'].set || cli->opt['g'].set;
	int status = setup(cli, strings, &pid, &re, &grep);
	if (status)
		return status;
	const char *spec = cli->argv[1];
	struct hs_dump_opts o = { .freeze = hs_cli_num(cli, 'F', 1), .use_debuginfo = !cli->no_debuginfo,
				  .use_debuginfod = !cli->no_debuginfod };
	struct hs_strsink_opts so = {
		.min = (unsigned)hs_cli_num(cli, 's', 4), .address = !cli->opt['A'].set,
		.encodings = (int)hs_cli_num(cli, 'e', 0) + 1,   /* ascii, utf16le, all: the HS_ENC_* bits */
		.grep = grep ? &re : NULL, .top = cli->opt['t'].set, .json = cli->json ? &cli->j : NULL,
		.pid = pid, .range = spec,
	};
	struct hs_dump_write_opts wo = { .fd = STDOUT_FILENO, .path = hs_cli_str(cli, 'o'), .force = cli->opt['f'].set,
					 .strings = strings ? &so : NULL, .top_k = hs_cli_num(cli, 't', 0), .fp = stdout,
					 .warn = warn, .progress = isatty(STDERR_FILENO) ? progress : NULL, .ctx = cli };
	struct hs_dump dd;
	struct hs_dump_write_report rep = { 0 };
	struct hs_err err = { 0 };
	static char outbuf[1 << 20];
	int r = hs_dump_open(pid, spec, &o, &dd, &err);
	if (r == 0 && strings)
		setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	if (r == 0)
		r = hs_dump_write(&dd, &wo, &rep, &err);
	if (r < 0) {
		/* as main says it of stdout */
		if (rep.output_failed)
			cli->json = false;
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	} else {
		char a[HS_SIZE_BUF], p[HS_SIZE_BUF];
		if (wo.path)
			fprintf(stderr, "heapscope: dump: wrote %s (%" PRIu64 " bytes) to %s%s%s\n", hs_fmt_size(rep.written, a),
				rep.written, wo.path, dd.freeze ? "; target paused " : "", dd.freeze ? hs_fmt_us(dd.pause_us, p) : "");
		status = rep.partial ? HS_EXIT_PARTIAL : HS_EXIT_OK;
	}
	hs_dump_close(&dd);
	if (grep)
		regfree(&re);
	return status;
}

static const char *const encodings[] = { "ascii", "utf16le", "all", NULL };
static const struct hs_opt opts[] = {
	{ .name = "output", .key = 'o', .letter = 'o', .kind = HS_OPT_STR,
	  .arg = "FILE", .help = "write the raw bytes to FILE, created mode 0600 (dumps hold secrets); without -o, "
	  "to stdout if it is no terminal" },
	{ .name = "force", .key = 'f',
	  .help = "replace FILE if it is a regular file, by a new 0600 file renamed over it when complete (never "
	  "through a symlink)" },
	{ .name = "strings", .key = 's', .kind = HS_OPT_COUNT, .has_arg = optional_argument, .val = 4, .min = 1,
	  .max = 65536, .bad = "--strings=N takes a length from 1 to 65536",
	  .arg = "N", .help = "print printable runs of at least N characters (default 4, as strings(1)), each with "
	  "its address in hex" },
	{ .name = "no-address", .key = 'A', .help = "print the strings alone: exactly what strings -n N prints" },
	{ .name = "encoding", .key = 'e', .kind = HS_OPT_CHOICE, .choices = encodings,
	  .bad = "--encoding takes ascii, utf16le or all",
	  .arg = "ENC", .help = "ascii (default), utf16le (Java's and Windows' strings) or all" },
	{ .name = "grep", .key = 'g', .kind = HS_OPT_STR,
	  .arg = "REGEX", .help = "only the strings that match REGEX (POSIX extended)" },
	{ .name = "top", .key = 't', .kind = HS_OPT_COUNT, .min = 1, .max = LONG_MAX, .bad = "--top takes a positive count",
	  .arg = "K", .help = "the K most frequent strings, with count and bytes" },
	{ .name = "freeze", .key = 'F', .val = 1,
	  .help = "stop the threads while reading, for a consistent image (the default; at most 256M and 1s, else a "
	  "warning says the output is not one snapshot); the pause is reported" },
	{ .name = "no-freeze", .key = 'F', .val = 0,
	  .help = "read while the target runs: no pause, a second thread reading ahead of the scan" },
	{ 0 },
};

const struct hs_command hs_cmd_dump = {
	.name = "dump", .run = cmd_dump, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS,
	.summary = "a region's bytes, or the strings in it, in one pass",
};
