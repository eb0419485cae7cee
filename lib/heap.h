/* The heap walker: glibc's arenas, bins, fastbins, tcache and top, read
 * through a memory source (a live process or a buffer image).  Every list
 * walk is bounded and checked: a cycle, a misaligned or unreadable pointer
 * or a bogus size marks the arena partial and stops that list. */
#ifndef HS_HEAP_H
#define HS_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "libc.h"
#include "mem.h"

/* One malloc_info <size> line: raw sizes (flag bits included), as glibc. */
struct hs_binstat {
	uint64_t from, to, total, count;
};

struct hs_heapseg {
	uint64_t addr;           /* heap_info address (non-main) or region start (main) */
	uint64_t size;           /* heap->size: bytes in use by the arena */
	uint64_t mprotect_size;  /* read-write part of the mapping */
	uint64_t reserved;       /* the whole mapping (heap_max for non-main) */
	uint64_t resident;       /* present pages in the read-write part */
};

enum hs_free_kind { HS_FREE_BIN, HS_FREE_FAST };

/* One problem found in an arena: every corrupt list is named, not only the
 * first (at most HS_MAX_PROBLEMS per arena are kept, the rest counted). */
#define HS_MAX_PROBLEMS 64
enum hs_problem_list { HS_PLIST_NONE, HS_PLIST_FAST, HS_PLIST_BIN };
struct hs_problem {
	uint64_t addr;           /* the bad pointer, chunk or structure */
	uint64_t chunk;          /* the chunk that holds the bad pointer, 0 for a list head or none */
	uint8_t list;            /* enum hs_problem_list: the list it was found in */
	uint8_t bin;             /* fastbin 0..9 or bin 1..127 */
	char msg[222];
};

struct hs_free {
	uint64_t addr, size;
	uint8_t kind;            /* HS_FREE_BIN or HS_FREE_FAST */
	uint8_t bin;             /* bin 1..127, or fastbin 0..9 */
};

struct hs_arena {
	int index;
	uint64_t addr;
	bool main;
	int32_t mutex;           /* non-zero: a thread was inside malloc here */
	int32_t flags;           /* 2: NONCONTIGUOUS_BIT */
	bool contiguous;         /* main arena: one sbrk region */
	bool bulk_read;          /* its lists were dense: pages read whole, not chunk headers */
	uint64_t gathered;       /* its chunk headers read alone (hs_mem_gather) */
	bool plan_whole;         /* HS_WALK_PLAN: dense, its lists left unwalked */
	uint64_t top, top_size;
	uint64_t system_mem, max_system_mem, attached_threads;
	uint64_t next;

	size_t nheaps;
	struct hs_heapseg *heaps;  /* newest (holding top) first */

	struct hs_binstat fast[10];
	uint64_t fast_count;
	uint64_t fast_bytes;       /* sum of chunksize(), as mallinfo2 */
	uint64_t fast_bytes_mi;    /* count * first chunk's size, as malloc_info */
	struct hs_binstat bins[128];  /* [1] unsorted .. [127] */
	uint64_t bin_count, bin_bytes;  /* masked sizes */
	uint64_t tcache_count, tcache_bytes;

	size_t nfree, capfree;
	struct hs_free *free;      /* every bin and fastbin chunk */

	size_t nthreads;
	pid_t *threads;            /* threads whose thread_arena is this arena */

	/* Filled by hs_heap_residency(). */
	uint64_t resident, trimmable;

	int status;                /* 0, or -EUCLEAN when partial */
	uint64_t bad_addr;         /* the first problem's address and text */
	char problem[256];
	size_t nproblems;          /* every problem, the first included */
	struct hs_problem *problems;
	size_t problems_dropped;   /* past HS_MAX_PROBLEMS */
	uint16_t bad_fast;         /* bit i: fastbin i is corrupt */
	uint64_t bad_bins[2];      /* bit i: bin i is corrupt */
};

static inline bool hs_arena_bin_bad(const struct hs_arena *a, int bin)
{
	return (a->bad_bins[bin >> 6] >> (bin & 63)) & 1;
}

struct hs_tcache_entry {
	uint64_t chunk;
	uint8_t bin;
};

struct hs_tcache {
	pid_t tid;
	uint64_t fs_base;
	uint64_t thread_arena;     /* 0 unknown or none */
	uint64_t addr;             /* tcache_perthread_struct, 0 none */
	uint64_t count, bytes;
	int status;
	char problem[160];
	size_t nentries;           /* with HS_WALK_DEEP */
	struct hs_tcache_entry *entries;
};

/* Budgets of a walk, which runs while the target is stopped: a hostile
 * heap (a list of thousands of fake arenas, a huge fake free list) must not
 * hold the target or grow heapscope without bound.  Past a budget the walk
 * ends, h->cut says what was cut, and the result is partial. */
struct hs_walk_limits {
	/* Arenas followed on main_arena.next.  0: derived from glibc's own
	 * cap, which no real process exceeds (arena_max from mp_, else
	 * NARENAS_FROM_NCORES = 8 per core), doubled plus 8 for slack, and
	 * at most HS_WALK_MAX_ARENAS. */
	size_t max_arenas;
	/* Free chunks and tcache entries recorded, over all arenas (24 bytes
	 * each).  0: HS_WALK_MAX_CHUNKS. */
	uint64_t max_chunks;
	/* CLOCK_MONOTONIC microseconds past which the walk stops; 0: none. */
	uint64_t deadline_us;
	/* For the message: the budget the deadline came from, in ms. */
	unsigned budget_ms;
};
#define HS_WALK_MAX_ARENAS 4096
#define HS_WALK_MAX_CHUNKS (8u << 20)

struct hs_heap {
	const struct hs_libc *libc;
	const struct hs_layout *l;
	bool initialized;          /* main_arena has been set up by ptmalloc_init */
	uint64_t heap_max;

	/* mp_ */
	uint64_t trim_threshold, top_pad, mmap_threshold, arena_max, thp_pagesize, hp_pagesize, sbrk_base;
	int32_t n_mmaps, n_mmaps_max, max_n_mmaps;
	uint64_t mmapped_mem, max_mmapped_mem, tcache_count_limit;
	uint64_t global_max_fast;  /* UINT64_MAX when not located */

	size_t narenas;
	struct hs_arena *arenas;
	size_t ntcaches;
	struct hs_tcache *tcaches;

	int status;                /* 0, or -EUCLEAN when some arena is partial */
	unsigned flags;            /* HS_WALK_* of the walk */

	/* The walk ran into a budget (struct hs_walk_limits) and stopped
	 * early: what was cut, as a sentence.  h->status is then -EUCLEAN. */
	bool cut;
	char cut_msg[256];
	struct hs_walk_limits limits;  /* the budgets the walk used, filled in */
	uint64_t recorded;         /* free chunks and tcache entries recorded */
	uint64_t gathered;         /* bin chunk headers read alone, in batches */
	size_t dense_arenas;       /* arenas whose lists turned out dense */
	bool preloaded;            /* set by the caller: what a walk of the running
				    * target read was read again, stopped, first */
	bool running;              /* set by the caller: walked while the target ran */
};

/* How the lists were read: "running" (h->running), "preload" (h->preloaded), "lists" (chunk
 * headers, in batches), "bulk" (pages whole), "mixed" (some arenas each
 * way), "none" (no lists). */
const char *hs_heap_read_mode(const struct hs_heap *h);
/* Do two walks give the same figures: the arenas (top, system bytes, their
 * heaps, free chunks by kind, counts and bytes, problems), the tcaches and
 * the mmapped chunks? */
bool hs_heap_same_figures(const struct hs_heap *a, const struct hs_heap *b);

/* The threads whose tcache and arena are wanted: each one's thread
 * pointer (fs_base), from which its TLS is found. */
struct hs_heap_threads {
	size_t n;
	const pid_t *tids;
	const uint64_t *fs_base;
};

/* Walk mp_, every arena and its heaps, each thread's tcache (threads may
 * be NULL) and, with HS_WALK_LISTS, every bin and fastbin.  The target should be
 * stopped.  Returns 0 (h may still be partial: h->status), or -errno for a
 * fatal problem (libc layout does not match memory, process gone), after
 * which h holds nothing to release. */
enum {
	HS_WALK_LISTS = 1,       /* bins and fastbins, not only arenas and heaps */
	HS_WALK_DEEP = 2,        /* also: size against its bin, the next chunk's
				  * prev_size and PREV_INUSE, fd->bk == p; keep
				  * each tcache's entries */
	HS_WALK_BULK = 4,        /* read the bins' pages whole from the start,
				  * never the chunk headers alone */
	HS_WALK_GATHER = 8,      /* read the bins' chunk headers alone, however
				  * dense (to compare) */
	HS_WALK_LATE_CHECKS = 16,  /* leave the checks that need no memory (a
				    * tcache chunk also in a bin) to
				    * hs_heap_late_checks, after the stop */
	HS_WALK_PLAN = 32,       /* a walk that only learns what to read (a
				  * preload's, of the running target): an arena
				  * whose lists show dense is left there, marked
				  * plan_whole (its heaps are read whole), each
				  * arena judged on its own */
};

/* The checks HS_WALK_LATE_CHECKS left out (they read no memory: call it
 * once the target runs again). */
void hs_heap_late_checks(struct hs_heap *h);
/* Optional: called for each arena right after its lists were walked (and
 * after every tcache), while its pages are still cached; 0 or -errno. */
struct hs_walk_hook {
	int (*arena)(void *ctx, struct hs_mem *mem, struct hs_heap *h, struct hs_arena *a, struct hs_err *err);
	void *ctx;
};
int hs_heap_walk(struct hs_mem *mem, const struct hs_libc *libc, const struct hs_heap_threads *threads,
		 unsigned flags, const struct hs_walk_hook *hook, struct hs_heap *h, struct hs_err *err);

/* hs_heap_walk with budgets (NULL: the defaults, no deadline). */
int hs_heap_walk_limited(struct hs_mem *mem, const struct hs_libc *libc, const struct hs_heap_threads *threads,
			 unsigned flags, const struct hs_walk_hook *hook, const struct hs_walk_limits *limits,
			 struct hs_heap *h, struct hs_err *err);

/* The bin glibc files a chunk of size sz in (64-bit: smallbin_index or
 * largebin_index_64). */
int hs_bin_index(uint64_t sz);

/* Resident and trimmable bytes of each arena from /proc/PID/pagemap
 * (pagemap_fd), with malloc_trim(pad)'s rules: fastbins consolidated, whole
 * pages of free chunks past their first 48 bytes, and the main arena's top
 * above pad.  Needs no stop. */
int hs_heap_residency(struct hs_heap *h, int pagemap_fd, uint64_t pad, struct hs_err *err);

/* Mark a partial: every problem is kept (up to HS_MAX_PROBLEMS); the
 * first is also in a->problem and a->bad_addr. */
void hs_arena_corrupt(struct hs_arena *a, uint64_t addr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The arena whose malloc_state is at addr, or NULL. */
struct hs_arena *hs_heap_arena_at(const struct hs_heap *h, uint64_t addr);

/* The arena whose heaps hold addr (main arena for anything else). */
struct hs_arena *hs_heap_arena_of(struct hs_heap *h, uint64_t addr);

void hs_heap_release(struct hs_heap *h);

struct hs_mallinfo2 {
	uint64_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
/* What mallinfo2() would return in the target. */
void hs_heap_mallinfo2(const struct hs_heap *h, struct hs_mallinfo2 *mi);

#endif
