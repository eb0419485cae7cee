/* libheapscope-sampler.so: loaded into a running process by `heapscope
 * profile`, which routes the malloc family's GOT slots to the wrappers
 * below.  Each wrapper calls glibc's __libc_* entry point (never the PLT
 * name, which may be routed here); about one allocation per `rate` bytes
 * (Poisson by bytes, as jemalloc and tcmalloc sample) records the
 * registers and a copy of the stack into the ring of hs_sampler_ctl
 * (lib/sampler_abi.h), which heapscope drains from outside.
 *
 * Rules, because this code runs inside every allocation of a program it
 * did not expect to be in: libc only; no lock, no stdio, no malloc; every
 * byte static (bounded memory); TLS initial-exec (a dlopen'ed module's
 * global-dynamic TLS is allocated with malloc on a thread's first use:
 * recursion); a per-thread guard so that nothing recurses. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sampler_abi.h"
#include "sampler/capture.h"

#define EXPORT __attribute__((visibility("default")))

/* the wrappers heapscope routes the malloc family's slots to */
EXPORT void *hs_sampler_malloc(size_t size);
EXPORT void hs_sampler_free(void *p);
EXPORT void *hs_sampler_calloc(size_t n, size_t size);
EXPORT void *hs_sampler_realloc(void *old, size_t size);
EXPORT void *hs_sampler_memalign(size_t align, size_t size);
EXPORT void *hs_sampler_aligned_alloc(size_t align, size_t size);
EXPORT int hs_sampler_posix_memalign(void **out, size_t align, size_t size);
EXPORT void *hs_sampler_valloc(size_t size);
EXPORT void *hs_sampler_pvalloc(size_t size);
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

/* The control block and the ring behind it, one object exported under
 * the control block's name, so that ring_offset is a constant.  Zero in
 * the file (.bss: 8 MiB that cost nothing until a sample touches a
 * slot); the constructor, which dlopen runs before it returns, fills in
 * the constants heapscope checks. */
struct whole {
	struct hs_sampler_ctl ctl;
	unsigned char ring[HS_SAMPLER_SLOTS][HS_SAMPLER_SLOT_SIZE] __attribute__((aligned(64)));
};
EXPORT struct whole hs_sampler_whole __asm__("hs_sampler_ctl");

static void forked_child(void);

__attribute__((constructor)) static void sampler_init(void)
{
	hs_sampler_whole.ctl.slots = HS_SAMPLER_SLOTS;
	hs_sampler_whole.ctl.slot_size = HS_SAMPLER_SLOT_SIZE;
	hs_sampler_whole.ctl.rate = HS_SAMPLER_DEFAULT_RATE;
	hs_sampler_whole.ctl.ring_offset = offsetof(struct whole, ring);
	hs_sampler_whole.ctl.abi = HS_SAMPLER_ABI;
	pthread_atfork(NULL, NULL, forked_child);
	__atomic_store_n(&hs_sampler_whole.ctl.magic, HS_SAMPLER_MAGIC, __ATOMIC_RELEASE);
}
#define CTL (hs_sampler_whole.ctl)

/* ---- per thread ---- */

static __thread int64_t t_countdown;    /* bytes until the next sample */
static __thread uint64_t t_rng;         /* xorshift64 state, 0: not set up */
static __thread uint64_t t_rate;        /* the rate t_countdown was drawn with */
static __thread int t_busy;             /* inside the sampler: no sampling */
static __thread uint32_t t_tid;         /* gettid(), 0: not asked yet (a fork's child asks again) */

/* fork()'s child: heapscope drains the parent's ring, never this copy of
 * it, so sampling here would only fill it (up to 8 MiB of private pages
 * copied on write in every child of a forking server) and then count
 * drops for the child's whole life.  The sampler goes off in the child:
 * its wrappers, still routed to, only call libc. */
static void forked_child(void)
{
	t_tid = 0;
	__atomic_store_n(&CTL.enabled, 0, __ATOMIC_RELAXED);
}

static uint32_t tid(void)
{
	if (unlikely(!t_tid))
		t_tid = (uint32_t)syscall(SYS_gettid);
	return t_tid;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(void)
{
	uint64_t x = t_rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return t_rng = x;
}

/* -ln(u) for u in (0, 1], without libm: u = m * 2^e with m in [1, 2),
 * ln m = 2 atanh((m - 1) / (m + 1)) by its series (|s| <= 1/3: the
 * fifth term is below 1e-6, plenty for a sampling interval). */
static double neg_log(double u)
{
	uint64_t b;
	memcpy(&b, &u, 8);
	int e = (int)((b >> 52) & 0x7ff) - 1023;
	b = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
	double m;
	memcpy(&m, &b, 8);
	double s = (m - 1) / (m + 1), s2 = s * s;
	double ln_m = 2 * s * (1 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 / 9))));
	return -(ln_m + e * 0.69314718055994531);
}

/* The next interval: exponential with mean rate bytes. */
static int64_t draw(uint64_t rate)
{
	if (unlikely(!t_rng)) {
		t_rng = now_ns() ^ ((uint64_t)syscall(SYS_gettid) << 32) ^ (uint64_t)(uintptr_t)&t_rng;
		if (!t_rng)
			t_rng = 0x9e3779b97f4a7c15ull;
	}
	t_rate = rate;
	double u = (double)((rng_next() >> 11) + 1) * (1.0 / 9007199254740992.0);   /* (0, 1] */
	double v = neg_log(u) * (double)rate;
	if (v < 1)
		v = 1;
	if (v > 9e18)
		v = 9e18;
	return (int64_t)v;
}

/* ---- the sampled blocks still live ----
 *
 * An open-addressing set of addresses (a slot: 0 empty, 1 once used, or
 * an address), each placed within PROBE slots of its hash, and in front
 * of it a filter that a free checks first: a bit array (8 KiB, a
 * handful of cache lines hot), one load and a bit test; a clear bit
 * (almost always) means "not sampled".  Beside it a count per bit (how
 * many sampled addresses hash there), which only the slow paths touch.
 * A bit is set after its count rises, and a remover that cleared it
 * looks at the count again (a concurrent add may have raced it). */
#define SET_BITS 16
#define SET_SIZE (1u << SET_BITS)
#define PROBE 32
#define FILTER_BITS 16
#define FILTER_SIZE (1u << FILTER_BITS)
#define USED 1ull

static uint64_t live_set[SET_SIZE];
static uint64_t filter_bits[FILTER_SIZE / 64];
static uint8_t filter_count[FILTER_SIZE];

static inline uint32_t hash(uint64_t a)
{
	return (uint32_t)(((a >> 4) * 0x9e3779b97f4a7c15ull) >> 32);
}

/* the filter's index: the address's bits above malloc's 16-byte
 * alignment, no multiply (the fast path of every free) */
static inline uint32_t filter_index(uint64_t a)
{
	return (uint32_t)((a >> 4) ^ (a >> (4 + FILTER_BITS))) & (FILTER_SIZE - 1);
}

static inline int filter_hit(uint64_t a)
{
	uint32_t i = filter_index(a);
	return (__atomic_load_n(&filter_bits[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1;
}

static void filter_add(uint64_t a, int d)
{
	uint32_t i = filter_index(a);
	uint8_t *f = &filter_count[i];
	uint8_t v = __atomic_load_n(f, __ATOMIC_RELAXED);
	for (;;) {
		if (v == 255)
			return;   /* saturated: stays set */
		if (__atomic_compare_exchange_n(f, &v, (uint8_t)(v + d), 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			break;
	}
	uint64_t bit = 1ull << (i % 64);
	if (d > 0) {
		__atomic_fetch_or(&filter_bits[i / 64], bit, __ATOMIC_SEQ_CST);
	} else if (v + d == 0) {
		__atomic_fetch_and(&filter_bits[i / 64], ~bit, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(f, __ATOMIC_SEQ_CST))
			__atomic_fetch_or(&filter_bits[i / 64], bit, __ATOMIC_SEQ_CST);
	}
}

static int live_add(uint64_t a)
{
	uint32_t h = hash(a);
	for (uint32_t i = 0; i < PROBE; i++) {
		uint64_t *s = &live_set[(h + i) & (SET_SIZE - 1)];
		uint64_t v = __atomic_load_n(s, __ATOMIC_RELAXED);
		if ((v == 0 || v == USED) && __atomic_compare_exchange_n(s, &v, a, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			filter_add(a, 1);
			return 0;
		}
	}
	return -1;
}

/* 1 if a was in the set (and is no longer) */
static int live_remove(uint64_t a)
{
	uint32_t h = hash(a);
	for (uint32_t i = 0; i < PROBE; i++) {
		uint64_t *s = &live_set[(h + i) & (SET_SIZE - 1)];
		uint64_t v = __atomic_load_n(s, __ATOMIC_RELAXED);
		if (v == 0)
			return 0;
		if (v == a && __atomic_compare_exchange_n(s, &v, USED, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			filter_add(a, -1);
			return 1;
		}
	}
	return 0;
}

/* ---- the ring ---- */

/* A ticket, or -1 (and a drop counted) when the ring is full: never waits */
static int64_t take_ticket(void)
{
	uint64_t h = __atomic_load_n(&CTL.head, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t t = __atomic_load_n(&CTL.tail, __ATOMIC_ACQUIRE);
		if (h - t >= HS_SAMPLER_SLOTS) {
			__atomic_fetch_add(&CTL.dropped, 1, __ATOMIC_RELAXED);
			return -1;
		}
		if (__atomic_compare_exchange_n(&CTL.head, &h, h + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return (int64_t)h;
	}
}

static struct hs_sample_hdr *slot_of(uint64_t ticket)
{
	return (struct hs_sample_hdr *)hs_sampler_whole.ring[ticket & (HS_SAMPLER_SLOTS - 1)];
}

static void record(uint32_t kind, uint64_t addr, uint64_t size, uint64_t old)
{
	int64_t t = take_ticket();
	if (t < 0)
		return;
	struct hs_sample_hdr *h = slot_of((uint64_t)t);
	h->kind = kind;
	h->tid = tid();
	h->time_ns = now_ns();
	h->addr = addr;
	h->size = size;
	h->old_addr = old;
	h->pad = 0;
	if (kind == HS_SAMPLE_ALLOC) {
		hs_sampler_capture(h, (unsigned char *)(h + 1));
		__atomic_fetch_add(&CTL.sampled, 1, __ATOMIC_RELAXED);
	} else {
		memset(h->regs, 0, sizeof(h->regs));
		h->stack_addr = 0;
		h->stack_len = 0;
		__atomic_fetch_add(&CTL.freed, 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&h->seq, (uint64_t)t + 1, __ATOMIC_RELEASE);
}

/* The slow path of an allocation whose countdown ran out (or a thread's
 * first): maybe a sample.  p is the block, already allocated.  Disabled
 * (heapscope stopping, the slots not yet put back): a fresh countdown,
 * no sample. */
__attribute__((noinline)) static void sampled(void *p, size_t size, void *old)
{
	uint64_t rate = CTL.rate ? CTL.rate : 1;
	if (t_busy)
		return;
	t_busy = 1;
	if (unlikely(!t_rng || t_rate != rate || !CTL.enabled)) {
		/* a new thread, or a new rate: draw afresh, no sample */
		t_countdown = draw(rate);
	} else if (p) {
		/* the sample point fell inside this block; the next interval
		 * starts at its end, exponential again (memoryless) however
		 * many intervals the block spans: one sample */
		t_countdown = draw(rate);
		if (live_add((uint64_t)(uintptr_t)p) < 0)
			__atomic_fetch_add(&CTL.live_lost, 1, __ATOMIC_RELAXED);
		record(HS_SAMPLE_ALLOC, (uint64_t)(uintptr_t)p, size, (uint64_t)(uintptr_t)old);
	}
	t_busy = 0;
}

/* The fast path, all the wrappers add to libc's: one thread-local
 * subtract and a branch (no check of `enabled`: the slow path does). */
static inline int countdown(size_t size)
{
	return (t_countdown -= (int64_t)size) > 0;
}

/* A free whose address passed the filter: out of the set, and recorded
 * if it was sampled */
__attribute__((noinline)) static void free_slow(void *p)
{
	if (!t_busy) {
		t_busy = 1;
		if (live_remove((uint64_t)(uintptr_t)p) && CTL.enabled)
			record(HS_SAMPLE_FREE, (uint64_t)(uintptr_t)p, 0, 0);
		t_busy = 0;
	}
	__libc_free(p);
}

/* ---- the wrappers ----
 *
 * Each fast path is a thread-local load, a subtract, a branch and a tail
 * call into libc (free: a load and a bit test instead); -fno-plt makes
 * that call an indirect jump through the GOT, not through a PLT stub. */

__attribute__((noinline)) static void *malloc_slow(size_t size)
{
	void *p = __libc_malloc(size);
	sampled(p, size, NULL);
	return p;
}

EXPORT void *hs_sampler_malloc(size_t size)
{
	if (likely(countdown(size)))
		return __libc_malloc(size);
	return malloc_slow(size);
}

EXPORT void hs_sampler_free(void *p)
{
	if (unlikely(filter_hit((uint64_t)(uintptr_t)p)) && p)
		return free_slow(p);
	__libc_free(p);
}

__attribute__((noinline)) static void *calloc_slow(size_t n, size_t size, size_t bytes)
{
	void *p = __libc_calloc(n, size);
	sampled(p, bytes, NULL);
	return p;
}

EXPORT void *hs_sampler_calloc(size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes) || likely(countdown(bytes)))
		return __libc_calloc(n, size);
	return calloc_slow(n, size, bytes);
}

EXPORT void *hs_sampler_realloc(void *old, size_t size)
{
	if (likely(!CTL.enabled))
		return __libc_realloc(old, size);
	/* the old block leaves the set before libc may hand its address out again */
	int tracked = old && filter_hit((uint64_t)(uintptr_t)old) && !t_busy;
	if (tracked) {
		t_busy = 1;
		tracked = live_remove((uint64_t)(uintptr_t)old);
		t_busy = 0;
	}
	void *p = __libc_realloc(old, size);
	if (tracked) {
		if (!p && size) {
			/* failed: the old block stays, and stays sampled */
			t_busy = 1;
			if (live_add((uint64_t)(uintptr_t)old) < 0)
				__atomic_fetch_add(&CTL.live_lost, 1, __ATOMIC_RELAXED);
			t_busy = 0;
		} else if (!t_busy) {
			t_busy = 1;
			record(HS_SAMPLE_FREE, (uint64_t)(uintptr_t)old, 0, 0);
			t_busy = 0;
		}
	}
	if (p && !countdown(size))
		sampled(p, size, old);
	return p;
}

static void *aligned(size_t align, size_t size)
{
	if (likely(countdown(size)))
		return __libc_memalign(align, size);
	void *p = __libc_memalign(align, size);
	sampled(p, size, NULL);
	return p;
}

EXPORT void *hs_sampler_memalign(size_t align, size_t size)
{
	return aligned(align, size);
}

/* glibc 2.36's aligned_alloc is memalign; 2.38's refuses an alignment
 * that is not a power of two (as this does, whatever the libc) */
EXPORT void *hs_sampler_aligned_alloc(size_t align, size_t size)
{
	if (!align || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(align, size);
}

EXPORT int hs_sampler_posix_memalign(void **out, size_t align, size_t size)
{
	if (align % sizeof(void *) || (align & (align - 1)) || !align)
		return EINVAL;
	int e = errno;
	void *p = aligned(align, size);
	if (!p)
		return ENOMEM;
	errno = e;
	*out = p;
	return 0;
}

EXPORT void *hs_sampler_valloc(size_t size)
{
	if (likely(countdown(size)))
		return __libc_valloc(size);
	void *p = __libc_valloc(size);
	sampled(p, size, NULL);
	return p;
}

EXPORT void *hs_sampler_pvalloc(size_t size)
{
	if (likely(countdown(size)))
		return __libc_pvalloc(size);
	void *p = __libc_pvalloc(size);
	sampled(p, size, NULL);
	return p;
}
