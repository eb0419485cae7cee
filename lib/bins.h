/* An arena's free chunks (struct hs_arena's free[], from a walk with
 * HS_WALK_LISTS | HS_WALK_DEEP) grouped by list: each fastbin, then the
 * unsorted bin and each small and large bin, the chunks of each in list
 * order, with its figures. */
#ifndef HS_BINS_H
#define HS_BINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"

struct hs_bins_list {
	bool fast;               /* a fastbin (bin 0..9), else a bin (1..127) */
	int bin;
	bool corrupt;            /* the walk found it corrupt and stopped in it */
	const struct hs_free *v; /* its chunks, in list order */
	size_t n;
	uint64_t bytes, lo, hi;  /* sizes: the sum, the smallest, the largest */
};

struct hs_bins {
	struct hs_free *chunks;  /* every free chunk, list by list */
	struct hs_bins_list v[138];   /* the lists that hold a chunk */
	size_t n;
};

/* 0, or -ENOMEM. */
int hs_bins_group(const struct hs_arena *a, struct hs_bins *b);
void hs_bins_release(struct hs_bins *b);

/* What a list is called: "fastbin", "unsorted", "small" or "large". */
const char *hs_bins_kind(bool fast, int bin);

#endif
