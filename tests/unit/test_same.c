/* lib/heap.c's hs_heap_same_figures, which decides when two walks of a
 * running target agree (arenas --no-freeze): every figure it compares,
 * changed alone, makes two heaps differ; equal heaps agree. */
#include <errno.h>
#include <string.h>

#include "heap.h"
#include "tap.h"

struct pair {
	struct hs_heapseg seg[2][2];
	struct hs_arena ar[2][2];
	struct hs_tcache tc[2][1];
	struct hs_heap h[2];
};

/* Two equal heaps of two arenas (the second with two heaps) and a tcache. */
static void make(struct pair *p)
{
	memset(p, 0, sizeof(*p));
	for (int k = 0; k < 2; k++) {
		p->seg[k][0] = (struct hs_heapseg){ .addr = 0x7f0000000000, .size = 1 << 20 };
		p->seg[k][1] = (struct hs_heapseg){ .addr = 0x7f0004000000, .size = 2 << 20 };
		p->ar[k][0] = (struct hs_arena){ .addr = 0x7f1000, .main = true, .top = 0x5000, .top_size = 4096,
						 .system_mem = 1 << 20, .bin_count = 3, .bin_bytes = 300 };
		p->ar[k][1] = (struct hs_arena){ .addr = 0x7f0000000030, .top = 0x7f0000100000, .top_size = 64,
						 .system_mem = 3 << 20, .nheaps = 2, .heaps = p->seg[k],
						 .fast_count = 2, .fast_bytes = 64, .tcache_count = 1, .tcache_bytes = 32 };
		p->ar[k][1].bins[5] = (struct hs_binstat){ .from = 96, .to = 111, .total = 300, .count = 3 };
		p->ar[k][1].fast[1] = (struct hs_binstat){ .from = 32, .to = 32, .total = 64, .count = 2 };
		p->tc[k][0] = (struct hs_tcache){ .tid = 100, .addr = 0x5010, .count = 1, .bytes = 32 };
		p->h[k] = (struct hs_heap){ .initialized = true, .narenas = 2, .arenas = p->ar[k], .ntcaches = 1,
					    .tcaches = p->tc[k], .n_mmaps = 1, .mmapped_mem = 1 << 20 };
	}
}

int main(void)
{
	struct pair p;
	make(&p);
	OK(hs_heap_same_figures(&p.h[0], &p.h[1]), "equal heaps agree");
#define DIFFERS(what, change)                                                           \
	do {                                                                            \
		make(&p);                                                               \
		change;                                                                 \
		OK(!hs_heap_same_figures(&p.h[0], &p.h[1]), "differ: " what);           \
	} while (0)
	DIFFERS("arena count", p.h[1].narenas = 1);
	DIFFERS("mmapped chunks", p.h[1].n_mmaps = 2);
	DIFFERS("mmapped bytes", p.h[1].mmapped_mem += 4096);
	DIFFERS("top chunk", p.ar[1][1].top += 16);
	DIFFERS("top size", p.ar[1][1].top_size += 16);
	DIFFERS("system bytes", p.ar[1][0].system_mem += 4096);
	DIFFERS("a heap grew", p.seg[1][1].size += 4096);
	DIFFERS("heap count", p.ar[1][1].nheaps = 1);
	DIFFERS("bin chunks", p.ar[1][0].bin_count++);
	DIFFERS("bin bytes", p.ar[1][0].bin_bytes += 16);
	DIFFERS("one bin's chunks moved to another", (p.ar[1][1].bins[5].count--, p.ar[1][1].bins[6].count++));
	DIFFERS("fastbin chunks", p.ar[1][1].fast[1].count++);
	DIFFERS("fastbin bytes", p.ar[1][1].fast_bytes += 32);
	DIFFERS("tcache chunks (arena)", p.ar[1][1].tcache_count++);
	DIFFERS("tcache chunks (thread)", p.tc[1][0].count++);
	DIFFERS("tcache bytes (thread)", p.tc[1][0].bytes += 16);
	DIFFERS("a list broken in one walk", (p.ar[1][1].status = -EUCLEAN, p.ar[1][1].nproblems = 1));
	DIFFERS("partial heap", p.h[1].status = -EUCLEAN);
	return tap_done();
}
