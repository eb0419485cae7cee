#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "chunks.h"
#include "radix.h"
#include "thread.h"

const char *hs_chunk_state_name(enum hs_chunk_state s)
{
	static const char *n[] = { "used", "bin", "fastbin", "tcache", "top", "fencepost", "mmapped" };
	return s <= HS_CHUNK_MMAPPED ? n[s] : "?";
}

struct freeref {
	uint64_t addr;
	uint8_t state, bin;
};

/* By address, while the target is stopped. */
HS_RADIX_SORT_BY_ADDR(sort_refs, struct freeref)

/* Every free chunk of the arena that looks in use or free, by address. */
static struct freeref *free_refs(const struct hs_heap *h, const struct hs_arena *a, size_t *n)
{
	size_t cnt = a->nfree;
	for (size_t i = 0; i < h->ntcaches; i++)
		cnt += h->tcaches[i].nentries;
	struct freeref *v = malloc((cnt + 1) * sizeof(*v));
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < a->nfree; i++)
		v[k++] = (struct freeref){ a->free[i].addr,
					   a->free[i].kind == HS_FREE_FAST ? HS_CHUNK_FAST : HS_CHUNK_BIN, a->free[i].bin };
	for (size_t i = 0; i < h->ntcaches; i++)
		for (size_t j = 0; j < h->tcaches[i].nentries; j++)
			v[k++] = (struct freeref){ h->tcaches[i].entries[j].chunk, HS_CHUNK_TCACHE,
						   h->tcaches[i].entries[j].bin };
	if (sort_refs(v, k) < 0) {
		free(v);
		return NULL;
	}
	v[k] = (struct freeref){ UINT64_MAX, HS_CHUNK_USED, 0 };   /* the walk's sentinel */
	*n = k;
	return v;
}

struct window {
	uint64_t base, len;
	unsigned char buf[256 << 10];
};

/* ---- the copy, overlapped with the walk ------------------------------------------ */

/* While the target is stopped, a heap is copied by a second thread, slot
 * by slot into a ring, and the walk follows behind on the slots already
 * copied: on two cores the walk costs no more than the copy.  The copier
 * reads with process_vm_readv only (hs_mem_cache_read_direct: no ptrace,
 * no cache); it blocks every signal, so that heapscope's handlers (which
 * detach the target) run on the thread that traces it.  A slot the copier
 * cannot read ends the copy: from there the walk reads through the cache,
 * which says why. */
#define RING_SLOT  (1u << 20)
#define RING_SLOTS 8u
#define RING_BYTES ((size_t)RING_SLOT * RING_SLOTS)

struct ring {
	unsigned char *buf;              /* RING_SLOTS slots */
	struct hs_mem *mem;
	uint64_t base, limit;            /* page-aligned: slot i holds base + i * RING_SLOT */
	size_t nslots;
	atomic_size_t copied;            /* slots copied (published with release) */
	atomic_size_t need;              /* the first slot the walk still needs */
	atomic_bool over;                /* the copier stopped: done, failed or cancelled */
	atomic_bool cancel;              /* the walk ended early */
	atomic_bool walker_sleeps, copier_sleeps;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool running;
};

static void ring_kick(struct ring *r)
{
	pthread_mutex_lock(&r->mu);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Wake the other side only when it sleeps: it says so (seq_cst) before
 * it looks at what it waits for, and this looks after publishing. */
static void ring_wake(struct ring *r, atomic_bool *sleeping)
{
	if (atomic_load(sleeping))
		ring_kick(r);
}

/* Wait until ready(r, arg): a short spin (the other side is a slot away),
 * then asleep on the condition. */
static void ring_wait(struct ring *r, atomic_bool *sleeping, bool (*ready)(struct ring *, size_t), size_t arg)
{
	for (int i = 0; i < 256; i++) {
		if (ready(r, arg))
			return;
		__builtin_ia32_pause();
	}
	pthread_mutex_lock(&r->mu);
	atomic_store(sleeping, true);
	while (!ready(r, arg))
		pthread_cond_wait(&r->cv, &r->mu);
	atomic_store(sleeping, false);
	pthread_mutex_unlock(&r->mu);
}

/* The copier may write slot i: the walk left slot i - RING_SLOTS. */
static bool ring_room(struct ring *r, size_t i)
{
	return atomic_load(&r->cancel) || i < RING_SLOTS || atomic_load(&r->need) > i - RING_SLOTS;
}

/* The walk may read slot s: copied, or it never will be. */
static bool ring_copied(struct ring *r, size_t s)
{
	return atomic_load(&r->copied) > s || atomic_load(&r->over);
}

static void *ring_copier(void *arg)
{
	struct ring *r = arg;
	for (size_t i = 0; i < r->nslots && !atomic_load(&r->cancel); i++) {
		ring_wait(r, &r->copier_sleeps, ring_room, i);
		if (atomic_load(&r->cancel))
			break;
		uint64_t a = r->base + (uint64_t)i * RING_SLOT;
		size_t len = r->limit - a < RING_SLOT ? (size_t)(r->limit - a) : RING_SLOT;
		if (hs_mem_cache_read_direct(r->mem, a, r->buf + (size_t)(i % RING_SLOTS) * RING_SLOT, len) < 0)
			break;
		atomic_store(&r->copied, i + 1);
		ring_wake(r, &r->walker_sleeps);
	}
	atomic_store(&r->over, true);
	ring_kick(r);
	return NULL;
}

/* Start copying [base, limit) (page-aligned), when the source can be read
 * so and the range is worth a thread; false: walk through the cache. */
static bool ring_start(struct ring *r, unsigned char *buf, struct hs_mem *mem, uint64_t base, uint64_t limit)
{
	r->running = false;
	/* HEAPSCOPE_CHUNKS_THREADS=1: one thread (to compare); and no copier
	 * where heapscope may run on one CPU only */
	const char *t = getenv("HEAPSCOPE_CHUNKS_THREADS");
	if ((t && !strcmp(t, "1")) || hs_cpus() < 2)
		return false;
	if (!buf || limit < base + 2 * (uint64_t)RING_SLOT || hs_mem_cache_read_direct(mem, 0, NULL, 0) == -ENOSYS)
		return false;
	/* The free lists' walk read most of the heap already (lists that
	 * touch every page): walk it in place, no second copy. */
	if (hs_mem_cache_held(mem, base, limit - base) > (limit - base) / 2)
		return false;
	r->buf = buf;
	r->mem = mem;
	r->base = base;
	r->limit = limit;
	r->nslots = (size_t)((limit - base + RING_SLOT - 1) / RING_SLOT);
	atomic_init(&r->copied, 0);
	atomic_init(&r->need, 0);
	atomic_init(&r->over, false);
	atomic_init(&r->cancel, false);
	atomic_init(&r->walker_sleeps, false);
	atomic_init(&r->copier_sleeps, false);
	if (pthread_mutex_init(&r->mu, NULL))
		return false;
	if (pthread_cond_init(&r->cv, NULL)) {
		pthread_mutex_destroy(&r->mu);
		return false;
	}
	r->running = hs_thread_start(&r->th, ring_copier, r);
	if (!r->running) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
	}
	return r->running;
}

/* Slot s, once copied (the slots before it are given back to the copier);
 * NULL when the copier stopped before it. */
static const unsigned char *ring_slot(struct ring *r, size_t s)
{
	if (s >= r->nslots)
		return NULL;
	if (atomic_load(&r->need) < s) {
		atomic_store(&r->need, s);
		ring_wake(r, &r->copier_sleeps);
	}
	ring_wait(r, &r->walker_sleeps, ring_copied, s);
	if (atomic_load(&r->copied) <= s)
		return NULL;
	return r->buf + (size_t)(s % RING_SLOTS) * RING_SLOT;
}

/* On every way out of a walk: the copier told to stop, and joined. */
static void ring_stop(struct ring *r)
{
	if (!r->running)
		return;
	atomic_store(&r->cancel, true);
	ring_kick(r);
	pthread_join(r->th, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	r->running = false;
}

/* ---- the walk ---------------------------------------------------------------------- */

#define PREFETCH_AHEAD 1024      /* bytes of the heap prefetched ahead of the walk */

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The size class of a chunk size: the bin index, as hs_bin_index. */
static inline unsigned class_of(uint64_t sz)
{
	return sz < 0x400 ? (unsigned)(sz >> 4) : (unsigned)hs_bin_index(sz);
}

/* One chunk into the sums: its state's count and bytes, and its class's
 * (in use or free).  No branch: the walk of a million chunks runs at the
 * speed of memory. */
static inline void hist_add(struct hs_chunks_hist *hist, unsigned state, uint64_t sz)
{
	hist->n[state]++;
	hist->bytes[state] += sz;
	struct hs_chunks_class *k = &hist->cls[class_of(sz)];
	unsigned f = state != HS_CHUNK_USED;
	k->n[f]++;
	k->bytes[f] += sz;
	/* lo 0 is none: lo - 1 is then the largest value */
	k->lo[f] = min_u64(k->lo[f] - 1, sz - 1) + 1;
	k->hi[f] = k->hi[f] > sz ? k->hi[f] : sz;
}

/* The chunks of [p, end), to top when has_top; each to fn, or, with hist,
 * only summed there (fn is then not called, except for top and a
 * fencepost, which hist counts by state only).  fn must not read mem: the
 * heap's bytes are read in place from where mem holds them. */
static inline __attribute__((always_inline)) int walk_range(struct window *win, struct ring *ring, struct hs_mem *mem,
							    struct hs_arena *a, uint64_t p, uint64_t end, bool has_top,
							    const struct freeref *refs, size_t nrefs, size_t *ri,
							    struct hs_chunks_hist *hist, hs_chunk_fn fn, void *ctx)
{
	/* The walk cannot step over top without a chunk too large for end
	 * (top + 1), so it ends at top, or at end when top is past it. */
	uint64_t stop = has_top && a->top < end ? a->top : end;
	/* [hbase, hend) of the heap is held at hp: in place where the source
	 * holds it (the page cache: a run of pages, no copy), else in a
	 * window read 256 KiB at a time, never past the heap's end. */
	const unsigned char *hp = NULL;
	uint64_t hbase = 0, hend = 0, pf = 0;
	while (p < stop) {
		if (p + 16 > hend) {
			size_t len = 0;
			const void *at = NULL;
			if (ring->running && p >= ring->base && p + 16 <= ring->limit) {
				size_t slot = (size_t)((p - ring->base) / RING_SLOT);
				const unsigned char *b = ring_slot(ring, slot);
				uint64_t sbase = ring->base + (uint64_t)slot * RING_SLOT;
				if (b) {
					at = b + (p - sbase);
					len = (size_t)(min_u64(sbase + RING_SLOT, ring->limit) - p);
				} else {
					ring_stop(ring);   /* the cache from here */
				}
			}
			if (!at)
				at = hs_mem_span(mem, p, 16, &len);
			if (at) {
				hp = at;
				hend = p + len;
			} else {
				uint64_t n = min_u64(end - p, sizeof(win->buf));
				if (n < 16 || hs_mem_read(mem, p, win->buf, n) < 0) {
					if (hs_mem_read(mem, p, win->buf, 16) < 0) {
						hs_arena_corrupt(a, p, "chunk 0x%" PRIx64 " is not readable", p);
						return 0;
					}
					n = 16;
				}
				hp = win->buf;
				hend = p + n;
			}
			hbase = pf = p;
		}
		/* The next headers are a few lines on: load them now. */
		for (; pf < p + PREFETCH_AHEAD && pf < hend; pf += 64)
			__builtin_prefetch(hp + (pf - hbase));
		uint64_t raw;
		memcpy(&raw, hp + (p - hbase) + 8, 8);
		uint64_t sz = HS_CHUNKSIZE(raw);
		if (__builtin_expect(sz < HS_MINSIZE || (sz & 15) || p + sz > stop || p + sz < p, 0)) {
			if ((sz == 0x10 || sz == 0) && !a->main) {
				/* The end of a full thread heap (sysmalloc): a 0x10
				 * chunk then a 0x0 one, or, when the old top was
				 * smaller than MINSIZE, only the 0x0 one after it. */
				struct hs_chunk c = { p, end - p, raw, HS_CHUNK_FENCEPOST, a->index, 0 };
				if (hist) {
					hist->n[HS_CHUNK_FENCEPOST]++;
					hist->bytes[HS_CHUNK_FENCEPOST] += end - p;
					return 0;
				}
				return fn(ctx, &c) ? 1 : 0;
			}
			hs_arena_corrupt(a, p, "chunk 0x%" PRIx64 " has bogus size 0x%" PRIx64 " (heap ends at 0x%" PRIx64 ")", p,
					 raw, end);
			return 0;
		}
		while (refs[*ri].addr < p)      /* refs[nrefs] is a sentinel */
			(*ri)++;
		bool hit = refs[*ri].addr == p;
		unsigned state = hit ? refs[*ri].state : HS_CHUNK_USED;
		if (hist) {
			*ri += hit;
			hist_add(hist, state, sz);
		} else {
			struct hs_chunk c = { p, sz, raw, state, a->index, hit ? refs[*ri].bin : 0 };
			if (fn(ctx, &c))
				return 1;
		}
		p += sz;
	}
	(void)nrefs;
	if (has_top && p == a->top) {
		if (hist) {
			hist->n[HS_CHUNK_TOP]++;
			hist->bytes[HS_CHUNK_TOP] += a->top_size;
			return 0;
		}
		struct hs_chunk c = { p, a->top_size, a->top_size | HS_PREV_INUSE, HS_CHUNK_TOP, a->index, 0 };
		return fn(ctx, &c) ? 1 : 0;
	}
	if (has_top)
		hs_arena_corrupt(a, p, "walked past 0x%" PRIx64 " without meeting top 0x%" PRIx64, end, a->top);
	return 0;
}

static int walk_range_fn(struct window *win, struct ring *ring, struct hs_mem *mem, struct hs_arena *a, uint64_t p,
			 uint64_t end, bool has_top, const struct freeref *refs, size_t nrefs, size_t *ri, hs_chunk_fn fn,
			 void *ctx)
{
	return walk_range(win, ring, mem, a, p, end, has_top, refs, nrefs, ri, NULL, fn, ctx);
}

static int walk_range_hist(struct window *win, struct ring *ring, struct hs_mem *mem, struct hs_arena *a, uint64_t p,
			   uint64_t end, bool has_top, const struct freeref *refs, size_t nrefs, size_t *ri,
			   struct hs_chunks_hist *hist)
{
	return walk_range(win, ring, mem, a, p, end, has_top, refs, nrefs, ri, hist, NULL, NULL);
}

/* One heap's range [start, end), to top when has_top: copied by the ring's
 * thread when there is a ring buffer, walked, the thread joined. */
static int walk_heap(struct window *win, unsigned char *ringbuf, struct hs_mem *mem, struct hs_arena *a,
		     uint64_t start, uint64_t end, bool has_top, const struct freeref *refs, size_t nrefs, size_t *ri,
		     struct hs_chunks_hist *hist, hs_chunk_fn fn, void *ctx)
{
	struct ring ring;
	/* the headers lie below top (or end): the pages up to there */
	uint64_t last = has_top && a->top < end ? a->top : end;
	ring_start(&ring, ringbuf, mem, start & ~(uint64_t)4095, (last + 4095) & ~(uint64_t)4095);
	int r = hist ? walk_range_hist(win, &ring, mem, a, start, end, has_top, refs, nrefs, ri, hist)
		     : walk_range_fn(win, &ring, mem, a, start, end, has_top, refs, nrefs, ri, fn, ctx);
	ring_stop(&ring);
	return r;
}

static int walk(struct hs_heap *h, struct hs_mem *mem, struct hs_arena *a, uint64_t only_heap, hs_chunk_fn fn,
		void *ctx, struct hs_chunks_hist *hist, unsigned char *ringbuf)
{
	if (!h->initialized || !a->nheaps)
		return 0;
	size_t nrefs, ri = 0;
	struct freeref *refs = free_refs(h, a, &nrefs);
	if (!refs)
		return -ENOMEM;
	const struct hs_layout *l = h->l;
	struct window *win = malloc(sizeof(*win));
	if (!win) {
		free(refs);
		return -ENOMEM;
	}
	win->base = win->len = 0;
	int r = 0;
	if (a->main) {
		/* sysmalloc aligns the first chunk of the sbrk heap to 16 bytes. */
		if (!a->contiguous) {
			hs_arena_corrupt(a, a->top, "non-contiguous main arena: only its top is known");
		} else if (!only_heap || only_heap == a->heaps[0].addr) {
			uint64_t start = (h->sbrk_base + 15) & ~(uint64_t)15;
			r = walk_heap(win, ringbuf, mem, a, start, a->top + 1, true, refs, nrefs, &ri, hist, fn, ctx);
		}
	} else {
		/* heaps[] holds the newest first; memory order is oldest first */
		for (size_t k = a->nheaps; k-- > 0 && r == 0;) {
			const struct hs_heapseg *s = &a->heaps[k];
			if (only_heap && only_heap != s->addr)
				continue;
			bool first = a->addr == s->addr + (uint64_t)l->hi_sizeof;
			uint64_t start = s->addr + l->hi_sizeof + (first ? (uint64_t)l->ms_sizeof : 0);
			start = (start + 15) & ~(uint64_t)15;
			bool newest = k == 0;
			uint64_t end = newest ? a->top + 1 : s->addr + s->size;
			if (end > s->addr + s->mprotect_size + 1)
				end = s->addr + s->mprotect_size;
			ri = 0;
			r = walk_heap(win, ringbuf, mem, a, start, end, newest, refs, nrefs, &ri, hist, fn, ctx);
		}
	}
	free(win);
	free(refs);
	return r < 0 ? r : 0;
}

int hs_chunks_walk(struct hs_heap *h, struct hs_mem *mem, struct hs_arena *a, uint64_t only_heap, hs_chunk_fn fn,
		   void *ctx)
{
	return walk(h, mem, a, only_heap, fn, ctx, NULL, NULL);
}

int hs_chunks_walk_hist(struct hs_heap *h, struct hs_mem *mem, struct hs_arena *a, uint64_t only_heap,
			struct hs_chunks_hist *hist)
{
	return walk(h, mem, a, only_heap, NULL, NULL, hist, NULL);
}

/* The chunks of one mapping: a chain of mmapped chunks from its start
 * (prev_size 0, or the memalign offset from the mapping start).  With
 * pages, the chain is skipped (counted already) and every later page
 * boundary is tried too: the kernel merges an mmapped chunk with an
 * adjacent anonymous mapping of the same protection (another chunk placed
 * below it, a plain mmap), so a chunk need not start its mapping.  There a
 * header must be exactly what sysmalloc writes: prev_size 0, IS_MMAPPED
 * alone among the flags, a page-multiple size that fits the mapping. */
static int mmapped_scan(const struct hs_mapping *m, struct hs_mem *mem, hs_chunk_fn fn, void *ctx, uint64_t *count,
			uint64_t *bytes, bool pages, uint64_t want_n, uint64_t want_bytes)
{
	uint64_t p = m->start;
	bool chain = true;
	while (p + 16 <= m->end) {
		if (pages && !chain && *count >= want_n && *bytes >= want_bytes)
			return 0;
		uint64_t hdr[2];
		bool ok = hs_mem_read(mem, p, hdr, sizeof(hdr)) == 0;
		uint64_t cs = HS_CHUNKSIZE(hdr[1]);
		if (ok && chain)
			ok = (hdr[1] & HS_IS_MMAPPED) && !(hdr[1] & HS_NON_MAIN_ARENA) && !(hdr[0] & 0xfff) &&
			     cs >= 4096 && !(cs & 0xfff) && p + cs <= m->end;
		else if (ok)
			ok = hdr[0] == 0 && (hdr[1] & 7) == HS_IS_MMAPPED && cs >= 4096 && !(cs & 0xfff) &&
			     p + cs <= m->end && p + cs > p;
		if (!ok) {
			if (!pages)
				break;
			chain = false;
			p = (p + 4096) & ~(uint64_t)4095;
			continue;
		}
		if (!pages || !chain) {
			struct hs_chunk c = { p + hdr[0], cs, hdr[1], HS_CHUNK_MMAPPED, -1, 0 };
			(*count)++;
			*bytes += cs + hdr[0];
			if (fn && fn(ctx, &c))
				return 1;
		}
		p += cs;
	}
	return 0;
}

int hs_chunks_mmapped_in(const struct hs_mapping *m, struct hs_mem *mem, hs_chunk_fn fn, void *ctx, uint64_t *count,
			 uint64_t *bytes)
{
	return mmapped_scan(m, mem, fn, ctx, count, bytes, false, 0, 0);
}

int hs_chunks_mmapped(const struct hs_maps *maps, const struct hs_heap *h, struct hs_mem *mem, hs_chunk_fn fn,
		      void *ctx, uint64_t *count, uint64_t *bytes)
{
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_mapping *m = &maps->v[i];
		if (!hs_mapping_anon(m) || m->perms[0] != 'r')
			continue;
		bool heap = false;
		for (size_t a = 0; h && a < h->narenas && !heap; a++)
			for (size_t k = 0; k < h->arenas[a].nheaps && !heap; k++)
				heap = m->start < h->arenas[a].heaps[k].addr + h->arenas[a].heaps[k].reserved &&
				       m->end > h->arenas[a].heaps[k].addr;
		if (heap)
			continue;
		if (hs_chunks_mmapped_in(m, mem, fn, ctx, count, bytes))
			return 1;
	}
	/* Fewer than mp_ counts: some chunk does not start its mapping; look
	 * at every page boundary of each candidate mapping until the figures
	 * are reached.  Only then, so a process whose chunks all start their
	 * mappings costs no more reads. */
	if (!h || h->n_mmaps <= 0 || (*count >= (uint64_t)h->n_mmaps && *bytes >= h->mmapped_mem))
		return 0;
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_mapping *m = &maps->v[i];
		if (*count >= (uint64_t)h->n_mmaps && *bytes >= h->mmapped_mem)
			break;
		if (!hs_mapping_anon(m) || m->perms[0] != 'r')
			continue;
		bool heap = false;
		for (size_t a = 0; a < h->narenas && !heap; a++)
			for (size_t k = 0; k < h->arenas[a].nheaps && !heap; k++)
				heap = m->start < h->arenas[a].heaps[k].addr + h->arenas[a].heaps[k].reserved &&
				       m->end > h->arenas[a].heaps[k].addr;
		if (heap)
			continue;
		if (mmapped_scan(m, mem, fn, ctx, count, bytes, true, (uint64_t)h->n_mmaps, h->mmapped_mem))
			return 1;
	}
	return 0;
}

/* ---- every chunk of a walk, kept ------------------------------------------------- */


static int collect_chunk(void *vctx, const struct hs_chunk *c)
{
	struct hs_chunks_set *k = vctx;
	if (k->n == k->cap) {
		/* mremap moves pages instead of copying them: this runs while
		 * the target is stopped */
		size_t ncap = k->cap ? k->cap * 2 : 65536;
		void *nv = k->cap ? mremap(k->v, k->cap * sizeof(*k->v), ncap * sizeof(*k->v), MREMAP_MAYMOVE)
				  : mmap(NULL, ncap * sizeof(*k->v), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (nv == MAP_FAILED)
			return -1;
		k->v = nv;
		k->cap = ncap;
	}
	k->v[k->n++] = *c;
	return 0;
}

/* Which arena (and heap) --arena / --heap mean, once the heaps are known. */
static int resolve(struct hs_chunks_set *k, struct hs_heap *h, struct hs_err *err)
{
	if (k->resolved)
		return 0;
	k->resolved = true;
	k->only = k->user_only;
	if (k->heap_addr) {
		struct hs_arena *a = hs_heap_arena_of(h, k->heap_addr);
		bool found = false;
		for (size_t i = 0; a && i < a->nheaps; i++)
			if (k->heap_addr >= a->heaps[i].addr && k->heap_addr - a->heaps[i].addr < a->heaps[i].reserved) {
				k->heap_start = a->heaps[i].addr;
				k->only = a->index;
				found = true;
			}
		if (!found)
			return hs_err_set(err, EINVAL, "0x%" PRIx64 " is in no malloc heap", k->heap_addr);
	}
	if (k->only >= 0 && (size_t)k->only >= h->narenas)
		return hs_err_set(err, EINVAL, "no arena %ld: the process has %zu", k->only, h->narenas);
	return 0;
}

/* Right after an arena's lists, while its pages are cached. */
int hs_chunks_collect_arena(void *vctx, struct hs_mem *mem, struct hs_heap *h, struct hs_arena *a, struct hs_err *err)
{
	struct hs_chunks_set *k = vctx;
	if (a->index == 0) {
		/* a new walk (the snapshot retries when an arena was locked) */
		k->n = k->narenas = 0;
		k->mm_n = k->mm_b = 0;
		k->resolved = false;
	}
	int r = resolve(k, h, err);
	if (r < 0)
		return r;
	if ((k->only >= 0 && k->only != a->index) || k->narenas >= 1024)
		return 0;
	if (k->histogram) {
		if (!k->hist && !(k->hist = calloc(1024, sizeof(*k->hist))))
			return hs_err_set(err, ENOMEM, "out of memory");
		memset(&k->hist[k->narenas], 0, sizeof(k->hist[0]));
		if (walk(h, mem, a, k->heap_start, NULL, NULL, &k->hist[k->narenas], hs_chunks_set_prepare(k)) != 0)
			return hs_err_set(err, ENOMEM, "out of memory");
	} else if (walk(h, mem, a, k->heap_start, collect_chunk, k, NULL, hs_chunks_set_prepare(k)) != 0)
		return hs_err_set(err, ENOMEM, "out of memory");
	k->arena_idx[k->narenas] = a->index;
	k->arena_end[k->narenas++] = k->n;
	return 0;
}

int hs_chunks_collect_mmapped(struct hs_chunks_set *k, const struct hs_maps *maps, struct hs_heap *h,
			      struct hs_mem *mem, struct hs_err *err)
{
	int r = resolve(k, h, err);
	if (r < 0)
		return r;
	if (k->only < 0 && hs_chunks_mmapped(maps, h, mem, collect_chunk, k, &k->mm_n, &k->mm_b) != 0)
		return hs_err_set(err, ENOMEM, "out of memory");
	return 0;
}

unsigned char *hs_chunks_set_prepare(struct hs_chunks_set *k)
{
	if (!k->ring) {
		void *b = mmap(NULL, RING_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b == MAP_FAILED)
			return NULL;
		madvise(b, RING_BYTES, MADV_HUGEPAGE);
		madvise(b, RING_BYTES, MADV_POPULATE_WRITE);
		k->ring = b;
	}
	return k->ring;
}

void hs_chunks_set_release(struct hs_chunks_set *k)
{
	if (k->ring)
		munmap(k->ring, RING_BYTES);
	k->ring = NULL;
	if (k->v)
		munmap(k->v, k->cap * sizeof(*k->v));
	k->v = NULL;
	k->n = k->cap = 0;
	free(k->hist);
	k->hist = NULL;
}

/* ---- sums after the walk ----------------------------------------------------------- */

void hs_chunks_hist_add(struct hs_chunks_hist *hist, const struct hs_chunk *c)
{
	if (c->state != HS_CHUNK_MMAPPED && c->state != HS_CHUNK_TOP && c->state != HS_CHUNK_FENCEPOST) {
		hist_add(hist, c->state, c->size);
		return;
	}
	hist->n[c->state]++;
	hist->bytes[c->state] += c->size;
	if (c->state != HS_CHUNK_MMAPPED)
		return;             /* top and fenceposts: by state only */
	struct hs_chunks_class *k = &hist->cls[128];
	k->n[0]++;
	k->bytes[0] += c->size;
	k->lo[0] = min_u64(k->lo[0] - 1, c->size - 1) + 1;
	k->hi[0] = k->hi[0] > c->size ? k->hi[0] : c->size;
}

void hs_chunks_hist_merge(struct hs_chunks_hist *dst, const struct hs_chunks_hist *src)
{
	for (int q = 0; q <= HS_CHUNK_MMAPPED; q++) {
		dst->n[q] += src->n[q];
		dst->bytes[q] += src->bytes[q];
	}
	for (int q = 0; q < 129; q++)
		for (int f = 0; f < 2; f++) {
			struct hs_chunks_class *d = &dst->cls[q];
			const struct hs_chunks_class *s = &src->cls[q];
			if (!s->n[f])
				continue;
			d->lo[f] = min_u64(d->lo[f] - 1, s->lo[f] - 1) + 1;
			d->hi[f] = d->hi[f] > s->hi[f] ? d->hi[f] : s->hi[f];
			d->n[f] += s->n[f];
			d->bytes[f] += s->bytes[f];
		}
}

size_t hs_first_string(const unsigned char *buf, size_t len, unsigned min, char *out, size_t outsz)
{
	size_t run = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && (buf[i] == '\t' || (buf[i] >= 0x20 && buf[i] <= 0x7e))) {
			run++;
			continue;
		}
		if (run >= min) {
			size_t n = run < outsz - 1 ? run : outsz - 1;
			memcpy(out, buf + i - run, n);
			out[n] = '\0';
			return n;
		}
		run = 0;
	}
	return 0;
}

size_t hs_chunk_first_string(struct hs_mem *mem, const struct hs_chunk *c, unsigned min, char *out, size_t outsz)
{
	unsigned char buf[4096];
	uint64_t len = c->size > 16 ? c->size - 16 : 0;
	if (len > sizeof(buf))
		len = sizeof(buf);
	if (!len || hs_mem_read(mem, c->addr + 16, buf, len) < 0)
		return 0;
	return hs_first_string(buf, len, min, out, outsz);
}

void hs_chunks_set_sum(const struct hs_chunks_set *k, const struct hs_heap *h, struct hs_chunks_sum *sum,
		       struct hs_chunks_hist *all)
{
	size_t at = 0;
	for (size_t w = 0; w < k->narenas; w++) {
		const struct hs_arena *a = &h->arenas[k->arena_idx[w]];
		struct hs_chunks_sum *s = &sum[w];
		memset(s, 0, sizeof(*s));
		s->index = a->index;
		if (k->histogram) {
			memcpy(s->n, k->hist[w].n, sizeof(s->n));
			memcpy(s->bytes, k->hist[w].bytes, sizeof(s->bytes));
			hs_chunks_hist_merge(all, &k->hist[w]);
		}
		for (; at < k->arena_end[w]; at++) {
			s->n[k->v[at].state]++;
			s->bytes[k->v[at].state] += k->v[at].size;
			hs_chunks_hist_add(all, &k->v[at]);
		}
		/* Every chunk the lists hold must be met on the walk. */
		s->unmet = !k->heap_addr && !a->status && (a->contiguous || !a->main) &&
			   (s->n[HS_CHUNK_BIN] != a->bin_count || s->n[HS_CHUNK_FAST] != a->fast_count);
	}
	for (; at < k->n; at++)         /* the mmapped chunks */
		hs_chunks_hist_add(all, &k->v[at]);
}

bool hs_chunk_is_free(enum hs_chunk_state s)
{
	return s == HS_CHUNK_BIN || s == HS_CHUNK_FAST || s == HS_CHUNK_TCACHE;
}

bool hs_chunk_kept(const struct hs_chunk *c, enum hs_chunks_filter f)
{
	if (f == HS_CHUNKS_USED)
		return c->state == HS_CHUNK_USED || c->state == HS_CHUNK_MMAPPED;
	return f != HS_CHUNKS_FREE || hs_chunk_is_free(c->state);
}

bool hs_chunks_class_kept(const struct hs_chunks_class *kl, enum hs_chunks_filter f, bool in[2], uint64_t *lo,
			  uint64_t *hi)
{
	in[0] = f != HS_CHUNKS_FREE && kl->n[0];
	in[1] = f != HS_CHUNKS_USED && kl->n[1];
	*lo = in[0] && (!in[1] || kl->lo[0] < kl->lo[1]) ? kl->lo[0] : kl->lo[1];
	*hi = in[0] && (!in[1] || kl->hi[0] > kl->hi[1]) ? kl->hi[0] : kl->hi[1];
	return in[0] || in[1];
}

/* The class is the key's first three digits. */
void hs_chunks_top_add(struct hs_strtab *t, const struct hs_chunk *c, const char *s)
{
	char key[300];
	int kl = snprintf(key, sizeof(key), "%03d%s", c->state == HS_CHUNK_MMAPPED ? 128 : hs_bin_index(c->size), s);
	hs_strtab_add(t, key, (size_t)kl < sizeof(key) ? (size_t)kl : sizeof(key) - 1, c->size);
}

int hs_chunks_top_class(const struct hs_strent *e, long k, long per[129])
{
	int c = atoi((char[4]){ e->s[0], e->s[1], e->s[2], 0 });
	return c < 0 || c > 128 || per[c]++ >= k ? -1 : c;
}
