#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "radix.h"
#include "proc.h"

#define MAX_HEAPS    65536
#define PAGE         4096u

static uint64_t rd64(const unsigned char *b, int off)
{
	uint64_t v;
	memcpy(&v, b + off, 8);
	return v;
}

static int32_t rd32(const unsigned char *b, int off)
{
	int32_t v;
	memcpy(&v, b + off, 4);
	return v;
}

static void vcorrupt(struct hs_arena *a, int list, int bin, uint64_t chunk, uint64_t addr, const char *fmt,
		     va_list ap)
{
	if (list == HS_PLIST_FAST && bin >= 0 && bin < 16)
		a->bad_fast |= (uint16_t)(1u << bin);
	else if (list == HS_PLIST_BIN && bin > 0 && bin < 128)
		a->bad_bins[bin >> 6] |= 1ull << (bin & 63);
	char msg[sizeof(a->problems->msg)];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!a->status) {
		a->status = -EUCLEAN;
		a->bad_addr = addr;
		snprintf(a->problem, sizeof(a->problem), "%s", msg);
	}
	if (a->nproblems >= HS_MAX_PROBLEMS) {
		a->problems_dropped++;
		return;
	}
	if (!a->problems && !(a->problems = calloc(HS_MAX_PROBLEMS, sizeof(*a->problems)))) {
		a->problems_dropped++;
		return;
	}
	struct hs_problem *pr = &a->problems[a->nproblems++];
	pr->addr = addr;
	pr->chunk = chunk;
	pr->list = (uint8_t)list;
	pr->bin = (uint8_t)bin;
	memcpy(pr->msg, msg, sizeof(msg));
}

void hs_arena_corrupt(struct hs_arena *a, uint64_t addr, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vcorrupt(a, HS_PLIST_NONE, 0, 0, addr, fmt, ap);
	va_end(ap);
}

/* A problem in one list: the list is marked corrupt, the chunk holding the
 * bad pointer named (0 for the list head). */
static void list_corrupt(struct hs_arena *a, int list, int bin, uint64_t chunk, uint64_t addr, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void list_corrupt(struct hs_arena *a, int list, int bin, uint64_t chunk, uint64_t addr, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vcorrupt(a, list, bin, chunk, addr, fmt, ap);
	va_end(ap);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

/* A budget ran out: the walk ends here, and says what it cut. */
static void cut(struct hs_heap *h, struct hs_arena *a, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cut(struct hs_heap *h, struct hs_arena *a, const char *fmt, ...)
{
	if (h->cut)
		return;
	h->cut = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->cut_msg, sizeof(h->cut_msg), fmt, ap);
	va_end(ap);
	if (a)
		hs_arena_corrupt(a, 0, "walk cut short: %s", h->cut_msg);
}

/* Past the deadline: cut, naming where (checked every 1024 steps). */
static bool out_of_time(struct hs_heap *h, struct hs_arena *a, const char *where, unsigned long step)
{
	if (h->cut)
		return true;
	if (!h->limits.deadline_us || (step & 1023) || now_us() <= h->limits.deadline_us)
		return false;
	if (a)
		cut(h, a, "the walk used up its %u ms stop budget in arena %d's %s; the rest was not walked",
		    h->limits.budget_ms, a->index, where);
	else
		cut(h, a, "the walk used up its %u ms stop budget in the %s; the rest was not walked",
		    h->limits.budget_ms, where);
	return true;
}

static const char *list_name(int list, int i, char *buf, size_t n)
{
	if (list == HS_PLIST_FAST)
		snprintf(buf, n, "fastbin %d", i);
	else if (i == 1)
		snprintf(buf, n, "unsorted bin");
	else
		snprintf(buf, n, "%s bin %d", i < 64 ? "small" : "large", i);
	return buf;
}

/* Where a bad pointer came from: "chunk 0x.. in small bin 33 has fd 0x.."
 * or, for the first one, "small bin 33's head points to 0x..". */
static const char *holder(int list, int i, uint64_t prev, uint64_t p, char *buf, size_t n)
{
	char ln[32];
	list_name(list, i, ln, sizeof(ln));
	if (prev)
		snprintf(buf, n, "chunk 0x%" PRIx64 " in %s has fd 0x%" PRIx64, prev, ln, p);
	else
		snprintf(buf, n, "%s's head points to 0x%" PRIx64, ln, p);
	return buf;
}

/* 1: [p, p+cs) lies in one of the arena's heaps; 0: in none; -1: not
 * known (a main arena whose sbrk heap is not one known region). */
static int in_arena_heaps(const struct hs_arena *a, uint64_t p, uint64_t cs)
{
	if (!a->nheaps || (a->main && !a->contiguous))
		return -1;
	for (size_t k = 0; k < a->nheaps; k++) {
		const struct hs_heapseg *s = &a->heaps[k];
		uint64_t end = s->addr + (a->main ? s->reserved : s->mprotect_size);
		if (p >= s->addr && p < end && cs <= end - p)
			return 1;
	}
	return 0;
}

static int in_known_heap(const struct hs_heap *h, uint64_t p, uint64_t cs)
{
	int unknown = 0;
	for (size_t i = 0; i < h->narenas; i++) {
		int r = in_arena_heaps(&h->arenas[i], p, cs);
		if (r == 1)
			return 1;
		unknown |= r < 0;
	}
	return unknown ? -1 : 0;
}

/* Brent's cycle detection: call with the next node; returns true when the
 * list has come back to a node seen before. */
struct cycle {
	uint64_t saved;
	uint64_t power, lam;
};

static bool cycle_step(struct cycle *c, uint64_t node)
{
	if (node == c->saved)
		return true;
	if (++c->lam == c->power) {
		c->saved = node;
		c->power *= 2;
		c->lam = 0;
	}
	return false;
}

static void cycle_init(struct cycle *c, uint64_t start)
{
	c->saved = start;
	c->power = 1;
	c->lam = 0;
}

static uint64_t reveal(const struct hs_layout *l, uint64_t pos, uint64_t val)
{
	return l->safe_linking ? (pos >> 12) ^ val : val;
}

static int add_free(struct hs_heap *h, struct hs_arena *a, uint64_t addr, uint64_t size, uint8_t kind, int bin)
{
	if (h->recorded >= h->limits.max_chunks) {
		char ln[32];
		cut(h, a, "more than %" PRIu64 " free chunks recorded, the budget, in arena %d's %s; the rest was not "
		    "walked", h->limits.max_chunks, a->index, list_name(kind == HS_FREE_FAST ? HS_PLIST_FAST : HS_PLIST_BIN,
									 bin, ln, sizeof(ln)));
		return -ETIME;
	}
	if (a->nfree == a->capfree) {
		/* Grown with mremap, which moves pages instead of copying them:
		 * this runs while the target is stopped, for every free chunk. */
		size_t ocap = a->capfree, ncap = ocap ? ocap * 2 : 4096;
		void *nf = ocap ? mremap(a->free, ocap * sizeof(*a->free), ncap * sizeof(*a->free), MREMAP_MAYMOVE)
				: mmap(NULL, ncap * sizeof(*a->free), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				       -1, 0);
		if (nf == MAP_FAILED)
			return -ENOMEM;
		a->free = nf;
		a->capfree = ncap;
	}
	a->free[a->nfree++] = (struct hs_free){ addr, size, kind, (uint8_t)bin };
	h->recorded++;
	return 0;
}

/* A size no chunk in this arena can have. */
static bool bogus_size(const struct hs_arena *a, uint64_t size)
{
	uint64_t cs = HS_CHUNKSIZE(size);
	return cs < HS_MINSIZE || (cs & (HS_MALLOC_ALIGN - 1)) || (a->system_mem && cs > a->system_mem);
}

/* The next chunk of a list, as the walk read it (0 when unreadable). */
static uint64_t list_next(struct hs_mem *mem, const struct hs_layout *l, bool fast, uint64_t p)
{
	uint64_t v;
	if (hs_mem_u64(mem, p + 16, &v) < 0)
		return 0;
	return fast ? reveal(l, p + 16, v) : v;
}

/* Brent found a cycle of length lam in the list from head: find the chunk
 * it comes back to (rep), the one whose fd points there (last), and how
 * many chunks the list holds before the repeat (mu + lam).  Bounded by
 * the walked chunks. */
static bool cycle_locate(struct hs_mem *mem, const struct hs_layout *l, bool fast, uint64_t head, uint64_t lam,
			 uint64_t walked, uint64_t *rep, uint64_t *last, uint64_t *distinct)
{
	uint64_t x = head, y = head, mu = 0;
	for (uint64_t k = 0; k < lam; k++)
		if (!(y = list_next(mem, l, fast, y)))
			return false;
	while (x != y) {
		if (++mu > walked || !(x = list_next(mem, l, fast, x)) || !(y = list_next(mem, l, fast, y)))
			return false;
	}
	*rep = x;
	for (uint64_t k = 1; k < lam; k++)
		if (!(x = list_next(mem, l, fast, x)))
			return false;
	*last = x;
	*distinct = mu + lam;
	return *distinct <= walked;
}

/* Drop the entries of one list past its first keep from a->free (a cycle
 * walked them twice); returns how many, and their bytes and raw sizes. */
static uint64_t drop_repeats(struct hs_mem *mem, struct hs_arena *a, size_t from, uint8_t kind, int bin, uint64_t keep,
			     uint64_t *bytes, uint64_t *raw)
{
	uint64_t seen = 0, dropped = 0;
	size_t o = from;
	*bytes = *raw = 0;
	for (size_t k = from; k < a->nfree; k++) {
		struct hs_free *f = &a->free[k];
		if (f->kind == kind && f->bin == bin && seen++ >= keep) {
			uint64_t r;
			dropped++;
			*bytes += f->size;
			*raw += hs_mem_u64(mem, f->addr + 8, &r) == 0 ? r : f->size;
			continue;
		}
		a->free[o++] = *f;
	}
	a->nfree = o;
	return dropped;
}

static bool gather_headers(struct hs_mem *mem, struct hs_heap *h, struct hs_arena *a, const uint64_t *next, size_t n);

static int walk_fastbins(struct hs_mem *mem, struct hs_heap *h, const unsigned char *st, struct hs_arena *a)
{
	const struct hs_layout *l = h->l;
	char where[128];
	for (int i = 0; i < l->nfastbins; i++) {
		uint64_t head = rd64(st, l->ms_fastbins + 8 * i), p = head, prev = 0, first_size = 0;
		struct hs_binstat *bs = &a->fast[i];
		struct cycle cy;
		size_t from = a->nfree;
		cycle_init(&cy, p);
		while (p) {
			uint64_t hdr[3];   /* prev_size, size, fd */
			if (out_of_time(h, a, "fastbins", (unsigned long)bs->count + 1))
				return -ETIME;
			if (p & (HS_MALLOC_ALIGN - 1)) {
				list_corrupt(a, HS_PLIST_FAST, i, prev, p, "%s, which is misaligned",
					     holder(HS_PLIST_FAST, i, prev, p, where, sizeof(where)));
				break;
			}
			/* One line, not a page (nor, after a walk of the heap
			 * from end to end, a whole region). */
			if (!a->bulk_read)
				gather_headers(mem, h, a, &p, 1);
			if (a->plan_whole)
				return 0;
			if (hs_mem_read(mem, p, hdr, sizeof(hdr)) < 0) {
				list_corrupt(a, HS_PLIST_FAST, i, prev, p, "%s, which is not readable",
					     holder(HS_PLIST_FAST, i, prev, p, where, sizeof(where)));
				break;
			}
			if (bogus_size(a, hdr[1])) {
				list_corrupt(a, HS_PLIST_FAST, i, prev, p, "%s, a chunk with bogus size 0x%" PRIx64,
					     holder(HS_PLIST_FAST, i, prev, p, where, sizeof(where)), hdr[1]);
				break;
			}
			if (in_arena_heaps(a, p, HS_CHUNKSIZE(hdr[1])) == 0) {
				list_corrupt(a, HS_PLIST_FAST, i, prev, p, "%s, which lies outside arena %d's heaps",
					     holder(HS_PLIST_FAST, i, prev, p, where, sizeof(where)), a->index);
				break;
			}
			if ((h->flags & HS_WALK_DEEP) && HS_CHUNKSIZE(hdr[1]) != (uint64_t)(i + 2) * 16) {
				list_corrupt(a, HS_PLIST_FAST, i, p, p, "chunk 0x%" PRIx64 " in fastbin %d has size 0x%" PRIx64
					     ", not 0x%x", p, i, HS_CHUNKSIZE(hdr[1]), (i + 2) * 16);
				break;
			}
			if (!bs->count)
				first_size = HS_CHUNKSIZE(hdr[1]);
			bs->count++;
			a->fast_bytes += HS_CHUNKSIZE(hdr[1]);
			int r = add_free(h, a, p, HS_CHUNKSIZE(hdr[1]), HS_FREE_FAST, i);
			if (r < 0)
				return r;
			prev = p;
			p = reveal(l, p + 16, hdr[2]);
			if (p && cycle_step(&cy, p)) {
				/* Name the chunk the list comes back to, and count
				 * each chunk once. */
				uint64_t rep, last, keep, bytes, raw;
				if (cycle_locate(mem, l, true, head, cy.lam + 1, bs->count, &rep, &last, &keep)) {
					uint64_t n = drop_repeats(mem, a, from, HS_FREE_FAST, i, keep, &bytes, &raw);
					bs->count -= n;
					a->fast_bytes -= bytes;
					h->recorded -= n;
					list_corrupt(a, HS_PLIST_FAST, i, last, rep, "fastbin %d: cycle: chunk 0x%" PRIx64
						     " has fd 0x%" PRIx64 ", a chunk already in the list (%" PRIu64 " distinct chunks)",
						     i, last, rep, keep);
				} else {
					list_corrupt(a, HS_PLIST_FAST, i, prev, p, "fastbin %d: cycle at chunk 0x%" PRIx64, i, p);
				}
				break;
			}
		}
		if (bs->count) {
			bs->from = first_size - (HS_MALLOC_ALIGN - 1);
			bs->to = first_size;
			bs->total = bs->count * first_size;
			a->fast_count += bs->count;
			a->fast_bytes_mi += bs->total;
		}
	}
	return 0;
}

/* All 127 bins are walked side by side, one chunk of each in turn, with
 * the next chunk of each list prefetched: the lists of a big heap jump
 * across megabytes, and walking them one after another would wait on a
 * cache miss per chunk. */
struct bin_cursor {
	uint64_t p, bin, prev, head, walked;
	struct cycle cy;
	int i;
};

/* Deep checks of a chunk in bin i (hdr: prev_size, size, fd, bk): the
 * checks glibc's unlink and malloc_consolidate make, named. */
static const char *deep_check(struct hs_mem *mem, int i, uint64_t p, const uint64_t *hdr, uint64_t prev)
{
	uint64_t cs = HS_CHUNKSIZE(hdr[1]), next[2];
	if (i > 1 && hs_bin_index(cs) != i)
		return "size does not belong in this bin";
	if (hdr[3] != prev)
		return "bk does not point back to the previous chunk";
	if (hs_mem_read(mem, p + cs, next, sizeof(next)) < 0)
		return "next chunk is not readable";
	if (next[0] != cs)
		return "next chunk's prev_size does not match the size";
	if (next[1] & HS_PREV_INUSE)
		return "next chunk says this one is in use";
	return NULL;
}

/* A large-bin chunk's skip-list links, kept for the check after the walk. */
struct lrec {
	uint64_t addr, size, fdn, bkn;
	int bin;
};

static int cmp_lrec(const void *x, const void *y)
{
	const struct lrec *a = x, *b = y;
	if (a->bin != b->bin)
		return a->bin - b->bin;
	return (a->addr > b->addr) - (a->addr < b->addr);
}

static const struct lrec *find_lrec(const struct lrec *v, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].addr == addr)
			return &v[mid];
		if (v[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Large bins keep their chunks sorted by size, largest first, and the
 * first chunk of each size on a second circular list, fd_nextsize to the
 * next smaller size (the smallest back to the largest) and bk_nextsize
 * back (malloc.c, "Bins"); the other chunks have both NULL.  Check that
 * each link lands on a chunk of the same bin, links back, and goes the
 * right way in size.  The first problem of each bin is named. */
static void check_nextsize(struct hs_arena *a, const struct hs_layout *l, const unsigned char *st, struct lrec *v,
			   size_t n)
{
	qsort(v, n, sizeof(*v), cmp_lrec);
	for (size_t s = 0, e; s < n; s = e) {
		int i = v[s].bin;
		for (e = s; e < n && v[e].bin == i; e++)
			;
		if (hs_arena_bin_bad(a, i))
			continue;       /* walked only in part: links may lead past it */
		uint64_t first = rd64(st, l->ms_bins + (i - 1) * 16);
		for (size_t k = s; k < e; k++) {
			const struct lrec *r = &v[k], *f, *b;
			const char *field = "fd_nextsize", *why = NULL;
			uint64_t to = r->fdn;
			if (!r->fdn && !r->bkn) {
				if (r->addr == first)
					why = "though it is the bin's first chunk";
			} else if (!(f = find_lrec(v + s, e - s, r->fdn))) {
				why = "which is not a chunk of this bin";
			} else if (!(b = find_lrec(v + s, e - s, r->bkn))) {
				field = "bk_nextsize";
				to = r->bkn;
				why = "which is not a chunk of this bin";
			} else if (f->bkn != r->addr) {
				why = "whose bk_nextsize does not point back";
			} else if (b->fdn != r->addr) {
				field = "bk_nextsize";
				to = r->bkn;
				why = "whose fd_nextsize does not point back";
			} else if (f->addr != first && HS_CHUNKSIZE(f->size) >= HS_CHUNKSIZE(r->size)) {
				why = "a chunk no smaller than itself";
			}
			if (why) {
				list_corrupt(a, HS_PLIST_BIN, i, r->addr, to, "chunk 0x%" PRIx64 " in large bin %d (size 0x%" PRIx64
					     ") has %s 0x%" PRIx64 ", %s", r->addr, i, HS_CHUNKSIZE(r->size), field, to, why);
				break;
			}
		}
	}
}

/* Reading one chunk header alone (gathered with the other lists' next
 * ones, one call per round) costs about what copying GATHER_BYTES of the
 * heap in bulk does.  An arena whose bins hold more than one chunk per
 * GATHER_BYTES of its memory is dense: once it has shown so, the rest of
 * its lists is read through the page cache, which reads dense memory
 * whole.  Either way the walk costs at most twice the cheaper one. */
#define GATHER_BYTES 4096u

bool hs_heap_same_figures(const struct hs_heap *a, const struct hs_heap *b)
{
	if (a->initialized != b->initialized || a->narenas != b->narenas || a->ntcaches != b->ntcaches ||
	    a->n_mmaps != b->n_mmaps || a->mmapped_mem != b->mmapped_mem || a->status != b->status)
		return false;
	for (size_t i = 0; i < a->narenas; i++) {
		const struct hs_arena *x = &a->arenas[i], *y = &b->arenas[i];
		if (x->addr != y->addr || x->top != y->top || x->top_size != y->top_size ||
		    x->system_mem != y->system_mem || x->nheaps != y->nheaps || x->fast_count != y->fast_count ||
		    x->fast_bytes != y->fast_bytes || x->bin_count != y->bin_count || x->bin_bytes != y->bin_bytes ||
		    x->tcache_count != y->tcache_count || x->tcache_bytes != y->tcache_bytes ||
		    x->nproblems != y->nproblems || x->status != y->status)
			return false;
		for (size_t k = 0; k < x->nheaps; k++)
			if (x->heaps[k].addr != y->heaps[k].addr || x->heaps[k].size != y->heaps[k].size)
				return false;
		if (memcmp(x->bins, y->bins, sizeof(x->bins)) || memcmp(x->fast, y->fast, sizeof(x->fast)))
			return false;
	}
	for (size_t i = 0; i < a->ntcaches; i++)
		if (a->tcaches[i].addr != b->tcaches[i].addr || a->tcaches[i].count != b->tcaches[i].count ||
		    a->tcaches[i].bytes != b->tcaches[i].bytes)
			return false;
	return true;
}

const char *hs_heap_read_mode(const struct hs_heap *h)
{
	size_t bulk = 0, lists = 0;
	if (!(h->flags & HS_WALK_LISTS) || !h->initialized)
		return "none";
	if (h->running)
		return "running";
	if (h->preloaded)
		return "preload";
	for (size_t i = 0; i < h->narenas; i++) {
		if (h->arenas[i].bulk_read)
			bulk++;
		else if (h->arenas[i].bin_count)
			lists++;
	}
	return lists && bulk ? "mixed" : lists ? "lists" : "bulk";
}

/* Gather the headers at next[0..n) for arena a, unless it has shown itself
 * dense (then say so to the cache, once).  False when a reads whole pages. */
static bool gather_headers(struct hs_mem *mem, struct hs_heap *h, struct hs_arena *a, const uint64_t *next, size_t n)
{
	if (!mem->gather || (h->flags & HS_WALK_BULK)) {
		a->bulk_read = true;
		return false;
	}
	if (a->bulk_read)
		return false;
	/* The arenas of one program are alike: after one turned out dense,
	 * the next ones are read in whole pages from the start. */
	uint64_t budget = a->system_mem / GATHER_BYTES;
	/* A plan, whose wrong guess would cost the pause, still samples
	 * each arena (an eighth of the lines that prove it dense). */
	if (h->dense_arenas)
		budget = h->flags & HS_WALK_PLAN ? budget / 8 : 0;
	if (a->gathered + n > budget && !(h->flags & HS_WALK_GATHER)) {
		a->bulk_read = true;      /* dense: read its pages whole */
		/* a plan stops here: the arena's heaps are read whole anyway */
		a->plan_whole = h->flags & HS_WALK_PLAN;
		h->dense_arenas++;
		hs_mem_gather(mem, NULL, 0);
		return false;
	}
	int g = hs_mem_gather(mem, next, n);
	if (g > 0) {
		a->gathered += (uint64_t)g;
		h->gathered += (uint64_t)g;
	}
	return true;
}

static int walk_bins(struct hs_mem *mem, struct hs_heap *h, const unsigned char *st, struct hs_arena *a)
{
	const struct hs_layout *l = h->l;
	struct bin_cursor cur[HS_NBINS];
	struct lrec *lv = NULL;
	size_t nl = 0, capl = 0;
	bool deep = h->flags & HS_WALK_DEEP;
	unsigned long steps = 0;
	char where[128];
	int n = 0, ret = 0;
	if (a->plan_whole)
		return 0;
	for (int i = 1; i < HS_NBINS; i++) {
		uint64_t p = rd64(st, l->ms_bins + (i - 1) * 16), bin = hs_bin_at(l, a->addr, i);
		if (!p)
			continue;       /* not initialised yet: malloc_info skips it too */
		if (p == bin)
			continue;       /* empty */
		a->bins[i].from = UINT64_MAX;
		cur[n].p = p;
		cur[n].bin = bin;
		cur[n].prev = bin;
		cur[n].head = p;
		cur[n].walked = 0;
		cur[n].i = i;
		cycle_init(&cur[n].cy, p);
		n++;
	}
	while (n > 0) {
		if (!a->bulk_read) {
			uint64_t next[HS_NBINS];
			for (int k = 0; k < n; k++)
				next[k] = cur[k].p;
			/* Deep checks also read the chunk after each: its header
			 * in a second batch, from the sizes just gathered. */
			bool g = gather_headers(mem, h, a, next, (size_t)n);
			if (a->plan_whole)
				goto out;       /* its heaps are read whole */
			if (g && deep) {
				size_t m = 0;
				for (int k = 0; k < n; k++) {
					uint64_t sz;
					if (!(cur[k].p & (HS_MALLOC_ALIGN - 1)) && hs_mem_u64(mem, cur[k].p + 8, &sz) == 0 &&
					    !bogus_size(a, sz))
						next[m++] = cur[k].p + HS_CHUNKSIZE(sz);
				}
				if (m)
					gather_headers(mem, h, a, next, m);
			}
		}
		for (int k = 0; k < n;) {
			struct bin_cursor *c = &cur[k];
			struct hs_binstat *bs = &a->bins[c->i];
			uint64_t p = c->p, hdr[6] = { 0 }, held = c->prev == c->bin ? 0 : c->prev;
			bool large = c->i >= 64;
			const char *bad = NULL;
			if (out_of_time(h, a, "bins", ++steps)) {
				ret = -ETIME;
				goto out;
			}
			if (p & (HS_MALLOC_ALIGN - 1))
				bad = "misaligned";
			else if (hs_mem_read(mem, p, hdr, (deep && large ? 6 : 4) * sizeof(*hdr)) < 0)
				bad = "not readable";
			else if (bogus_size(a, hdr[1]))
				bad = "bogus size";
			else if (in_arena_heaps(a, p, HS_CHUNKSIZE(hdr[1])) == 0)
				bad = "outside";
			if (bad) {
				holder(HS_PLIST_BIN, c->i, held, p, where, sizeof(where));
				if (bad[0] == 'b')
					list_corrupt(a, HS_PLIST_BIN, c->i, held, p, "%s, a chunk with bogus size 0x%" PRIx64, where,
						     hdr[1]);
				else if (bad[0] == 'o')
					list_corrupt(a, HS_PLIST_BIN, c->i, held, p, "%s, which lies outside arena %d's heaps",
						     where, a->index);
				else
					list_corrupt(a, HS_PLIST_BIN, c->i, held, p, "%s, which is %s", where, bad);
				*c = cur[--n];
				continue;
			}
			if (deep && (bad = deep_check(mem, c->i, p, hdr, c->prev))) {
				char ln[32];
				list_corrupt(a, HS_PLIST_BIN, c->i, p, p, "chunk 0x%" PRIx64 " in %s (size 0x%" PRIx64 "): %s", p,
					     list_name(HS_PLIST_BIN, c->i, ln, sizeof(ln)), hdr[1], bad);
				*c = cur[--n];
				continue;
			}
			c->prev = p;
			c->walked++;
			bs->count++;
			bs->total += hdr[1];
			if (hdr[1] < bs->from)
				bs->from = hdr[1];
			if (hdr[1] > bs->to)
				bs->to = hdr[1];
			a->bin_count++;
			a->bin_bytes += HS_CHUNKSIZE(hdr[1]);
			if ((ret = add_free(h, a, p, HS_CHUNKSIZE(hdr[1]), HS_FREE_BIN, c->i)) < 0)
				goto out;
			if (deep && large) {
				if (nl == capl) {
					size_t nc = capl ? capl * 2 : 64;
					struct lrec *nv = realloc(lv, nc * sizeof(*nv));
					if (!nv) {
						ret = -ENOMEM;
						goto out;
					}
					lv = nv;
					capl = nc;
				}
				lv[nl++] = (struct lrec){ p, hdr[1], hdr[4], hdr[5], c->i };
			}
			c->p = hdr[2];
			if (c->p == c->bin) {
				*c = cur[--n];      /* back at the bin: done */
				continue;
			}
			if (cycle_step(&c->cy, c->p)) {
				uint64_t rep, last, keep, bytes, raw;
				char ln[32];
				list_name(HS_PLIST_BIN, c->i, ln, sizeof(ln));
				if (cycle_locate(mem, l, false, c->head, c->cy.lam + 1, c->walked, &rep, &last, &keep)) {
					uint64_t d = drop_repeats(mem, a, 0, HS_FREE_BIN, c->i, keep, &bytes, &raw);
					bs->count -= d;
					bs->total -= raw;
					a->bin_count -= d;
					a->bin_bytes -= bytes;
					h->recorded -= d;
					list_corrupt(a, HS_PLIST_BIN, c->i, last, rep, "%s: cycle: chunk 0x%" PRIx64 " has fd 0x%" PRIx64
						     ", a chunk already in the list (%" PRIu64 " distinct chunks)", ln, last, rep, keep);
				} else {
					list_corrupt(a, HS_PLIST_BIN, c->i, p, c->p, "%s: cycle at chunk 0x%" PRIx64, ln, c->p);
				}
				*c = cur[--n];
				continue;
			}
			hs_mem_prefetch(mem, c->p + 8);
			k++;
		}
	}
	if (nl)
		check_nextsize(a, l, st, lv, nl);
out:
	free(lv);
	for (int i = 1; i < HS_NBINS; i++)
		if (!a->bins[i].count)
			a->bins[i].from = 0;
	return ret;
}

static int walk_heaps(struct hs_mem *mem, struct hs_heap *h, struct hs_arena *a)
{
	const struct hs_layout *l = h->l;
	if (a->main) {
		/* Contiguous (the usual case): one sbrk region from sbrk_base to
		 * the end of top.  When brk could not grow, glibc falls back to
		 * mmap and marks the arena NONCONTIGUOUS (flags & 2): its pieces
		 * are not linked, so only top's own region is known. */
		uint64_t start = h->sbrk_base & ~(uint64_t)(PAGE - 1), end = a->top + a->top_size;
		a->contiguous = !(a->flags & 2) && h->sbrk_base && start <= a->top && end > start &&
				end - start <= a->system_mem + (64u << 20);
		if (!a->contiguous)
			start = a->top & ~(uint64_t)(PAGE - 1);
		if (!a->top_size || end <= start)
			return 0;
		a->heaps = calloc(1, sizeof(*a->heaps));
		if (!a->heaps)
			return -ENOMEM;
		a->nheaps = 1;
		uint64_t len = (end - start + PAGE - 1) & ~(uint64_t)(PAGE - 1);
		a->heaps[0] = (struct hs_heapseg){ start, a->contiguous ? a->system_mem : a->top_size, len, len, 0 };
		return 0;
	}
	uint64_t hp = a->top & ~(h->heap_max - 1);
	size_t cap = 0;
	struct cycle cy;
	cycle_init(&cy, hp);
	while (hp) {
		unsigned char hi[64];
		if (out_of_time(h, a, "heap list", a->nheaps + 1))
			break;
		if (a->nheaps >= MAX_HEAPS) {
			hs_arena_corrupt(a, hp, "more than %d heaps: heap list corrupt", MAX_HEAPS);
			break;
		}
		if (hs_mem_read(mem, hp, hi, l->hi_sizeof) < 0) {
			hs_arena_corrupt(a, hp, "heap_info at 0x%" PRIx64 " is not readable", hp);
			break;
		}
		if (rd64(hi, l->hi_ar_ptr) != a->addr) {
			hs_arena_corrupt(a, hp, "heap_info at 0x%" PRIx64 " belongs to arena 0x%" PRIx64 ", not 0x%" PRIx64, hp,
				rd64(hi, l->hi_ar_ptr), a->addr);
			break;
		}
		if (a->nheaps == cap) {
			cap = cap ? cap * 2 : 4;
			struct hs_heapseg *nh = realloc(a->heaps, cap * sizeof(*nh));
			if (!nh)
				return -ENOMEM;
			a->heaps = nh;
		}
		a->heaps[a->nheaps++] = (struct hs_heapseg){
			hp, rd64(hi, l->hi_size), rd64(hi, l->hi_mprotect_size), h->heap_max, 0,
		};
		hp = rd64(hi, l->hi_prev);
		if (hp && ((hp & (h->heap_max - 1)) || cycle_step(&cy, hp))) {
			hs_arena_corrupt(a, hp, "heap list: bad or repeated heap 0x%" PRIx64, hp);
			break;
		}
	}
	return 0;
}

static int read_arena(struct hs_mem *mem, struct hs_heap *h, struct hs_arena *a, unsigned char *st,
		      struct hs_err *err)
{
	const struct hs_layout *l = h->l;
	a->mutex = rd32(st, l->ms_mutex);
	a->flags = rd32(st, l->ms_flags);
	a->top = rd64(st, l->ms_top);
	a->next = rd64(st, l->ms_next);
	a->system_mem = rd64(st, l->ms_system_mem);
	a->max_system_mem = rd64(st, l->ms_max_system_mem);
	a->attached_threads = l->ms_attached_threads == HS_NO_FIELD ? 0 : rd64(st, l->ms_attached_threads);
	if (a->main && !a->top) {
		/* Before ptmalloc_init: glibc's own reports would first run it,
		 * which leaves top = initial_top, a chunk of size 0. */
		h->initialized = false;
		return 0;
	}
	h->initialized = true;
	if (a->top == hs_bin_at(l, a->addr, 1)) {
		a->top_size = 0;        /* initial_top: the arena has no memory yet */
	} else {
		uint64_t sz;
		if ((a->top & (HS_MALLOC_ALIGN - 1)) || hs_mem_u64(mem, a->top + 8, &sz) < 0)
			hs_arena_corrupt(a, a->top, "top chunk 0x%" PRIx64 " is not readable", a->top);
		else
			a->top_size = HS_CHUNKSIZE(sz);
		/* Larger than all the arena has ever had (house of force's top).
		 * Not system_mem alone: systrim and heap_trim lower it before
		 * they shrink top (a window in which a stopped thread may be,
		 * without the lock in a single-threaded process); growth raises
		 * it before top grows.  Not checked while a thread holds the
		 * lock: its numbers may be half-updated. */
		uint64_t most = a->system_mem > a->max_system_mem ? a->system_mem : a->max_system_mem;
		if (!a->mutex && a->top_size > most) {
			hs_arena_corrupt(a, a->top, "top chunk 0x%" PRIx64 " has size 0x%" PRIx64 ", more than the arena's "
					 "0x%" PRIx64 " bytes", a->top, a->top_size, most);
			a->top_size = 0;
		}
	}
	if (walk_heaps(mem, h, a) < 0)
		return hs_err_set(err, ENOMEM, "out of memory");
	/* A thread arena's top ends where its newest heap's used part does,
	 * except inside malloc, under the arena's lock: grow_heap and
	 * shrink_heap set the heap's size before sysmalloc or heap_trim set
	 * top's, and heap_trim points top at the previous heap's last chunk
	 * before it sets that chunk's size.  A locked arena is not checked. */
	if (!a->main && !a->mutex && a->nheaps && a->top_size && !a->status &&
	    a->top + a->top_size != a->heaps[0].addr + a->heaps[0].size)
		hs_arena_corrupt(a, a->top, "top chunk 0x%" PRIx64 " ends at 0x%" PRIx64 ", not at its heap's end 0x%" PRIx64,
				 a->top, a->top + a->top_size, a->heaps[0].addr + a->heaps[0].size);
	return 0;
}

/* The table row (or DWARF layout) must describe the memory: main_arena's
 * bins are self-pointing when empty, and 16-aligned otherwise. */
static int validate(const struct hs_layout *l, uint64_t main_arena, const unsigned char *st, const char *version,
		    struct hs_err *err)
{
	if (!rd64(st, l->ms_top))
		return 0;       /* not initialised: nothing to check yet */
	int selfp = 0;
	for (int i = 1; i < HS_NBINS; i++) {
		uint64_t fd = rd64(st, l->ms_bins + (i - 1) * 16), bk = rd64(st, l->ms_bins + (i - 1) * 16 + 8);
		uint64_t b = hs_bin_at(l, main_arena, i);
		if (fd == b && bk == b)
			selfp++;
		else if (!fd || !bk || (fd & 15) || (bk & 15))
			return hs_err_set(err, EPROTO,
					  "main_arena at 0x%" PRIx64 " does not match the glibc %s layout (bin %d "
					  "fd 0x%" PRIx64 " bk 0x%" PRIx64 "): refusing to guess", main_arena, version, i,
					  fd, bk);
	}
	if (selfp == 0)
		return hs_err_set(err, EPROTO,
				  "main_arena at 0x%" PRIx64 " does not match the glibc %s layout (no empty bin): "
				  "refusing to guess", main_arena, version);
	return 0;
}

static void find_thread(struct hs_heap *h, struct hs_mem *mem, struct hs_tcache *t);
static void walk_tcache(struct hs_heap *h, struct hs_mem *mem, struct hs_tcache *t);

static void check_tcache_overlap(struct hs_heap *h, struct hs_arena *a);

static int walk(struct hs_mem *mem, const struct hs_libc *libc, const struct hs_heap_threads *threads,
		unsigned flags, const struct hs_walk_hook *hook, const struct hs_walk_limits *limits, struct hs_heap *h,
		struct hs_err *err);

int hs_heap_walk_limited(struct hs_mem *mem, const struct hs_libc *libc, const struct hs_heap_threads *threads,
			 unsigned flags, const struct hs_walk_hook *hook, const struct hs_walk_limits *limits,
			 struct hs_heap *h, struct hs_err *err)
{
	int r = walk(mem, libc, threads, flags, hook, limits, h, err);
	if (r < 0)
		hs_heap_release(h);     /* nothing half-built survives a failure */
	return r;
}

int hs_heap_walk(struct hs_mem *mem, const struct hs_libc *libc, const struct hs_heap_threads *threads,
		 unsigned flags, const struct hs_walk_hook *hook, struct hs_heap *h, struct hs_err *err)
{
	return hs_heap_walk_limited(mem, libc, threads, flags, hook, NULL, h, err);
}

/* The longest arena list a real process can have, from glibc's own cap
 * (arena.c arena_get2: narenas_limit is mp_.arena_max, else
 * NARENAS_FROM_NCORES(cores) = 8 per core on 64-bit; arenas are never
 * freed), doubled plus 8 for the race arena_get2 allows and CPUs brought
 * online since.  A longer list is corrupt, or hostile. */
static size_t arena_cap(const struct hs_heap *h, char *why, size_t n)
{
	uint64_t glibc;
	if (h->arena_max) {
		glibc = h->arena_max;
		snprintf(why, n, "mp_.arena_max is %" PRIu64, h->arena_max);
	} else {
		long cpus = sysconf(_SC_NPROCESSORS_CONF);
		if (cpus < 1)
			cpus = 1;
		glibc = 8 * (uint64_t)cpus;
		snprintf(why, n, "8 per core, %ld cores", cpus);
	}
	return glibc >= HS_WALK_MAX_ARENAS / 2 ? HS_WALK_MAX_ARENAS : (size_t)(2 * glibc + 8);
}

/* malloc's parameters (mp_) and global_max_fast. */
static int read_params(struct hs_mem *mem, const struct hs_libc *libc, struct hs_heap *h, struct hs_err *err)
{
	const struct hs_layout *l = h->l;
	unsigned char mp[256];
	int r = hs_mem_read(mem, libc->mp, mp, l->mp_sizeof);
	if (r < 0)
		return r == -ESRCH ? hs_err_set(err, ESRCH, "the process exited")
				   : hs_err_sys(err, -r, "cannot read mp_ at 0x%" PRIx64, libc->mp);
	h->trim_threshold = rd64(mp, l->mp_trim_threshold);
	h->top_pad = rd64(mp, l->mp_top_pad);
	h->mmap_threshold = rd64(mp, l->mp_mmap_threshold);
	h->arena_max = rd64(mp, l->mp_arena_max);
	h->hp_pagesize = l->mp_hp_pagesize == HS_NO_FIELD ? 0 : rd64(mp, l->mp_hp_pagesize);
	h->thp_pagesize = l->mp_thp_pagesize == HS_NO_FIELD ? 0 : rd64(mp, l->mp_thp_pagesize);
	h->n_mmaps = rd32(mp, l->mp_n_mmaps);
	h->n_mmaps_max = rd32(mp, l->mp_n_mmaps_max);
	h->max_n_mmaps = rd32(mp, l->mp_max_n_mmaps);
	h->mmapped_mem = rd64(mp, l->mp_mmapped_mem);
	h->max_mmapped_mem = rd64(mp, l->mp_max_mmapped_mem);
	h->sbrk_base = rd64(mp, l->mp_sbrk_base);
	h->tcache_count_limit = l->mp_tcache_count == HS_NO_FIELD ? 0 : rd64(mp, l->mp_tcache_count);
	/* 2.35-2.41: heaps are 4 huge pages with glibc.malloc.hugetlb >= 2. */
	h->heap_max = h->hp_pagesize && libc->minor <= 41 ? 4 * h->hp_pagesize : HS_HEAP_MAX;
	if (h->heap_max & (h->heap_max - 1))
		h->heap_max = HS_HEAP_MAX;
	uint64_t gmf;
	if (libc->global_max_fast && hs_mem_u64(mem, libc->global_max_fast, &gmf) == 0)
		h->global_max_fast = gmf;
	return 0;
}

/* Pass 1: the arena list, each arena's header and heaps.  The arena
 * images are kept in *stp (malloc'd, h->narenas of them) for pass 3; on
 * an error *stp is NULL.  A list cut at the arena cap leaves the reason in
 * arena_cut. */
static int walk_arena_list(struct hs_mem *mem, const struct hs_libc *libc, struct hs_heap *h, const char *cap_why,
			   unsigned char **stp, char *arena_cut, size_t cutsz, struct hs_err *err)
{
	const struct hs_layout *l = h->l;
	unsigned char *st = NULL;
	size_t cap = 0;
	uint64_t addr = libc->main_arena;
	struct cycle cy;
	int r;
	*stp = NULL;
	cycle_init(&cy, addr);
	for (;;) {
		if (h->narenas == cap) {
			cap = cap ? cap * 2 : 16;
			struct hs_arena *na = realloc(h->arenas, cap * sizeof(*na));
			unsigned char *ns = realloc(st, cap * l->ms_sizeof);
			if (na)
				h->arenas = na;
			if (ns)
				st = ns;
			if (!na || !ns) {
				free(st);
				return hs_err_set(err, ENOMEM, "out of memory");
			}
		}
		unsigned char *img = st + h->narenas * l->ms_sizeof;
		r = hs_mem_read(mem, addr, img, l->ms_sizeof);
		if (r < 0) {
			if (h->narenas == 0) {
				free(st);
				return r == -ESRCH ? hs_err_set(err, ESRCH, "the process exited")
						   : hs_err_sys(err, -r, "cannot read main_arena at 0x%" PRIx64, addr);
			}
			struct hs_arena *prev = &h->arenas[h->narenas - 1];
			hs_arena_corrupt(prev, addr, "arena list: next arena 0x%" PRIx64 " is not readable", addr);
			break;
		}
		if (h->narenas == 0 && (r = validate(l, addr, img, libc->version, err)) < 0) {
			free(st);
			return r;
		}
		struct hs_arena *a = &h->arenas[h->narenas];
		memset(a, 0, sizeof(*a));
		a->index = (int)h->narenas++;
		a->addr = addr;
		a->main = addr == libc->main_arena;
		if ((r = read_arena(mem, h, a, img, err)) < 0) {
			free(st);
			return r;
		}
		if (!h->initialized)
			break;
		addr = a->next;
		if (addr == libc->main_arena)
			break;
		if (!addr || (addr & 7) || cycle_step(&cy, addr)) {
			hs_arena_corrupt(a, addr, "arena list: bad next pointer 0x%" PRIx64, addr);
			break;
		}
		if (h->narenas >= h->limits.max_arenas) {
			hs_arena_corrupt(a, addr, "arena list: next arena 0x%" PRIx64 " would be number %zu, more than glibc "
					 "makes (%s): the list is corrupt", addr, h->narenas + 1, cap_why);
			snprintf(arena_cut, cutsz, "stopped after %zu arenas: the arena list goes on past what glibc "
				 "allows (%s), so it is corrupt; the rest was not walked", h->narenas, cap_why);
			break;
		}
		if (out_of_time(h, a, "arena list", 0))
			break;
	}
	*stp = st;
	return 0;
}

/* Pass 2: each thread's arena and tcache, from its TLS. */
static int find_threads(struct hs_mem *mem, const struct hs_heap_threads *threads, struct hs_heap *h,
			struct hs_err *err)
{
	size_t nt = threads ? threads->n : 0;
	if (nt && !(h->tcaches = calloc(nt, sizeof(*h->tcaches))))
		return hs_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < nt; i++) {
		struct hs_tcache *t = &h->tcaches[h->ntcaches++];
		t->tid = threads->tids[i];
		t->fs_base = threads->fs_base[i];
		find_thread(h, mem, t);
	}
	return 0;
}

/* Pass 3: the lists, arena by arena (st: the arena images of pass 1).
 * Without a per-arena hook, each arena is followed by the tcaches that
 * live in it, while its pages are cached; with one (the chunk walk, which
 * must know every tcache entry), all tcaches come first, and the hook runs
 * right after its arena's lists, from the same cached pages. */
static int walk_lists(struct hs_mem *mem, struct hs_heap *h, const unsigned char *st, const struct hs_walk_hook *hook,
		      struct hs_err *err)
{
	const struct hs_layout *l = h->l;
	if (hook)
		for (size_t k = 0; k < h->ntcaches && !h->cut; k++)
			if (h->tcaches[k].addr)
				walk_tcache(h, mem, &h->tcaches[k]);
	for (size_t i = 0; i < h->narenas && !h->cut; i++) {
		struct hs_arena *a = &h->arenas[i];
		const unsigned char *img = st + i * l->ms_sizeof;
		if (out_of_time(h, a, "lists", 0))
			break;
		int r = walk_fastbins(mem, h, img, a);
		if (r == 0)
			r = walk_bins(mem, h, img, a);
		if (r == -ETIME)
			break;          /* a budget ran out: h->cut says which */
		if (r < 0)
			return hs_err_set(err, -r, "out of memory");
		if (hook) {
			if (!(h->flags & HS_WALK_LATE_CHECKS))
				check_tcache_overlap(h, a);
			hs_mem_gather(mem, NULL, 0);    /* the hook reads the heap from end to end */
			if ((r = hook->arena(hook->ctx, mem, h, a, err)) < 0)
				return r;
			continue;
		}
		for (size_t k = 0; k < h->ntcaches && !h->cut; k++)
			if (h->tcaches[k].addr && hs_heap_arena_of(h, h->tcaches[k].addr) == a)
				walk_tcache(h, mem, &h->tcaches[k]);
	}
	if (!hook && !(h->flags & HS_WALK_LATE_CHECKS))
		for (size_t i = 0; i < h->narenas && !h->cut; i++)
			check_tcache_overlap(h, &h->arenas[i]);
	return 0;
}

static int walk(struct hs_mem *mem, const struct hs_libc *libc, const struct hs_heap_threads *threads,
		unsigned flags, const struct hs_walk_hook *hook, const struct hs_walk_limits *limits, struct hs_heap *h,
		struct hs_err *err)
{
	memset(h, 0, sizeof(*h));
	if (limits)
		h->limits = *limits;
	if (!h->limits.max_chunks)
		h->limits.max_chunks = HS_WALK_MAX_CHUNKS;
	h->flags = flags;
	h->libc = libc;
	h->l = &libc->layout;
	h->global_max_fast = UINT64_MAX;
	int r = read_params(mem, libc, h, err);
	if (r < 0)
		return r;
	char cap_why[64] = "the given limit", arena_cut[sizeof(h->cut_msg)] = "";
	if (!h->limits.max_arenas)
		h->limits.max_arenas = arena_cap(h, cap_why, sizeof(cap_why));
	unsigned char *st;
	if ((r = walk_arena_list(mem, libc, h, cap_why, &st, arena_cut, sizeof(arena_cut), err)) < 0)
		return r;
	r = find_threads(mem, threads, h, err);
	if (r == 0 && h->initialized && (flags & HS_WALK_LISTS) && !h->cut)
		r = walk_lists(mem, h, st, hook, err);
	free(st);
	if (r < 0)
		return r;
	for (size_t i = 0; i < h->narenas; i++)
		if (h->arenas[i].status)
			h->status = -EUCLEAN;
	if (arena_cut[0])
		cut(h, NULL, "%s", arena_cut);
	if (h->cut)
		h->status = -EUCLEAN;
	return 0;
}

void hs_heap_late_checks(struct hs_heap *h)
{
	if (!(h->flags & HS_WALK_LATE_CHECKS) || !(h->flags & HS_WALK_LISTS) || !h->initialized)
		return;
	for (size_t i = 0; i < h->narenas && !h->cut; i++) {
		check_tcache_overlap(h, &h->arenas[i]);
		if (h->arenas[i].status)
			h->status = -EUCLEAN;
	}
}

struct hs_arena *hs_heap_arena_of(struct hs_heap *h, uint64_t addr)
{
	uint64_t hp = addr & ~(h->heap_max - 1);
	for (size_t i = 0; i < h->narenas; i++) {
		struct hs_arena *a = &h->arenas[i];
		if (a->main)
			continue;
		for (size_t k = 0; k < a->nheaps; k++)
			if (a->heaps[k].addr == hp)
				return a;
	}
	return h->narenas ? &h->arenas[0] : NULL;
}

struct hs_arena *hs_heap_arena_at(const struct hs_heap *h, uint64_t addr)
{
	for (size_t i = 0; i < h->narenas; i++)
		if (h->arenas[i].addr == addr)
			return &h->arenas[i];
	return NULL;
}

static uint64_t tls_slot_value(struct hs_mem *mem, const struct hs_libc *lc, const struct hs_tpoff *t,
			       uint64_t fs_base, uint64_t *val)
{
	uint64_t tpoff;
	if (hs_mem_u64(mem, t->slot, &tpoff) < 0)
		return 0;
	return hs_mem_u64(mem, fs_base + tpoff, val) == 0;
	(void)lc;
}

/* A tcache_perthread_struct lives in the user part of a chunk of exactly
 * request2size(sizeof) bytes; that is how it is recognised without symbols. */
static bool looks_like_tcache(struct hs_mem *mem, const struct hs_layout *l, uint64_t p)
{
	uint64_t sz;
	if (!p || (p & 15) || hs_mem_u64(mem, p - 8, &sz) < 0)
		return false;
	uint64_t want = ((uint64_t)l->tc_sizeof + HS_SIZE_SZ + 15) & ~(uint64_t)15;
	return HS_CHUNKSIZE(sz) == want && !(sz & HS_IS_MMAPPED);
}

static void walk_tcache(struct hs_heap *h, struct hs_mem *mem, struct hs_tcache *t)
{
	const struct hs_layout *l = h->l;
	unsigned char buf[1024];
	if (l->tc_sizeof > (int)sizeof(buf) || hs_mem_read(mem, t->addr, buf, l->tc_sizeof) < 0) {
		t->status = -EUCLEAN;
		snprintf(t->problem, sizeof(t->problem), "tcache 0x%" PRIx64 " is not readable", t->addr);
		return;
	}
	for (int i = 0; i < l->tc_bins; i++) {
		uint64_t cnt = l->tc_count_width == 1 ? buf[l->tc_counts + i]
						       : (uint64_t)(buf[l->tc_counts + 2 * i] | buf[l->tc_counts + 2 * i + 1] << 8);
		if (l->tc_counts_down) {
			/* 2.42: num_slots is the room left, counted down from
			 * mp_.tcache_count */
			if (cnt > h->tcache_count_limit) {
				if (!t->status) {
					t->status = -EUCLEAN;
					snprintf(t->problem, sizeof(t->problem),
						 "tcache bin %d: %" PRIu64 " slots left of %" PRIu64, i, cnt, h->tcache_count_limit);
				}
				continue;
			}
			cnt = h->tcache_count_limit - cnt;
		}
		uint64_t e = rd64(buf, l->tc_entries + 8 * i), walked = 0;
		/* bins past 63 (2.42's large tcache) hold chunks of many sizes */
		uint64_t csize = i < 64 ? HS_MINSIZE + 16 * (uint64_t)i : 0;
		struct cycle cy;
		cycle_init(&cy, e);
		uint64_t prev_e = 0;
		while (e) {
			uint64_t next;
			if (out_of_time(h, NULL, "tcaches", walked + 1))
				return;
			if (walked == cnt) {
				/* The list goes on past its count: name where to. */
				uint64_t probe;
				t->status = -EUCLEAN;
				if ((e & 15) || hs_mem_u64(mem, e, &probe) < 0)
					snprintf(t->problem, sizeof(t->problem),
						 "tcache bin %d: entry %" PRIu64 " points to bad address 0x%" PRIx64, i, walked, e);
				else
					snprintf(t->problem, sizeof(t->problem),
						 "tcache bin %d: count says %" PRIu64 ", list holds more (0x%" PRIx64 ")", i, cnt, e);
				break;
			}
			if ((e & 15) || hs_mem_u64(mem, e, &next) < 0) {
				t->status = -EUCLEAN;
				if (prev_e)
					snprintf(t->problem, sizeof(t->problem), "tcache bin %d: chunk 0x%" PRIx64 " has next 0x%" PRIx64
						 ", a bad address", i, prev_e - 16, e);
				else
					snprintf(t->problem, sizeof(t->problem), "tcache bin %d: bad address 0x%" PRIx64, i, e);
				break;
			}
			if (in_known_heap(h, e - 16, HS_MINSIZE) == 0) {
				t->status = -EUCLEAN;
				if (prev_e)
					snprintf(t->problem, sizeof(t->problem), "tcache bin %d: chunk 0x%" PRIx64 " has next 0x%" PRIx64
						 ", which lies outside every heap", i, prev_e - 16, e);
				else
					snprintf(t->problem, sizeof(t->problem), "tcache bin %d: the head 0x%" PRIx64
						 " lies outside every heap", i, e);
				break;
			}
			if (h->flags & HS_WALK_DEEP) {
				uint64_t sz;
				if (hs_mem_u64(mem, e - 8, &sz) < 0 || (csize && HS_CHUNKSIZE(sz) != csize)) {
					t->status = -EUCLEAN;
					snprintf(t->problem, sizeof(t->problem),
						 "tcache bin %d: entry 0x%" PRIx64 " has a chunk size that is not 0x%" PRIx64, i, e,
						 csize);
					break;
				}
				if (h->recorded >= h->limits.max_chunks) {
					cut(h, NULL, "more than %" PRIu64 " free chunks recorded, the budget, in thread %d's tcache; the "
					    "rest was not walked", h->limits.max_chunks, (int)t->tid);
					return;
				}
				struct hs_tcache_entry *ne = realloc(t->entries, (t->nentries + 1) * sizeof(*ne));
				if (ne) {
					t->entries = ne;
					ne[t->nentries++] = (struct hs_tcache_entry){ e - 16, (uint8_t)i };
					h->recorded++;
				}
			}
			walked++;
			uint64_t esize = csize;
			if (!esize && hs_mem_u64(mem, e - 8, &esize) == 0)
				esize = HS_CHUNKSIZE(esize);
			struct hs_arena *a = hs_heap_arena_of(h, e - 16);
			if (a) {
				a->tcache_count++;
				a->tcache_bytes += esize;
			}
			t->bytes += esize;
			prev_e = e;
			e = reveal(l, e, next);
			if (e && cycle_step(&cy, e)) {
				t->status = -EUCLEAN;
				snprintf(t->problem, sizeof(t->problem), "tcache bin %d: cycle at 0x%" PRIx64, i, e);
				break;
			}
		}
		if (!t->status && walked != cnt) {
			t->status = -EUCLEAN;
			snprintf(t->problem, sizeof(t->problem),
				 "tcache bin %d: count says %" PRIu64 ", list holds %" PRIu64, i, cnt, walked);
		}
		t->count += walked;
	}
}

/* Every bin of a tcache_perthread_struct at p agrees with itself: a count
 * within mp_.tcache_count, an entry exactly when the count is not zero,
 * entries 16-byte aligned.  A zeroed struct passes: it is an empty tcache. */
static bool tcache_consistent(struct hs_heap *h, struct hs_mem *mem, uint64_t p)
{
	const struct hs_layout *l = h->l;
	unsigned char buf[1024];
	if (l->tc_sizeof > (int)sizeof(buf) || hs_mem_read(mem, p, buf, l->tc_sizeof) < 0)
		return false;
	uint64_t limit = h->tcache_count_limit ? h->tcache_count_limit : 0xffff;
	for (int i = 0; i < l->tc_bins; i++) {
		uint64_t cnt = l->tc_count_width == 1 ? buf[l->tc_counts + i]
						       : (uint64_t)(buf[l->tc_counts + 2 * i] | buf[l->tc_counts + 2 * i + 1] << 8);
		if (cnt > limit)
			return false;
		if (l->tc_counts_down)
			cnt = limit - cnt;
		uint64_t e = rd64(buf, l->tc_entries + 8 * i);
		if ((e & 15) || !cnt != !e)
			return false;
	}
	return true;
}

/* A static binary without symbols: its TLS block (the executable's, at a
 * local-exec offset below the thread pointer) holds tcache and thread_arena
 * among the program's own TLS variables.  thread_arena is the slot that
 * holds an arena's address; tcache the slot that holds a pointer to a
 * chunk of the tcache's exact size whose bins are consistent, and when
 * several do (the program's own pointer to a block of that size), the one
 * nearest thread_arena: malloc.c defines both. */
static void static_tls_scan(struct hs_heap *h, struct hs_mem *mem, struct hs_tcache *t, bool want_tc, bool want_ta)
{
	const struct hs_libc *lc = h->libc;
	uint64_t len = (uint64_t)-lc->static_tls_tpoff;
	if (len > 65536)
		len = 65536;        /* glibc's own variables are near the top: see below */
	uint64_t start = t->fs_base - len;
	uint64_t *v = malloc(len);
	if (!v || hs_mem_read(mem, start, v, len) < 0) {
		free(v);
		return;
	}
	size_t n = len / 8, ta = SIZE_MAX, tc[8], ntc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!v[i])
			continue;
		if (ta == SIZE_MAX && hs_heap_arena_at(h, v[i]))
			ta = i;
		else if (want_tc && h->l->tc_bins && ntc < 8 && looks_like_tcache(mem, h->l, v[i]) &&
			 tcache_consistent(h, mem, v[i]))
			tc[ntc++] = i;
	}
	if (want_ta && ta != SIZE_MAX)
		t->thread_arena = v[ta];
	if (ntc == 1) {
		t->addr = v[tc[0]];
	} else if (ntc > 1 && ta != SIZE_MAX) {
		size_t best = SIZE_MAX, dist = 8;   /* within 8 slots of thread_arena */
		for (size_t k = 0; k < ntc; k++) {
			size_t d = tc[k] > ta ? tc[k] - ta : ta - tc[k];
			if (d < dist) {
				dist = d;
				best = tc[k];
			}
		}
		if (best != SIZE_MAX)
			t->addr = v[best];
	}
	free(v);
}

static int sort_free(struct hs_free *v, size_t n);

/* A chunk in a tcache that lies inside (or is) a chunk in a bin or
 * fastbin of the same arena was freed twice, or into a chunk that was
 * (house of botcake: glibc checks a tcache double free only against the
 * tcache itself).  Needs the tcache entries (HS_WALK_DEEP). */
static void check_tcache_overlap(struct hs_heap *h, struct hs_arena *a)
{
	size_t ne = 0;
	for (size_t i = 0; i < h->ntcaches; i++)
		ne += h->tcaches[i].nentries;
	if (!ne || !a->nfree)
		return;
	struct hs_free *v = malloc(a->nfree * sizeof(*v));
	if (!v)
		return;
	memcpy(v, a->free, a->nfree * sizeof(*v));
	if (sort_free(v, a->nfree) < 0) {
		free(v);
		return;
	}
	for (size_t i = 0; i < h->ntcaches; i++) {
		const struct hs_tcache *t = &h->tcaches[i];
		for (size_t k = 0; k < t->nentries; k++) {
			uint64_t c = t->entries[k].chunk;
			size_t lo = 0, hi = a->nfree;
			while (lo < hi) {       /* the last free chunk at or below c */
				size_t mid = lo + (hi - lo) / 2;
				if (v[mid].addr <= c)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (!lo || c >= v[lo - 1].addr + v[lo - 1].size || hs_heap_arena_of(h, c) != a)
				continue;
			const struct hs_free *f = &v[lo - 1];
			char ln[32];
			int list = f->kind == HS_FREE_FAST ? HS_PLIST_FAST : HS_PLIST_BIN;
			list_name(list, f->bin, ln, sizeof(ln));
			list_corrupt(a, list, f->bin, c, f->addr, "chunk 0x%" PRIx64 " in thread %d's tcache bin %d %s chunk 0x%"
				     PRIx64 " (size 0x%" PRIx64 ") in %s: freed twice", c, (int)t->tid, t->entries[k].bin,
				     c == f->addr ? "is also" : "lies inside free", f->addr, f->size, ln);
		}
	}
	free(v);
}

static void find_thread(struct hs_heap *h, struct hs_mem *mem, struct hs_tcache *t)
{
	const struct hs_libc *lc = h->libc;
	uint64_t fs_base = t->fs_base;
	pid_t tid = t->tid;
	if (!h->initialized || !fs_base)
		return;
	uint64_t val;
	if (lc->is_static) {
		if (lc->static_tls_tpoff && lc->tls_tcache >= 0 &&
		    hs_mem_u64(mem, fs_base + lc->static_tls_tpoff + lc->tls_tcache, &val) == 0 &&
		    looks_like_tcache(mem, h->l, val))
			t->addr = val;
		if (lc->static_tls_tpoff && lc->tls_thread_arena >= 0 &&
		    hs_mem_u64(mem, fs_base + lc->static_tls_tpoff + lc->tls_thread_arena, &val) == 0 &&
		    hs_heap_arena_at(h, val))
			t->thread_arena = val;
		if (lc->static_tls_tpoff && (lc->tls_tcache < 0 || lc->tls_thread_arena < 0))
			static_tls_scan(h, mem, t, lc->tls_tcache < 0, lc->tls_thread_arena < 0);
	} else {
		/* With symbols, the slot whose addend is the symbol; without, any
		 * slot whose value passes the check. */
		for (size_t i = 0; i < lc->ntpoff; i++) {
			const struct hs_tpoff *s = &lc->tpoff[i];
			if (!tls_slot_value(mem, lc, s, fs_base, &val) || !val)
				continue;
			bool want_tc = lc->tls_tcache < 0 || s->addend == lc->tls_tcache;
			bool want_ta = lc->tls_thread_arena < 0 || s->addend == lc->tls_thread_arena;
			if (!t->thread_arena && want_ta && hs_heap_arena_at(h, val))
				t->thread_arena = val;
			else if (!t->addr && want_tc && h->l->tc_bins && looks_like_tcache(mem, h->l, val))
				t->addr = val;
		}
	}
	struct hs_arena *a = t->thread_arena ? hs_heap_arena_at(h, t->thread_arena) : NULL;
	if (a) {
		pid_t *nth = realloc(a->threads, (a->nthreads + 1) * sizeof(*nth));
		if (nth) {
			a->threads = nth;
			a->threads[a->nthreads++] = tid;
		}
	}
}

int hs_bin_index(uint64_t sz)
{
	if (sz < 0x400)
		return (int)(sz >> 4);
	if ((sz >> 6) <= 48)
		return 48 + (int)(sz >> 6);
	if ((sz >> 9) <= 20)
		return 91 + (int)(sz >> 9);
	if ((sz >> 12) <= 10)
		return 110 + (int)(sz >> 12);
	if ((sz >> 15) <= 4)
		return 119 + (int)(sz >> 15);
	if ((sz >> 18) <= 2)
		return 124 + (int)(sz >> 18);
	return 126;
}

/* ---- residency ------------------------------------------------------------ */

/* Free chunks by address. */
HS_RADIX_SORT_BY_ADDR(sort_free, struct hs_free)

static int resident(int fd, uint64_t start, uint64_t end, uint64_t *out)
{
	*out = 0;
	if (end <= start)
		return 0;
	return hs_proc_resident(fd, start, end, out);
}

int hs_heap_residency(struct hs_heap *h, int fd, uint64_t pad, struct hs_err *err)
{
	for (size_t i = 0; i < h->narenas; i++) {
		struct hs_arena *a = &h->arenas[i];
		a->resident = a->trimmable = 0;
		for (size_t k = 0; k < a->nheaps; k++) {
			struct hs_heapseg *s = &a->heaps[k];
			int r = resident(fd, s->addr, s->addr + s->mprotect_size, &s->resident);
			if (r < 0)
				return hs_err_sys(err, -r, "cannot read pagemap");
			a->resident += s->resident;
		}
		/* malloc_consolidate first merges fastbin chunks with their free
		 * neighbours (and into top); mtrim then madvises the whole pages of
		 * each free chunk past its first sizeof(struct malloc_chunk). */
		if (sort_free(a->free, a->nfree) < 0)
			return hs_err_set(err, ENOMEM, "out of memory");
		uint64_t top_start = a->top;
		size_t j = 0;
		while (j < a->nfree) {
			uint64_t start = a->free[j].addr, end = start + a->free[j].size;
			bool fast = a->free[j].kind == HS_FREE_FAST;
			size_t k = j + 1;
			while (k < a->nfree && a->free[k].addr == end) {
				fast |= a->free[k].kind == HS_FREE_FAST;
				end += a->free[k].size;
				k++;
			}
			j = k;
			if (end == a->top && fast) {
				top_start = start;     /* consolidated into top */
				continue;
			}
			uint64_t size = end - start;
			if (size <= PAGE - 1 + 48)
				continue;
			uint64_t pal = (start + 48 + PAGE - 1) & ~(uint64_t)(PAGE - 1);
			uint64_t len = (end - pal) & ~(uint64_t)(PAGE - 1);
			uint64_t res;
			int r = resident(fd, pal, pal + len, &res);
			if (r < 0)
				return hs_err_sys(err, -r, "cannot read pagemap");
			a->trimmable += res;
		}
		/* systrim: the main arena's top above pad goes back to the system
		 * (sbrk); other arenas' tops shrink only on free (heap_trim). */
		/* systrim also needs the brk to end where top ends: only a
		 * contiguous main arena is trimmed.  With THP (2.35+, tunable
		 * glibc.malloc.hugetlb=1) it releases whole huge pages. */
		if (a->main && a->top && a->contiguous) {
			uint64_t top_end = a->top + a->top_size, tsize = top_end - top_start;
			uint64_t unit = h->thp_pagesize && !(h->thp_pagesize & (h->thp_pagesize - 1)) ? h->thp_pagesize : PAGE;
			if (tsize > HS_MINSIZE + 1 && tsize - HS_MINSIZE - 1 > pad) {
				uint64_t extra = (tsize - HS_MINSIZE - 1 - pad) & ~(unit - 1);
				uint64_t res;
				int r = resident(fd, top_end - extra, top_end, &res);
				if (r < 0)
					return hs_err_sys(err, -r, "cannot read pagemap");
				a->trimmable += res;
			}
		}
	}
	return 0;
}

void hs_heap_mallinfo2(const struct hs_heap *h, struct hs_mallinfo2 *mi)
{
	memset(mi, 0, sizeof(*mi));
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_arena *a = &h->arenas[i];
		uint64_t avail = a->top_size + a->fast_bytes + a->bin_bytes;
		mi->smblks += a->fast_count;
		mi->ordblks += 1 + a->bin_count;
		mi->fordblks += avail;
		mi->uordblks += a->system_mem - avail;
		mi->arena += a->system_mem;
		mi->fsmblks += a->fast_bytes;
		if (a->main) {
			mi->hblks = (uint64_t)(int64_t)h->n_mmaps;
			mi->hblkhd = h->mmapped_mem;
			mi->keepcost = a->top_size;
		}
	}
}

void hs_heap_release(struct hs_heap *h)
{
	for (size_t i = 0; i < h->narenas; i++) {
		free(h->arenas[i].heaps);
		if (h->arenas[i].free)
			munmap(h->arenas[i].free, h->arenas[i].capfree * sizeof(*h->arenas[i].free));
		free(h->arenas[i].threads);
		free(h->arenas[i].problems);
	}
	free(h->arenas);
	for (size_t i = 0; i < h->ntcaches; i++)
		free(h->tcaches[i].entries);
	free(h->tcaches);
	memset(h, 0, sizeof(*h));
}
