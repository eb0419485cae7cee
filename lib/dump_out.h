/* The plain output of dump --strings: each string, with its address in hex
 * or alone (exactly what strings(1) prints), and a newline, written to an
 * fd the caller gives, in big writev calls. */
#ifndef HS_DUMP_OUT_H
#define HS_DUMP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dump.h"

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

#endif
