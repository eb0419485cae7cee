/* lib/bins.c: an arena's free chunks grouped by list, on an arena made here. */
#include <string.h>

#include "bins.h"
#include "tap.h"

int main(void)
{
	struct hs_free f[] = {
		{ 0x1000, 0x90, HS_FREE_BIN, 1 },     /* unsorted */
		{ 0x2000, 0x20, HS_FREE_FAST, 0 },
		{ 0x3000, 0x500, HS_FREE_BIN, 68 },   /* large */
		{ 0x4000, 0x30, HS_FREE_FAST, 1 },
		{ 0x5000, 0x20, HS_FREE_FAST, 0 },
		{ 0x6000, 0x410, HS_FREE_BIN, 1 },
	};
	struct hs_arena a;
	memset(&a, 0, sizeof(a));
	a.free = f;
	a.nfree = sizeof(f) / sizeof(f[0]);
	a.bad_fast = 1 << 1;
	struct hs_bins b;
	OK(hs_bins_group(&a, &b) == 0, "grouped");
	OK(b.n == 4, "four lists: %zu", b.n);
	OK(b.v[0].fast && b.v[0].bin == 0 && b.v[0].n == 2 && b.v[0].v[0].addr == 0x2000 && b.v[0].v[1].addr == 0x5000,
	   "fastbin 0 first, its chunks in list order");
	OK(b.v[1].fast && b.v[1].bin == 1 && b.v[1].corrupt && !b.v[0].corrupt, "fastbin 1, marked corrupt");
	OK(!b.v[2].fast && b.v[2].bin == 1 && b.v[2].n == 2 && b.v[2].bytes == 0x4a0 && b.v[2].lo == 0x90 &&
	   b.v[2].hi == 0x410, "the unsorted bin: count, bytes, smallest and largest");
	OK(!b.v[3].fast && b.v[3].bin == 68 && b.v[3].lo == b.v[3].hi, "a large bin last");
	OK(!strcmp(hs_bins_kind(true, 3), "fastbin") && !strcmp(hs_bins_kind(false, 1), "unsorted") &&
	   !strcmp(hs_bins_kind(false, 63), "small") && !strcmp(hs_bins_kind(false, 64), "large"), "list kinds");
	hs_bins_release(&b);
	a.nfree = 0;
	OK(hs_bins_group(&a, &b) == 0 && b.n == 0, "no free chunk, no list");
	hs_bins_release(&b);
	return tap_done();
}
