/* What each mapping of a process is, in malloc's terms. */
#ifndef HS_CLASSIFY_H
#define HS_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "heap.h"
#include "maps.h"
#include "mem.h"

enum hs_map_kind {
	HS_MAP_MAIN_HEAP,        /* the main arena's sbrk heap */
	HS_MAP_ARENA_HEAP,       /* a thread arena's heap (rw part or reserve) */
	HS_MAP_THREAD_STACK,
	HS_MAP_MMAP_CHUNK,       /* one or more mmapped malloc chunks */
	HS_MAP_FILE,
	HS_MAP_ANON,             /* other anonymous memory (JIT, GC heaps, ...) */
	HS_MAP_OTHER,            /* [vdso], [vvar], ... */
};

struct hs_class {
	enum hs_map_kind kind;
	int arena;               /* arena index for main/arena heaps, else -1 */
	uint64_t nchunks, chunk_bytes;  /* mmapped chunks found in it */
};

const char *hs_map_kind_name(enum hs_map_kind k);

/* Classify every mapping of maps (out[i] for maps->v[i]).  h may be NULL
 * (no malloc state known); mem is used to recognise mmapped chunk headers. */
int hs_classify(pid_t pid, const struct hs_maps *maps, struct hs_heap *h, struct hs_mem *mem,
		struct hs_class *out);

/* The indexes of maps->v, largest Rss first (then largest size, then
 * lowest address), malloc'd; NULL when out of memory. */
size_t *hs_maps_by_rss(const struct hs_maps *maps);

#endif
