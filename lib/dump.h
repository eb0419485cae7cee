/* Ranges of a process's memory, read in one streaming pass, and the
 * printable strings in them. */
#ifndef HS_DUMP_H
#define HS_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "heap.h"
#include "maps.h"
#include "mem.h"
#include "snapshot.h"

struct hs_range {
	uint64_t start, end;     /* [start, end) */
	char what[96];           /* "arena 3 heap 0x7f..", "[heap]", "/usr/lib/..." */
};

struct hs_ranges {
	size_t n;
	struct hs_range *v;
};

/* Does resolving spec need the arenas walked (arena:N, heap:ADDR)? */
bool hs_range_needs_heap(const char *spec);

/* Resolve a RANGE operand: 0xSTART-0xEND, 0xSTART+LEN (K/M/G), arena:N,
 * heap:ADDR, [heap], [stack], the start address of a mapping, or the path
 * of a mapped file.  h may be NULL unless hs_range_needs_heap(spec).
 * Errors (EINVAL): malformed, reversed, overflowing, empty, outside every
 * mapping, no such arena, file not mapped. */
int hs_range_resolve(const char *spec, const struct hs_maps *maps, const struct hs_heap *h,
		     struct hs_ranges *out, struct hs_err *err);
/* The syntax of a RANGE operand alone, before any process is looked at:
 * -EINVAL when malformed (arena:-1, 0x10-, a reversed or empty span), so
 * that the caller can call it a usage error. */
int hs_range_check(const char *spec, struct hs_err *err);
void hs_ranges_release(struct hs_ranges *r);

/* A dump of a RANGE of a live process (heapscope dump), in one pass.  With
 * freeze, every thread is stopped while the mapped part is read into
 * memory, at most HS_DUMP_CAPTURE_MAX bytes and HS_DUMP_STOP_MAX_US (past
 * either the rest is read while the target runs), and what was read goes
 * to the sink only once the target runs again: a blocked output (dump |
 * less) never keeps it stopped. */
#define HS_DUMP_CAPTURE_MAX ((size_t)256 << 20)
#define HS_DUMP_STOP_MAX_US 1000000u

struct hs_dump_opts {
	bool freeze;
	bool use_debuginfo, use_debuginfod;   /* for arena:N and heap:ADDR */
};

/* Where the bytes go, in address order.  data (and own) returns 0, or -errno to
 * end the dump (hs_dump_run returns it, err not filled).  skip: a part not
 * read (why: a static string); end: the end of one range; note: why the
 * output is not one consistent snapshot, a full sentence. */
struct hs_dump_sink {
	int (*data)(void *ctx, uint64_t addr, const unsigned char *buf, size_t len);
	/* Optional, for the bytes read (not the zeros of pages never
	 * touched): data, but buf is heapscope's own copy, which the sink may
	 * change; valid during the call. */
	int (*own)(void *ctx, uint64_t addr, unsigned char *buf, size_t len);
	void (*skip)(void *ctx, uint64_t addr, uint64_t len, const char *why);
	void (*end)(void *ctx);
	void (*note)(void *ctx, const char *msg);
};

struct hs_dump {
	struct hs_ranges ranges;
	uint64_t total;          /* the bytes the ranges span */
	bool freeze;             /* the threads are (were) stopped for the read */
	bool consistent;         /* all was read in one stop */
	uint64_t pause_us;
	/* private */
	pid_t pid;
	struct hs_snapshot s;    /* the maps (and the arenas for arena:N) */
	struct hs_mem *direct;   /* arena:N: the process read directly, not the walk's cache */
};

/* Resolve spec in pid (hs_range_resolve), checking that pid may be
 * stopped when o->freeze.  hs_dump_close releases d, even on failure. */
int hs_dump_open(pid_t pid, const char *spec, const struct hs_dump_opts *o, struct hs_dump *d, struct hs_err *err);
/* Read the ranges into the sink: the stop, the read, the resume, then the
 * captured bytes handed on. */
int hs_dump_run(struct hs_dump *d, const struct hs_dump_sink *sink, void *ctx, struct hs_err *err);
void hs_dump_close(struct hs_dump *d);

/* Where a dump's raw bytes go with -o: a new file (O_EXCL: a dump never
 * replaces a file by accident), or with force a new temporary file next
 * to the old one, renamed over it once complete: the old file stays as it
 * was if the dump fails, and the new one is ours, mode 0600, whoever owned
 * the old one and however open its mode was.  Only a regular file is
 * replaced, and nothing but the file created is ever opened: not through a
 * symlink (O_NOFOLLOW), not a FIFO, whose open would block (O_NONBLOCK),
 * not a device. */
struct hs_dump_file {
	int fd;
	const char *path;
	char *tmp;               /* force: written here, renamed to path */
};
int hs_dump_file_open(struct hs_dump_file *f, const char *path, bool force, struct hs_err *err);
/* A complete dump: to the disk, then (force) in place of the old file.  On
 * failure the file written is removed (the message says so). */
int hs_dump_file_commit(struct hs_dump_file *f, struct hs_err *err);
/* A failed dump: close and remove the file being written (the temporary
 * one with force), unless it is stdout.  Returns whether a file was
 * removed. */
bool hs_dump_file_discard(struct hs_dump_file *f);

/* Parse "123", "0x7b", "64K", "1.5M" is not accepted: integers only, with
 * an optional K, M or G (powers of 1024). */
int hs_parse_size(const char *s, uint64_t *v);

/* Stream [start, end) of the target to fn in blocks of at most 1 MiB,
 * reading only what is mapped and readable (gaps are reported through
 * skip, with their size and a static string saying why).  Anonymous pages
 * the target never touched are given as zeros without being read, so the
 * target is not changed.  data and zeros return 0 to go on, or -errno to
 * stop (that value is returned), and are called in address order. */
struct hs_stream_ops {
	int (*data)(void *ctx, uint64_t addr, const unsigned char *buf, size_t len);
	void (*skip)(void *ctx, uint64_t addr, uint64_t len, const char *why);
	/* Optional: len bytes of zeros at addr (pages never touched), instead
	 * of handing them to data. */
	int (*zeros)(void *ctx, uint64_t addr, uint64_t len);
	/* Optional: where to read the next len bytes (a capture buffer), so
	 * they are not copied again; NULL for the stream's own buffer. */
	unsigned char *(*dest)(void *ctx, size_t len);
};
/* The bytes hs_stream_range would read from [start, end): readable
 * mappings, less the anonymous pages never touched when pagemap_fd (may be
 * -1) tells them.  A snapshot of a running target: it may grow. */
int hs_range_mapped(const struct hs_maps *maps, int pagemap_fd, uint64_t start, uint64_t end, uint64_t *bytes);

int hs_stream_range(struct hs_mem *mem, const struct hs_maps *maps, int pagemap_fd, uint64_t start,
		    uint64_t end, const struct hs_stream_ops *ops, void *ctx, struct hs_err *err);
/* hs_stream_range of a running target, its reads done ahead by a second
 * thread (with its own reader of pid's memory) into a ring of four 1 MiB
 * buffers, while this thread calls ops: the caller's work on one block
 * (a scan, a write) overlaps the reads of the next.  ops->dest is not used;
 * the bytes handed to ops->data are the ring's, the caller's to change
 * until it returns.  One thread (hs_stream_range with mem) for less than
 * 4 MiB, on one CPU, or when the thread cannot start.  An error of ops
 * stops the reader at its next block. */
int hs_stream_range_ahead(pid_t pid, struct hs_mem *mem, const struct hs_maps *maps, int pagemap_fd,
			  uint64_t start, uint64_t end, const struct hs_stream_ops *ops, void *ctx,
			  struct hs_err *err);

/* The printable strings of a byte stream, exactly as GNU strings finds
 * them: runs of at least min characters that are TAB or 0x20..0x7e, one
 * byte each (ascii) or two, little-endian with a zero high byte (utf16le);
 * after a character that is not one, the search resumes at its second
 * byte (strings(1)'s unget).  Strings are handed to fn whole, up to
 * HS_STRING_MAX bytes (longer ones are handed on in pieces, more set). */
#define HS_STRING_MAX (1u << 20)
enum hs_encoding { HS_ENC_ASCII = 1, HS_ENC_UTF16LE = 2 };

/* How one-byte characters are found: the byte-at-a-time reference, or
 * 64-byte masks made with a table, SSE2, AVX2 or AVX-512BW (the best the
 * CPU has is chosen at init; the output is the same). */
enum hs_scan_impl { HS_SCAN_AUTO, HS_SCAN_SCALAR, HS_SCAN_TABLE, HS_SCAN_SSE2, HS_SCAN_AVX2, HS_SCAN_AVX512 };

struct hs_strings {
	int width;               /* 1 or 2 bytes a character */
	unsigned min;
	void (*fn)(void *ctx, uint64_t addr, const char *s, size_t len, bool more, bool cont);
	void *ctx;
	/* state */
	uint64_t next;           /* address of the next byte expected */
	bool have_carry;
	unsigned char carry;     /* utf16: first byte of a character */
	uint64_t carry_addr;
	uint64_t run_addr;       /* address of the run's first character */
	size_t len;              /* characters in buf */
	bool emitted;            /* the run reached min and has been handed on */
	bool cont;               /* the next piece continues a string */
	char *buf;
	enum hs_scan_impl impl;
};

int hs_strings_init(struct hs_strings *s, enum hs_encoding enc, unsigned min,
		    void (*fn)(void *ctx, uint64_t addr, const char *s, size_t len, bool more, bool cont), void *ctx);
/* Feed bytes at addr; a gap (addr != where the last feed ended) ends the
 * current run as the end of a file would. */
void hs_strings_feed(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t n);
/* Plain output in place: hs_strings_feed, but the strings that lie wholly
 * in b (not begun in the last feed, not reaching its end) are not handed to
 * fn: the byte after each (not a character) is made a '\n' in b, and the
 * spans of b they and their newlines make, as long as they go, are handed
 * to span, in order with fn's calls.  One-byte characters and min <= 64;
 * else (and for the scalar scanner) hs_strings_feed. */
typedef void (*hs_span_fn)(void *ctx, const char *p, size_t len);
void hs_strings_feed_spans(struct hs_strings *s, uint64_t addr, unsigned char *b, size_t n, hs_span_fn span,
			   void *ctx);
/* End of input: finish a run in progress. */
void hs_strings_end(struct hs_strings *s);
/* dst goes on where src stopped (src scanned the bytes after dst's): the
 * run src was in, and where the next byte is expected. */
void hs_strings_take(struct hs_strings *dst, struct hs_strings *src);
void hs_strings_release(struct hs_strings *s);
/* Choose how (HS_SCAN_AUTO: the fastest the CPU has); -ENOTSUP when the
 * CPU cannot. */
int hs_strings_set_impl(struct hs_strings *s, enum hs_scan_impl impl);
bool hs_strings_impl_supported(enum hs_scan_impl impl);
const char *hs_strings_impl_name(enum hs_scan_impl impl);

#endif
