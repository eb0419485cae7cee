/* The walker over synthetic heap images (glibc 2.36 layout): no process,
 * no ptrace.  Builds a main arena and a thread arena by hand, checks every
 * figure, then corrupts the image in the ways real heaps get corrupted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "info.h"
#include "tap.h"

#define LIBC   0x7f0010000000ull   /* libc .data: mp_ at +0x100, main_arena at +0x1000 */
#define MPA    (LIBC + 0x100)
#define MAIN   (LIBC + 0x1000)
#define HEAP   0x555555550000ull   /* main heap (sbrk) */
#define THEAP  0x7f0020000000ull   /* thread heap, 64 MiB aligned */
#define TARENA (THEAP + 0x30)
#define TLS    0x7f0030000000ull
#define FS     (TLS + 0x100)
#define FAKE   0x7f0040000000ull   /* a long chain of fake arenas (optional segment) */
#define NFAKE  5000
#define FSTRIDE 0x8a0ull
#define NSEG   5

struct seg {
	uint64_t addr;
	size_t len;
	unsigned char *b;
};

static struct seg segs[NSEG];
static const struct hs_layout *L;

static unsigned char *at(uint64_t addr)
{
	for (int i = 0; i < NSEG; i++)
		if (segs[i].len && addr >= segs[i].addr && addr + 8 <= segs[i].addr + segs[i].len)
			return segs[i].b + (addr - segs[i].addr);
	fprintf(stderr, "bad test address 0x%llx\n", (unsigned long long)addr);
	abort();
}

static void put(uint64_t addr, uint64_t v) { memcpy(at(addr), &v, 8); }
static uint64_t get(uint64_t addr) { uint64_t v; memcpy(&v, at(addr), 8); return v; }

static void arena_init(uint64_t a, uint64_t next, uint64_t system_mem, uint64_t top)
{
	for (int i = 1; i < HS_NBINS; i++) {
		put(a + L->ms_bins + (i - 1) * 16, hs_bin_at(L, a, i));
		put(a + L->ms_bins + (i - 1) * 16 + 8, hs_bin_at(L, a, i));
	}
	put(a + L->ms_next, next);
	put(a + L->ms_attached_threads, 1);
	put(a + L->ms_system_mem, system_mem);
	put(a + L->ms_max_system_mem, system_mem);
	put(a + L->ms_top, top);
}

static void chunk(uint64_t p, uint64_t size) { put(p + 8, size); }

static void bin_push(uint64_t a, int i, uint64_t p)
{
	uint64_t bin = hs_bin_at(L, a, i), first = get(bin + 16);
	put(p + 16, first);
	put(p + 24, bin);
	put(first + 24, p);
	put(bin + 16, p);
}

static void fast_push(uint64_t a, int i, uint64_t p)
{
	uint64_t head = get(a + L->ms_fastbins + 8 * i);
	put(p + 16, ((p + 16) >> 12) ^ head);
	put(a + L->ms_fastbins + 8 * i, p);
}

static struct hs_libc lc;

static void build(void)
{
	static unsigned char libc[0x4000], heap[0x10000], theap[0x10000], tls[0x1000];
	memset(libc, 0, sizeof(libc));
	memset(heap, 0, sizeof(heap));
	memset(theap, 0, sizeof(theap));
	memset(tls, 0, sizeof(tls));
	segs[0] = (struct seg){ LIBC, sizeof(libc), libc };
	segs[1] = (struct seg){ HEAP, sizeof(heap), heap };
	segs[2] = (struct seg){ THEAP, sizeof(theap), theap };
	segs[3] = (struct seg){ TLS, sizeof(tls), tls };
	segs[4] = (struct seg){ 0, 0, NULL };

	/* mp_ */
	put(MPA + L->mp_sbrk_base, HEAP);
	int32_t nm = 1;
	memcpy(at(MPA + L->mp_n_mmaps), &nm, 4);
	put(MPA + L->mp_mmapped_mem, 0x21000);
	put(MPA + L->mp_tcache_count, 7);

	/* Main arena: tcache struct, in-use, small bin, fastbins, tcache, unsorted, top. */
	arena_init(MAIN, TARENA, 0x10000, HEAP + 0x3560);
	chunk(HEAP, 0x291);                       /* tcache_perthread_struct */
	chunk(HEAP + 0x290, 0x101);               /* in use */
	chunk(HEAP + 0x390, 0x101);               /* small bin 16 */
	bin_push(MAIN, 16, HEAP + 0x390);
	put(HEAP + 0x490, 0x100);
	chunk(HEAP + 0x490, 0x30);                /* in use, prev free */
	chunk(HEAP + 0x4c0, 0x31);                /* fastbin 1 */
	chunk(HEAP + 0x4f0, 0x21);                /* tcache 0x20 */
	chunk(HEAP + 0x510, 0x21);                /* tcache 0x20 */
	chunk(HEAP + 0x530, 0x31);                /* fastbin 1, next to the unsorted chunk */
	fast_push(MAIN, 1, HEAP + 0x4c0);
	fast_push(MAIN, 1, HEAP + 0x530);
	chunk(HEAP + 0x560, 0x3001);              /* unsorted */
	bin_push(MAIN, 1, HEAP + 0x560);
	put(HEAP + 0x3560, 0x3000);
	chunk(HEAP + 0x3560, 0x10000 - 0x3560);   /* top, prev free */
	/* tcache: bin 0 holds two entries (user pointers), safe-linked. */
	uint16_t two = 2;
	memcpy(at(HEAP + 0x10 + L->tc_counts), &two, 2);
	put(HEAP + 0x10 + L->tc_entries, HEAP + 0x500);
	put(HEAP + 0x500, ((HEAP + 0x500) >> 12) ^ (HEAP + 0x520));
	put(HEAP + 0x520, ((HEAP + 0x520) >> 12) ^ 0);

	/* Thread arena: heap_info, arena, in use, a large free chunk, top. */
	put(THEAP + L->hi_ar_ptr, TARENA);
	put(THEAP + L->hi_size, 0x10000);
	put(THEAP + L->hi_mprotect_size, 0x10000);
	arena_init(TARENA, MAIN, 0x10000, THEAP + 0x2c10);
	chunk(THEAP + 0x8d0, 0x105);
	chunk(THEAP + 0x9d0, 0x2201);             /* large bin 108 */
	bin_push(TARENA, 108, THEAP + 0x9d0);
	put(THEAP + 0x9d0 + 32, THEAP + 0x9d0);   /* alone: fd_nextsize = bk_nextsize = itself */
	put(THEAP + 0x9d0 + 40, THEAP + 0x9d0);
	put(THEAP + 0x2bd0, 0x2200);
	chunk(THEAP + 0x2bd0, 0x44);
	chunk(THEAP + 0x2c10, (0x10000 - 0x2c10) | 1);

	/* TLS: two TPOFF64 slots in libc, as a dynamic libc has them. */
	put(LIBC + 0x200, (uint64_t)-0x100);
	put(LIBC + 0x208, (uint64_t)-0xf8);
	put(FS - 0x100, HEAP + 0x10);
	put(FS - 0xf8, MAIN);
}

static struct hs_tpoff slots[2] = { { LIBC + 0x200, 0x48 }, { LIBC + 0x208, 0x58 } };

static struct hs_mem *open_image(void)
{
	struct hs_mem_segment ms[NSEG];
	int n = 0;
	for (int i = 0; i < NSEG; i++)
		if (segs[i].len)
			ms[n++] = (struct hs_mem_segment){ segs[i].addr, segs[i].len, segs[i].b };
	struct hs_mem *m;
	if (hs_mem_open_buffer(ms, n, &m) < 0)
		abort();
	return m;
}

static unsigned walk_flags = HS_WALK_LISTS;

static const struct hs_walk_limits *walk_limits;

static int walk(struct hs_heap *h, struct hs_err *err)
{
	struct hs_mem *m = open_image();
	pid_t tid = 1234;
	uint64_t fs = FS;
	struct hs_heap_threads th = { 1, &tid, &fs };
	int r = walk_limits ? hs_heap_walk_limited(m, &lc, &th, walk_flags, NULL, walk_limits, h, err)
			    : hs_heap_walk(m, &lc, &th, walk_flags, NULL, h, err);
	hs_mem_close(m);
	return r;
}

/* A fake /proc/PID/pagemap: a sparse file whose entries for our pages say
 * "present". */
static int fake_pagemap(void)
{
	char path[] = "/tmp/hs-pagemap-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	uint64_t present = 1ull << 63;
	for (int s = 1; s <= 2; s++)
		for (uint64_t p = segs[s].addr; p < segs[s].addr + segs[s].len; p += 4096)
			if (pwrite(fd, &present, 8, (off_t)(p / 4096 * 8)) != 8)
				return -1;
	return fd;
}

static void test_good(void)
{
	struct hs_heap h;
	struct hs_err err = { 0 };
	build();
	OK(walk(&h, &err) == 0, "walk a clean image: %s", err.msg);
	OK(h.status == 0 && h.initialized, "clean, initialised");
	OK(h.narenas == 2 && h.arenas[0].main && h.arenas[1].addr == TARENA, "two arenas, main first");
	struct hs_arena *m = &h.arenas[0], *t = &h.arenas[1];
	OK(m->fast[1].count == 2 && m->fast_bytes == 0x60 && m->fast_count == 2, "two 0x30 fastbin chunks");
	OK(m->bins[16].count == 1 && m->bins[16].total == 0x101, "small bin 16 with a raw size");
	OK(m->bins[1].count == 1 && m->bins[1].from == 0x3001, "unsorted chunk");
	OK(m->bin_bytes == 0x3100 && m->top_size == 0x10000 - 0x3560, "bin bytes and top");
	OK(t->bins[108].count == 1 && t->nheaps == 1 && t->heaps[0].size == 0x10000, "thread arena heap and large bin");
	OK(h.ntcaches == 1 && h.tcaches[0].addr == HEAP + 0x10 && h.tcaches[0].count == 2 &&
	   h.tcaches[0].thread_arena == MAIN, "thread's tcache and arena from TLS slots");
	OK(m->tcache_count == 2 && m->tcache_bytes == 0x40 && m->nthreads == 1, "tcache chunks counted in the main arena");

	struct hs_mallinfo2 mi;
	hs_heap_mallinfo2(&h, &mi);
	OK(mi.arena == 0x20000 && mi.ordblks == (1 + 2) + (1 + 1) && mi.smblks == 2 && mi.fsmblks == 0x60, "mallinfo2 counts");
	OK(mi.fordblks == (0x10000 - 0x3560) + 0x60 + 0x3100 + (0x10000 - 0x2c10) + 0x2200, "mallinfo2 fordblks");
	OK(mi.uordblks == 0x20000 - mi.fordblks && mi.keepcost == 0x10000 - 0x3560, "uordblks and keepcost");
	OK(mi.hblks == 1 && mi.hblkhd == 0x21000, "mmapped from mp_");

	char *xml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&xml, &len);
	OK(hs_info_malloc_info(&h, f) == 0, "malloc_info renders");
	fclose(f);
	OK(strstr(xml, "<heap nr=\"0\">\n<sizes>\n  <size from=\"33\" to=\"48\" total=\"96\" count=\"2\"/>\n"
		       "  <size from=\"257\" to=\"257\" total=\"257\" count=\"1\"/>\n"
		       "  <unsorted from=\"12289\" to=\"12289\" total=\"12289\" count=\"1\"/>\n</sizes>\n") != NULL,
	   "main arena sizes in glibc's order and format");
	OK(strstr(xml, "<total type=\"rest\" count=\"3\" size=\"64418\"/>") != NULL, "rest = top + raw bin sizes");
	OK(strstr(xml, "<aspace type=\"subheaps\" size=\"1\"/>") != NULL, "thread arena subheaps");
	OK(strstr(xml, "<total type=\"mmap\" count=\"1\" size=\"135168\"/>") != NULL, "mmap total");
	free(xml);

	int fd = fake_pagemap();
	OK(fd >= 0 && hs_heap_residency(&h, fd, 0, &err) == 0, "residency from a fake pagemap");
	/* Fastbin 0x530 touches the unsorted chunk, which touches top: all of
	 * it joins top, and systrim returns pages above the first one. */
	OK(m->trimmable == 0xf000, "main arena trimmable = top after consolidation (got 0x%llx)",
	   (unsigned long long)m->trimmable);
	OK(t->trimmable == 0x1000, "thread arena: one whole page inside its large chunk (got 0x%llx)",
	   (unsigned long long)t->trimmable);
	OK(m->resident == 0x10000 && t->resident == 0x10000, "resident pages of both heaps");
	close(fd);
	hs_heap_release(&h);
}

/* Walk the image: its result, and the last partial arena's problem ("" if
 * none). */
static const char *walk_problem(struct hs_heap *h, int *r)
{
	struct hs_err err = { 0 };
	*r = walk(h, &err);
	const char *problem = "";
	for (size_t i = 0; i < h->narenas; i++)
		if (h->arenas[i].status)
			problem = h->arenas[i].problem;
	return problem;
}

static void expect_partial(const char *what, const char *needle)
{
	struct hs_heap h;
	int r;
	const char *problem = walk_problem(&h, &r);
	OK(r == 0 && h.status == -EUCLEAN && strstr(problem, needle), "%s: partial, \"%s\"", what, problem);
	hs_heap_release(&h);
}

static void expect_clean(const char *what)
{
	struct hs_heap h;
	int r;
	const char *problem = walk_problem(&h, &r);
	OK(r == 0 && h.status == 0, "%s: not corrupt (%s)", what, problem);
	hs_heap_release(&h);
}

static void test_corrupt(void)
{
	build();
	/* 0x530 -> 0x4c0 -> 0x530 ... */
	put(HEAP + 0x4c0 + 16, ((HEAP + 0x4c0 + 16) >> 12) ^ (HEAP + 0x530));
	expect_partial("fastbin cycle", "cycle");

	build();
	put(HEAP + 0x560 + 16, 0x1000);
	expect_partial("unsorted fd to unmapped memory", "not readable");

	build();
	put(HEAP + 0x390 + 16, HEAP + 0x398);
	expect_partial("misaligned small-bin fd", "misaligned");

	build();
	chunk(HEAP + 0x390, 0xdeadbeef1);
	expect_partial("bogus chunk size", "bogus size");

	build();
	put(HEAP + 0x390 + 16, HEAP + 0x390);   /* points to itself, never back to the bin */
	expect_partial("small bin chunk pointing to itself", "cycle");

	build();
	put(TARENA + L->ms_next, 0x1234567);
	expect_partial("arena list to garbage", "arena list");

	build();
	put(TARENA + L->ms_next, TARENA);        /* never returns to main_arena */
	expect_partial("arena list cycle without main_arena", "arena list");

	build();
	put(THEAP + L->hi_ar_ptr, 0xdead0000);
	expect_partial("heap_info of another arena", "belongs to arena");

	build();
	chunk(HEAP + 0x3560, 0xfffffffffffffff9);    /* house of force: top's size -1 */
	expect_partial("top chunk larger than its arena", "more than the arena's");

	build();
	chunk(THEAP + 0x2c10, (0x10000 - 0x2c10 - 0x100) | 1);
	expect_partial("thread arena's top short of its heap's end", "not at its heap's end");

	/* States glibc passes through, which a stopped thread may be in. */
	build();       /* sysmalloc after grow_heap, before set_head: heap grown, top not yet */
	put(TARENA + L->ms_mutex, 1);
	chunk(THEAP + 0x2c10, (0x10000 - 0x2c10 - 0x1000) | 1);
	put(TARENA + L->ms_system_mem, 0x10000);
	expect_clean("locked thread arena, heap grown before top");

	build();       /* heap_trim after shrink_heap, before set_head: heap shrunk, top not yet */
	put(TARENA + L->ms_mutex, 1);
	put(THEAP + L->hi_size, 0xe000);
	put(TARENA + L->ms_system_mem, 0xe000);
	expect_clean("locked thread arena, heap shrunk before top");

	build();       /* systrim, single-threaded (no lock): system_mem lowered, top not yet */
	put(MAIN + L->ms_system_mem, 0x4000);
	expect_clean("main arena's system_mem lowered before top shrinks");

	build();
	uint16_t many = 5;
	memcpy(at(HEAP + 0x10 + L->tc_counts), &many, 2);
	struct hs_heap h;
	struct hs_err err = { 0 };
	OK(walk(&h, &err) == 0 && h.ntcaches == 1 && h.tcaches[0].status == -EUCLEAN &&
	   strstr(h.tcaches[0].problem, "count says 5"), "tcache count that disagrees with its list: %s",
	   h.tcaches[0].problem);
	hs_heap_release(&h);

	build();
	for (int i = 1; i < HS_NBINS; i++)
		put(MAIN + L->ms_bins + (i - 1) * 16, 0x11);
	OK(walk(&h, &err) == -EPROTO && strstr(err.msg, "refusing to guess"), "layout mismatch is refused: %s", err.msg);

	/* Before the first malloc: only next and attached_threads are set. */
	build();
	memset(at(MAIN), 0, L->ms_sizeof);
	put(MAIN + L->ms_next, MAIN);
	OK(walk(&h, &err) == 0 && !h.initialized && h.narenas == 1, "uninitialised malloc: one empty arena");
	struct hs_mallinfo2 mi;
	hs_heap_mallinfo2(&h, &mi);
	OK(mi.ordblks == 1 && mi.arena == 0 && mi.fordblks == 0, "mallinfo2 as after ptmalloc_init");
	hs_heap_release(&h);
}

/* The problem (any arena) whose text holds needle, or NULL. */
static const struct hs_problem *find_problem(const struct hs_heap *h, const char *needle)
{
	for (size_t i = 0; i < h->narenas; i++)
		for (size_t k = 0; k < h->arenas[i].nproblems; k++)
			if (strstr(h->arenas[i].problems[k].msg, needle))
				return &h->arenas[i].problems[k];
	return NULL;
}

static const char *all_problems(const struct hs_heap *h)
{
	static char buf[4096];
	size_t n = 0;
	buf[0] = 0;
	for (size_t i = 0; i < h->narenas; i++)
		for (size_t k = 0; k < h->arenas[i].nproblems && n < sizeof(buf) - 300; k++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "[%s] ", h->arenas[i].problems[k].msg);
	return buf;
}

#define X(v) "0x" #v
static void test_problems(void)
{
	struct hs_heap h;
	struct hs_err err = { 0 };
	walk_flags = HS_WALK_LISTS | HS_WALK_DEEP;
	build();
	OK(walk(&h, &err) == 0 && h.status == 0, "the clean image passes the deep checks: %s", all_problems(&h));
	hs_heap_release(&h);

	/* (a) every corrupt list, not only the first of the arena; (e) the
	 * chunk that holds the bad pointer is named. */
	build();
	put(HEAP + 0x560 + 16, 0x1000);          /* unsorted: fd to unmapped memory */
	put(HEAP + 0x390 + 16, 0xdeadbeef0);     /* small bin 16: fd to unmapped memory */
	OK(walk(&h, &err) == 0 && h.arenas[0].nproblems == 2, "two corrupt lists in one arena: two problems: %s",
	   all_problems(&h));
	OK(find_problem(&h, "chunk 0x555555550390 in small bin 16 has fd 0xdeadbeef0, which is not readable") &&
	   find_problem(&h, "chunk 0x555555550560 in unsorted bin has fd 0x1000"),
	   "each names the chunk holding the bad pointer: %s", all_problems(&h));
	OK(hs_arena_bin_bad(&h.arenas[0], 16) && hs_arena_bin_bad(&h.arenas[0], 1) && !hs_arena_bin_bad(&h.arenas[0], 2),
	   "both lists, and only they, are marked corrupt");
	hs_heap_release(&h);

	build();
	put(hs_bin_at(L, TARENA, 20) + 16, 0xdeadbeef0);   /* the bin's head itself */
	OK(walk(&h, &err) == 0 && find_problem(&h, "small bin 20's head points to 0xdeadbeef0, which is not readable"),
	   "a bad list head is named as the head: %s", all_problems(&h));
	hs_heap_release(&h);

	/* (b) house of botcake: a tcache entry inside a chunk of the unsorted
	 * bin, and a tcache entry that is a fastbin chunk. */
	build();
	chunk(HEAP + 0x600, 0x21);
	uint16_t three = 3;
	memcpy(at(HEAP + 0x10 + L->tc_counts), &three, 2);
	put(HEAP + 0x10 + L->tc_entries, HEAP + 0x610);
	put(HEAP + 0x610, ((HEAP + 0x610) >> 12) ^ (HEAP + 0x500));
	OK(walk(&h, &err) == 0 && h.status == -EUCLEAN &&
	   find_problem(&h, "chunk 0x555555550600 in thread 1234's tcache bin 0 lies inside free chunk 0x555555550560 "
			    "(size 0x3000) in unsorted bin"), "tcache entry inside an unsorted chunk: %s", all_problems(&h));
	OK(hs_arena_bin_bad(&h.arenas[0], 1), "the unsorted bin is marked corrupt");
	hs_heap_release(&h);

	/* (c) large bins: fd_nextsize/bk_nextsize must stay in the bin. */
	build();
	put(THEAP + 0x9d0 + 32, THEAP + 0x8d0);
	OK(walk(&h, &err) == 0 && find_problem(&h, "chunk 0x7f00200009d0 in large bin 108 (size 0x2200) has fd_nextsize "
						  "0x7f00200008d0, which is not a chunk of this bin"),
	   "large bin fd_nextsize out of the bin: %s", all_problems(&h));
	hs_heap_release(&h);
	build();
	put(THEAP + 0x9d0 + 40, 0);
	put(THEAP + 0x9d0 + 32, 0);
	OK(walk(&h, &err) == 0 && find_problem(&h, "has fd_nextsize 0x0, though it is the bin's first chunk"), "large bin's first chunk without nextsize: %s",
	   all_problems(&h));
	hs_heap_release(&h);

	/* (d) a list entry outside every heap: a fake chunk in libc's .data
	 * (house of spirit), readable and of a plausible size. */
	build();
	chunk(LIBC + 0x3000, 0x31);
	put(LIBC + 0x3000 + 16, ((LIBC + 0x3010) >> 12) ^ 0);
	put(HEAP + 0x4c0 + 16, ((HEAP + 0x4c0 + 16) >> 12) ^ (LIBC + 0x3000));
	OK(walk(&h, &err) == 0 && find_problem(&h, "chunk 0x5555555504c0 in fastbin 1 has fd 0x7f0010003000, which lies "
						  "outside arena 0's heaps") && h.arenas[0].fast[1].count == 2,
	   "fastbin entry outside the heaps: named, not counted: %s", all_problems(&h));
	hs_heap_release(&h);
	build();
	chunk(TLS + 0x200, 0x101);
	put(HEAP + 0x390 + 16, TLS + 0x200);
	OK(walk(&h, &err) == 0 && find_problem(&h, "chunk 0x555555550390 in small bin 16 has fd 0x7f0030000200, which lies "
						  "outside arena 0's heaps"), "small-bin entry outside the heaps: %s",
	   all_problems(&h));
	hs_heap_release(&h);
	build();
	chunk(LIBC + 0x3000, 0x21);
	memcpy(at(HEAP + 0x10 + L->tc_counts), &three, 2);
	put(HEAP + 0x520, ((HEAP + 0x520) >> 12) ^ (LIBC + 0x3010));
	OK(walk(&h, &err) == 0 && h.tcaches[0].status && strstr(h.tcaches[0].problem, "outside every heap"),
	   "tcache entry outside every heap: %s", h.tcaches[0].problem);
	hs_heap_release(&h);

	/* (f) a fastbin cycle names the chunk it comes back to and counts
	 * each chunk once: 0x530 -> 0x4c0 -> 0x530 ... */
	walk_flags = HS_WALK_LISTS;
	build();
	put(HEAP + 0x4c0 + 16, ((HEAP + 0x4c0 + 16) >> 12) ^ (HEAP + 0x530));
	OK(walk(&h, &err) == 0 && find_problem(&h, "fastbin 1: cycle: chunk 0x5555555504c0 has fd 0x555555550530, a chunk "
						  "already in the list (2 distinct chunks)"), "fastbin cycle names the repeat: %s",
	   all_problems(&h));
	OK(h.arenas[0].fast[1].count == 2 && h.arenas[0].fast_count == 2 && h.arenas[0].fast_bytes == 0x60 &&
	   h.arenas[0].nfree == 2 + 2, "the repeat is not counted (count %llu, bytes 0x%llx)",
	   (unsigned long long)h.arenas[0].fast[1].count, (unsigned long long)h.arenas[0].fast_bytes);
	hs_heap_release(&h);
	/* a longer cycle that Brent meets late: 6 chunks, the last back to the third */
	build();
	put(MAIN + L->ms_fastbins + 8, 0);
	for (int k = 0; k < 6; k++)
		chunk(HEAP + 0x1000 + 0x30 * k, 0x31);
	for (int k = 5; k >= 0; k--)
		fast_push(MAIN, 1, HEAP + 0x1000 + 0x30 * k);
	put(HEAP + 0x1000 + 0x30 * 5 + 16, ((HEAP + 0x1000 + 0x30 * 5 + 16) >> 12) ^ (HEAP + 0x1000 + 0x30 * 2));
	OK(walk(&h, &err) == 0 && find_problem(&h, "chunk 0x5555555510f0 has fd 0x555555551060") &&
	   h.arenas[0].fast[1].count == 6 && h.arenas[0].fast_bytes == 6 * 0x30,
	   "a cycle met late: 6 distinct chunks counted once: %s (count %llu)", all_problems(&h),
	   (unsigned long long)h.arenas[0].fast[1].count);
	hs_heap_release(&h);
	build();
	put(HEAP + 0x390 + 16, HEAP + 0x390);
	OK(walk(&h, &err) == 0 && find_problem(&h, "small bin 16: cycle: chunk 0x555555550390 has fd 0x555555550390") &&
	   h.arenas[0].bins[16].count == 1 && h.arenas[0].bins[16].total == 0x101 && h.arenas[0].bin_count == 2,
	   "small-bin chunk pointing to itself: counted once: %s", all_problems(&h));
	hs_heap_release(&h);
}

/* Budgets: a hostile arena list of thousands of plausible fake arenas,
 * never looping, back to main_arena at the end; a deadline; a cap on the
 * chunks recorded. */
static void test_budgets(void)
{
	struct hs_heap h;
	struct hs_err err = { 0 };
	walk_flags = HS_WALK_LISTS;
	static unsigned char *fake;
	if (!fake)
		fake = malloc(NFAKE * FSTRIDE);
	OK(fake != NULL, "fake arenas allocated");
	if (!fake)
		return;
	build();
	memset(fake, 0, NFAKE * FSTRIDE);
	segs[4] = (struct seg){ FAKE, NFAKE * FSTRIDE, fake };
	for (int k = 0; k < NFAKE; k++) {
		uint64_t fa = FAKE + FSTRIDE * k;
		arena_init(fa, k + 1 < NFAKE ? fa + FSTRIDE : MAIN, 0x21000, hs_bin_at(L, fa, 1));
	}
	put(TARENA + L->ms_next, FAKE);
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	size_t cap = 2 * 8 * (size_t)(cpus < 1 ? 1 : cpus) + 8;
	int r = walk(&h, &err);
	OK(r == 0 && h.cut && h.status == -EUCLEAN && strstr(h.cut_msg, "arena list") &&
	   strstr(h.cut_msg, "8 per core"), "a %d-arena list is cut: %s", NFAKE + 2, h.cut_msg);
	OK(h.narenas <= cap && h.narenas < NFAKE, "at most %zu arenas walked (walked %zu)", cap, h.narenas);
	OK(h.arenas[0].bins[16].count == 1 && h.arenas[1].bins[108].count == 1, "the real arenas' lists still walked");
	const struct hs_arena *la = &h.arenas[h.narenas - 1];
	bool said = false;
	for (size_t k = 0; k < la->nproblems; k++)
		said |= strstr(la->problems[k].msg, "more than glibc makes") != NULL;
	OK(said, "the last arena walked says why");
	hs_heap_release(&h);

	/* mp_.arena_max set: glibc makes at most that many */
	put(MPA + L->mp_arena_max, 4);
	r = walk(&h, &err);
	OK(r == 0 && h.cut && h.narenas <= 2 * 4 + 8 && strstr(h.cut_msg, "arena_max is 4"), "arena_max 4: %zu arenas: %s",
	   h.narenas, h.cut_msg);
	hs_heap_release(&h);
	segs[4] = (struct seg){ 0, 0, NULL };

	/* a deadline already past */
	build();
	struct hs_walk_limits lim = { 0, 0, 1, 1234 };
	walk_limits = &lim;
	r = walk(&h, &err);
	OK(r == 0 && h.cut && h.status == -EUCLEAN && strstr(h.cut_msg, "1234 ms stop budget"), "deadline: %s", h.cut_msg);
	hs_heap_release(&h);

	/* at most 3 free chunks recorded */
	struct hs_walk_limits few = { 0, 3, 0, 0 };
	walk_limits = &few;
	r = walk(&h, &err);
	OK(r == 0 && h.cut && h.recorded <= 3 && strstr(h.cut_msg, "more than 3 free chunks"), "chunk budget: %s",
	   h.cut_msg);
	hs_heap_release(&h);
	walk_limits = NULL;
}

/* Random corruption: whatever the bytes, the walk ends and never crashes
 * (run under ASan/UBSan in make check). */
static void test_mutations(void)
{
	unsigned seed = 12345;
	int ended = 0;
	const int rounds = 3000;
	for (int i = 0; i < rounds; i++) {
		build();
		int flips = 1 + rand_r(&seed) % 8;
		for (int k = 0; k < flips; k++) {
			int s = rand_r(&seed) % 3;
			size_t off = ((size_t)rand_r(&seed) % (segs[s].len / 8)) * 8;
			uint64_t v;
			switch (rand_r(&seed) % 4) {
			case 0: v = (uint64_t)rand_r(&seed) << 32 | rand_r(&seed); break;
			case 1: v = segs[rand_r(&seed) % 3].addr + (rand_r(&seed) % 0x10000); break;
			case 2: v = 0; break;
			default: v = get(segs[s].addr + off) ^ (1ull << (rand_r(&seed) % 64)); break;
			}
			memcpy(segs[s].b + off, &v, 8);
		}
		struct hs_heap h;
		struct hs_err err = { 0 };
		walk(&h, &err);
		int fd = -1;
		hs_heap_release(&h);
		(void)fd;
		ended++;
	}
	OK(ended == rounds, "%d randomly corrupted images walked to an end", ended);
}

int main(void)
{
	L = hs_layout_for_version(2, 36);
	OK(L && L->ms_sizeof == 0x898 && L->mp_sizeof == 0x88 && L->hi_sizeof == 0x30, "2.36 layout row");
	memset(&lc, 0, sizeof(lc));
	lc.layout = *L;
	lc.have_layout = true;
	lc.major = 2;
	lc.minor = 36;
	strcpy(lc.version, "2.36");
	lc.main_arena = MAIN;
	lc.mp = MPA;
	lc.tls_tcache = lc.tls_thread_arena = -1;
	lc.tpoff = slots;
	lc.ntpoff = 2;
	test_good();
	test_corrupt();
	test_problems();
	test_budgets();
	walk_flags = HS_WALK_LISTS;
	test_mutations();
	return tap_done();
}
