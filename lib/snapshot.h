/* One consistent look at a process's malloc state: the mappings, the C
 * library, every thread stopped just long enough to walk the arenas and
 * tcaches, then residency read after the threads run again. */
#ifndef HS_SNAPSHOT_H
#define HS_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "heap.h"
#include "libc.h"
#include "maps.h"
#include "mem.h"

struct hs_snapshot;

struct hs_snapshot_opts {
	bool use_debuginfo;      /* local debug info (--no-debuginfo: none at all) */
	bool use_debuginfod;     /* and debuginfod, when nothing local is found */
	bool freeze;             /* stop all threads while walking (default) */
	/* Walk while the target runs: its threads stopped only to read their
	 * registers (where their tcaches are), then the lists walked again
	 * and again (at most HS_SNAPSHOT_WALKS times) until two walks in a
	 * row give the same figures; else the last, approximate.  The pause
	 * does not depend on the heap; the figures are a moment's between
	 * two walks, not one instant's. */
	bool running;
	bool residency;          /* read pagemap for resident/trimmable */
	uint64_t pad;            /* trimmable as malloc_trim(pad) would release */
	unsigned walk;           /* HS_WALK_* (default HS_WALK_LISTS) */
	/* Called after the walk, before the threads run again, for reads that
	 * must see the same image (0 or -errno).  Keep it to reading: the
	 * target is stopped while it runs.  Called again after a retry. */
	int (*stopped)(struct hs_snapshot *s, void *ctx, struct hs_err *err);
	void *stopped_ctx;
	/* Per arena, right after its lists (see hs_heap_walk). */
	struct hs_walk_hook arena_hook;
	int stop_timeout_ms;     /* how long threads may take to stop */
	/* Budgets of each stop (struct hs_walk_limits): the walk while the
	 * threads are stopped ends after stop_budget_ms (0: no deadline),
	 * the result partial. */
	unsigned stop_budget_ms;
	size_t max_arenas;       /* 0: from glibc's own arena cap */
	uint64_t max_chunks;     /* 0: HS_WALK_MAX_CHUNKS */
	int lock_retries;        /* resume and retry when an arena is locked */
};

struct hs_snapshot {
	pid_t pid;
	struct hs_maps maps;     /* with smaps figures */
	struct hs_maps stopped_maps;  /* read again while stopped, when the walk needed it */
	struct hs_libc libc;
	struct hs_mem *mem;
	int pagemap_fd;          /* -1 when pagemap cannot be read */
	struct hs_heap heap;
	uint64_t pause_us;       /* how long the target was stopped, in total */
	uint64_t walk_us;        /* time spent walking while stopped */
	int attempts;            /* stops made (retries when an arena was locked) */
	int locked_arenas;       /* arenas whose mutex was held in the last stop */
	size_t nthreads;
	bool preload;            /* a walk of the running target planned what the stop reads first */
	int walks;               /* opts.running: the walks made */
	bool approximate;        /* opts.running: no two walks in a row agreed */
	struct hs_mem_preload_stats preload_stats;
};

#define HS_SNAPSHOT_WALKS 4

/* The default stop budget (documented in heapscope(1)). */
#define HS_SNAPSHOT_STOP_BUDGET_MS 5000u

void hs_snapshot_opts_default(struct hs_snapshot_opts *o);
/* Returns 0 (s->heap.status may say partial), or -errno. */
int hs_snapshot_take(pid_t pid, const struct hs_snapshot_opts *o, struct hs_snapshot *s, struct hs_err *err);
void hs_snapshot_release(struct hs_snapshot *s);

#endif
