/* A stand-in for heapscope's sampler library, for the profile analysis
 * tests (tests/live/profile_analyze.sh): built as libheapscope-sampler.so
 * and linked into the `profiled` targets, it defines malloc, calloc,
 * realloc and free over glibc's __libc_* and records samples as the real
 * sampler does (sampler_abi.h): registers captured inside a non-inlined
 * function with inline asm, the top of the stack copied from that rsp
 * with process_vm_readv on itself.  Every allocation of at least
 * HS_TEST_SAMPLE_MIN bytes is sampled (so rate 1 gives exact figures);
 * records (header + stack bytes) are appended to a file. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/sampler_abi.h"
#include "../../lib/sampler/capture.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void hs_test_sampler_start(const char *path, size_t min);
void hs_test_sampler_stop(void);

static int fd = -1;
static size_t min_size = 1;
static uint64_t ticket;
static __thread int busy;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* the sampled blocks still live, to record their frees */
#define NLIVE 4096
static uintptr_t live[NLIVE];

static void emit(struct hs_sample_hdr *h, const unsigned char *stk)
{
	struct iovec v[2] = { { h, sizeof(*h) }, { (void *)stk, h->stack_len } };
	pthread_mutex_lock(&lock);
	h->seq = ++ticket;
	if (writev(fd, v, stk ? 2 : 1) < 0)
		abort();
	pthread_mutex_unlock(&lock);
}

__attribute__((noinline)) static void sample(void *p, size_t size, void *old)
{
	busy = 1;
	struct hs_sample_hdr h;
	memset(&h, 0, sizeof(h));
	unsigned char *stk = __libc_malloc(HS_SAMPLER_STACK);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	h.kind = HS_SAMPLE_ALLOC;
	h.tid = (uint32_t)syscall(SYS_gettid);
	h.time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	h.addr = (uintptr_t)p;
	h.size = size;
	h.old_addr = (uintptr_t)old;
	hs_sampler_capture(&h, stk);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < NLIVE; i++)
		if (!live[i]) {
			live[i] = (uintptr_t)p;
			break;
		}
	pthread_mutex_unlock(&lock);
	emit(&h, stk);
	__libc_free(stk);
	busy = 0;
}

static void sample_free(void *p)
{
	int found = 0;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < NLIVE; i++)
		if (live[i] == (uintptr_t)p) {
			live[i] = 0;
			found = 1;
			break;
		}
	pthread_mutex_unlock(&lock);
	if (!found)
		return;
	struct hs_sample_hdr h;
	memset(&h, 0, sizeof(h));
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	h.kind = HS_SAMPLE_FREE;
	h.tid = (uint32_t)syscall(SYS_gettid);
	h.time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	h.addr = (uintptr_t)p;
	emit(&h, NULL);
}

static int on(size_t n)
{
	return fd >= 0 && !busy && n >= min_size;
}

void *malloc(size_t n)
{
	void *p = __libc_malloc(n);
	if (p && on(n))
		sample(p, n, NULL);
	return p;
}

void *calloc(size_t a, size_t b)
{
	void *p = __libc_calloc(a, b);
	if (p && on(a * b))
		sample(p, a * b, NULL);
	return p;
}

void *realloc(void *old, size_t n)
{
	void *p = __libc_realloc(old, n);
	if (p && old && fd >= 0 && !busy) {
		/* the old block is gone either way: sampled again or not */
		pthread_mutex_lock(&lock);
		for (int i = 0; i < NLIVE; i++)
			if (live[i] == (uintptr_t)old)
				live[i] = 0;
		pthread_mutex_unlock(&lock);
	}
	if (p && on(n))
		sample(p, n, old);
	return p;
}

void free(void *p)
{
	if (p && fd >= 0 && !busy)
		sample_free(p);
	__libc_free(p);
}

void hs_test_sampler_start(const char *path, size_t min)
{
	min_size = min ? min : 1;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
}

void hs_test_sampler_stop(void)
{
	int f = fd;
	fd = -1;
	close(f);
}
