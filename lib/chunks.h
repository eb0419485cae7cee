/* The linear walk: every chunk of an arena's heaps, first to top, each
 * with its state; and the mmapped chunks, found in the mappings. */
#ifndef HS_CHUNKS_H
#define HS_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "heap.h"
#include "strtab.h"
#include "maps.h"
#include "mem.h"

enum hs_chunk_state {
	HS_CHUNK_USED,
	HS_CHUNK_BIN,            /* free in a bin (unsorted, small, large) */
	HS_CHUNK_FAST,           /* free in a fastbin (looks in use) */
	HS_CHUNK_TCACHE,         /* free in a tcache (looks in use) */
	HS_CHUNK_TOP,
	HS_CHUNK_FENCEPOST,      /* the 0x10 + 0x0 pair ending a thread heap */
	HS_CHUNK_MMAPPED,
};

const char *hs_chunk_state_name(enum hs_chunk_state s);

struct hs_chunk {
	uint64_t addr, size;     /* size without flag bits */
	uint64_t raw_size;
	enum hs_chunk_state state;
	int arena;               /* index; -1 for mmapped */
	int bin;                 /* bin, fastbin or tcache bin when free */
};

/* Called for each chunk; return non-zero to stop the walk. */
typedef int (*hs_chunk_fn)(void *ctx, const struct hs_chunk *c);

/* Walk arena a's heaps linearly (oldest heap first).  h must come from a
 * walk with HS_WALK_LISTS | HS_WALK_DEEP, so that free chunks are known.
 * Problems (a bogus size, a chunk past its heap) mark the arena partial
 * and end that heap's walk.  Returns 0, or -errno. */
int hs_chunks_walk(struct hs_heap *h, struct hs_mem *mem, struct hs_arena *a, uint64_t only_heap, hs_chunk_fn fn,
		   void *ctx);

/* Counts and bytes summed as the walk goes, no chunk kept (what a
 * histogram needs): by state, and by size class (bin index), in use [0]
 * or free in a bin, fastbin or tcache [1], with the smallest and largest
 * size met (0: none).  Top and fenceposts are counted by state only. */
struct hs_chunks_class {
	uint64_t n[2], bytes[2], lo[2], hi[2];
};

struct hs_chunks_hist {
	uint64_t n[HS_CHUNK_MMAPPED + 1], bytes[HS_CHUNK_MMAPPED + 1];
	struct hs_chunks_class cls[129];   /* by bin index; 128: the mmapped chunks */
};

/* hs_chunks_walk, each chunk added to *hist (which it does not zero). */
int hs_chunks_walk_hist(struct hs_heap *h, struct hs_mem *mem, struct hs_arena *a, uint64_t only_heap,
			struct hs_chunks_hist *hist);

/* One chunk into *hist, as the walk sums it (an mmapped chunk into
 * cls[128], in use). */
void hs_chunks_hist_add(struct hs_chunks_hist *hist, const struct hs_chunk *c);
/* src's counts and bytes added to dst's, the smallest and largest sizes
 * kept. */
void hs_chunks_hist_merge(struct hs_chunks_hist *dst, const struct hs_chunks_hist *src);

/* The first printable run (ASCII and tab) of at least min characters in
 * buf[0, len), cut to fit out (outsz > 0) and NUL-terminated; its length
 * before the cut is not kept.  Returns the bytes copied, 0 if none. */
size_t hs_first_string(const unsigned char *buf, size_t len, unsigned min, char *out, size_t outsz);
/* The same in a chunk's user data (its first 4 KiB), read from mem. */
size_t hs_chunk_first_string(struct hs_mem *mem, const struct hs_chunk *c, unsigned min, char *out, size_t outsz);

/* The mmapped chunks: anonymous mappings that begin with a chunk header
 * marked IS_MMAPPED (several may share one merged mapping).  Counts are
 * added to *count and *bytes (mapping bytes, as mp_.mmapped_mem counts). */
int hs_chunks_mmapped_in(const struct hs_mapping *m, struct hs_mem *mem, hs_chunk_fn fn, void *ctx, uint64_t *count,
			 uint64_t *bytes);
int hs_chunks_mmapped(const struct hs_maps *maps, const struct hs_heap *h, struct hs_mem *mem, hs_chunk_fn fn,
		      void *ctx, uint64_t *count, uint64_t *bytes);

/* Every chunk of a walk, kept while the target is stopped, to be rendered
 * after its threads run again (output and first strings are no reason to
 * keep them stopped): hs_chunks_collect_arena is a walk's arena hook
 * (struct hs_walk_hook, ctx a struct hs_chunks_set), right after an
 * arena's lists while its pages are cached; hs_chunks_collect_mmapped adds
 * the mmapped chunks, still stopped (not with an arena or a heap chosen).
 * -EINVAL: no such arena, or heap_addr is in no heap. */
struct hs_chunks_set {
	/* set by the caller: an arena index or -1 (as --arena), the
	 * heap holding an address or 0 (as --heap); user_only == only */
	long user_only, only;
	uint64_t heap_addr, heap_start;
	bool resolved;
	/* set by the caller: no chunk of an arena kept, each walked arena
	 * summed into hist[] instead (the mmapped chunks are kept) */
	bool histogram;
	struct hs_chunks_hist *hist;   /* one per walked arena */
	unsigned char *ring;           /* the copy's buffer: hs_chunks_set_prepare */
	struct hs_chunk *v;
	size_t n, cap;
	size_t arena_end[1024];  /* v index where each walked arena ends */
	int arena_idx[1024];
	size_t narenas;
	uint64_t mm_n, mm_b;
};

int hs_chunks_collect_arena(void *ctx, struct hs_mem *mem, struct hs_heap *h, struct hs_arena *a, struct hs_err *err);
int hs_chunks_collect_mmapped(struct hs_chunks_set *k, const struct hs_maps *maps, struct hs_heap *h,
			      struct hs_mem *mem, struct hs_err *err);
/* The buffer a walk copies heaps into while it walks them (a few MiB),
 * faulted in now: call it before the target is stopped, or the first
 * arena's walk does.  Returns it, or NULL (the walk then reads through
 * the cache alone). */
unsigned char *hs_chunks_set_prepare(struct hs_chunks_set *k);

/* One walked arena of a set, summed. */
struct hs_chunks_sum {
	int index;                     /* the arena's */
	uint64_t n[HS_CHUNK_MMAPPED + 1], bytes[HS_CHUNK_MMAPPED + 1];
	/* its lists hold chunks the walk did not meet (checked only when all
	 * of a sound arena was walked, and its heap is contiguous) */
	bool unmet;
};

/* Sum a set after its walk: each walked arena into sum[w] (k->narenas of
 * them), and every chunk, the mmapped ones too, into *all (which it does
 * not zero).  h: the heap the set was collected from. */
void hs_chunks_set_sum(const struct hs_chunks_set *k, const struct hs_heap *h, struct hs_chunks_sum *sum,
		       struct hs_chunks_hist *all);
void hs_chunks_set_release(struct hs_chunks_set *k);

/* Which chunks heapscope chunks --state keeps (its words' order). */
enum hs_chunks_filter { HS_CHUNKS_USED, HS_CHUNKS_FREE, HS_CHUNKS_ALL };
/* Free in a list: a bin, a fastbin or a tcache. */
bool hs_chunk_is_free(enum hs_chunk_state s);
bool hs_chunk_kept(const struct hs_chunk *c, enum hs_chunks_filter f);
/* A histogram row as f keeps it: which halves count (in use [0], free
 * [1]) and the smallest and largest sizes they hold; false when none. */
bool hs_chunks_class_kept(const struct hs_chunks_class *kl, enum hs_chunks_filter f, bool in[2], uint64_t *lo,
			  uint64_t *hi);
/* --top's table of first strings, by size class (bin index; 128 the
 * mmapped chunks): add c's string s; after hs_strtab_sort, entry e's
 * class, or -1 when per (129 counts, zeroed first) says its class has had
 * its k. */
void hs_chunks_top_add(struct hs_strtab *t, const struct hs_chunk *c, const char *s);
int hs_chunks_top_class(const struct hs_strent *e, long k, long per[129]);

#endif
