/* A range read while the target runs, by a second thread ahead of the one
 * that hands it on (dump.h: hs_stream_range_ahead).
 *
 * The reader runs hs_stream_range into a ring of SLOTS buffers of BLOCK
 * bytes, reading straight into them, and records in each what it met, in
 * order (bytes, never-touched pages, parts skipped); this thread replays
 * each slot to the caller's ops, then gives it back.  So the scan or the
 * write of one block runs beside the read of the next ones, and the memory
 * is the ring's, used again and again (no fresh pages to fault in, as a
 * buffer the size of the range would need). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dump.h"
#include "thread.h"

#define SLOTS 4
#define BLOCK (1u << 20)
#define EVENTS 64               /* per slot; a slot is handed on when full */

struct event {
	enum { EV_DATA, EV_ZEROS, EV_SKIP } kind;
	uint64_t addr, len;
	size_t off;              /* EV_DATA: where in the slot's buffer */
	const char *why;         /* EV_SKIP: a static string of dump.c */
};

struct slot {
	unsigned char *buf;
	size_t used;
	struct event ev[EVENTS];
	size_t nev;
};

struct ahead {
	/* the reader's */
	struct hs_mem *mem;
	const struct hs_maps *maps;
	int pagemap_fd;
	uint64_t start, end;
	bool zeros;              /* the caller has ops->zeros */
	int r;
	struct hs_err err;
	size_t fill;             /* the slot it fills */
	/* shared, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t full;             /* slots handed over and not yet given back */
	bool done;               /* the reader has handed over its last slot */
	atomic_bool cancel;      /* the consumer has stopped: the reader stops too */
	struct slot s[SLOTS];
	void *ring;              /* the slots' buffers, in huge pages where it can */
};

#define HUGE ((size_t)2 << 20)
#define RING (SLOTS * (size_t)BLOCK)

/* The slots' buffers: one mapping, 2 MiB-aligned (two huge pages to fault
 * in, not a thousand small ones). */
static bool ring_alloc(struct ahead *a)
{
	void *m = mmap(NULL, RING + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return false;
	a->ring = m;
	unsigned char *p = (unsigned char *)(((uintptr_t)m + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	madvise(p, RING, MADV_HUGEPAGE);
	for (int i = 0; i < SLOTS; i++)
		a->s[i].buf = p + (size_t)i * BLOCK;
	return true;
}

static void ahead_free(struct ahead *a)
{
	if (!a)
		return;
	hs_mem_close(a->mem);
	if (a->ring)
		munmap(a->ring, RING + HUGE);
	free(a);
}

/* The slot being filled handed over (if it holds anything), and the next
 * one waited for: false when the consumer has stopped. */
static bool next_slot(struct ahead *a)
{
	struct slot *cur = &a->s[a->fill % SLOTS];
	if (!cur->used && !cur->nev)
		return !atomic_load(&a->cancel);
	pthread_mutex_lock(&a->mu);
	a->full++;
	pthread_cond_broadcast(&a->cv);
	while (a->full == SLOTS && !atomic_load(&a->cancel))
		pthread_cond_wait(&a->cv, &a->mu);
	pthread_mutex_unlock(&a->mu);
	a->fill++;
	struct slot *n = &a->s[a->fill % SLOTS];
	n->used = n->nev = 0;
	return !atomic_load(&a->cancel);
}

static struct event *add_event(struct ahead *a)
{
	struct slot *cur = &a->s[a->fill % SLOTS];
	if (cur->nev == EVENTS) {
		if (!next_slot(a))
			return NULL;
		cur = &a->s[a->fill % SLOTS];
	}
	return &cur->ev[cur->nev++];
}

/* The slot that has room for len more bytes and their event (the next one
 * if this one has not): NULL when len is more than a slot or the consumer
 * has stopped. */
static struct slot *room(struct ahead *a, size_t len)
{
	struct slot *cur = &a->s[a->fill % SLOTS];
	if (len > BLOCK)
		return NULL;
	if ((cur->used + len > BLOCK || cur->nev == EVENTS) && !next_slot(a))
		return NULL;
	return &a->s[a->fill % SLOTS];
}

static unsigned char *r_dest(void *ctx, size_t len)
{
	struct slot *cur = room(ctx, len);
	return cur ? cur->buf + cur->used : NULL;
}

static int r_data(void *ctx, uint64_t addr, const unsigned char *buf, size_t len)
{
	struct ahead *a = ctx;
	if (atomic_load_explicit(&a->cancel, memory_order_relaxed))
		return -ECANCELED;
	struct slot *cur = &a->s[a->fill % SLOTS];
	if (buf != cur->buf + cur->used) {
		/* not read into the slot (r_dest said no): copied there */
		if (!(cur = room(a, len)))
			return len > BLOCK ? -EINVAL : -ECANCELED;
		memcpy(cur->buf + cur->used, buf, len);
	}
	struct event *e = add_event(a);
	if (!e)
		return -ECANCELED;
	*e = (struct event){ .kind = EV_DATA, .addr = addr, .len = len, .off = cur->used };
	cur->used += len;
	return 0;
}

static int r_zeros(void *ctx, uint64_t addr, uint64_t len)
{
	struct ahead *a = ctx;
	struct event *e = add_event(a);
	if (!e)
		return -ECANCELED;
	*e = (struct event){ .kind = EV_ZEROS, .addr = addr, .len = len };
	return 0;
}

static void r_skip(void *ctx, uint64_t addr, uint64_t len, const char *why)
{
	struct ahead *a = ctx;
	struct event *e = add_event(a);
	if (e)
		*e = (struct event){ .kind = EV_SKIP, .addr = addr, .len = len, .why = why };
}

static void *reader_main(void *arg)
{
	struct ahead *a = arg;
	/* without the caller's zeros, untouched pages are data (zeros in the
	 * slot, the caller's to change like any bytes) */
	struct hs_stream_ops ops = { .data = r_data, .skip = r_skip, .zeros = a->zeros ? r_zeros : NULL,
				     .dest = r_dest };
	a->r = hs_stream_range(a->mem, a->maps, a->pagemap_fd, a->start, a->end, &ops, a, &a->err);
	/* the last slot, then the end */
	struct slot *cur = &a->s[a->fill % SLOTS];
	pthread_mutex_lock(&a->mu);
	if (cur->used || cur->nev)
		a->full++;
	a->done = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* One slot's events to ops: 0, or the first error of theirs. */
static int replay(const struct slot *sl, const struct hs_stream_ops *ops, void *ctx)
{
	int r = 0;
	for (size_t i = 0; i < sl->nev && r == 0; i++) {
		const struct event *e = &sl->ev[i];
		switch (e->kind) {
		case EV_DATA:
			r = ops->data(ctx, e->addr, sl->buf + e->off, e->len);
			break;
		case EV_ZEROS:      /* only with the caller's zeros */
			r = ops->zeros(ctx, e->addr, e->len);
			break;
		case EV_SKIP:
			if (ops->skip)
				ops->skip(ctx, e->addr, e->len, e->why);
			break;
		}
	}
	return r;
}

int hs_stream_range_ahead(pid_t pid, struct hs_mem *mem, const struct hs_maps *maps, int pagemap_fd,
			  uint64_t start, uint64_t end, const struct hs_stream_ops *ops, void *ctx,
			  struct hs_err *err)
{
	struct ahead *a = NULL;
	pthread_t t;
	bool started = false;
	/* worth a thread from a few blocks on, with a CPU for it */
	if (end - start >= 4 * (uint64_t)BLOCK && hs_cpus() >= 2 && (a = calloc(1, sizeof(*a)))) {
		*a = (struct ahead){ .maps = maps, .pagemap_fd = pagemap_fd, .start = start, .end = end,
				     .zeros = ops->zeros != NULL };
		atomic_init(&a->cancel, false);
		if (hs_mem_open_pid(pid, &a->mem, NULL) == 0 && ring_alloc(a)) {
			pthread_mutex_init(&a->mu, NULL);
			pthread_cond_init(&a->cv, NULL);
			/* every signal blocked (thread.h) */
			started = hs_thread_start(&t, reader_main, a);
			if (!started) {
				pthread_cond_destroy(&a->cv);
				pthread_mutex_destroy(&a->mu);
			}
		}
	}
	if (!started) {
		ahead_free(a);
		return hs_stream_range(mem, maps, pagemap_fd, start, end, ops, ctx, err);
	}
	int r = 0;
	for (size_t k = 0;; k++) {
		pthread_mutex_lock(&a->mu);
		while (!a->full && !a->done)
			pthread_cond_wait(&a->cv, &a->mu);
		bool have = a->full > 0;
		pthread_mutex_unlock(&a->mu);
		if (!have)
			break;
		r = replay(&a->s[k % SLOTS], ops, ctx);
		pthread_mutex_lock(&a->mu);
		a->full--;
		if (r != 0)
			atomic_store(&a->cancel, true);
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		if (r != 0)
			break;
	}
	pthread_join(t, NULL);
	/* the consumer's error first; else the reader's (the process exited) */
	if (r == 0 && a->r < 0 && a->r != -ECANCELED) {
		r = a->r;
		if (err)
			*err = a->err;
	}
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	ahead_free(a);
	return r;
}
