#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump.h"
#include "format.h"
#include "proc.h"
#include "session.h"
#include "thread.h"

#define BLOCK (1u << 20)
#define PAGE  4096u
#define HUGE  ((size_t)2 << 20)
/* mapped bytes from which two threads read while the target is stopped */
#define SPLIT_MIN ((uint64_t)8 << 20)

static int mapped_walk(const struct hs_maps *maps, int pagemap_fd, uint64_t start, uint64_t end, uint64_t want,
		       uint64_t *bytes, uint64_t *at);

/* ---- ranges ------------------------------------------------------------------ */

int hs_parse_size(const char *s, uint64_t *v)
{
	char *end;
	if (!*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (*end || (shift && x > (UINT64_MAX >> shift)))
		return -EINVAL;
	*v = (uint64_t)x << shift;
	return 0;
}

bool hs_range_needs_heap(const char *spec)
{
	return !strncmp(spec, "arena:", 6) || !strncmp(spec, "heap:", 5);
}

static int push(struct hs_ranges *r, uint64_t start, uint64_t end, const char *what)
{
	struct hs_range *nv = realloc(r->v, (r->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	r->v = nv;
	nv[r->n].start = start;
	nv[r->n].end = end;
	snprintf(nv[r->n].what, sizeof(nv[r->n].what), "%s", what);
	r->n++;
	return 0;
}

static bool touches_mapping(const struct hs_maps *maps, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < maps->n; i++)
		if (maps->v[i].start < end && maps->v[i].end > start)
			return true;
	return false;
}

static int push_heap(struct hs_ranges *out, const struct hs_arena *a, const struct hs_heapseg *s)
{
	char what[96];
	snprintf(what, sizeof(what), "arena %d heap 0x%" PRIx64, a->index, s->addr);
	/* The readable part: a thread heap's reserve past mprotect_size is
	 * PROT_NONE. */
	return push(out, s->addr, s->addr + s->mprotect_size, what);
}

/* arena:N, N an index: digits only (no sign, no -1). */
static int check_arena(const char *spec, struct hs_err *err)
{
	const char *p = spec + 6;
	size_t len = strlen(p);
	if (!len || len > 9 || strspn(p, "0123456789") != len)
		return hs_err_set(err, EINVAL, "'%s': arena:N takes an arena index (0, 1, ...)", spec);
	return 0;
}

/* ADDR, ADDR-END or ADDR+LEN: [*a, *b) and *span, or ADDR alone. */
static int parse_span(const char *spec, uint64_t *a, uint64_t *b, bool *span, struct hs_err *err)
{
	const char *dash = strchr(spec, '-'), *plus = strchr(spec, '+');
	char lhs[64];
	const char *sep = dash ? dash : plus;
	size_t ll = sep ? (size_t)(sep - spec) : strlen(spec);
	if (ll >= sizeof(lhs))
		return hs_err_set(err, EINVAL, "'%s' is not a range", spec);
	memcpy(lhs, spec, ll);
	lhs[ll] = '\0';
	if (hs_parse_size(lhs, a) < 0 || (sep && hs_parse_size(sep + 1, b) < 0))
		return hs_err_set(err, EINVAL,
				  "'%s' is not a range (0xSTART-0xEND, 0xSTART+LEN, arena:N, heap:ADDR, [heap], "
				  "[stack], a mapping's start or a mapped file)", spec);
	*span = sep != NULL;
	if (!sep)
		return 0;
	if (plus && !dash) {
		if (*b == 0)
			return hs_err_set(err, EINVAL, "'%s': the length is 0", spec);
		if (*a + *b < *a)
			return hs_err_set(err, EINVAL, "'%s' overflows the address space", spec);
		*b = *a + *b;
	}
	if (*b <= *a)
		return hs_err_set(err, EINVAL, "'%s': the end is not after the start", spec);
	return 0;
}

int hs_range_check(const char *spec, struct hs_err *err)
{
	uint64_t a, b;
	bool span;
	if (!strncmp(spec, "arena:", 6))
		return check_arena(spec, err);
	if (!strncmp(spec, "heap:", 5))
		return hs_parse_size(spec + 5, &a) < 0
			       ? hs_err_set(err, EINVAL, "'%s': heap:ADDR takes an address", spec) : 0;
	if (spec[0] == '[' || spec[0] == '/')
		return 0;
	return parse_span(spec, &a, &b, &span, err);
}

int hs_range_resolve(const char *spec, const struct hs_maps *maps, const struct hs_heap *h,
		     struct hs_ranges *out, struct hs_err *err)
{
	out->n = 0;
	out->v = NULL;
	int r = 0;
	uint64_t a, b;
	if (!strncmp(spec, "arena:", 6)) {
		if ((r = check_arena(spec, err)) < 0)
			return r;
		unsigned long n = strtoul(spec + 6, NULL, 10);
		if (!h || n >= h->narenas)
			return hs_err_set(err, EINVAL, "no arena %lu: the process has %zu (see heapscope arenas)", n,
					  h ? h->narenas : 0);
		const struct hs_arena *ar = &h->arenas[n];
		for (size_t k = 0; k < ar->nheaps && r == 0; k++)
			r = push_heap(out, ar, &ar->heaps[k]);
		if (r == 0 && out->n == 0)
			return hs_err_set(err, EINVAL, "arena %lu has no heap yet", n);
	} else if (!strncmp(spec, "heap:", 5)) {
		if (hs_parse_size(spec + 5, &a) < 0)
			return hs_err_set(err, EINVAL, "'%s': heap:ADDR takes an address", spec);
		for (size_t i = 0; h && i < h->narenas && !out->n && r == 0; i++)
			for (size_t k = 0; k < h->arenas[i].nheaps && !out->n && r == 0; k++) {
				const struct hs_heapseg *s = &h->arenas[i].heaps[k];
				if (a >= s->addr && a - s->addr < s->reserved)
					r = push_heap(out, &h->arenas[i], s);
			}
		if (r == 0 && !out->n)
			return hs_err_set(err, EINVAL, "0x%" PRIx64 " is in no malloc heap", a);
	} else if (spec[0] == '[' || spec[0] == '/') {
		for (size_t i = 0; i < maps->n && r == 0; i++)
			if (!strcmp(maps->v[i].path, spec))
				r = push(out, maps->v[i].start, maps->v[i].end, spec);
		if (r == 0 && !out->n)
			return hs_err_set(err, EINVAL, "'%s' is not mapped in the process", spec);
	} else {
		bool span;
		if ((r = parse_span(spec, &a, &b, &span, err)) < 0)
			return r;
		if (!span) {
			for (size_t i = 0; i < maps->n && !out->n && r == 0; i++)
				if (maps->v[i].start == a)
					r = push(out, maps->v[i].start, maps->v[i].end,
						 maps->v[i].path[0] ? maps->v[i].path : "mapping");
			if (r == 0 && !out->n)
				return hs_err_set(err, EINVAL, "no mapping starts at 0x%" PRIx64, a);
		} else {
			if (!touches_mapping(maps, a, b))
				return hs_err_set(err, EINVAL, "0x%" PRIx64 "-0x%" PRIx64 " is outside every mapping", a, b);
			r = push(out, a, b, "range");
		}
	}
	if (r < 0) {
		hs_ranges_release(out);
		return hs_err_set(err, -r, "out of memory");
	}
	return 0;
}

void hs_ranges_release(struct hs_ranges *r)
{
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

/* ---- a dump: the stop, the capture, the resume ------------------------------------ */

struct capture {
	struct hs_dump *d;
	const struct hs_dump_sink *sink;
	void *ctx;
	struct hs_session *ses;
	/* while the target is stopped: what was read (bytes, runs of zeros,
	 * gaps, ends of ranges), handed on after it runs again */
	bool capturing;
	unsigned char *cap;
	size_t caplen, capsize;
	struct capseg {
		enum segkind { SEG_DATA, SEG_ZEROS, SEG_SKIP, SEG_END } kind;
		uint64_t addr, len;
		size_t off;              /* SEG_DATA: where in cap */
		const char *why;         /* SEG_SKIP */
	} *segs;
	size_t nsegs;
	bool over;               /* the stop reached its limits */
	uint64_t resume;         /* ... at this address */
	bool helper;             /* the second thread's part: never calls the sink */
	atomic_bool *cancel;     /* the helper's: set when the first thread's share ended early */
	bool nomem;              /* ... which could not record a gap */
	void *map;               /* the mapping holding cap */
	size_t maplen;
};

/* The second thread of a stop: it prefaults its part of the capture before
 * the stop, then, while the target is stopped, reads its share of the
 * ranges (from range `range` at `from` to the end) into it.  Its capture is
 * handed on after the first thread's, or dropped if the first one's stop
 * reached its limits. */
struct helper {
	pthread_t t;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int go;                  /* 0: wait; 1: read; -1: end */
	bool ready;              /* its part faulted in */
	atomic_bool cancel;      /* its reads end at the next piece (its c.cancel points here) */
	struct capture c;        /* its part: cap, segs, over and resume */
	struct hs_mem *mem;
	unsigned char *popat;    /* where to fault in its part (a page) */
	size_t pop;              /* ... and how many bytes */
	size_t range;            /* its share begins in this range ... */
	uint64_t from;           /* ... at this address */
	size_t at;               /* the range it reached */
	int r;
	struct hs_err err;
};

int hs_dump_open(pid_t pid, const char *spec, const struct hs_dump_opts *o, struct hs_dump *d, struct hs_err *err)
{
	memset(d, 0, sizeof(*d));
	d->pid = pid;
	d->freeze = o->freeze;
	d->s.pagemap_fd = -1;
	bool heap = hs_range_needs_heap(spec);
	int r;
	if (heap) {
		/* the arenas are walked for arena:N and heap:ADDR */
		struct hs_snapshot_opts so;
		hs_snapshot_opts_default(&so);
		so.use_debuginfo = o->use_debuginfo;
		so.use_debuginfod = o->use_debuginfod;
		so.residency = false;
		so.walk = 0;
		so.freeze = true;
		r = hs_snapshot_take(pid, &so, &d->s, err);
	} else {
		r = hs_proc_check(pid, o->freeze, NULL, err);
		/* the stop checks that these maps are still the program's */
		if (r == 0)
			hs_session_pin_image(pid);
		if (r == 0)
			r = hs_maps_read(pid, false, &d->s.maps, err);
		if (r == 0) {
			r = hs_mem_open_pid(pid, &d->s.mem, err);
			d->s.pagemap_fd = hs_proc_pagemap_open(pid, NULL);
		}
	}
	if (r == 0)
		r = hs_range_resolve(spec, &d->s.maps, heap ? &d->s.heap : NULL, &d->ranges, err);
	/* For arena:N the cache of the walk is not what we want to stream
	 * through: read the process directly. */
	if (r == 0 && heap)
		r = hs_mem_open_pid(pid, &d->direct, err);
	for (size_t i = 0; r == 0 && i < d->ranges.n; i++)
		d->total += d->ranges.v[i].end - d->ranges.v[i].start;
	return r;
}

void hs_dump_close(struct hs_dump *d)
{
	hs_mem_close(d->direct);
	d->direct = NULL;
	hs_ranges_release(&d->ranges);
	hs_snapshot_release(&d->s);
}

static int zeros_out(struct capture *c, uint64_t addr, uint64_t len)
{
	static const unsigned char zero[64 << 10];
	int r = 0;
	for (uint64_t off = 0; off < len && r == 0; off += sizeof(zero))
		r = c->sink->data(c->ctx, addr + off, zero, len - off < sizeof(zero) ? (size_t)(len - off) : sizeof(zero));
	return r;
}

/* Record a piece of the capture, merged with the last one if it goes on
 * from it.  -ENOMEM if the list cannot grow. */
static int capture_seg(struct capture *c, enum segkind kind, uint64_t addr, uint64_t len, const char *why)
{
	struct capseg *last = c->nsegs ? &c->segs[c->nsegs - 1] : NULL;
	if (last && last->kind == kind && (kind == SEG_DATA || kind == SEG_ZEROS) && last->addr + last->len == addr) {
		last->len += len;
		return 0;
	}
	struct capseg *ns = realloc(c->segs, (c->nsegs + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	c->segs = ns;
	ns[c->nsegs++] = (struct capseg){ .kind = kind, .addr = addr, .len = len, .off = c->caplen, .why = why };
	return 0;
}

/* Has the stop reached its limits (if len more bytes were held)? */
static bool stop_over(struct capture *c, uint64_t addr, size_t len)
{
	if (c->caplen + len <= c->capsize && hs_session_pause_us(c->ses) <= HS_DUMP_STOP_MAX_US &&
	    !(c->cancel && atomic_load_explicit(c->cancel, memory_order_relaxed)))
		return false;
	c->over = true;
	c->resume = addr;
	return true;
}

/* Bytes read, to the sink: buf is ours (the capture, or the stream's
 * buffer), so the sink may change it if it wants to. */
static int deliver(struct capture *c, uint64_t addr, unsigned char *buf, size_t len)
{
	if (c->sink->own)
		return c->sink->own(c->ctx, addr, buf, len);
	return c->sink->data(c->ctx, addr, buf, len);
}

static int on_data(void *ctx, uint64_t addr, const unsigned char *buf, size_t len)
{
	struct capture *c = ctx;
	/* hs_stream_range hands on bytes of its own buffer or of the capture */
	if (!c->capturing)
		return deliver(c, addr, (unsigned char *)buf, len);
	if (stop_over(c, addr, len))
		return -EAGAIN;
	int r = capture_seg(c, SEG_DATA, addr, len, NULL);
	if (r < 0)
		return r;
	if (buf != c->cap + c->caplen)
		memcpy(c->cap + c->caplen, buf, len);
	c->caplen += len;
	return 0;
}

static int on_zeros(void *ctx, uint64_t addr, uint64_t len)
{
	struct capture *c = ctx;
	if (!c->capturing)
		return zeros_out(c, addr, len);
	if (stop_over(c, addr, 0))
		return -EAGAIN;
	return capture_seg(c, SEG_ZEROS, addr, len, NULL);
}

static void on_skip(void *ctx, uint64_t addr, uint64_t len, const char *why)
{
	struct capture *c = ctx;
	/* why is a static string of this file: it outlives the capture */
	if (c->capturing && capture_seg(c, SEG_SKIP, addr, len, why) == 0)
		return;
	if (c->helper)
		c->nomem = true;
	else
		c->sink->skip(c->ctx, addr, len, why);
}

/* Capture: read straight into the buffer (on_data then only records). */
static unsigned char *capture_dest(void *ctx, size_t len)
{
	struct capture *c = ctx;
	return c->capturing && c->caplen + len <= c->capsize ? c->cap + c->caplen : NULL;
}

/* The target runs again: hand on what was captured, in order. */
static int flush_capture(struct capture *c)
{
	int r = 0;
	for (size_t i = 0; i < c->nsegs && r == 0; i++) {
		const struct capseg *g = &c->segs[i];
		switch (g->kind) {
		case SEG_DATA: r = deliver(c, g->addr, c->cap + g->off, g->len); break;
		case SEG_ZEROS: r = zeros_out(c, g->addr, g->len); break;
		case SEG_SKIP: c->sink->skip(c->ctx, g->addr, g->len, g->why); break;
		case SEG_END: c->sink->end(c->ctx); break;
		}
	}
	c->nsegs = 0;
	c->caplen = 0;
	return r;
}

static void note(struct capture *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct capture *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->sink->note(c->ctx, msg);
}

static size_t huge_up(uint64_t n)
{
	return (size_t)((n + HUGE - 1) & ~(uint64_t)(HUGE - 1));
}

static int capture_share(struct capture *c, struct hs_mem *mem, size_t i, uint64_t from, size_t j, uint64_t to,
			 size_t *at, struct hs_err *err);

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	/* its part faulted in while the first thread does the other */
	if (h->pop)
		madvise(h->popat, h->pop, MADV_POPULATE_WRITE);
	pthread_mutex_lock(&h->mu);
	h->ready = true;
	pthread_cond_broadcast(&h->cv);
	while (!h->go)
		pthread_cond_wait(&h->cv, &h->mu);
	int go = h->go;
	pthread_mutex_unlock(&h->mu);
	if (go > 0)
		h->r = capture_share(&h->c, h->mem, h->range, h->from, h->c.d->ranges.n, 0, &h->at, &h->err);
	return NULL;
}

static void helper_go(struct helper *h, int go)
{
	pthread_mutex_lock(&h->mu);
	h->go = go;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* Its part faulted in: the stop waits for that, or the target would wait
 * for the kernel to zero the helper's pages. */
static void helper_ready(struct helper *h)
{
	if (!h->started)
		return;
	pthread_mutex_lock(&h->mu);
	while (!h->ready)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

/* The helper told to end if it waits, and joined; on every path. */
static void helper_end(struct helper *h)
{
	if (h->started) {
		helper_go(h, -1);
		pthread_join(h->t, NULL);
		h->started = false;
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
	}
	hs_mem_close(h->mem);
	h->mem = NULL;
	free(h->c.segs);
	h->c.segs = NULL;
	h->c.nsegs = 0;
}

/* Where the second thread's share begins: the page where half the mapped
 * bytes are behind, in range *ri.  false when it cannot be told. */
static bool split_point(struct hs_dump *d, uint64_t mapped, size_t *ri, uint64_t *at, uint64_t *before)
{
	uint64_t want = mapped / 2, seen = 0;
	for (size_t i = 0; i < d->ranges.n; i++) {
		uint64_t m, a = 0;
		mapped_walk(&d->s.maps, d->s.pagemap_fd, d->ranges.v[i].start, d->ranges.v[i].end,
			    want > seen ? want - seen : 0, &m, &a);
		if (seen + m >= want && a) {
			*ri = i;
			*at = a;
			*before = seen + m;
			return true;
		}
		seen += m;
	}
	return false;
}

/* The bytes of [start, end) in readable mappings. */
static uint64_t readable_bytes(const struct hs_maps *maps, uint64_t start, uint64_t end)
{
	uint64_t n = 0;
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_mapping *m = &maps->v[i];
		uint64_t a = m->start > start ? m->start : start, b = m->end < end ? m->end : end;
		if (a < b && m->perms[0] == 'r')
			n += b - a;
	}
	return n;
}

/* Room to hold the mapped part of the ranges while the target is
 * stopped, if it fits one stop: a range over gaps may be huge and hold
 * little.  From SPLIT_MIN on two CPUs, two parts, the second one's thread
 * started (h). */
static int capture_alloc(struct capture *c, struct helper *h, struct hs_err *err)
{
	struct hs_dump *d = c->d;
	uint64_t mapped = 0;
	for (size_t i = 0; i < d->ranges.n; i++) {
		uint64_t m;
		hs_range_mapped(&d->s.maps, d->s.pagemap_fd, d->ranges.v[i].start, d->ranges.v[i].end, &m);
		mapped += m;
	}
	if (mapped > HS_DUMP_CAPTURE_MAX) {
		char a[HS_SIZE_BUF], b[HS_SIZE_BUF];
		note(c, "%s of the range is mapped, more than one stop may hold (%s): reading it while the target runs, "
		     "so the output is not one consistent snapshot", hs_fmt_size(mapped, a),
		     hs_fmt_size(HS_DUMP_CAPTURE_MAX, b));
		d->freeze = false;
		return 0;
	}
	/* two parts: the first thread's share up to the page where half
	 * the mapped bytes are behind, the second's from there */
	uint64_t mapped0 = mapped;
	size_t part = 0;
	bool split = mapped >= SPLIT_MIN && hs_cpus() >= 2 && split_point(d, mapped, &h->range, &h->from, &mapped0) &&
		     hs_mem_open_pid(d->pid, &h->mem, NULL) == 0;
	if (!split)
		mapped0 = mapped;
	/* room for some growth before the stop, in each part */
	uint64_t want = mapped + mapped / 4 + (1u << 20);
	if (split) {
		/* The first share all there (a heap): its part is just its size,
		 * so that the second one's goes on from it, and the capture is
		 * one piece for the sink.  Else room for its growth. */
		uint64_t readable0 = 0;
		for (size_t i = 0; i <= h->range; i++)
			readable0 += readable_bytes(&d->s.maps, d->ranges.v[i].start,
						    i == h->range ? h->from : d->ranges.v[i].end);
		part = readable0 == mapped0 ? (size_t)mapped0 : huge_up(mapped0 + mapped0 / 4 + (1u << 20));
		want = part + (mapped - mapped0) + (mapped - mapped0) / 4 + (1u << 20);
	}
	c->capsize = want < HS_DUMP_CAPTURE_MAX ? (size_t)want : HS_DUMP_CAPTURE_MAX;
	if (part >= c->capsize) {
		split = false;
		part = 0;
		mapped0 = mapped;
	}
	/* aligned to huge pages */
	c->maplen = c->capsize + HUGE;
	c->map = mmap(NULL, c->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		hs_mem_close(h->mem);
		h->mem = NULL;
		return hs_err_sys(err, errno, "cannot hold %zu bytes while the target is stopped", c->capsize);
	}
	c->cap = (unsigned char *)(((uintptr_t)c->map + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	/* Faulted in before the stop, in huge pages where possible: what is
	 * mapped now; the room for growth only if the target grows (first-touch
	 * zeroing is a fifth of a dump's time). */
	madvise(c->cap, c->capsize, MADV_HUGEPAGE);
	if (split) {
		h->c = (struct capture){ .d = d, .sink = c->sink, .ctx = c->ctx, .helper = true,
					 .cap = c->cap + part, .capsize = c->capsize - part };
		/* from the page where its part begins */
		size_t pop1 = huge_up(mapped - mapped0) + part % PAGE;
		h->pop = pop1 < h->c.capsize + part % PAGE ? pop1 : h->c.capsize + part % PAGE;
		h->popat = h->c.cap - part % PAGE;
		pthread_mutex_init(&h->mu, NULL);
		pthread_cond_init(&h->cv, NULL);
		/* every signal blocked (thread.h): it lives across the attach
		 * and the whole stop */
		h->started = hs_thread_start(&h->t, helper_main, h);
		if (!h->started) {
			pthread_cond_destroy(&h->cv);
			pthread_mutex_destroy(&h->mu);
			hs_mem_close(h->mem);
			h->mem = NULL;
			part = 0;
			mapped0 = mapped;
		} else {
			c->capsize = part;
		}
	}
	size_t pop = huge_up(mapped0);
	madvise(c->cap, pop < c->capsize ? pop : c->capsize, MADV_POPULATE_WRITE);
	return 0;
}

/* Capture ranges [i, j) of the dump, the first from `from` (0: its start),
 * the last only up to `to` (0: its end, recorded as such).  *at: the range
 * reached; on -EAGAIN with c->over the stop reached its limits there, at
 * c->resume. */
static int capture_share(struct capture *c, struct hs_mem *mem, size_t i, uint64_t from, size_t j, uint64_t to,
			 size_t *at, struct hs_err *err)
{
	struct hs_dump *d = c->d;
	struct hs_stream_ops ops = { .data = on_data, .skip = on_skip, .zeros = on_zeros, .dest = capture_dest };
	int r = 0;
	for (; i < j && r == 0; i++, from = 0) {
		uint64_t a = from ? from : d->ranges.v[i].start;
		uint64_t b = i + 1 == j && to ? to : d->ranges.v[i].end;
		*at = i;
		r = hs_stream_range(mem, &d->s.maps, d->s.pagemap_fd, a, b, &ops, c, err);
		if (r == 0 && c->nomem)
			r = -ENOMEM;
		if (r == 0 && b == d->ranges.v[i].end)
			r = capture_seg(c, SEG_END, b, 0, NULL);
	}
	if (r == 0)
		*at = j;
	return r;
}

/* The stop, read by two threads: this one's share, then the helper's,
 * its captured pieces appended to this one's.  *at as capture_share's. */
static int capture_split(struct capture *c, struct hs_mem *mem, struct helper *h, size_t *at, struct hs_err *err)
{
	struct hs_dump *d = c->d;
	h->c.ses = c->ses;
	h->c.capturing = true;
	atomic_init(&h->cancel, false);
	h->c.cancel = &h->cancel;
	helper_go(h, 1);
	bool part = h->from > d->ranges.v[h->range].start;
	int r = capture_share(c, mem, 0, 0, part ? h->range + 1 : h->range, part ? h->from : 0, at, err);
	/* this share failed or its stop ended: the helper's bytes would be
	 * dropped, so it stops now rather than keep the target stopped */
	if (r < 0)
		atomic_store_explicit(&h->cancel, true, memory_order_relaxed);
	pthread_join(h->t, NULL);
	h->started = false;
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	/* this share's failure, or its stop's end: the helper's bytes are
	 * read again (after the stop, or never) */
	if (r < 0)
		return r;
	if (h->r < 0 && !(h->r == -EAGAIN && h->c.over)) {
		if (h->err.code && err)
			*err = h->err;
		return h->r;
	}
	struct capseg *ns = realloc(c->segs, (c->nsegs + h->c.nsegs) * sizeof(*ns));
	if (!ns && c->nsegs + h->c.nsegs)
		return -ENOMEM;
	c->segs = ns;
	size_t shift = (size_t)(h->c.cap - c->cap);
	for (size_t k = 0; k < h->c.nsegs; k++) {
		struct capseg g = h->c.segs[k], *last = c->nsegs ? &ns[c->nsegs - 1] : NULL;
		g.off += shift;
		/* the bytes go on in the capture from this share's: one piece */
		if (k == 0 && last && g.kind == SEG_DATA && last->kind == SEG_DATA &&
		    last->addr + last->len == g.addr && last->off + last->len == g.off) {
			last->len += g.len;
			continue;
		}
		ns[c->nsegs++] = g;
	}
	if (h->r == -EAGAIN) {
		c->over = true;
		c->resume = h->c.resume;
		*at = h->at;
		return -EAGAIN;
	}
	*at = h->at;
	return 0;
}

/* The stop reached its limits: let the target run, hand on what was
 * read, and read the rest while it runs. */
static int stop_ended(struct capture *c)
{
	char a[HS_SIZE_BUF], b[HS_SIZE_BUF];
	hs_session_detach(c->ses, NULL);
	c->ses = NULL;
	c->d->pause_us = hs_session_last_pause_us();
	c->capturing = false;
	c->d->consistent = false;
	note(c, "the stop reached its limit (%s or %s) at 0x%" PRIx64 ": the rest is read while the target runs, so "
	     "the output is not one consistent snapshot", hs_fmt_size(HS_DUMP_CAPTURE_MAX, a),
	     hs_fmt_us(HS_DUMP_STOP_MAX_US, b), c->resume);
	return flush_capture(c);
}

int hs_dump_run(struct hs_dump *d, const struct hs_dump_sink *sink, void *ctx, struct hs_err *err)
{
	struct capture c = { .d = d, .sink = sink, .ctx = ctx };
	struct helper h = { 0 };
	int r = d->freeze ? capture_alloc(&c, &h, err) : 0;
	helper_ready(&h);
	if (r == 0 && d->freeze)
		r = hs_session_attach(d->pid, 2000, &c.ses, err);
	c.capturing = d->consistent = d->freeze && r == 0;
	struct hs_stream_ops ops = { .data = on_data, .skip = on_skip, .zeros = on_zeros, .dest = capture_dest };
	struct hs_mem *reader = d->direct ? d->direct : d->s.mem;
	size_t i = 0;
	if (c.capturing && h.started) {
		r = capture_split(&c, reader, &h, &i, err);
		if (r == -EAGAIN && c.over)
			r = stop_ended(&c);
	}
	helper_end(&h);
	while (i < d->ranges.n && r == 0) {
		uint64_t from = c.over ? c.resume : d->ranges.v[i].start;
		c.over = false;
		/* while the target runs, read ahead by a second thread */
		r = c.capturing ? hs_stream_range(reader, &d->s.maps, d->s.pagemap_fd, from, d->ranges.v[i].end, &ops,
						  &c, err)
				: hs_stream_range_ahead(d->pid, reader, &d->s.maps, d->s.pagemap_fd, from,
							d->ranges.v[i].end, &ops, &c, err);
		if (r == -EAGAIN && c.over) {
			r = stop_ended(&c);
			continue;
		}
		if (r == 0 && c.capturing)
			r = capture_seg(&c, SEG_END, d->ranges.v[i].end, 0, NULL);
		else if (r == 0)
			sink->end(ctx);
		i++;
	}
	if (c.ses) {
		hs_session_detach(c.ses, NULL);
		d->pause_us = hs_session_last_pause_us();
	}
	/* The target runs again: now hand on what was captured. */
	c.capturing = false;
	if (r == 0)
		r = flush_capture(&c);
	if (c.map)
		munmap(c.map, c.maplen);
	free(c.segs);
	return r;
}

/* ---- a dump's file ---------------------------------------------------------------- */

int hs_dump_file_open(struct hs_dump_file *f, const char *path, bool force, struct hs_err *err)
{
	f->path = path;
	f->tmp = NULL;
	if (force) {
		struct stat st;
		if (lstat(path, &st) == 0) {
			if (S_ISLNK(st.st_mode))
				return hs_err_set(err, ELOOP, "%s is a symbolic link: refusing to write through it", path);
			if (!S_ISREG(st.st_mode))
				return hs_err_set(err, EEXIST, "%s is not a regular file: refusing to replace it", path);
		} else if (errno != ENOENT) {
			return hs_err_sys(err, errno, "cannot create %s", path);
		}
		const char *slash = strrchr(path, '/');
		int dl = slash ? (int)(slash - path + 1) : 0;
		if (asprintf(&f->tmp, "%.*s.heapscope-dump.XXXXXX", dl, path) < 0) {
			f->tmp = NULL;
			return hs_err_set(err, ENOMEM, "out of memory");
		}
		/* mkostemp: O_CREAT | O_EXCL, mode 0600 */
		f->fd = mkostemp(f->tmp, O_CLOEXEC);
		if (f->fd < 0) {
			int e = errno;
			free(f->tmp);
			f->tmp = NULL;
			return hs_err_sys(err, e, "cannot create a temporary file to replace %s", path);
		}
		return 0;
	}
	f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (f->fd < 0 && errno == EEXIST)
		return hs_err_set(err, EEXIST, "%s exists; use --force to replace it", path);
	if (f->fd < 0)
		return hs_err_sys(err, errno, "cannot create %s", path);
	return 0;
}

bool hs_dump_file_discard(struct hs_dump_file *f)
{
	bool removed = false;
	if (f->path && f->fd >= 0 && f->fd != STDOUT_FILENO) {
		close(f->fd);
		f->fd = -1;
		removed = unlink(f->tmp ? f->tmp : f->path) == 0;
	}
	free(f->tmp);
	f->tmp = NULL;
	return removed;
}

int hs_dump_file_commit(struct hs_dump_file *f, struct hs_err *err)
{
	const char *what = "cannot write";
	int e = 0;
	if (fsync(f->fd) < 0 && errno != EINVAL)
		e = errno;
	if (close(f->fd) < 0 && !e)
		e = errno;
	f->fd = -1;
	if (!e && f->tmp && rename(f->tmp, f->path) < 0) {
		e = errno;
		what = "cannot replace";
	}
	if (!e)
		return 0;
	bool removed = unlink(f->tmp ? f->tmp : f->path) == 0;
	return hs_err_set(err, e, "%s %s: %s%s", what, f->path, strerror(e),
			  removed ? " (the partial file was removed)" : "");
}

/* ---- streaming reads ------------------------------------------------------------ */

static bool anon(const struct hs_mapping *m)
{
	return hs_mapping_anon(m) || !strcmp(m->path, "[heap]") || !strcmp(m->path, "[stack]");
}

/* Is the page at pa absent (anonymous, never touched: neither present nor
 * swapped)?  pm holds the pagemap entries from page a/PAGE on, got bytes
 * of them. */
static bool page_absent(const uint64_t *pm, ssize_t got, uint64_t a, uint64_t pa)
{
	uint64_t page = pa / PAGE - a / PAGE;
	return got > 0 && (ssize_t)(page * 8) < got && !(pm[page] >> 62);
}

/* Hand [a, a+len) of one readable mapping on, in runs of pages of one
 * kind: pages the target never touched go to ops->zeros (or to ops->data
 * as zeros) without a read; the rest is read into buf or ops->dest. */
static int stream_block(struct hs_mem *mem, const struct hs_mapping *m, int pagemap_fd, uint64_t a, size_t len,
			unsigned char *buf, const struct hs_stream_ops *ops, void *ctx)
{
	uint64_t pm[BLOCK / PAGE + 2];
	size_t npages = (len + PAGE - 1) / PAGE + 1;
	ssize_t got = -1;
	if (pagemap_fd >= 0 && anon(m))
		got = pread(pagemap_fd, pm, npages * 8, (off_t)(a / PAGE * 8));
	size_t off = 0;
	while (off < len) {
		uint64_t pa = a + off;
		size_t run = PAGE - pa % PAGE;
		if (run > len - off)
			run = len - off;
		bool absent = page_absent(pm, got, a, pa);
		/* extend over pages of the same kind */
		while (off + run < len && page_absent(pm, got, a, a + off + run) == absent)
			run += len - off - run < PAGE ? len - off - run : PAGE;
		int r;
		if (absent && ops->zeros) {
			r = ops->zeros(ctx, pa, run);
		} else {
			unsigned char *dst = ops->dest ? ops->dest(ctx, run) : NULL;
			if (!dst)
				dst = buf;
			if (absent) {
				memset(dst, 0, run);
				r = 0;
			} else {
				r = hs_mem_read(mem, pa, dst, run);
			}
			if (r == -ESRCH)
				return r;
			if (r < 0) {
				/* the mapping changed under us: skip what cannot be read */
				if (ops->skip)
					ops->skip(ctx, pa, run, "unreadable");
				r = 0;
			} else {
				r = ops->data(ctx, pa, dst, run);
			}
		}
		if (r < 0)
			return r;
		off += run;
	}
	return 0;
}

/* hs_range_mapped, stopping at the page where the count reaches want: its
 * address in *at (untouched if it is never reached). */
static int mapped_walk(const struct hs_maps *maps, int pagemap_fd, uint64_t start, uint64_t end, uint64_t want,
		       uint64_t *bytes, uint64_t *at)
{
	uint64_t pm[BLOCK / PAGE];
	*bytes = 0;
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_mapping *m = &maps->v[i];
		uint64_t a = m->start > start ? m->start : start, b = m->end < end ? m->end : end;
		if (a >= b || m->perms[0] != 'r')
			continue;
		if (pagemap_fd < 0 || !anon(m)) {
			if (*bytes + (b - a) >= want) {
				uint64_t p = (a + (want - *bytes)) & ~(uint64_t)(PAGE - 1);
				*at = p > a ? p : a;
				*bytes = want;
				return 0;
			}
			*bytes += b - a;
			continue;
		}
		/* count the pages present or swapped, by whole pages */
		for (uint64_t p = a / PAGE; p < (b + PAGE - 1) / PAGE;) {
			uint64_t n = (b + PAGE - 1) / PAGE - p;
			if (n > BLOCK / PAGE)
				n = BLOCK / PAGE;
			ssize_t got = pread(pagemap_fd, pm, n * 8, (off_t)(p * 8));
			if (got <= 0) {
				/* cannot tell: count what is left as resident */
				*bytes += b - (p * PAGE > a ? p * PAGE : a);
				break;
			}
			for (size_t k = 0; k < (size_t)got / 8; k++)
				if (pm[k] >> 62) {
					uint64_t lo = (p + k) * PAGE, hi = lo + PAGE;
					lo = lo > a ? lo : a;
					if (*bytes >= want) {
						*at = lo;
						return 0;
					}
					*bytes += (hi < b ? hi : b) - lo;
				}
			p += (uint64_t)got / 8;
		}
	}
	return 0;
}

int hs_range_mapped(const struct hs_maps *maps, int pagemap_fd, uint64_t start, uint64_t end, uint64_t *bytes)
{
	uint64_t at;
	return mapped_walk(maps, pagemap_fd, start, end, UINT64_MAX, bytes, &at);
}

int hs_stream_range(struct hs_mem *mem, const struct hs_maps *maps, int pagemap_fd, uint64_t start,
		    uint64_t end, const struct hs_stream_ops *ops, void *ctx, struct hs_err *err)
{
	unsigned char *buf = malloc(BLOCK);
	if (!buf)
		return hs_err_set(err, ENOMEM, "out of memory");
	uint64_t a = start;
	int r = 0;
	while (a < end && r == 0) {
		/* the mapping holding a, or the first one after it */
		const struct hs_mapping *m = NULL;
		for (size_t i = 0; i < maps->n; i++)
			if (maps->v[i].end > a) {
				m = &maps->v[i];
				break;
			}
		if (!m || m->start >= end) {
			if (ops->skip)
				ops->skip(ctx, a, end - a, "unmapped");
			break;
		}
		if (m->start > a) {
			if (ops->skip)
				ops->skip(ctx, a, m->start - a, "unmapped");
			a = m->start;
			continue;
		}
		uint64_t stop = m->end < end ? m->end : end;
		if (m->perms[0] != 'r') {
			if (ops->skip)
				ops->skip(ctx, a, stop - a, "not readable (PROT_NONE)");
			a = stop;
			continue;
		}
		while (a < stop && r == 0) {
			size_t n = stop - a > BLOCK ? BLOCK : (size_t)(stop - a);
			/* keep blocks page-aligned after the first */
			if (a % PAGE && n > PAGE - a % PAGE && stop - a > BLOCK)
				n = BLOCK - a % PAGE;
			r = stream_block(mem, m, pagemap_fd, a, n, buf, ops, ctx);
			if (r == -ESRCH)
				r = hs_err_set(err, ESRCH, "the process exited during the dump");
			a += n;
		}
	}
	free(buf);
	return r;
}
