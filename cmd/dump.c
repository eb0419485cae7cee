/* heapscope dump: a region's bytes, or the strings in it, in one pass. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

struct dump {
	struct hs_cli *cli;
	pid_t pid;
	const char *spec;
	struct hs_dump_file out;  /* raw: stdout, or the file of -o */
	uint64_t written;
	bool strings;
	regex_t re;
	bool grep;
	struct hs_strsink ss;     /* --strings */
	uint64_t total, done, skipped;   /* progress and gaps */
	bool progress;
	uint64_t last_progress_ns;
	int status;
};

static void progress(struct dump *d, bool last)
{
	struct timespec ts;
	if (!d->progress || clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return;
	uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
	if (!last && t - d->last_progress_ns < 200000000u)
		return;
	d->last_progress_ns = t;
	char a[HS_SIZE_BUF], b[HS_SIZE_BUF];
	fprintf(stderr, "\rheapscope: dump: %s of %s%s", hs_fmt_size(d->done, a), hs_fmt_size(d->total, b),
		last ? "\n" : "");
}

/* The sink of the dump: the target runs (again) when these are called. */
static int on_data(void *ctx, uint64_t addr, const unsigned char *buf, size_t len)
{
	struct dump *d = ctx;
	int r = d->strings ? hs_strsink_data(&d->ss, addr, buf, len) : hs_write_full(d->out.fd, buf, len);
	d->written += d->strings || r ? 0 : len;
	d->done += len;
	progress(d, false);
	return r;
}

/* Plain ASCII strings: written from the bytes read, not copied. */
static int on_own(void *ctx, uint64_t addr, unsigned char *buf, size_t len)
{
	struct dump *d = ctx;
	d->done += len;
	progress(d, false);
	return hs_strsink_own(&d->ss)(&d->ss, addr, buf, len);
}

static void on_skip(void *ctx, uint64_t addr, uint64_t len, const char *why)
{
	struct dump *d = ctx;
	char s[HS_SIZE_BUF];
	hs_cli_warn(d->cli, "skipped 0x%" PRIx64 "-0x%" PRIx64 " (%s): %s", addr, addr + len, hs_fmt_size(len, s), why);
	d->skipped += len;
	d->done += len;
	d->status = HS_EXIT_PARTIAL;
}

static void on_end(void *ctx)
{
	struct dump *d = ctx;
	if (d->strings)
		hs_strsink_end(&d->ss);
}

static void on_note(void *ctx, const char *msg)
{
	struct dump *d = ctx;
	hs_cli_warn(d->cli, "%s", msg);
}

/* The options into d: 0, or the usage status. */
static int setup(struct hs_cli *cli, struct dump *d, int argc, char **argv)
{
	const char *grep = hs_cli_str(cli, 'g');
	if (argc != 2)
		return hs_cli_usage(cli, argc < 2 ? "missing PID or RANGE" : "too many arguments");
	int r = hs_cli_pid(cli, 1, argv, 0, &d->pid);
	if (r)
		return r;
	struct hs_err serr = { 0 };
	if (hs_range_check(d->spec = argv[1], &serr) < 0)
		return hs_cli_usage(cli, "%s", serr.msg);
	d->strings = cli->opt['s'].set || cli->opt['t'].set || grep;
	if (d->strings && cli->opt['o'].set)
		return hs_cli_usage(cli, "-o writes raw bytes; --strings, --grep and --top print to stdout");
	if (cli->json && !d->strings)
		return hs_cli_usage(cli, "--json goes with --strings or --top (raw bytes are not JSON)");
	if (!d->strings && !cli->opt['o'].set && isatty(STDOUT_FILENO))
		return hs_cli_usage(cli, "refusing to write raw memory to a terminal: use -o FILE or a pipe");
	if (grep) {
		int e = regcomp(&d->re, grep, REG_EXTENDED | REG_NOSUB);
		if (e) {
			char msg[128];
			regerror(e, &d->re, msg, sizeof(msg));
			return hs_cli_usage(cli, "bad --grep regex: %s", msg);
		}
		d->grep = true;
	}
	return 0;
}

/* Where the output goes: the file of -o, stdout, the strings' sink. */
static int open_sink(struct hs_cli *cli, struct dump *d)
{
	static char outbuf[1 << 20];
	if (!d->strings) {
		struct hs_err err = { 0 };
		d->out = (struct hs_dump_file){ .fd = STDOUT_FILENO, .path = hs_cli_str(cli, 'o') };
		if (d->out.path && hs_dump_file_open(&d->out, d->out.path, cli->opt['f'].set, &err) < 0)
			return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		return 0;
	}
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	struct hs_strsink_opts o = {
		.min = (unsigned)hs_cli_num(cli, 's', 4), .address = !cli->opt['A'].set,
		.encodings = (int)hs_cli_num(cli, 'e', 0) + 1,   /* ascii, utf16le, all: the HS_ENC_* bits */
		.grep = d->grep ? &d->re : NULL, .top = cli->opt['t'].set, .json = cli->json ? &cli->j : NULL,
		.pid = d->pid, .range = d->spec,
	};
	if (hs_strsink_init(&d->ss, &o, STDOUT_FILENO) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
	return 0;
}

/* After a complete read: the file closed, the strings' end, what was
 * written. */
static int finish(struct hs_cli *cli, struct dump *d, const struct hs_dump *dd)
{
	struct hs_err err = { 0 };
	if (!d->strings && d->out.path && hs_dump_file_commit(&d->out, &err) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	if (d->strings)
		hs_strsink_finish(&d->ss, hs_cli_num(cli, 't', 0), stdout, dd, d->skipped);
	if (d->out.path) {
		char a[HS_SIZE_BUF], p[HS_SIZE_BUF];
		fprintf(stderr, "heapscope: dump: wrote %s (%" PRIu64 " bytes) to %s%s%s\n", hs_fmt_size(d->written, a),
			d->written, d->out.path, dd->freeze ? "; target paused " : "", dd->freeze ? hs_fmt_us(dd->pause_us, p) : "");
	}
	return d->status;
}

static int cmd_dump(struct hs_cli *cli)
{
	struct dump d = { .cli = cli, .out.fd = -1, .status = HS_EXIT_OK };
	int status = setup(cli, &d, cli->argc, cli->argv);
	if (status)
		goto out;
	struct hs_dump_opts o = { .freeze = hs_cli_num(cli, 'F', 1), .use_debuginfo = !cli->no_debuginfo,
				  .use_debuginfod = !cli->no_debuginfod };
	struct hs_dump dd;
	struct hs_err err = { 0 };
	int r = hs_dump_open(d.pid, d.spec, &o, &dd, &err);
	if (r < 0)
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	else
		status = open_sink(cli, &d);
	if (status)
		goto close;
	d.total = dd.total;
	d.progress = isatty(STDERR_FILENO) && d.total >= (256u << 20);
	struct hs_dump_sink sink = { .data = on_data, .skip = on_skip, .end = on_end, .note = on_note,
				     .own = d.strings && hs_strsink_own(&d.ss) ? on_own : NULL };
	r = hs_dump_run(&dd, &sink, &d, &err);
	progress(&d, true);
	if (d.strings && hs_strsink_flush(&d.ss) < 0) {
		/* as main says it of stdout */
		cli->json = false;
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "cannot write output: %s", strerror(-d.ss.w.error));
		goto close;
	}
	if (r < 0) {
		if (!d.strings && r != -ESRCH && err.msg[0] == '\0')
			snprintf(err.msg, sizeof(err.msg), "cannot write %s: %s", d.out.path ? d.out.path : "stdout", strerror(-r));
		/* A partial dump is worse than none: it looks complete. */
		bool removed = hs_dump_file_discard(&d.out);
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s%s", err.msg[0] ? err.msg : strerror(-r),
				     removed ? " (the partial file was removed)" : "");
	} else {
		status = finish(cli, &d, &dd);
	}
close:
	/* still open: the dump failed before it was complete */
	hs_dump_file_discard(&d.out);
	hs_strsink_release(&d.ss);
	hs_dump_close(&dd);
out:
	if (d.grep)
		regfree(&d.re);
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
	{ .name = "no-freeze", .key = 'F', .val = 0, .help = "read while the target runs" },
	{ 0 },
};

const struct hs_command hs_cmd_dump = {
	.name = "dump", .run = cmd_dump, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS,
	.summary = "a region's bytes, or the strings in it, in one pass",
};
