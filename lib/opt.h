/* Option tables: a command declares its options as data (name, kind,
 * range, the usage error for a bad value, --help's text), as git's
 * parse-options does; the caller runs getopt_long over them and hands
 * each option found here to be checked and converted.  Nothing printed:
 * the --help listing goes to the stream the caller gives. */
#ifndef HS_OPT_H
#define HS_OPT_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum hs_opt_kind {
	HS_OPT_FLAG,             /* no argument: sets n = val */
	HS_OPT_STR,              /* s: the argument as given */
	HS_OPT_COUNT,            /* n: an integer from min to max (optional argument: val if absent) */
	HS_OPT_MS,               /* n: milliseconds, an integer from min to INT_MAX */
	HS_OPT_SIZE,             /* u: an integer with an optional K, M or G (hs_parse_size) */
	HS_OPT_CHOICE,           /* n: the index of the argument in choices */
};

struct hs_opt {
	const char *name;        /* the long option, "top" for --top */
	int key;                 /* a letter: the slot in the values (options may share one) */
	enum hs_opt_kind kind;
	int has_arg;             /* getopt's required_argument (default for all but FLAG) or optional_argument */
	char letter;             /* the short option, or 0 */
	long val, min, max;
	const char *const *choices;   /* HS_OPT_CHOICE: NULL-terminated */
	const char *bad;         /* the usage error for a bad value: "--top takes a positive count" */
	const char *arg;         /* --help: the argument's name ("N"), NULL for a flag */
	const char *help;        /* --help: what it does; NULL: not listed ('\n' starts a continuation line) */
};

struct hs_optval {
	bool set;
	long n;
	uint64_t u;
	const char *s;
};

/* getopt_long's has_arg for o. */
int hs_opt_has_arg(const struct hs_opt *o);
/* o given with argument arg (NULL: none) into *v.  -EINVAL: a bad value
 * (o->bad says so). */
int hs_opt_value(const struct hs_opt *o, const char *arg, struct hs_optval *v);
/* getopt_long's tables for the options of groups (NULL ones skipped;
 * the first HS_OPT_MAX): a long option returns 256 + its index in tab. */
#define HS_OPT_MAX 64
struct hs_opt_getopt {
	const struct hs_opt *tab[HS_OPT_MAX];
	struct option lo[HS_OPT_MAX + 1];
	char shorts[32];
	size_t n;
};
void hs_opt_getopt_init(struct hs_opt_getopt *g, const struct hs_opt *const *groups, size_t ngroups);
/* The option getopt_long's return value ch stands for; NULL for '?' (an
 * error getopt_long has reported). */
const struct hs_opt *hs_opt_getopt_find(const struct hs_opt_getopt *g, int ch);
/* --help's option lines for the tables in groups (NULL ones skipped):
 * "  -o, --output FILE  text", the text wrapped at 79 columns. */
void hs_opt_help(FILE *fp, const struct hs_opt *const *groups, size_t ngroups);
/* A count: an integer from min to max (strtol's syntax, base 10).  0 or -EINVAL. */
int hs_parse_count(const char *s, long min, long max, long *v);

#endif
