/* heapscope dump: a region's bytes, or the strings in it, in one pass. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "dump.h"
#include "format.h"
#include "proc.h"
#include "session.h"
#include "strtab.h"

static const char help[] =
	"usage: heapscope dump [options] PID RANGE\n"
	"\n"
	"The bytes of a region of PID, raw or as the printable strings in them.\n"
	"RANGE: 0xSTART-0xEND, 0xSTART+LEN (LEN may end in K, M or G), arena:N (every\n"
	"heap of arena N, as heapscope arenas numbers them), heap:ADDR (the heap holding\n"
	"ADDR), [heap], [stack], the start address of a mapping, or a mapped file's path.\n"
	"Unmapped and PROT_NONE parts are skipped and reported.\n"
	"\n"
	"  -o, --output FILE     write the raw bytes to FILE, created mode 0600 (dumps\n"
	"                        hold secrets); without -o, to stdout if it is no terminal\n"
	"      --force           replace FILE if it is a regular file, by a new 0600 file\n"
	"                        renamed over it when complete (never through a symlink)\n"
	"      --strings[=N]     print printable runs of at least N characters (default 4,\n"
	"                        as strings(1)), each with its address in hex\n"
	"      --no-address      print the strings alone: exactly what strings -n N prints\n"
	"      --encoding=ENC    ascii (default), utf16le (Java's and Windows' strings) or all\n"
	"      --grep REGEX      only the strings that match REGEX (POSIX extended)\n"
	"      --top K           the K most frequent strings, with count and bytes\n"
	"      --freeze          stop the threads while reading, for a consistent image\n"
	"                        (the default; at most 256M and 1s, else a warning says\n"
	"                        the output is not one snapshot); the pause is reported\n"
	"      --no-freeze       read while the target runs\n"
	"      --json            JSON (with --strings or --top)\n"
	"      --no-debuginfo    ignore libc debug info (for arena:N and heap:ADDR)\n"
	"  -h, --help            this help\n"
	"\n"
	"Exit status: 0 ok, 1 partial (something was skipped), 2 fatal, 64 usage.\n";

struct dump {
	struct hs_cli *cli;
	/* raw */
	int fd;
	const char *path;        /* -o */
	char *tmp;               /* --force: written here, renamed to path */
	uint64_t written;
	/* strings */
	bool strings, address, top_mode;
	unsigned min;
	int encodings;           /* HS_ENC_* bits */
	struct hs_strings sc[2];
	regex_t re;
	bool grep, grep_match;
	FILE *out;
	bool first_json;
	uint64_t nstrings;
	struct hs_strtab top;    /* --top */
	char *wb;                /* plain strings, WBUF bytes */
	size_t wn;
	/* progress and gaps */
	uint64_t total, done, skipped;
	uint64_t nbytes;         /* bytes written or scanned */
	bool progress;
	uint64_t last_progress_ns;
	struct hs_session *ses;
	int status;
	/* --freeze: what was read while the target was stopped (bytes, runs
	 * of zeros, gaps, ends of ranges), written, scanned and reported only
	 * after it runs again: nothing is written while a thread is stopped,
	 * as a blocked stdout (dump | less) would keep it stopped. */
	bool capturing;
	unsigned char *cap;
	size_t caplen, capsize;
	struct capseg {
		enum segkind { SEG_DATA, SEG_ZEROS, SEG_SKIP, SEG_END } kind;
		uint64_t addr, len;
		size_t off;              /* SEG_DATA: where in cap */
		const char *why;         /* SEG_SKIP */
	} *segs;
	size_t nsegs;
	bool over;               /* the stop reached its limits */
	uint64_t resume;         /* ... at this address */
	bool consistent;         /* all was read in one stop */
};

/* The limits of one stop: the bytes read while the target is stopped are
 * held in memory (so its pause is the read alone), at most CAPTURE_MAX,
 * and the stop lasts at most STOP_MAX_US.  A range with more mapped than
 * that is read while the target runs; a stop that reaches a limit ends
 * there, and the rest is read while the target runs. */
#define CAPTURE_MAX ((size_t)256 << 20)
#define STOP_MAX_US 1000000u

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void put_json_string(FILE *fp, const char *s, size_t n)
{
	fputc('"', fp);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c == '\t')
			fputs("\\t", fp);
		else if (c < 0x20)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

/* Plain strings go to a buffer of their own, written in big blocks: no
 * printf and no stdio call per string.  WBUF holds a whole piece
 * (HS_STRING_MAX) with its address. */
#define WBUF ((size_t)2 << 20)

static void out_flush(struct dump *d)
{
	size_t off = 0;
	fflush(d->out);
	while (off < d->wn) {
		ssize_t k = write(fileno(d->out), d->wb + off, d->wn - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			/* through stdio, to leave the error where main looks */
			fwrite_unlocked(d->wb + off, 1, d->wn - off, d->out);
			break;
		}
		off += (size_t)k;
	}
	d->wn = 0;
}

static void out_string(struct dump *d, uint64_t addr, const char *s, size_t n, bool more, bool cont)
{
	if (d->wn + n + 18 > WBUF)
		out_flush(d);
	char *p = d->wb + d->wn;
	if (!cont && d->address) {
		unsigned digits = (67 - (unsigned)__builtin_clzll(addr | 1)) / 4;
		for (unsigned k = digits; k-- > 0; addr >>= 4)
			p[k] = "0123456789abcdef"[addr & 15];
		p[digits] = ' ';
		p += digits + 1;
	}
	memcpy(p, s, n);
	p += n;
	if (!more)
		*p++ = '\n';
	d->wn = (size_t)(p - d->wb);
}

/* A whole string (or a piece of a huge one) from the scanner. */
static void on_string(void *ctx, uint64_t addr, const char *s, size_t n, bool more, bool cont)
{
	struct dump *d = ctx;
	if (d->grep) {
		/* Matched on its first HS_STRING_MAX bytes; the pieces of a
		 * longer string follow the first one's verdict. */
		if (!cont) {
			char *z = malloc(n + 1);
			if (!z)
				return;
			memcpy(z, s, n);
			z[n] = '\0';
			d->grep_match = regexec(&d->re, z, 0, NULL, 0) == 0;
			free(z);
		}
		if (!d->grep_match)
			return;
	}
	if (d->top_mode) {
		if (!cont)
			hs_strtab_add(&d->top, s, n, n);
		return;
	}
	if (d->cli->json) {
		if (cont)
			return;     /* JSON holds the first HS_STRING_MAX bytes */
		fputs(d->first_json ? "\n    " : ",\n    ", d->out);
		d->first_json = false;
		fprintf(d->out, "{\"address\": \"0x%" PRIx64 "\", \"string\": ", addr);
		put_json_string(d->out, s, n);
		fputc('}', d->out);
	} else {
		out_string(d, addr, s, n, more, cont);
	}
	if (!cont)
		d->nstrings++;
}

static void progress(struct dump *d, bool last)
{
	if (!d->progress)
		return;
	uint64_t t = now_ns();
	if (!last && t - d->last_progress_ns < 200000000u)
		return;
	d->last_progress_ns = t;
	char a[HS_SIZE_BUF], b[HS_SIZE_BUF];
	fprintf(stderr, "\rheapscope: dump: %s of %s%s", hs_fmt_size(d->done, a), hs_fmt_size(d->total, b),
		last ? "\n" : "");
}

static int process(struct dump *d, uint64_t addr, const unsigned char *buf, size_t len);
static int process_zeros(struct dump *d, uint64_t addr, uint64_t len);
static void report_skip(struct dump *d, uint64_t addr, uint64_t len, const char *why);

/* Record a piece of the capture, merged with the last one if it goes on
 * from it.  -ENOMEM if the list cannot grow. */
static int capture_seg(struct dump *d, enum segkind kind, uint64_t addr, uint64_t len, const char *why)
{
	struct capseg *last = d->nsegs ? &d->segs[d->nsegs - 1] : NULL;
	if (last && last->kind == kind && (kind == SEG_DATA || kind == SEG_ZEROS) && last->addr + last->len == addr) {
		last->len += len;
		return 0;
	}
	struct capseg *ns = realloc(d->segs, (d->nsegs + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	d->segs = ns;
	ns[d->nsegs++] = (struct capseg){ .kind = kind, .addr = addr, .len = len, .off = d->caplen, .why = why };
	return 0;
}

/* Has the stop reached its limits (if len more bytes were held)? */
static bool stop_over(struct dump *d, uint64_t addr, size_t len)
{
	if (d->caplen + len <= d->capsize && hs_session_pause_us(d->ses) <= STOP_MAX_US)
		return false;
	d->over = true;
	d->resume = addr;
	return true;
}

static int on_data(void *ctx, uint64_t addr, const unsigned char *buf, size_t len)
{
	struct dump *d = ctx;
	if (!d->capturing)
		return process(d, addr, buf, len);
	if (stop_over(d, addr, len))
		return -EAGAIN;
	int r = capture_seg(d, SEG_DATA, addr, len, NULL);
	if (r < 0)
		return r;
	if (buf != d->cap + d->caplen)
		memcpy(d->cap + d->caplen, buf, len);
	d->caplen += len;
	return 0;
}

static int on_zeros(void *ctx, uint64_t addr, uint64_t len)
{
	struct dump *d = ctx;
	if (!d->capturing)
		return process_zeros(d, addr, len);
	if (stop_over(d, addr, 0))
		return -EAGAIN;
	return capture_seg(d, SEG_ZEROS, addr, len, NULL);
}

static void on_skip(void *ctx, uint64_t addr, uint64_t len, const char *why)
{
	struct dump *d = ctx;
	/* why is a static string of lib/dump.c: it outlives the capture */
	if (!d->capturing || capture_seg(d, SEG_SKIP, addr, len, why) < 0)
		report_skip(d, addr, len, why);
}

/* Capture: read straight into the buffer (on_data then only records). */
static unsigned char *capture_dest(void *ctx, size_t len)
{
	struct dump *d = ctx;
	return d->capturing && d->caplen + len <= d->capsize ? d->cap + d->caplen : NULL;
}

static void strings_end(struct dump *d)
{
	for (int e = 0; e < 2; e++)
		if (d->strings && (d->encodings & (1 << e)))
			hs_strings_end(&d->sc[e]);
}

/* The target runs again: write or scan what was captured, in order. */
static int flush_capture(struct dump *d)
{
	int r = 0;
	for (size_t i = 0; i < d->nsegs && r == 0; i++) {
		const struct capseg *g = &d->segs[i];
		switch (g->kind) {
		case SEG_DATA: r = process(d, g->addr, d->cap + g->off, g->len); break;
		case SEG_ZEROS: r = process_zeros(d, g->addr, g->len); break;
		case SEG_SKIP: report_skip(d, g->addr, g->len, g->why); break;
		case SEG_END: strings_end(d); break;
		}
	}
	d->nsegs = 0;
	d->caplen = 0;
	return r;
}

static int process(struct dump *d, uint64_t addr, const unsigned char *buf, size_t len)
{
	d->nbytes += len;
	if (d->strings) {
		for (int e = 0; e < 2; e++)
			if (d->encodings & (1 << e))
				hs_strings_feed(&d->sc[e], addr, buf, len);
	} else {
		size_t off = 0;
		while (off < len) {
			ssize_t n = write(d->fd, buf + off, len - off);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			off += n;
		}
		d->written += len;
	}
	d->done += len;
	progress(d, false);
	return 0;
}

static int process_zeros(struct dump *d, uint64_t addr, uint64_t len)
{
	static const unsigned char zero[64 << 10];
	int r = 0;
	for (uint64_t off = 0; off < len && r == 0; off += sizeof(zero))
		r = process(d, addr + off, zero, len - off < sizeof(zero) ? (size_t)(len - off) : sizeof(zero));
	return r;
}

static void report_skip(struct dump *d, uint64_t addr, uint64_t len, const char *why)
{
	char s[HS_SIZE_BUF];
	hs_cli_warn(d->cli, "skipped 0x%" PRIx64 "-0x%" PRIx64 " (%s): %s", addr, addr + len, hs_fmt_size(len, s), why);
	d->skipped += len;
	d->done += len;
	d->status = HS_EXIT_PARTIAL;
}

static void print_top(struct dump *d, long k)
{
	size_t n = hs_strtab_sort(&d->top);
	const struct hs_strent *v = d->top.v;
	if ((size_t)k > n)
		k = (long)n;
	if (d->cli->json) {
		fputs("  \"top\": [", d->out);
		for (long i = 0; i < k; i++) {
			fputs(i ? ",\n    {\"string\": " : "\n    {\"string\": ", d->out);
			put_json_string(d->out, v[i].s, v[i].len);
			fprintf(d->out, ", \"count\": %" PRIu64 ", \"bytes\": %" PRIu64 "}", v[i].count, v[i].bytes);
		}
		fputs(k ? "\n  ],\n" : "],\n", d->out);
		fprintf(d->out, "  \"distinct\": %zu,\n  \"untracked\": %" PRIu64 ",\n", n, d->top.untracked);
	} else {
		printf("%10s %10s  %s\n", "COUNT", "BYTES", "STRING");
		for (long i = 0; i < k; i++)
			printf("%10" PRIu64 " %10" PRIu64 "  %s\n", v[i].count, v[i].bytes, v[i].s);
		if (d->top.untracked)
			printf("(%" PRIu64 " strings not counted: more than a million distinct ones)\n", d->top.untracked);
	}
}

/* Where the raw bytes go with -o: a new file (O_EXCL: a dump never
 * replaces a file by accident), or with --force a new temporary file next
 * to the old one, renamed over it once complete: the old file stays as it
 * was if the dump fails, and the new one is ours, mode 0600, whoever owned
 * the old one and however open its mode was.  Only a regular file is
 * replaced, and nothing but the file created is ever opened: not through a
 * symlink (O_NOFOLLOW), not a FIFO, whose open would block (O_NONBLOCK),
 * not a device.  Sets d->fd and d->tmp (NULL without --force). */
static int open_output(struct hs_cli *cli, struct dump *d, const char *path, bool force)
{
	if (force) {
		struct stat st;
		if (lstat(path, &st) == 0) {
			if (S_ISLNK(st.st_mode))
				return hs_cli_fail(cli, HS_EXIT_FATAL, "%s is a symbolic link: refusing to write through it",
						   path);
			if (!S_ISREG(st.st_mode))
				return hs_cli_fail(cli, HS_EXIT_FATAL, "%s is not a regular file: refusing to replace it",
						   path);
		} else if (errno != ENOENT) {
			return hs_cli_fail(cli, HS_EXIT_FATAL, "cannot create %s: %s", path, strerror(errno));
		}
		const char *slash = strrchr(path, '/');
		int dl = slash ? (int)(slash - path + 1) : 0;
		if (asprintf(&d->tmp, "%.*s.heapscope-dump.XXXXXX", dl, path) < 0) {
			d->tmp = NULL;
			return hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
		}
		/* mkostemp: O_CREAT | O_EXCL, mode 0600 */
		d->fd = mkostemp(d->tmp, O_CLOEXEC);
		if (d->fd < 0) {
			int e = errno;
			free(d->tmp);
			d->tmp = NULL;
			return hs_cli_fail(cli, HS_EXIT_FATAL, "cannot create a temporary file to replace %s: %s", path,
					   strerror(e));
		}
		return 0;
	}
	d->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (d->fd < 0) {
		int e = errno;
		if (e == EEXIST)
			return hs_cli_fail(cli, HS_EXIT_FATAL, "%s exists; use --force to replace it", path);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "cannot create %s: %s", path, strerror(e));
	}
	return 0;
}

/* A failed dump: close and remove the file it was writing (the temporary
 * one with --force).  Returns whether a file was removed. */
static bool discard_output(struct dump *d)
{
	if (!d->path || d->fd < 0 || d->fd == STDOUT_FILENO)
		return false;
	close(d->fd);
	d->fd = -1;
	return unlink(d->tmp ? d->tmp : d->path) == 0;
}

/* A complete dump: to the disk, then (--force) in place of the old file.
 * On failure the file written is removed and a message returned. */
static int finish_output(struct dump *d, char *msg, size_t size)
{
	const char *what = "cannot write";
	int e = 0;
	if (fsync(d->fd) < 0 && errno != EINVAL)
		e = errno;
	if (close(d->fd) < 0 && !e)
		e = errno;
	d->fd = -1;
	if (!e && d->tmp && rename(d->tmp, d->path) < 0) {
		e = errno;
		what = "cannot replace";
	}
	if (!e)
		return 0;
	bool removed = unlink(d->tmp ? d->tmp : d->path) == 0;
	snprintf(msg, size, "%s %s: %s%s", what, d->path, strerror(e), removed ? " (the partial file was removed)" : "");
	return -e;
}

int cmd_dump(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "strings", optional_argument, NULL, 's' },
		{ "no-address", no_argument, NULL, 'A' },
		{ "encoding", required_argument, NULL, 'e' },
		{ "grep", required_argument, NULL, 'g' },
		{ "top", required_argument, NULL, 't' },
		{ "freeze", no_argument, NULL, 'F' },
		{ "no-freeze", no_argument, NULL, 'N' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-debuginfo", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct dump d = { .cli = cli, .fd = -1, .address = true, .min = 4, .encodings = HS_ENC_ASCII,
			  .first_json = true, .status = HS_EXIT_OK };
	const char *output = NULL, *grep = NULL;
	bool force = false, freeze = true;
	long topk = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'f': force = true; break;
		case 's': {
			d.strings = true;
			if (optarg) {
				char *end;
				long v = strtol(optarg, &end, 10);
				if (*end || v < 1 || v > 65536)
					return hs_cli_usage(cli, "--strings=N takes a length from 1 to 65536");
				d.min = (unsigned)v;
			}
			break;
		}
		case 'A': d.address = false; break;
		case 'e':
			if (!strcmp(optarg, "ascii"))
				d.encodings = HS_ENC_ASCII;
			else if (!strcmp(optarg, "utf16le"))
				d.encodings = HS_ENC_UTF16LE;
			else if (!strcmp(optarg, "all"))
				d.encodings = HS_ENC_ASCII | HS_ENC_UTF16LE;
			else
				return hs_cli_usage(cli, "--encoding takes ascii, utf16le or all");
			break;
		case 'g': grep = optarg; break;
		case 't': {
			char *end;
			topk = strtol(optarg, &end, 10);
			if (*end || topk < 1)
				return hs_cli_usage(cli, "--top takes a positive count");
			break;
		}
		case 'F': freeze = true; break;
		case 'N': freeze = false; break;
		case 'j': cli->json = true; break;
		case 'D': cli->no_debuginfo = true; break;
		case 'h': fputs(help, stdout); return HS_EXIT_OK;
		default: return hs_cli_usage(cli, "bad option");
		}
	}
	if (optind + 2 != argc)
		return hs_cli_usage(cli, optind + 2 > argc ? "missing PID or RANGE" : "too many arguments");
	pid_t pid;
	int r = hs_cli_pid(cli, argc - 1, argv, optind, &pid);
	if (r)
		return r;
	const char *spec = argv[optind + 1];
	struct hs_err serr = { 0 };
	if (hs_range_check(spec, &serr) < 0)
		return hs_cli_usage(cli, "%s", serr.msg);
	if (topk || grep)
		d.strings = true;
	d.top_mode = topk > 0;
	if (d.strings && output)
		return hs_cli_usage(cli, "-o writes raw bytes; --strings, --grep and --top print to stdout");
	if (cli->json && !d.strings)
		return hs_cli_usage(cli, "--json goes with --strings or --top (raw bytes are not JSON)");
	if (!d.strings && !output && isatty(STDOUT_FILENO))
		return hs_cli_usage(cli, "refusing to write raw memory to a terminal: use -o FILE or a pipe");
	if (grep) {
		int e = regcomp(&d.re, grep, REG_EXTENDED | REG_NOSUB);
		if (e) {
			char msg[128];
			regerror(e, &d.re, msg, sizeof(msg));
			return hs_cli_usage(cli, "bad --grep regex: %s", msg);
		}
		d.grep = true;
	}

	/* Resolve the range: the arenas are walked for arena:N and heap:ADDR. */
	struct hs_err err = { 0 };
	struct hs_snapshot s;
	struct hs_snapshot_opts o;
	hs_cli_snapshot_opts(cli, &o);
	o.residency = false;
	o.walk = 0;
	o.freeze = hs_range_needs_heap(spec);
	int status = HS_EXIT_OK;
	struct hs_ranges ranges = { 0 };
	r = hs_range_needs_heap(spec) ? hs_snapshot_take(pid, &o, &s, &err) : 0;
	if (!hs_range_needs_heap(spec)) {
		memset(&s, 0, sizeof(s));
		s.pagemap_fd = -1;
		r = hs_proc_check(pid, freeze, NULL, &err);
		/* the stop checks that these maps are still the program's */
		if (r == 0)
			hs_session_pin_image(pid);
		if (r == 0)
			r = hs_maps_read(pid, false, &s.maps, &err);
		if (r == 0) {
			struct hs_mem *raw;
			r = hs_mem_open_pid(pid, &raw, &err);
			s.mem = raw;
			s.pagemap_fd = hs_proc_pagemap_open(pid, NULL);
		}
	}
	if (r == 0)
		r = hs_range_resolve(spec, &s.maps, hs_range_needs_heap(spec) ? &s.heap : NULL, &ranges, &err);
	if (r < 0) {
		status = hs_cli_fail(cli, r == -EINVAL ? HS_EXIT_FATAL : HS_EXIT_FATAL, "%s", err.msg);
		goto out;
	}
	/* For arena:N the cache of the walk is not what we want to stream
	 * through: read the process directly. */
	struct hs_mem *reader = s.mem;
	struct hs_mem *direct = NULL;
	if (hs_range_needs_heap(spec)) {
		if (hs_mem_open_pid(pid, &direct, &err) < 0) {
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
			goto out;
		}
		reader = direct;
	}
	for (size_t i = 0; i < ranges.n; i++)
		d.total += ranges.v[i].end - ranges.v[i].start;
	d.progress = isatty(STDERR_FILENO) && d.total >= (256u << 20);

	if (!d.strings) {
		d.path = output;
		d.fd = STDOUT_FILENO;
		if (output && (status = open_output(cli, &d, output, force)) != 0) {
			hs_mem_close(direct);
			goto out;
		}
	} else {
		d.out = stdout;
		static char outbuf[1 << 20];
		setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
		if (!cli->json && !d.top_mode && !(d.wb = malloc(WBUF))) {
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
			hs_mem_close(direct);
			goto out;
		}
		for (int e = 0; e < 2; e++)
			if ((d.encodings & (1 << e)) &&
			    hs_strings_init(&d.sc[e], e ? HS_ENC_UTF16LE : HS_ENC_ASCII, d.min, on_string, &d) < 0) {
				status = hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
				hs_mem_close(direct);
				goto out;
			}
		if (cli->json) {
			fprintf(d.out, "{\n  \"pid\": %d,\n  \"range\": ", (int)pid);
			put_json_string(d.out, spec, strlen(spec));
			fputs(",\n", d.out);
			if (!d.top_mode)
				fputs("  \"strings\": [", d.out);
		}
	}

	/* Whether the mapped part fits one stop, not the range's size: a
	 * range over gaps may be huge and hold little. */
	uint64_t mapped = 0;
	for (size_t i = 0; i < ranges.n; i++) {
		uint64_t m;
		hs_range_mapped(&s.maps, s.pagemap_fd, ranges.v[i].start, ranges.v[i].end, &m);
		mapped += m;
	}
	if (freeze && mapped > CAPTURE_MAX) {
		char a[HS_SIZE_BUF], b[HS_SIZE_BUF];
		hs_cli_warn(cli, "%s of the range is mapped, more than one stop may hold (%s): reading it while the "
			    "target runs, so the output is not one consistent snapshot", hs_fmt_size(mapped, a),
			    hs_fmt_size(CAPTURE_MAX, b));
		freeze = false;
	}
	if (freeze) {
		/* room for some growth before the stop */
		uint64_t want = mapped + mapped / 4 + (1u << 20);
		d.capsize = want < CAPTURE_MAX ? (size_t)want : CAPTURE_MAX;
		d.cap = mmap(NULL, d.capsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			     0);
		if (d.cap == MAP_FAILED) {
			d.cap = NULL;
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "cannot hold %zu bytes while the target is stopped: %s",
					     d.capsize, strerror(errno));
			goto cleanup;
		}
		/* Faulted in before the stop, in huge pages where possible. */
		madvise(d.cap, d.capsize, MADV_HUGEPAGE);
		madvise(d.cap, d.capsize, MADV_POPULATE_WRITE);
	}
	if (freeze && (r = hs_session_attach(pid, 2000, &d.ses, &err)) < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		goto cleanup;
	}
	d.capturing = freeze;
	d.consistent = freeze;
	struct hs_stream_ops ops = { .data = on_data, .skip = on_skip, .zeros = on_zeros, .dest = capture_dest };
	uint64_t pause = 0;
	for (size_t i = 0; i < ranges.n && r == 0;) {
		uint64_t from = d.over ? d.resume : ranges.v[i].start;
		d.over = false;
		r = hs_stream_range(reader, &s.maps, s.pagemap_fd, from, ranges.v[i].end, &ops, &d, &err);
		if (r == -EAGAIN && d.over) {
			/* The stop reached its limits: let the target run, hand
			 * on what was read, and read the rest while it runs. */
			hs_session_detach(d.ses, NULL);
			d.ses = NULL;
			pause = hs_session_last_pause_us();
			d.capturing = false;
			d.consistent = false;
			char a[HS_SIZE_BUF], b[HS_SIZE_BUF];
			hs_cli_warn(cli, "the stop reached its limit (%s or %s) at 0x%" PRIx64 ": the rest is read while "
				    "the target runs, so the output is not one consistent snapshot",
				    hs_fmt_size(CAPTURE_MAX, a), hs_fmt_us(STOP_MAX_US, b), d.resume);
			r = flush_capture(&d);
			continue;
		}
		if (r == 0) {
			if (d.capturing)
				r = capture_seg(&d, SEG_END, ranges.v[i].end, 0, NULL);
			else
				strings_end(&d);
		}
		i++;
	}
	if (d.ses) {
		hs_session_detach(d.ses, NULL);
		d.ses = NULL;
		pause = hs_session_last_pause_us();
	}
	/* The target runs again: now write or scan what was captured. */
	d.capturing = false;
	if (r == 0)
		r = flush_capture(&d);
	progress(&d, true);
	if (d.wb)
		out_flush(&d);
	if (r < 0) {
		if (!d.strings && r != -ESRCH && err.msg[0] == '\0')
			snprintf(err.msg, sizeof(err.msg), "cannot write %s: %s", output ? output : "stdout", strerror(-r));
		/* A partial dump is worse than none: it looks complete. */
		bool removed = discard_output(&d);
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s%s", err.msg[0] ? err.msg : strerror(-r),
				     removed ? " (the partial file was removed)" : "");
		goto cleanup;
	}
	if (!d.strings && output && finish_output(&d, err.msg, sizeof(err.msg)) < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		goto cleanup;
	}
	if (d.strings && d.top_mode)
		print_top(&d, topk);
	if (d.strings && cli->json) {
		if (!d.top_mode)
			fputs(d.first_json ? "],\n" : "\n  ],\n", d.out);
		fprintf(d.out,
			"  \"bytes\": %" PRIu64 ",\n  \"skipped\": %" PRIu64 ",\n  \"pause_us\": %" PRIu64
			",\n  \"consistent\": %s\n}\n",
			d.nbytes, d.skipped, pause, d.consistent ? "true" : "false");
	}
	if (output) {
		char a[HS_SIZE_BUF], p[HS_SIZE_BUF];
		fprintf(stderr, "heapscope: dump: wrote %s (%" PRIu64 " bytes) to %s%s%s\n", hs_fmt_size(d.written, a),
			d.written, output, freeze ? "; target paused " : "", freeze ? hs_fmt_us(pause, p) : "");
	}
	status = d.status;
cleanup:
	/* still open: the dump failed before it was complete */
	discard_output(&d);
	free(d.tmp);
	hs_session_detach(d.ses, NULL);
	for (int e = 0; e < 2; e++)
		hs_strings_release(&d.sc[e]);
	if (d.cap)
		munmap(d.cap, d.capsize);
	hs_strtab_release(&d.top);
	free(d.wb);
	free(d.segs);
	hs_mem_close(direct);
out:
	if (d.grep)
		regfree(&d.re);
	hs_ranges_release(&ranges);
	hs_snapshot_release(&s);
	return status;
}
