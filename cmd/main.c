/* heapscope: see and fix what glibc's malloc does with a live process's
 * memory.  This file owns the command table, the global options and the
 * exit status; each cmd/<name>.c parses its options and renders. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static const struct hs_command commands[] = {
	{ "arenas", cmd_arenas, "every arena: heaps, resident, free inside malloc, trimmable" },
	{ "stats", cmd_stats, "malloc_info() and mallinfo2() of the target, computed from outside" },
	{ "maps", cmd_maps, "the mappings, classified: heaps, arena heaps, stacks, mmapped chunks" },
	{ "dump", cmd_dump, "a region's bytes, or the strings in it, in one pass" },
	{ "bins", cmd_bins, "every free list and its chunks, checked for corruption" },
	{ "chunks", cmd_chunks, "every chunk of the heaps, walked linearly; --histogram" },
	{ "trim", cmd_trim, "malloc_trim inside the target, safely, and what it returned" },
	{ "mtrace", cmd_mtrace, "glibc's allocation trace on and off in the target; its log summarised" },
	{ "map", cmd_map, "a picture of each arena heap, page by page; --svg" },
	{ "top", cmd_top, "every process ranked by what its arenas hold resident but free" },
	{ "profile", cmd_profile, "who allocates, by whole call stack: a sampler loaded late, near-zero cost" },
};

static void usage(FILE *fp)
{
	fputs("usage: heapscope [--help] [--version] COMMAND [OPTIONS] PID\n\ncommands:\n", fp);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(fp, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fputs("\nglobal options (after the command): --no-debuginfo (ignore libc debug info),\n"
	      "--no-debuginfod (look for it only on this machine, not through DEBUGINFOD_URLS)\n"
#if !HS_HAVE_DEBUGINFOD
	      "(this heapscope was built without libdebuginfod: debuginfod is not built in)\n"
#endif
	      "\nRun 'heapscope COMMAND --help' for a command's options; see heapscope(1).\n"
	      "Exit status: 0 ok, 1 partial result, 2 fatal error, 64 usage error,\n"
	      "75 refused (trim, mtrace: not safe in time, nothing done).\n", fp);
}

static void vmsg(struct hs_cli *cli, const char *what, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "heapscope: %s%s%s%s\n", cli->cmd ? cli->cmd : "", cli->cmd ? ": " : "", what, msg);
}

int hs_cli_fail(struct hs_cli *cli, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "heapscope: %s%s%s\n", cli->cmd ? cli->cmd : "", cli->cmd ? ": " : "", msg);
	if (cli->json) {
		struct hs_json j;
		hs_json_init(&j, stdout);
		hs_json_obj_begin(&j, NULL);
		hs_json_str(&j, "error", msg);
		hs_json_i64(&j, "exit_status", status);
		hs_json_obj_end(&j);
		hs_json_finish(&j);
	}
	return status;
}

void hs_cli_warn(struct hs_cli *cli, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(cli, "", fmt, ap);
	va_end(ap);
}

int hs_cli_usage(struct hs_cli *cli, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(cli, "", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'heapscope %s%s--help'.\n", cli->cmd ? cli->cmd : "", cli->cmd ? " " : "");
	return HS_EXIT_USAGE;
}

int hs_cli_pid(struct hs_cli *cli, int argc, char **argv, int optind_, pid_t *pid)
{
	if (optind_ >= argc)
		return hs_cli_usage(cli, "missing PID");
	if (optind_ + 1 < argc)
		return hs_cli_usage(cli, "unexpected argument '%s'", argv[optind_ + 1]);
	const char *s = argv[optind_];
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v <= 0 || v > INT_MAX)
		return hs_cli_usage(cli, "'%s' is not a process id", s);
	*pid = (pid_t)v;
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
	/* Global options, accepted anywhere after the command. */
	int k = 2;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--no-debuginfod"))
			cli.no_debuginfod = true;
		else if (!strcmp(argv[i], "--no-debuginfo"))
			cli.no_debuginfo = true;
		else
			argv[k++] = argv[i];
	}
	argc = k;
	argv[argc] = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name)) {
			cli.cmd = commands[i].name;
			hs_json_init(&cli.j, stdout);
			int status = commands[i].run(&cli, argc - 1, argv + 1);
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
