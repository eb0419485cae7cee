/* lib/verdict.c's arena figures: free, in use and their sums, on arenas
 * made here. */
#include <string.h>

#include "tap.h"
#include "verdict.h"

int main(void)
{
	struct hs_heapseg heaps[2] = { { .reserved = 64 << 20, .mprotect_size = 1 << 20 },
					 { .reserved = 64 << 20, .mprotect_size = 2 << 20 } };
	struct hs_arena a[2];
	memset(a, 0, sizeof(a));
	a[0] = (struct hs_arena){ .system_mem = 1000, .bin_bytes = 100, .fast_bytes = 20, .tcache_bytes = 30,
				  .top_size = 50, .resident = 900, .trimmable = 40 };
	a[1] = (struct hs_arena){ .system_mem = 100, .bin_bytes = 100, .top_size = 50, .heaps = heaps, .nheaps = 2 };
	OK(hs_arena_free(&a[0]) == 200 && hs_arena_in_use(&a[0]) == 800, "free is bins, fastbins, tcache and top");
	OK(hs_arena_in_use(&a[1]) == 0, "in use is never below 0");
	struct hs_arena_figures f;
	hs_arena_figures(&a[1], &f);
	OK(f.nheaps == 2 && f.reserved == 128 << 20 && f.committed == 3 << 20, "its heaps' reserved and committed");
	struct hs_heap h;
	memset(&h, 0, sizeof(h));
	h.arenas = a;
	h.narenas = 2;
	hs_heap_figures(&h, &f);
	OK(f.system == 1100 && f.free == 350 && f.in_use == 800 && f.resident == 900 && f.trimmable == 40 &&
	   f.bins == 200 && f.top == 100 && f.nheaps == 2, "summed over the arenas");
	return tap_done();
}
