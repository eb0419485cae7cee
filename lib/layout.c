#include <stddef.h>

#include "layout.h"

/* Offsets compiled from each tag's malloc.c/arena.c (GLIBC.md section 1,
 * cross-checked for 2.36 against Debian's libc6-dbg).  The fields every
 * row shares are written out in full so that a row reads like ptype /o. */
static const struct hs_layout table[] = {
	{
		.name = "2.27-2.29", .min_minor = 27, .max_minor = 29,
		.ms_mutex = 0x0, .ms_flags = 0x4, .ms_have_fastchunks = 0x8, .ms_fastbins = 0x10,
		.ms_top = 0x60, .ms_last_remainder = 0x68, .ms_bins = 0x70, .ms_binmap = 0x860,
		.ms_next = 0x870, .ms_next_free = 0x878, .ms_attached_threads = 0x880,
		.ms_system_mem = 0x888, .ms_max_system_mem = 0x890, .ms_sizeof = 0x898, .nfastbins = 10,
		.mp_trim_threshold = 0x0, .mp_top_pad = 0x8, .mp_mmap_threshold = 0x10, .mp_arena_test = 0x18,
		.mp_arena_max = 0x20, .mp_thp_pagesize = HS_NO_FIELD, .mp_hp_pagesize = HS_NO_FIELD, .mp_n_mmaps = 0x28, .mp_n_mmaps_max = 0x2c,
		.mp_max_n_mmaps = 0x30, .mp_no_dyn_threshold = 0x34, .mp_mmapped_mem = 0x38,
		.mp_max_mmapped_mem = 0x40, .mp_sbrk_base = 0x48, .mp_tcache_bins = 0x50,
		.mp_tcache_max_bytes = 0x58, .mp_tcache_count = 0x60, .mp_tcache_unsorted_limit = 0x68,
		.mp_sizeof = 0x70,
		.hi_ar_ptr = 0x0, .hi_prev = 0x8, .hi_size = 0x10, .hi_mprotect_size = 0x18, .hi_sizeof = 0x20,
		.tc_bins = 64, .tc_count_width = 1, .tc_counts = 0x0, .tc_entries = 0x40, .tc_sizeof = 0x240,
		.safe_linking = false, .top_in_rest = false,
	},
	{
		.name = "2.30-2.31", .min_minor = 30, .max_minor = 31,
		.ms_mutex = 0x0, .ms_flags = 0x4, .ms_have_fastchunks = 0x8, .ms_fastbins = 0x10,
		.ms_top = 0x60, .ms_last_remainder = 0x68, .ms_bins = 0x70, .ms_binmap = 0x860,
		.ms_next = 0x870, .ms_next_free = 0x878, .ms_attached_threads = 0x880,
		.ms_system_mem = 0x888, .ms_max_system_mem = 0x890, .ms_sizeof = 0x898, .nfastbins = 10,
		.mp_trim_threshold = 0x0, .mp_top_pad = 0x8, .mp_mmap_threshold = 0x10, .mp_arena_test = 0x18,
		.mp_arena_max = 0x20, .mp_thp_pagesize = HS_NO_FIELD, .mp_hp_pagesize = HS_NO_FIELD, .mp_n_mmaps = 0x28, .mp_n_mmaps_max = 0x2c,
		.mp_max_n_mmaps = 0x30, .mp_no_dyn_threshold = 0x34, .mp_mmapped_mem = 0x38,
		.mp_max_mmapped_mem = 0x40, .mp_sbrk_base = 0x48, .mp_tcache_bins = 0x50,
		.mp_tcache_max_bytes = 0x58, .mp_tcache_count = 0x60, .mp_tcache_unsorted_limit = 0x68,
		.mp_sizeof = 0x70,
		.hi_ar_ptr = 0x0, .hi_prev = 0x8, .hi_size = 0x10, .hi_mprotect_size = 0x18, .hi_sizeof = 0x20,
		.tc_bins = 64, .tc_count_width = 2, .tc_counts = 0x0, .tc_entries = 0x80, .tc_sizeof = 0x280,
		.safe_linking = false, .top_in_rest = true,  /* 2.31 only; see hs_layout_for_version */
	},
	{
		.name = "2.32-2.34", .min_minor = 32, .max_minor = 34,
		.ms_mutex = 0x0, .ms_flags = 0x4, .ms_have_fastchunks = 0x8, .ms_fastbins = 0x10,
		.ms_top = 0x60, .ms_last_remainder = 0x68, .ms_bins = 0x70, .ms_binmap = 0x860,
		.ms_next = 0x870, .ms_next_free = 0x878, .ms_attached_threads = 0x880,
		.ms_system_mem = 0x888, .ms_max_system_mem = 0x890, .ms_sizeof = 0x898, .nfastbins = 10,
		.mp_trim_threshold = 0x0, .mp_top_pad = 0x8, .mp_mmap_threshold = 0x10, .mp_arena_test = 0x18,
		.mp_arena_max = 0x20, .mp_thp_pagesize = HS_NO_FIELD, .mp_hp_pagesize = HS_NO_FIELD, .mp_n_mmaps = 0x28, .mp_n_mmaps_max = 0x2c,
		.mp_max_n_mmaps = 0x30, .mp_no_dyn_threshold = 0x34, .mp_mmapped_mem = 0x38,
		.mp_max_mmapped_mem = 0x40, .mp_sbrk_base = 0x48, .mp_tcache_bins = 0x50,
		.mp_tcache_max_bytes = 0x58, .mp_tcache_count = 0x60, .mp_tcache_unsorted_limit = 0x68,
		.mp_sizeof = 0x70,
		.hi_ar_ptr = 0x0, .hi_prev = 0x8, .hi_size = 0x10, .hi_mprotect_size = 0x18, .hi_sizeof = 0x20,
		.tc_bins = 64, .tc_count_width = 2, .tc_counts = 0x0, .tc_entries = 0x80, .tc_sizeof = 0x280,
		.safe_linking = true, .top_in_rest = true,
	},
	{
		/* 2.35 "malloc: Add Huge Page support to arenas" (c1beb51d08):
		 * thp_pagesize, hp_pagesize, hp_flags in mp_, pagesize in heap_info. */
		.name = "2.35-2.41", .min_minor = 35, .max_minor = 41,
		.ms_mutex = 0x0, .ms_flags = 0x4, .ms_have_fastchunks = 0x8, .ms_fastbins = 0x10,
		.ms_top = 0x60, .ms_last_remainder = 0x68, .ms_bins = 0x70, .ms_binmap = 0x860,
		.ms_next = 0x870, .ms_next_free = 0x878, .ms_attached_threads = 0x880,
		.ms_system_mem = 0x888, .ms_max_system_mem = 0x890, .ms_sizeof = 0x898, .nfastbins = 10,
		.mp_trim_threshold = 0x0, .mp_top_pad = 0x8, .mp_mmap_threshold = 0x10, .mp_arena_test = 0x18,
		.mp_arena_max = 0x20, .mp_thp_pagesize = 0x28, .mp_hp_pagesize = 0x30, .mp_n_mmaps = 0x3c, .mp_n_mmaps_max = 0x40,
		.mp_max_n_mmaps = 0x44, .mp_no_dyn_threshold = 0x48, .mp_mmapped_mem = 0x50,
		.mp_max_mmapped_mem = 0x58, .mp_sbrk_base = 0x60, .mp_tcache_bins = 0x68,
		.mp_tcache_max_bytes = 0x70, .mp_tcache_count = 0x78, .mp_tcache_unsorted_limit = 0x80,
		.mp_sizeof = 0x88,
		.hi_ar_ptr = 0x0, .hi_prev = 0x8, .hi_size = 0x10, .hi_mprotect_size = 0x18, .hi_sizeof = 0x30,
		.tc_bins = 64, .tc_count_width = 2, .tc_counts = 0x0, .tc_entries = 0x80, .tc_sizeof = 0x280,
		.safe_linking = true, .top_in_rest = true,
	},
};

static struct hs_layout v230;

const struct hs_layout *hs_layout_for_version(int major, int minor)
{
	if (major != 2)
		return NULL;
	for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (minor < table[i].min_minor || minor > table[i].max_minor)
			continue;
		if (minor == 30) {
			/* 2.30 has the wide tcache counts but not 2.31's malloc_info. */
			v230 = table[i];
			v230.name = "2.30";
			v230.max_minor = 30;
			v230.top_in_rest = false;
			return &v230;
		}
		return &table[i];
	}
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
