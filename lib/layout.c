#include <stddef.h>

#include "layout.h"

/* Offsets compiled from each tag's malloc.c/arena.c (GLIBC.md section 1;
 * checked against tests/unit/layouts.txt, derived from the source of each
 * tag, and for 2.36 against Debian's libc6-dbg).  Rows are built from the
 * pieces that changed, version by version. */

/* struct malloc_state */
#define MS_2_17 /* no attached_threads, no have_fastchunks */ \
	.ms_mutex = 0x0, .ms_flags = 0x4, .ms_have_fastchunks = HS_NO_FIELD, .ms_fastbins = 0x8, .ms_top = 0x58, \
	.ms_last_remainder = 0x60, .ms_bins = 0x68, .ms_binmap = 0x858, .ms_next = 0x868, .ms_next_free = 0x870, \
	.ms_attached_threads = HS_NO_FIELD, .ms_system_mem = 0x878, .ms_max_system_mem = 0x880, .ms_sizeof = 0x888, \
	.nfastbins = 10
#define MS_2_23 /* a62719ba90: attached_threads */ \
	.ms_mutex = 0x0, .ms_flags = 0x4, .ms_have_fastchunks = HS_NO_FIELD, .ms_fastbins = 0x8, .ms_top = 0x58, \
	.ms_last_remainder = 0x60, .ms_bins = 0x68, .ms_binmap = 0x858, .ms_next = 0x868, .ms_next_free = 0x870, \
	.ms_attached_threads = 0x878, .ms_system_mem = 0x880, .ms_max_system_mem = 0x888, .ms_sizeof = 0x890, \
	.nfastbins = 10
#define MS_2_27 /* e956075a5a: have_fastchunks */ \
	.ms_mutex = 0x0, .ms_flags = 0x4, .ms_have_fastchunks = 0x8, .ms_fastbins = 0x10, .ms_top = 0x60, \
	.ms_last_remainder = 0x68, .ms_bins = 0x70, .ms_binmap = 0x860, .ms_next = 0x870, .ms_next_free = 0x878, \
	.ms_attached_threads = 0x880, .ms_system_mem = 0x888, .ms_max_system_mem = 0x890, .ms_sizeof = 0x898, \
	.nfastbins = 10
#define MS_2_43 /* bb5a4f5295: fastbins removed */ \
	.ms_mutex = 0x0, .ms_flags = 0x4, .ms_have_fastchunks = HS_NO_FIELD, .ms_fastbins = HS_NO_FIELD, .ms_top = 0x8, \
	.ms_last_remainder = 0x10, .ms_bins = 0x18, .ms_binmap = 0x808, .ms_next = 0x818, .ms_next_free = 0x820, \
	.ms_attached_threads = 0x828, .ms_system_mem = 0x830, .ms_max_system_mem = 0x838, .ms_sizeof = 0x840, \
	.nfastbins = 0

/* struct malloc_par */
#define MP_COMMON .mp_trim_threshold = 0x0, .mp_top_pad = 0x8, .mp_mmap_threshold = 0x10, .mp_arena_test = 0x18, \
	.mp_arena_max = 0x20
#define MP_2_17 /* with max_total_mem at 0x48 */ MP_COMMON, \
	.mp_thp_pagesize = HS_NO_FIELD, .mp_hp_pagesize = HS_NO_FIELD, .mp_n_mmaps = 0x28, .mp_n_mmaps_max = 0x2c, \
	.mp_max_n_mmaps = 0x30, .mp_no_dyn_threshold = 0x34, .mp_mmapped_mem = 0x38, .mp_max_mmapped_mem = 0x40, \
	.mp_sbrk_base = 0x50, .mp_tcache_bins = HS_NO_FIELD, .mp_tcache_max_bytes = HS_NO_FIELD, \
	.mp_tcache_count = HS_NO_FIELD, .mp_tcache_unsorted_limit = HS_NO_FIELD, .mp_sizeof = 0x58
#define MP_2_24 /* max_total_mem removed */ MP_COMMON, \
	.mp_thp_pagesize = HS_NO_FIELD, .mp_hp_pagesize = HS_NO_FIELD, .mp_n_mmaps = 0x28, .mp_n_mmaps_max = 0x2c, \
	.mp_max_n_mmaps = 0x30, .mp_no_dyn_threshold = 0x34, .mp_mmapped_mem = 0x38, .mp_max_mmapped_mem = 0x40, \
	.mp_sbrk_base = 0x48, .mp_tcache_bins = HS_NO_FIELD, .mp_tcache_max_bytes = HS_NO_FIELD, \
	.mp_tcache_count = HS_NO_FIELD, .mp_tcache_unsorted_limit = HS_NO_FIELD, .mp_sizeof = 0x50
#define MP_2_26 /* tcache tunables */ MP_COMMON, \
	.mp_thp_pagesize = HS_NO_FIELD, .mp_hp_pagesize = HS_NO_FIELD, .mp_n_mmaps = 0x28, .mp_n_mmaps_max = 0x2c, \
	.mp_max_n_mmaps = 0x30, .mp_no_dyn_threshold = 0x34, .mp_mmapped_mem = 0x38, .mp_max_mmapped_mem = 0x40, \
	.mp_sbrk_base = 0x48, .mp_tcache_bins = 0x50, .mp_tcache_max_bytes = 0x58, .mp_tcache_count = 0x60, \
	.mp_tcache_unsorted_limit = 0x68, .mp_sizeof = 0x70
#define MP_2_35 /* c1beb51d08: huge pages */ MP_COMMON, \
	.mp_thp_pagesize = 0x28, .mp_hp_pagesize = 0x30, .mp_n_mmaps = 0x3c, .mp_n_mmaps_max = 0x40, \
	.mp_max_n_mmaps = 0x44, .mp_no_dyn_threshold = 0x48, .mp_mmapped_mem = 0x50, .mp_max_mmapped_mem = 0x58, \
	.mp_sbrk_base = 0x60, .mp_tcache_bins = 0x68, .mp_tcache_max_bytes = 0x70, .mp_tcache_count = 0x78, \
	.mp_tcache_unsorted_limit = 0x80, .mp_sizeof = 0x88
#define MP_2_43 /* thp_mode */ MP_COMMON, \
	.mp_thp_pagesize = 0x30, .mp_hp_pagesize = 0x38, .mp_n_mmaps = 0x44, .mp_n_mmaps_max = 0x48, \
	.mp_max_n_mmaps = 0x4c, .mp_no_dyn_threshold = 0x50, .mp_mmapped_mem = 0x58, .mp_max_mmapped_mem = 0x60, \
	.mp_sbrk_base = 0x68, .mp_tcache_bins = 0x70, .mp_tcache_max_bytes = 0x78, .mp_tcache_count = 0x80, \
	.mp_tcache_unsorted_limit = 0x88, .mp_sizeof = 0x90

/* heap_info: pagesize added in 2.35 */
#define HI_2_17 .hi_ar_ptr = 0x0, .hi_prev = 0x8, .hi_size = 0x10, .hi_mprotect_size = 0x18, .hi_sizeof = 0x20
#define HI_2_35 .hi_ar_ptr = 0x0, .hi_prev = 0x8, .hi_size = 0x10, .hi_mprotect_size = 0x18, .hi_sizeof = 0x30

/* tcache_perthread_struct */
#define TC_NONE .tc_bins = 0, .tc_count_width = 0, .tc_counts = HS_NO_FIELD, .tc_entries = HS_NO_FIELD, \
	.tc_sizeof = 0
#define TC_2_26 .tc_bins = 64, .tc_count_width = 1, .tc_counts = 0x0, .tc_entries = 0x40, .tc_sizeof = 0x240
#define TC_2_30 /* 1f50f2ad85: uint16_t counts */ .tc_bins = 64, .tc_count_width = 2, .tc_counts = 0x0, \
	.tc_entries = 0x80, .tc_sizeof = 0x280
#define TC_2_42 /* cbfd798810, 7e10e30e64: 76 bins, num_slots counting down */ .tc_bins = 76, \
	.tc_count_width = 2, .tc_counts = 0x0, .tc_entries = 0x98, .tc_sizeof = 0x2f8, .tc_counts_down = true

/* __malloc_info's output */
#define TAB7 "\t\t\t\t\t\t\t"
#define MI_2_17 .mi_size_prefix = "", .mi_unsorted_prefix = "", .mi_mmap_total = false, .mi_subheaps = false, \
	.mi_fast = true, .top_in_rest = false, .mi_reproducible = false
#define MI_2_19 .mi_size_prefix = TAB7 "      ", .mi_unsorted_prefix = "", .mi_mmap_total = false, \
	.mi_subheaps = false, .mi_fast = true, .top_in_rest = false, .mi_reproducible = true
#define MI_2_20 .mi_size_prefix = TAB7 "        ", .mi_unsorted_prefix = "  ", .mi_mmap_total = true, \
	.mi_subheaps = false, .mi_fast = true, .top_in_rest = false, .mi_reproducible = true
#define MI_2_27 .mi_size_prefix = TAB7 "        ", .mi_unsorted_prefix = "  ", .mi_mmap_total = true, \
	.mi_subheaps = true, .mi_fast = true, .top_in_rest = false, .mi_reproducible = true
#define MI_2_31 .mi_size_prefix = "  ", .mi_unsorted_prefix = "  ", .mi_mmap_total = true, .mi_subheaps = true, \
	.mi_fast = true, .top_in_rest = true, .mi_reproducible = true
#define MI_2_43 .mi_size_prefix = "  ", .mi_unsorted_prefix = "  ", .mi_mmap_total = true, .mi_subheaps = true, \
	.mi_fast = false, .top_in_rest = true, .mi_reproducible = true

static const struct hs_layout table[] = {
	{ .name = "2.17-2.18", .min_minor = 17, .max_minor = 18, MS_2_17, MP_2_17, HI_2_17, TC_NONE, MI_2_17 },
	{ .name = "2.19", .min_minor = 19, .max_minor = 19, MS_2_17, MP_2_17, HI_2_17, TC_NONE, MI_2_19 },
	{ .name = "2.20-2.22", .min_minor = 20, .max_minor = 22, MS_2_17, MP_2_17, HI_2_17, TC_NONE, MI_2_20 },
	{ .name = "2.23", .min_minor = 23, .max_minor = 23, MS_2_23, MP_2_17, HI_2_17, TC_NONE, MI_2_20 },
	{ .name = "2.24-2.25", .min_minor = 24, .max_minor = 25, MS_2_23, MP_2_24, HI_2_17, TC_NONE, MI_2_20 },
	{ .name = "2.26", .min_minor = 26, .max_minor = 26, MS_2_23, MP_2_26, HI_2_17, TC_2_26, MI_2_20,
	  .mp_default_tcache_count = 7 },
	{ .name = "2.27-2.29", .min_minor = 27, .max_minor = 29, MS_2_27, MP_2_26, HI_2_17, TC_2_26, MI_2_27,
	  .mp_default_tcache_count = 7 },
	{ .name = "2.30", .min_minor = 30, .max_minor = 30, MS_2_27, MP_2_26, HI_2_17, TC_2_30, MI_2_27,
	  .mp_default_tcache_count = 7 },
	{ .name = "2.31", .min_minor = 31, .max_minor = 31, MS_2_27, MP_2_26, HI_2_17, TC_2_30, MI_2_31,
	  .mp_default_tcache_count = 7 },
	/* a1a486d70e: safe-linking */
	{ .name = "2.32-2.34", .min_minor = 32, .max_minor = 34, MS_2_27, MP_2_26, HI_2_17, TC_2_30, MI_2_31,
	  .mp_default_tcache_count = 7, .safe_linking = true },
	{ .name = "2.35-2.41", .min_minor = 35, .max_minor = 41, MS_2_27, MP_2_35, HI_2_35, TC_2_30, MI_2_31,
	  .mp_default_tcache_count = 7, .safe_linking = true },
	{ .name = "2.42", .min_minor = 42, .max_minor = 42, MS_2_27, MP_2_35, HI_2_35, TC_2_42, MI_2_31,
	  .mp_default_tcache_count = 7, .safe_linking = true },
	/* master after 2.42 (04e750e75b): 0b9210bd76 fills the tcache with 16 */
	{ .name = "2.43", .min_minor = 43, .max_minor = 43, MS_2_43, MP_2_43, HI_2_35, TC_2_42, MI_2_43,
	  .mp_default_tcache_count = 16, .mp_default_tcache_max = 0x411, .safe_linking = true },
};

const struct hs_layout *hs_layout_for_version(int major, int minor)
{
	if (major != 2)
		return NULL;
	for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (minor >= table[i].min_minor && minor <= table[i].max_minor)
			return &table[i];
	return NULL;
}

const struct hs_layout *hs_layout_table(unsigned *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}

/* Every field inside its struct, every struct inside the buffers the walker
 * reads it into, and every field the walker cannot do without present. */
static bool field_ok(int off, int width, int size, bool required)
{
	if (off == HS_NO_FIELD)
		return !required;
	return off >= 0 && off + width <= size;
}

bool hs_layout_check(const struct hs_layout *l)
{
	if (l->ms_sizeof < 0x800 || l->ms_sizeof > HS_MAX_MS_SIZEOF || l->mp_sizeof < 0x40 ||
	    l->mp_sizeof > HS_MAX_MP_SIZEOF || l->hi_sizeof < 0x20 || l->hi_sizeof > HS_MAX_HI_SIZEOF ||
	    l->nfastbins < 0 || l->nfastbins > 10 || l->tc_bins < 0 || l->tc_bins > 128)
		return false;
	int ms = l->ms_sizeof, mp = l->mp_sizeof, hi = l->hi_sizeof;
	bool ok = field_ok(l->ms_mutex, 4, ms, true) && field_ok(l->ms_flags, 4, ms, true) &&
		  field_ok(l->ms_have_fastchunks, 4, ms, false) &&
		  (l->nfastbins == 0 || field_ok(l->ms_fastbins, 8 * l->nfastbins, ms, true)) &&
		  field_ok(l->ms_top, 8, ms, true) && field_ok(l->ms_last_remainder, 8, ms, false) &&
		  field_ok(l->ms_bins, 8 * (2 * HS_NBINS - 2), ms, true) && l->ms_bins >= 16 &&
		  field_ok(l->ms_binmap, 16, ms, false) && field_ok(l->ms_next, 8, ms, true) &&
		  field_ok(l->ms_next_free, 8, ms, false) && field_ok(l->ms_attached_threads, 8, ms, false) &&
		  field_ok(l->ms_system_mem, 8, ms, true) && field_ok(l->ms_max_system_mem, 8, ms, true) &&
		  field_ok(l->mp_trim_threshold, 8, mp, true) && field_ok(l->mp_top_pad, 8, mp, true) &&
		  field_ok(l->mp_mmap_threshold, 8, mp, true) && field_ok(l->mp_arena_test, 8, mp, true) &&
		  field_ok(l->mp_arena_max, 8, mp, true) && field_ok(l->mp_thp_pagesize, 8, mp, false) &&
		  field_ok(l->mp_hp_pagesize, 8, mp, false) &&
		  field_ok(l->mp_n_mmaps, 4, mp, true) && field_ok(l->mp_n_mmaps_max, 4, mp, true) &&
		  field_ok(l->mp_max_n_mmaps, 4, mp, true) && field_ok(l->mp_no_dyn_threshold, 4, mp, false) &&
		  field_ok(l->mp_mmapped_mem, 8, mp, true) && field_ok(l->mp_max_mmapped_mem, 8, mp, true) &&
		  field_ok(l->mp_sbrk_base, 8, mp, true) && field_ok(l->mp_tcache_bins, 8, mp, false) &&
		  field_ok(l->mp_tcache_max_bytes, 8, mp, false) && field_ok(l->mp_tcache_count, 8, mp, false) &&
		  field_ok(l->mp_tcache_unsorted_limit, 8, mp, false) &&
		  field_ok(l->hi_ar_ptr, 8, hi, true) && field_ok(l->hi_prev, 8, hi, true) &&
		  field_ok(l->hi_size, 8, hi, true) && field_ok(l->hi_mprotect_size, 8, hi, true);
	if (ok && l->tc_bins) {
		ok = (l->tc_count_width == 1 || l->tc_count_width == 2) && l->tc_sizeof <= HS_MAX_TC_SIZEOF &&
		     field_ok(l->tc_counts, l->tc_count_width * l->tc_bins, l->tc_sizeof, true) &&
		     field_ok(l->tc_entries, 8 * l->tc_bins, l->tc_sizeof, true);
	}
	return ok;
}
