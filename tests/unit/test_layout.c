/* Layout table rows against offsets derived from each tag's source
 * (GLIBC.md section 1, compiled with gcc and read with ptype /o). */
#include <string.h>

#include "layout.h"
#include "tap.h"

struct expect {
	int minor;
	int ms_fastbins, ms_top, ms_bins, ms_next, ms_attached, ms_system, ms_sizeof;
	int mp_n_mmaps, mp_mmapped, mp_sbrk_base, mp_tcache_count, mp_sizeof;
	int hi_sizeof, tc_entries, tc_sizeof, safe;
};

static const struct expect want[] = {
	{ 27, 0x10, 0x60, 0x70, 0x870, 0x880, 0x888, 0x898, 0x28, 0x38, 0x48, 0x60, 0x70, 0x20, 0x40, 0x240, 0 },
	{ 29, 0x10, 0x60, 0x70, 0x870, 0x880, 0x888, 0x898, 0x28, 0x38, 0x48, 0x60, 0x70, 0x20, 0x40, 0x240, 0 },
	{ 30, 0x10, 0x60, 0x70, 0x870, 0x880, 0x888, 0x898, 0x28, 0x38, 0x48, 0x60, 0x70, 0x20, 0x80, 0x280, 0 },
	{ 31, 0x10, 0x60, 0x70, 0x870, 0x880, 0x888, 0x898, 0x28, 0x38, 0x48, 0x60, 0x70, 0x20, 0x80, 0x280, 0 },
	{ 32, 0x10, 0x60, 0x70, 0x870, 0x880, 0x888, 0x898, 0x28, 0x38, 0x48, 0x60, 0x70, 0x20, 0x80, 0x280, 1 },
	{ 34, 0x10, 0x60, 0x70, 0x870, 0x880, 0x888, 0x898, 0x28, 0x38, 0x48, 0x60, 0x70, 0x20, 0x80, 0x280, 1 },
	{ 35, 0x10, 0x60, 0x70, 0x870, 0x880, 0x888, 0x898, 0x3c, 0x50, 0x60, 0x78, 0x88, 0x30, 0x80, 0x280, 1 },
	{ 36, 0x10, 0x60, 0x70, 0x870, 0x880, 0x888, 0x898, 0x3c, 0x50, 0x60, 0x78, 0x88, 0x30, 0x80, 0x280, 1 },
	{ 41, 0x10, 0x60, 0x70, 0x870, 0x880, 0x888, 0x898, 0x3c, 0x50, 0x60, 0x78, 0x88, 0x30, 0x80, 0x280, 1 },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct expect *w = &want[i];
		const struct hs_layout *l = hs_layout_for_version(2, w->minor);
		OK(l != NULL, "2.%d has a row", w->minor);
		if (!l)
			continue;
		OK(l->ms_fastbins == w->ms_fastbins && l->ms_top == w->ms_top && l->ms_bins == w->ms_bins &&
		   l->ms_next == w->ms_next && l->ms_attached_threads == w->ms_attached &&
		   l->ms_system_mem == w->ms_system && l->ms_sizeof == w->ms_sizeof, "2.%d malloc_state", w->minor);
		OK(l->mp_n_mmaps == w->mp_n_mmaps && l->mp_mmapped_mem == w->mp_mmapped &&
		   l->mp_sbrk_base == w->mp_sbrk_base && l->mp_tcache_count == w->mp_tcache_count &&
		   l->mp_sizeof == w->mp_sizeof, "2.%d malloc_par", w->minor);
		OK(l->hi_sizeof == w->hi_sizeof && l->tc_entries == w->tc_entries && l->tc_sizeof == w->tc_sizeof &&
		   l->safe_linking == w->safe, "2.%d heap_info, tcache, safe-linking", w->minor);
		OK(l->top_in_rest == (w->minor >= 31), "2.%d malloc_info counts top from 2.31", w->minor);
		/* bin_at(1) is main_arena+0x60 ("main_arena+96") from 2.27 on. */
		OK(hs_bin_at(l, 0, 1) == 0x60, "2.%d unsorted bin_at", w->minor);
	}
	unsigned n;
	const struct hs_layout *t = hs_layout_table(&n);
	for (unsigned i = 0; i < n; i++)
		OK(hs_layout_check(&t[i]), "row %s passes the layout check", t[i].name);
	struct hs_layout bad = t[n - 1];
	bad.mp_sizeof = 0x1000;
	OK(!hs_layout_check(&bad), "an mp_ larger than the walker's buffer is refused");
	bad = t[n - 1];
	bad.hi_size = 0x40;
	OK(!hs_layout_check(&bad), "a heap_info field past its struct is refused");
	bad = t[n - 1];
	bad.ms_top = HS_NO_FIELD;
	OK(!hs_layout_check(&bad), "a layout without top is refused");
	bad = t[n - 1];
	bad.tc_count_width = 3;
	OK(!hs_layout_check(&bad), "a tcache count width of 3 is refused");
	OK(hs_layout_for_version(2, 17) == NULL && hs_layout_for_version(2, 99) == NULL,
	   "unknown versions have no row (issue: layouts 2.17-2.43)");
	return tap_done();
}
