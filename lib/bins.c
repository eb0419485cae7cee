#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bins.h"

const char *hs_bins_kind(bool fast, int bin)
{
	if (fast)
		return "fastbin";
	return bin == 1 ? "unsorted" : bin < 64 ? "small" : "large";
}

/* A chunk's list: fastbins 0..9 at 0..9, bins 1..127 at 10..136. */
static int key_of(const struct hs_free *f)
{
	return (f->kind == HS_FREE_FAST ? 0 : 9) + f->bin;
}

int hs_bins_group(const struct hs_arena *a, struct hs_bins *b)
{
	size_t count[139] = { 0 }, start[139];
	memset(b, 0, sizeof(*b));
	if (!(b->chunks = malloc((a->nfree + 1) * sizeof(*b->chunks))))
		return -ENOMEM;
	for (size_t i = 0; i < a->nfree; i++)
		count[key_of(&a->free[i])]++;
	start[0] = 0;
	for (int k = 0; k < 138; k++)
		start[k + 1] = start[k] + count[k];
	size_t pos[139];
	memcpy(pos, start, sizeof(pos));
	for (size_t i = 0; i < a->nfree; i++)
		b->chunks[pos[key_of(&a->free[i])]++] = a->free[i];
	for (int k = 0; k < 138; k++) {
		if (!count[k])
			continue;
		struct hs_bins_list *l = &b->v[b->n++];
		l->fast = k < 10;
		l->bin = l->fast ? k : k - 9;
		l->corrupt = l->fast ? (a->bad_fast >> l->bin) & 1 : hs_arena_bin_bad(a, l->bin);
		l->v = b->chunks + start[k];
		l->n = count[k];
		l->lo = UINT64_MAX;
		for (size_t m = 0; m < l->n; m++) {
			l->bytes += l->v[m].size;
			l->lo = l->v[m].size < l->lo ? l->v[m].size : l->lo;
			l->hi = l->v[m].size > l->hi ? l->v[m].size : l->hi;
		}
	}
	return 0;
}

void hs_bins_release(struct hs_bins *b)
{
	free(b->chunks);
	b->chunks = NULL;
	b->n = 0;
}
