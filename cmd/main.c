/* heapscope: see and fix what glibc's malloc does with a live process's
 * memory.  This file owns the command table, the global options and the
 * exit status; each cmd/<name>.c parses its options and renders. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static const struct hs_command *const commands[] = {
	&hs_cmd_arenas, &hs_cmd_stats, &hs_cmd_maps, &hs_cmd_dump, &hs_cmd_bins, &hs_cmd_chunks, &hs_cmd_trim,
	&hs_cmd_mtrace, &hs_cmd_map, &hs_cmd_top, &hs_cmd_profile,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The global options, in cli->opt under keys no command uses. */
enum { KEY_JSON = 1, KEY_NO_DEBUGINFO, KEY_NO_DEBUGINFOD, KEY_HELP };
static const struct hs_opt json_opt[] = { { .name = "json", .key = KEY_JSON, .help = "one JSON document" }, { 0 } };
static const struct hs_opt debuginfo_opts[] = {
	{ .name = "no-debuginfo", .key = KEY_NO_DEBUGINFO, .help = "ignore libc debug info; find malloc's state without it" },
	{ .name = "no-debuginfod", .key = KEY_NO_DEBUGINFOD, .help = "look for debug info only on this machine" },
	{ 0 },
};
static const struct hs_opt help_opt[] = {
	{ .name = "help", .key = KEY_HELP, .letter = 'h', .help = "this help" },
	{ 0 },
};

/* COMMAND --help: its text, then one line per option of the groups. */
static void help(const struct hs_command *c, const struct hs_opt *const *groups, size_t ngroups)
{
	fputs(c->help, stdout);
	putchar('\n');
	hs_opt_help(stdout, groups, ngroups);
	if (c->help_more)
		c->help_more(stdout);
}

static void usage(FILE *fp)
{
	fputs("usage: heapscope [--help] [--version] COMMAND [OPTIONS] PID\n\ncommands:\n", fp);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(fp, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\nglobal options (after the command): --no-debuginfo (ignore libc debug info),\n"
	      "--no-debuginfod (look for it only on this machine, not through DEBUGINFOD_URLS)\n"
#if !HS_HAVE_DEBUGINFOD
	      "(this heapscope was built without libdebuginfod: debuginfod is not built in)\n"
#endif
	      "\nRun 'heapscope COMMAND --help' for a command's options; see heapscope(1).\n"
	      "Exit status: 0 ok, 1 partial result, 2 fatal error, 64 usage error,\n"
	      "75 refused (trim, mtrace: not safe in time, nothing done).\n", fp);
}

/* "heapscope: CMD: message" on stderr; the message in msg. */
static void vmsg(const struct hs_cli *cli, char *msg, size_t len, const char *fmt, va_list ap)
{
	vsnprintf(msg, len, fmt, ap);
	fprintf(stderr, "heapscope: %s%s%s\n", cli->cmd ? cli->cmd : "", cli->cmd ? ": " : "", msg);
}

int hs_cli_fail(struct hs_cli *cli, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vmsg(cli, msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cli->json)
		hs_json_fail(&cli->j, msg, status);
	return status;
}

void hs_cli_warn(struct hs_cli *cli, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vmsg(cli, msg, sizeof(msg), fmt, ap);
	va_end(ap);
}

int hs_cli_usage(struct hs_cli *cli, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vmsg(cli, msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'heapscope %s%s--help'.\n", cli->cmd ? cli->cmd : "", cli->cmd ? " " : "");
	return HS_EXIT_USAGE;
}

int hs_cli_pid(struct hs_cli *cli, int argc, char **argv, int first, pid_t *pid)
{
	long v;
	if (first >= argc)
		return hs_cli_usage(cli, "missing PID");
	if (first + 1 < argc)
		return hs_cli_usage(cli, "unexpected argument '%s'", argv[first + 1]);
	if (hs_parse_count(argv[first], 1, INT_MAX, &v) < 0)
		return hs_cli_usage(cli, "'%s' is not a process id", argv[first]);
	*pid = (pid_t)v;
	return 0;
}

/* The command's options and the global ones it accepts, anywhere among
 * its operands, which are left in argv[*first..argc).  0, or the usage
 * status (-1: --help was printed). */
static int parse_opts(struct hs_cli *cli, const struct hs_command *c, int argc, char **argv, int *first)
{
	const struct hs_opt *groups[] = { c->opts, c->flags & HS_CMD_JSON ? json_opt : NULL,
					  c->flags & HS_CMD_DEBUGINFO ? debuginfo_opts : NULL, help_opt };
	struct hs_opt_getopt go;
	hs_opt_getopt_init(&go, groups, sizeof(groups) / sizeof(groups[0]));
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, go.shorts, go.lo, NULL)) != -1) {
		const struct hs_opt *o = hs_opt_getopt_find(&go, ch);
		if (!o)
			return hs_cli_usage(cli, "bad option");
		if (o->key == KEY_HELP) {
			help(c, groups, sizeof(groups) / sizeof(groups[0]));
			return -1;
		}
		if (hs_opt_value(o, optarg, &cli->opt[o->key]) < 0)
			return hs_cli_usage(cli, "%s", o->bad);
	}
	cli->json = cli->opt[KEY_JSON].set;
	cli->no_debuginfo = cli->opt[KEY_NO_DEBUGINFO].set;
	cli->no_debuginfod = cli->opt[KEY_NO_DEBUGINFOD].set;
	*first = optind;
	return 0;
}

int main(int argc, char **argv)
{
	struct hs_cli cli = { 0 };
	/* A reader that goes away (heapscope chunks PID | head -1) is an
	 * output that could not be written: exit 2 with a message, as
	 * documented, rather than die of SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return HS_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		usage(stdout);
		return HS_EXIT_OK;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("heapscope %s\n", HS_VERSION);
		return HS_EXIT_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i]->name)) {
			const struct hs_command *c = commands[i];
			int first = 0;
			cli.cmd = c->name;
			hs_json_init(&cli.j, stdout);
			int status = parse_opts(&cli, c, argc - 1, argv + 1, &first);
			cli.argc = argc - 1 - first;
			cli.argv = argv + 1 + first;
			if (!status && (c->flags & HS_CMD_PID))
				status = hs_cli_pid(&cli, cli.argc, cli.argv, 0, &cli.pid);
			if (status)
				return status < 0 ? HS_EXIT_OK : status;
			status = c->run(&cli);
			if (fflush(stdout) != 0 || ferror(stdout)) {
				cli.json = false;
				return hs_cli_fail(&cli, HS_EXIT_FATAL, "cannot write output: %s", strerror(errno));
			}
			return status;
		}
	fprintf(stderr, "heapscope: '%s' is not a heapscope command\n", name);
	usage(stderr);
	return HS_EXIT_USAGE;
}
