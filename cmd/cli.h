/* What every subcommand shares: options, errors, exit status. */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"
#include "json.h"
#include "opt.h"

enum {
	HS_EXIT_OK = 0,
	HS_EXIT_PARTIAL = 1,     /* output given, something non-fatal went wrong */
	HS_EXIT_FATAL = 2,
	HS_EXIT_REFUSED = 75,    /* trim, mtrace: not safe now, nothing done (EX_TEMPFAIL) */
	HS_EXIT_USAGE = 64,
};

/* Global options a command accepts besides --help. */
enum {
	HS_CMD_JSON = 1,         /* --json */
	HS_CMD_DEBUGINFO = 2,    /* --no-debuginfo, --no-debuginfod */
	HS_CMD_GLOBALS = HS_CMD_JSON | HS_CMD_DEBUGINFO,
	HS_CMD_PID = 4,          /* the one operand is a PID: in cli->pid */
};

struct hs_cli {
	const char *cmd;         /* "arenas" */
	bool json;
	bool no_debuginfo;
	bool no_debuginfod;
	struct hs_json j;
	struct hs_optval opt[128];
	int argc;                /* the operands, options removed */
	char **argv;
	pid_t pid;               /* HS_CMD_PID: the operand */
};

struct hs_command {
	const char *name;
	int (*run)(struct hs_cli *cli);
	const char *summary;
	const char *help;        /* COMMAND --help: usage and description; the options are listed from opts */
	const struct hs_opt *opts;   /* ends with { 0 }; NULL for none; parsed by cmd/main.c into cli->opt */
	unsigned flags;          /* HS_CMD_* */
	void (*help_more)(FILE *fp);  /* optional: printed after help */
};

/* The value of option key, if it was given, else def. */
static inline long hs_cli_num(const struct hs_cli *cli, int key, long def)
{
	return cli->opt[key].set ? cli->opt[key].n : def;
}

static inline const char *hs_cli_str(const struct hs_cli *cli, int key)
{
	return cli->opt[key].set ? cli->opt[key].s : NULL;
}

/* Report a fatal error: one line on stderr, and {"error": ...} on stdout
 * in JSON mode.  Returns status. */
int hs_cli_fail(struct hs_cli *cli, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A warning on stderr (a partial result). */
void hs_cli_warn(struct hs_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A usage error: message, then "try --help". Returns HS_EXIT_USAGE. */
int hs_cli_usage(struct hs_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse the PID operand: the one operand left in argv[first..argc). */
int hs_cli_pid(struct hs_cli *cli, int argc, char **argv, int first, pid_t *pid);

struct hs_snapshot_opts;
/* Snapshot options with the global ones (--no-debuginfo, --no-debuginfod). */
void hs_cli_snapshot_opts(const struct hs_cli *cli, struct hs_snapshot_opts *o);

extern const struct hs_command hs_cmd_arenas, hs_cmd_stats, hs_cmd_maps, hs_cmd_dump, hs_cmd_bins, hs_cmd_chunks,
	hs_cmd_trim, hs_cmd_mtrace, hs_cmd_top, hs_cmd_map, hs_cmd_profile;

#endif
