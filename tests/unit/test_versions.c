/* The walker over a synthetic heap built with every layout row (2.17 to
 * 2.43): arenas, bins, fastbins (where there are any), tcache (where there
 * is one, counted up or down), safe-linking or not, and malloc_info in that
 * version's format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "info.h"
#include "tap.h"

#define LIBC  0x7f0010000000ull
#define MPA   (LIBC + 0x100)
#define MAIN  (LIBC + 0x1000)
#define HEAP  0x555555550000ull
#define THEAP 0x7f0020000000ull
#define TLS   0x7f0030000000ull
#define FS    (TLS + 0x100)

static unsigned char libc[0x4000], heap[0x10000], theap[0x10000], tls[0x1000];
static const struct { uint64_t addr; size_t len; unsigned char *b; } seg[] = {
	{ LIBC, sizeof(libc), libc }, { HEAP, sizeof(heap), heap }, { THEAP, sizeof(theap), theap }, { TLS, sizeof(tls), tls },
};
static const struct hs_layout *L;

static unsigned char *at(uint64_t a)
{
	for (int i = 0; i < 4; i++)
		if (a >= seg[i].addr && a + 8 <= seg[i].addr + seg[i].len)
			return seg[i].b + (a - seg[i].addr);
	abort();
}
static void put(uint64_t a, uint64_t v) { memcpy(at(a), &v, 8); }
static uint64_t get(uint64_t a) { uint64_t v; memcpy(&v, at(a), 8); return v; }
static uint64_t protect(uint64_t pos, uint64_t v) { return L->safe_linking ? (pos >> 12) ^ v : v; }

static void arena(uint64_t a, uint64_t next, uint64_t top)
{
	for (int i = 1; i < HS_NBINS; i++) {
		put(a + L->ms_bins + (i - 1) * 16, hs_bin_at(L, a, i));
		put(a + L->ms_bins + (i - 1) * 16 + 8, hs_bin_at(L, a, i));
	}
	put(a + L->ms_next, next);
	if (L->ms_attached_threads != HS_NO_FIELD)
		put(a + L->ms_attached_threads, 1);
	put(a + L->ms_system_mem, 0x10000);
	put(a + L->ms_max_system_mem, 0x10000);
	put(a + L->ms_top, top);
}

static void bin_push(uint64_t a, int i, uint64_t p)
{
	uint64_t bin = hs_bin_at(L, a, i), first = get(bin + 16);
	put(p + 16, first);
	put(p + 24, bin);
	put(first + 24, p);
	put(bin + 16, p);
}

int main(void)
{
	unsigned n;
	const struct hs_layout *rows = hs_layout_table(&n);
	for (unsigned r = 0; r < n; r++) {
		L = &rows[r];
		memset(libc, 0, sizeof(libc));
		memset(heap, 0, sizeof(heap));
		memset(theap, 0, sizeof(theap));
		memset(tls, 0, sizeof(tls));
		uint64_t tarena = THEAP + L->hi_sizeof;
		uint64_t t0 = (tarena + L->ms_sizeof + 15) & ~15ull;
		put(MPA + L->mp_sbrk_base, HEAP);
		if (L->mp_tcache_count != HS_NO_FIELD)
			put(MPA + L->mp_tcache_count, 7);
		/* main: [tcache struct] used, small bin chunk, used, 2 fast, unsorted, top */
		uint64_t p = HEAP, tc = 0;
		if (L->tc_bins) {
			uint64_t tcs = ((uint64_t)L->tc_sizeof + 8 + 15) & ~15ull;
			put(p + 8, tcs | 1);
			tc = p + 16;
			p += tcs;
		}
		put(p + 8, 0x101);                       /* used */
		uint64_t small = p + 0x100;
		put(small + 8, 0x101);
		put(small + 0x100, 0x100);
		put(small + 0x100 + 8, 0x30);             /* used, prev free */
		uint64_t f1 = small + 0x130, f2 = f1 + 0x30, tcc = f2 + 0x30, uns = tcc + 0x40, top = uns + 0x1000;
		put(f1 + 8, 0x31);
		put(f2 + 8, 0x31);
		put(tcc + 8, 0x21);
		put(tcc + 0x20 + 8, 0x21);
		put(uns + 8, 0x1001);
		put(top, 0x1000);
		put(top + 8, HEAP + 0x10000 - top);         /* prev (unsorted) is free */
		arena(MAIN, tarena, top);
		bin_push(MAIN, 16, small);
		bin_push(MAIN, 1, uns);
		if (L->nfastbins) {
			put(f1 + 16, protect(f1 + 16, 0));
			put(f2 + 16, protect(f2 + 16, f1));
			put(MAIN + L->ms_fastbins + 8, f2);
		}
		if (L->tc_bins) {
			/* bin 0: two entries (user pointers) */
			/* 2.42: every bin starts with mp_.tcache_count slots */
			uint16_t full = 7, cnt = L->tc_counts_down ? 7 - 2 : 2;
			for (int b = 0; L->tc_counts_down && b < L->tc_bins; b++)
				memcpy(at(tc + L->tc_counts + 2 * b), &full, 2);
			memcpy(at(tc + L->tc_counts), &cnt, L->tc_count_width);
			put(tc + L->tc_entries, tcc + 16);
			put(tcc + 16, protect(tcc + 16, tcc + 0x20 + 16));
			put(tcc + 0x20 + 16, protect(tcc + 0x20 + 16, 0));
			put(LIBC + 0x200, (uint64_t)-0x100);
			put(FS - 0x100, tc);
		}
		/* thread arena: heap_info, arena, one large free chunk, top */
		put(THEAP + L->hi_ar_ptr, tarena);
		put(THEAP + L->hi_size, 0x10000);
		put(THEAP + L->hi_mprotect_size, 0x10000);
		put(t0 + 8, 0x105);
		uint64_t big = t0 + 0x100, ttop = big + 0x2200;
		put(big + 8, 0x2201);
		put(big + 32, big);                          /* alone in its large bin: fd/bk_nextsize */
		put(big + 40, big);
		put(ttop, 0x2200);
		put(ttop + 8, THEAP + 0x10000 - ttop);      /* prev (big) is free */
		arena(tarena, MAIN, ttop);
		bin_push(tarena, hs_bin_index(0x2200), big);

		struct hs_libc lc = { 0 };
		lc.layout = *L;
		lc.major = 2;
		lc.minor = L->max_minor;
		lc.main_arena = MAIN;
		lc.mp = MPA;
		lc.tls_tcache = lc.tls_thread_arena = -1;
		struct hs_tpoff slot = { LIBC + 0x200, 0x48 };
		lc.tpoff = &slot;
		lc.ntpoff = 1;
		struct hs_mem_segment ms[4];
		for (int i = 0; i < 4; i++)
			ms[i] = (struct hs_mem_segment){ seg[i].addr, seg[i].len, seg[i].b };
		struct hs_mem *mem;
		hs_mem_open_buffer(ms, 4, &mem);
		pid_t tid = 1;
		uint64_t fs = FS;
		struct hs_heap_threads th = { 1, &tid, &fs };
		struct hs_heap h;
		struct hs_err err = { 0 };
		int rc = hs_heap_walk(mem, &lc, &th, HS_WALK_LISTS | HS_WALK_DEEP, NULL, &h, &err);
		OK(rc == 0 && h.status == 0 && h.narenas == 2, "%s: walks clean (%s%s|%s)", L->name, err.msg,
		   rc == 0 && h.narenas ? h.arenas[0].problem : "", rc == 0 && h.narenas > 1 ? h.arenas[1].problem : "");
		if (rc == 0) {
			const struct hs_arena *m = &h.arenas[0], *t = &h.arenas[1];
			OK(m->bins[16].count == 1 && m->bins[1].count == 1 && t->bin_count == 1 && t->nheaps == 1,
			   "%s: small, unsorted and the thread arena's large bin", L->name);
			OK(m->fast_count == (L->nfastbins ? 2u : 0u), "%s: %s", L->name,
			   L->nfastbins ? "two fastbin chunks" : "no fastbins to walk");
			uint64_t want_tc = L->tc_bins ? 2 : 0;
			OK(h.ntcaches == 1 && h.tcaches[0].count == want_tc && h.tcaches[0].status == 0,
			   "%s: tcache %s [%s %llu]", L->name, L->tc_bins ? (L->tc_counts_down ? "(counting down) 2 entries" : "2 entries")
								: "absent", h.tcaches[0].problem, (unsigned long long)h.tcaches[0].count);
			char *xml = NULL;
			size_t len = 0;
			FILE *f = open_memstream(&xml, &len);
			int mi = hs_info_malloc_info(&h, f);
			fclose(f);
			if (!L->mi_reproducible) {
				OK(mi < 0, "%s: malloc_info refused (glibc printed uninitialised memory)", L->name);
			} else {
				char want[128];
				snprintf(want, sizeof(want), "%s<size from=\"257\"", L->mi_size_prefix);
				OK(mi == 0 && strstr(xml, want) && (strstr(xml, "<total type=\"fast\"") != NULL) == L->mi_fast &&
				   (strstr(xml, "subheaps") != NULL) == L->mi_subheaps &&
				   (strstr(xml, "type=\"mmap\"") != NULL) == L->mi_mmap_total,
				   "%s: malloc_info in that version's format", L->name);
			}
			free(xml);
			hs_heap_release(&h);
		}
		hs_mem_close(mem);
	}
	return tap_done();
}
