/* Counting strings: how often each occurs and how many bytes it covers,
 * for --top.  At most HS_STRTAB_MAX distinct strings are kept; the rest are
 * counted as untracked. */
#ifndef HS_STRTAB_H
#define HS_STRTAB_H

#include <stddef.h>
#include <stdint.h>

#define HS_STRTAB_MAX (1u << 20)

struct hs_strent {
	char *s;
	size_t len;
	uint64_t count, bytes;
	uint64_t hash;
};

/* The strings themselves live in big blocks (an arena), not one malloc
 * each. */
struct hs_strtab {
	struct hs_strent *v;
	size_t cap, n;
	uint64_t untracked;
	char *block;             /* the arena's current block, chained by its first word */
	size_t used, size;
};

void hs_strtab_add(struct hs_strtab *t, const char *s, size_t len, uint64_t bytes);
/* Compact the table into t->v[0..n), most frequent first (then most bytes,
 * then by string); the table can then only be released. */
size_t hs_strtab_sort(struct hs_strtab *t);
void hs_strtab_release(struct hs_strtab *t);

#endif
