/* What every subcommand shares: options, errors, exit status. */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"
#include "json.h"

enum {
	HS_EXIT_OK = 0,
	HS_EXIT_PARTIAL = 1,     /* output given, something non-fatal went wrong */
	HS_EXIT_FATAL = 2,
	HS_EXIT_REFUSED = 75,    /* trim, mtrace: not safe now, nothing done (EX_TEMPFAIL) */
	HS_EXIT_USAGE = 64,
};

struct hs_cli {
	const char *cmd;         /* "arenas" */
	bool json;
	bool no_debuginfo;
	bool no_debuginfod;
	struct hs_json j;
};

struct hs_command {
	const char *name;
	int (*run)(struct hs_cli *cli, int argc, char **argv);
	const char *summary;
};

/* Report a fatal error: one line on stderr, and {"error": ...} on stdout
 * in JSON mode.  Returns status. */
int hs_cli_fail(struct hs_cli *cli, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A warning on stderr (a partial result). */
void hs_cli_warn(struct hs_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A usage error: message, then "try --help". Returns HS_EXIT_USAGE. */
int hs_cli_usage(struct hs_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse the PID operand: the one remaining argument. */
int hs_cli_pid(struct hs_cli *cli, int argc, char **argv, int optind_, pid_t *pid);

struct hs_snapshot_opts;
/* Snapshot options with the global ones (--no-debuginfo, --no-debuginfod). */
void hs_cli_snapshot_opts(const struct hs_cli *cli, struct hs_snapshot_opts *o);

int cmd_arenas(struct hs_cli *cli, int argc, char **argv);
int cmd_stats(struct hs_cli *cli, int argc, char **argv);
int cmd_maps(struct hs_cli *cli, int argc, char **argv);
int cmd_dump(struct hs_cli *cli, int argc, char **argv);
int cmd_bins(struct hs_cli *cli, int argc, char **argv);
int cmd_chunks(struct hs_cli *cli, int argc, char **argv);
int cmd_trim(struct hs_cli *cli, int argc, char **argv);
int cmd_mtrace(struct hs_cli *cli, int argc, char **argv);
int cmd_top(struct hs_cli *cli, int argc, char **argv);
int cmd_map(struct hs_cli *cli, int argc, char **argv);
int cmd_profile(struct hs_cli *cli, int argc, char **argv);

#endif
