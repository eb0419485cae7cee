/* The sampler library hammered in-process: 8 threads malloc and free
 * through its wrappers at rate 1 (every allocation sampled) while a
 * drain thread empties the ring with lib/profile.c's own drain (through
 * process_vm_readv on this process, as heapscope does from outside).
 * No sample may be torn (each allocation's size names its thread, its
 * tid must be that thread's, its registers and stack copy must agree),
 * tickets come in order, and every event is counted exactly once:
 * drained or dropped. TAP output. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "profile.h"
#include "profile_collect.h"
#include "sampler_abi.h"

extern struct hs_sampler_ctl hs_sampler_ctl;
void *hs_sampler_malloc(size_t size);
void hs_sampler_free(void *p);
void *hs_sampler_realloc(void *p, size_t size);
void *hs_sampler_calloc(size_t n, size_t size);

#define T 8
#define N 20000

static pid_t tids[T];
static atomic_int running;

static size_t size_of(int t, int i)
{
	return 16 + 8 * (size_t)t + 1024 * (size_t)(i % 4);
}

static void *worker(void *arg)
{
	int t = (int)(long)arg;
	tids[t] = (pid_t)syscall(SYS_gettid);
	hs_sampler_free(hs_sampler_malloc(1));   /* the thread's first: sets up its state, never sampled */
	void *keep[16] = { 0 };
	for (int i = 0; i < N; i++) {
		size_t sz = size_of(t, i);
		unsigned char *p = hs_sampler_malloc(sz);
		if (!p)
			abort();
		memset(p, t, sz);
		int k = i % 16;
		if (keep[k])
			hs_sampler_free(keep[k]);
		keep[k] = p;
		if (i % 64 == 63)
			usleep(100);   /* let the drain keep up some of the time */
	}
	for (int k = 0; k < 16; k++)
		hs_sampler_free(keep[k]);
	atomic_fetch_sub(&running, 1);
	return NULL;
}

static int nfail, ntest;

static void check(int ok, const char *what)
{
	ntest++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", ntest, what);
	if (!ok)
		nfail++;
}

int main(void)
{
	printf("1..7\n");
	struct hs_profile_session ps;
	struct hs_err err = { 0 };
	hs_sampler_ctl.rate = 1;
	hs_sampler_ctl.enabled = 1;
	if (hs_profile_session_open(getpid(), (uint64_t)(uintptr_t)&hs_sampler_ctl, &ps, &err) < 0) {
		printf("Bail out! %s\n", err.msg);
		return 1;
	}
	struct hs_profile_data d = { .pid = getpid(), .rate = 1 };
	pthread_t th[T];
	atomic_store(&running, T);
	for (long t = 0; t < T; t++)
		pthread_create(&th[t], NULL, worker, (void *)t);
	int drains = 0, derr = 0;
	while (atomic_load(&running) > 0) {
		if (hs_profile_drain(&ps, &d, &err) < 0)
			derr++;
		drains++;
		usleep(200);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	hs_sampler_ctl.enabled = 0;
	if (hs_profile_drain(&ps, &d, &err) < 0)
		derr++;
	check(derr == 0, "every drain succeeded");

	size_t allocs = 0, frees = 0, torn = 0, order = 0;
	for (size_t i = 0; i < d.n; i++) {
		const struct hs_sample_hdr *h = &d.v[i].h;
		if (h->seq != i + 1)
			order++;
		if (h->kind == HS_SAMPLE_ALLOC) {
			allocs++;
			int t = (int)(((h->size % 1024) - 16) / 8);
			if (t < 0 || t >= T || (pid_t)h->tid != tids[t] || !h->addr || h->stack_addr != h->regs[7] ||
			    !h->regs[16] || h->stack_len == 0 || h->stack_len > HS_SAMPLER_STACK || !d.v[i].stack ||
			    h->old_addr)
				torn++;
		} else if (h->kind == HS_SAMPLE_FREE) {
			frees++;
			if (!h->addr || h->size || h->stack_len)
				torn++;
		} else
			torn++;
	}
	check(order == 0, "tickets drained in order, none skipped");
	check(torn == 0, "no torn sample");
	check(allocs == hs_sampler_ctl.sampled, "allocation samples drained = sampled");
	check(frees == hs_sampler_ctl.freed, "free samples drained = freed");
	uint64_t events = 2ull * T * N - hs_sampler_ctl.live_lost;
	check(hs_sampler_ctl.sampled + hs_sampler_ctl.freed + hs_sampler_ctl.dropped == events,
	      "every allocation and every free of a sampled block: drained or counted as dropped");
	check(hs_sampler_ctl.tail == hs_sampler_ctl.head, "the ring is empty at the end");
	printf("# %zu samples (%zu allocs, %zu frees), %llu dropped, %llu live_lost, %d drains\n", d.n, allocs, frees,
	       (unsigned long long)hs_sampler_ctl.dropped, (unsigned long long)hs_sampler_ctl.live_lost, drains);
	hs_profile_data_release(&d);
	hs_profile_session_close(&ps);
	return nfail ? 1 : 0;
}
