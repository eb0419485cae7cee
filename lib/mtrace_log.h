/* glibc's allocation trace log (MALLOC_TRACE), read as glibc's mtrace
 * script reads it: the blocks allocated and never freed, grouped by the
 * caller the log names.  Pure: bytes in, counts out, no process, so that a
 * unit test and a fuzzer can feed it anything.
 *
 * The lines glibc's tracer writes (malloc/mtrace-impl.c):
 *   "= Start", "= End"
 *   "@ CALLER + 0xPTR 0xSIZE"     malloc, calloc, memalign
 *   "@ CALLER - 0xPTR"            free
 *   "@ CALLER < 0xOLD" then "@ CALLER > 0xNEW 0xSIZE"   realloc that moved or not
 *   "@ CALLER ! 0xPTR 0xSIZE"     a failed realloc
 *   "+ (nil) 0xSIZE"              a failed allocation
 * the "@ CALLER" part only when the tracer knew the caller. */
#ifndef HS_MTRACE_LOG_H
#define HS_MTRACE_LOG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A line longer than this is counted malformed and skipped (real lines
 * are a path, a symbol and two numbers). */
#define HS_MTRACE_LINE_MAX 65536

struct hs_mtrace_block {
	uint64_t addr, size;
	uint32_t caller;         /* its caller's place in callers[] */
};

/* A caller with blocks not freed, after hs_mtrace_log_finish. */
struct hs_mtrace_caller {
	const char *text;        /* as the log writes it, "" when it names none (owned by the log) */
	uint64_t count, bytes;   /* blocks not freed, their bytes (saturated) */
	const struct hs_mtrace_block *blocks;   /* when listed: address order, nblocks of them */
	size_t nblocks;
};

struct hs_mtrace_log {
	/* counts, kept as the lines are fed */
	uint64_t lines;          /* lines seen (the last one counted even without its newline) */
	uint64_t malformed;      /* lines that are none of the above (skipped) */
	uint64_t freed_unknown;  /* "-" of a block the trace never saw allocated */
	uint64_t realloc_unknown;   /* "<" of such a block */
	uint64_t duplicate;      /* "+"/">" of a block still allocated: it keeps its first caller and size */
	uint64_t failed;         /* failed allocations ("(nil)") and reallocs ("!") */
	/* after hs_mtrace_log_finish */
	uint64_t not_freed, not_freed_bytes;
	struct hs_mtrace_caller *callers;   /* most bytes first, then by text */
	size_t ncallers;
	/* private */
	struct hs_mtrace_intern *in;
	struct hs_mtrace_live *tab;          /* open addressing by address */
	size_t n, cap;
	char *line;
	size_t linelen, linecap;
	bool overlong, has_nul;
	struct hs_mtrace_block *listed;
};

/* An empty log (0, or -ENOMEM). */
int hs_mtrace_log_open(struct hs_mtrace_log *g);
/* Bytes of the log, split anywhere (lines are assembled here).  -ENOMEM;
 * garbage is counted malformed, never an error. */
int hs_mtrace_log_feed(struct hs_mtrace_log *g, const char *buf, size_t len);
/* Feed a whole file.  err: "cannot open PATH: ...", "PATH: read error". */
int hs_mtrace_log_read_file(struct hs_mtrace_log *g, const char *path, struct hs_err *err);
/* The last line without its newline, then the callers with blocks not
 * freed, sorted; the blocks of the first list_blocks of them listed. */
int hs_mtrace_log_finish(struct hs_mtrace_log *g, size_t list_blocks);
void hs_mtrace_log_release(struct hs_mtrace_log *g);

/* A caller as glibc's tr_where() writes it: "OBJECT:[0xOFF]" or, when
 * dladdr found a dynamic symbol, "OBJECT:(SYM+OFF)[0xOFF]", OFF from the
 * object's load base (dli_fbase); "[0xADDR]" when dladdr knew no object. */
struct hs_mtrace_where {
	char object[PATH_MAX];   /* "" for the bare address form */
	char sym[256];           /* dladdr's symbol, "" when none */
	uint64_t sym_off;
	bool sym_neg;
	uint64_t off;            /* or the address */
};
/* false when text is none of those forms */
bool hs_mtrace_caller_parse(const char *text, struct hs_mtrace_where *w);

#endif
