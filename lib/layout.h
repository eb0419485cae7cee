/* glibc malloc structure layouts, x86_64, kept as tables by version range.
 * Offsets come from each tag's source (see ../shared/GLIBC.md section 1 and
 * tests/unit/layouts for the derived data); DWARF from libc's debug info
 * overrides them when present (hs_layout_from_dwarf in libc.c). */
#ifndef HS_LAYOUT_H
#define HS_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#define HS_NO_FIELD (-1)

struct hs_layout {
	const char *name;        /* "2.35-2.41" */
	int min_minor, max_minor;  /* glibc 2.min .. 2.max */

	/* struct malloc_state */
	int ms_mutex, ms_flags, ms_have_fastchunks, ms_fastbins, ms_top, ms_last_remainder,
	    ms_bins, ms_binmap, ms_next, ms_next_free, ms_attached_threads, ms_system_mem,
	    ms_max_system_mem, ms_sizeof;
	int nfastbins;

	/* struct malloc_par */
	int mp_trim_threshold, mp_top_pad, mp_mmap_threshold, mp_arena_test, mp_arena_max,
	    mp_thp_pagesize, mp_hp_pagesize, mp_n_mmaps, mp_n_mmaps_max, mp_max_n_mmaps, mp_no_dyn_threshold,
	    mp_mmapped_mem, mp_max_mmapped_mem, mp_sbrk_base, mp_tcache_bins,
	    mp_tcache_max_bytes, mp_tcache_count, mp_tcache_unsorted_limit, mp_sizeof;

	/* heap_info */
	int hi_ar_ptr, hi_prev, hi_size, hi_mprotect_size, hi_sizeof;

	/* tcache_perthread_struct (tc_bins 0: no tcache) */
	int tc_bins, tc_count_width, tc_counts, tc_entries, tc_sizeof;

	bool tc_counts_down;     /* 2.42: num_slots, the room left, not the count */
	int mp_default_tcache_count;  /* TCACHE_FILL_COUNT, for mp_'s signature */
	int mp_default_tcache_max;    /* tcache_max_bytes' initial value: 1032, or 0x411 after 2.42 */

	bool safe_linking;       /* 2.32: PROTECT_PTR on fastbin and tcache links */

	/* __malloc_info's output at this version */
	bool top_in_rest;        /* 2.31: top counted in "rest" */
	const char *mi_size_prefix, *mi_unsorted_prefix;  /* before <size, <unsorted */
	bool mi_mmap_total;      /* 2.20: <total type="mmap"> */
	bool mi_subheaps;        /* 2.27: every heap in aspace, <aspace type="subheaps"> */
	bool mi_fast;            /* fastbin lines and "fast" totals (not on master) */
	bool mi_reproducible;    /* false for 2.17-2.18: garbage in the unsorted line */
};

/* The table row for glibc 2.minor, or NULL when none is known. */
const struct hs_layout *hs_layout_for_version(int major, int minor);

/* The largest structs the walker has buffers for. */
#define HS_MAX_MS_SIZEOF 0x1000
#define HS_MAX_MP_SIZEOF 0x100
#define HS_MAX_HI_SIZEOF 0x40
#define HS_MAX_TC_SIZEOF 0x400

/* True if l is usable: every field inside its struct, the structs within
 * the walker's buffers, the fields it needs present.  A layout from DWARF
 * or the cache is checked before use: a debug file is input too. */
bool hs_layout_check(const struct hs_layout *l);

/* All rows (for signature scans that must try each, and for tests). */
const struct hs_layout *hs_layout_table(unsigned *n);

/* x86_64 constants that no supported version changes. */
#define HS_SIZE_SZ        8u
#define HS_MINSIZE        0x20u
#define HS_MALLOC_ALIGN   16u
#define HS_NBINS          128
#define HS_HEAP_MAX       (64u << 20)
#define HS_PREV_INUSE     1u
#define HS_IS_MMAPPED     2u
#define HS_NON_MAIN_ARENA 4u
#define HS_SIZE_BITS      7u
#define HS_CHUNKSIZE(s)   ((s) & ~(uint64_t)HS_SIZE_BITS)

/* bin_at(m, i): the fake chunk whose fd/bk are bins[2i-2], bins[2i-1]. */
static inline uint64_t hs_bin_at(const struct hs_layout *l, uint64_t arena, int i)
{
	return arena + l->ms_bins + (uint64_t)(i - 1) * 16 - 16;
}

#endif
