/* The plain output of dump --strings: each string, with its address in hex
 * or alone (exactly what strings(1) prints), and a newline, written to an
 * fd the caller gives, in big writev calls. */
#ifndef HS_DUMP_OUT_H
#define HS_DUMP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regex.h>
#include <stdio.h>

#include "dump.h"
#include "json.h"
#include "strtab.h"

/* Strings that lie in the region being scanned (hs_strout_scan) are not
 * copied: without addresses, the byte after such a string (never part of
 * a string: not printable, and '\n' is not either) is made a newline in
 * heapscope's own copy of the bytes, and the output is written from that
 * copy, strings a byte apart in one piece.  Anything else (addresses,
 * strings the scanner kept across two feeds) is copied to a buffer of the
 * writer's. */
struct hs_strout {
	int fd;
	bool address;            /* each string after its address in hex */
	bool defer;              /* keep everything until hs_strout_flush */
	size_t split_min;        /* hs_strout_scan of at least this many bytes is split
	                          * between two threads when two CPUs are there; 0: never */
	int error;               /* the first write error (-errno); later output is dropped */
	uint64_t bytes;          /* written */
	/* private */
	const unsigned char *lo, *hi;    /* the region */
	struct hs_strout_span {
		const char *p;           /* or, with HS_STROUT_SIDE in len, an offset in side */
		size_t len;
	} *v;
	size_t n, cap;
	char *side;
	size_t sn, scap;
};

void hs_strout_init(struct hs_strout *o, int fd, bool address);
/* One string (or a piece of a huge one), as struct hs_strings hands it on:
 * ctx is the writer. */
void hs_strout_string(void *ctx, uint64_t addr, const char *s, size_t len, bool more, bool cont);
/* Scan buf (heapscope's own copy of len bytes at addr, which the writer may
 * change) with sc, a scanner whose callback is hs_strout_string with this
 * writer, and write what it finds.  One-byte encodings only: a scanner
 * that reads the same bytes in another encoding would see the newlines. */
int hs_strout_scan(struct hs_strout *o, struct hs_strings *sc, uint64_t addr, unsigned char *buf, size_t len);
/* Write all held: 0, or the first write error (-errno). */
int hs_strout_flush(struct hs_strout *o);
void hs_strout_release(struct hs_strout *o);
/* All of buf to fd, on after short writes and EINTR: 0 or -errno. */
int hs_write_full(int fd, const void *buf, size_t len);

/* What dump --strings does with the bytes: the scanners (ASCII, UTF-16LE
 * or both), then --grep's filter, and --top's count, JSON, or the plain
 * writer above. */
struct hs_strsink_opts {
	unsigned min;
	int encodings;           /* HS_ENC_* bits */
	bool address;
	const regex_t *grep;     /* or NULL */
	bool top;
	struct hs_json *json;    /* or NULL: plain, to fd */
	pid_t pid;               /* for the JSON document */
	const char *range;
};

struct hs_strsink {
	struct hs_strsink_opts o;
	struct hs_strings sc[2];
	struct hs_strout w;
	struct hs_strtab top;
	bool plain, grep_match, json_begun;
	char *gbuf;              /* --grep: the string NUL-terminated, for regexec */
	size_t gcap;
	uint64_t nbytes;         /* scanned */
};

/* Compile --grep's pattern (POSIX extended) into re: 0, or -EINVAL with
 * regerror's words in err (re then needs no regfree). */
int hs_strsink_grep(regex_t *re, const char *pattern, struct hs_err *err);
/* 0, or -ENOMEM. */
int hs_strsink_init(struct hs_strsink *ss, const struct hs_strsink_opts *o, int fd);
/* The sink's data, own and end, with ss as ctx (own is NULL when the
 * bytes are not written from where they were read). */
int hs_strsink_data(void *ss, uint64_t addr, const unsigned char *buf, size_t len);
int (*hs_strsink_own(const struct hs_strsink *ss))(void *, uint64_t, unsigned char *, size_t);
void hs_strsink_end(void *ss);
/* After the read: the plain output's write (0 or -errno), then the K most
 * frequent strings (--top) to fp, the JSON document's tail. */
int hs_strsink_flush(struct hs_strsink *ss);
void hs_strsink_finish(struct hs_strsink *ss, long top_k, FILE *fp, const struct hs_dump *d, uint64_t skipped);
void hs_strsink_release(struct hs_strsink *ss);

/* A dump opened with hs_dump_open written out (heapscope dump): the raw
 * bytes to fd or to the file at path (hs_dump_file_open: created, or with
 * force replaced, once complete), or the strings (hs_strsink) to fd and fp.
 * What must be said on the way goes to the caller's callbacks, as full
 * sentences: warn (a part skipped; why the output is not one snapshot) and
 * progress (optional: at most five times a second, and once with last at
 * the end, when the dump spans HS_DUMP_PROGRESS_MIN bytes or more). */
#define HS_DUMP_PROGRESS_MIN ((uint64_t)256 << 20)

struct hs_dump_write_opts {
	int fd;                  /* the raw bytes without path; the strings' plain output */
	const char *path;        /* raw: the file to write, or NULL */
	bool force;
	const struct hs_strsink_opts *strings;   /* or NULL: the raw bytes */
	long top_k;              /* --top: how many */
	FILE *fp;                /* --top's table */
	void (*warn)(void *ctx, const char *msg);
	void (*progress)(void *ctx, uint64_t done, uint64_t total, bool last);
	void *ctx;
};

struct hs_dump_write_report {
	uint64_t written;        /* raw bytes written */
	uint64_t skipped;        /* bytes not read (each part said through warn) */
	bool partial;            /* something was skipped */
	bool output_failed;      /* the strings could not be written to fd: err says so */
};

/* 0, or -errno with err filled: the file not created or not committed, the
 * read or the write failed (a partial file is removed, and err says so: a
 * partial dump looks complete), or the output failed. */
int hs_dump_write(struct hs_dump *d, const struct hs_dump_write_opts *o, struct hs_dump_write_report *rep,
		  struct hs_err *err);

#endif
