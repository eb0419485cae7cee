/* allocrate: the target of tests/live/profile.sh.  NTHREADS threads
 * (default 4) wait; each SIGUSR2 starts a burst in which every thread
 * allocates BYTES (default 32 MiB) through two call chains: chain_a
 * (blocks of 1000-1999 bytes, two thirds of the bytes) and chain_b
 * (3000-3999 bytes, one third), fills each block with a pattern of its
 * address and checks it before freeing it; then prints "BURST n a=BYTES
 * b=BYTES" (the exact bytes each chain allocated) and "CHECK OK" or
 * "CHECK FAILED".  "READY <pid>" at start. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int nthreads = 4;
static size_t bytes = 32u << 20;
static atomic_ullong total_a, total_b, bad;
static atomic_int done;
static pthread_barrier_t go;

#define KEEP 64

static void fill(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 64)
		p[i] = (unsigned char)(((uintptr_t)p >> 4) + i);
	if ((n - 1) % 64)
		p[n - 1] = (unsigned char)n;
}

static int verify(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 64)
		if (p[i] != (unsigned char)(((uintptr_t)p >> 4) + i))
			return 0;
	return (n - 1) % 64 == 0 || p[n - 1] == (unsigned char)n;
}

struct held {
	unsigned char *p;
	size_t n;
};

static void release(struct held *h)
{
	if (h->p && !verify(h->p, h->n))
		atomic_fetch_add(&bad, 1);
	free(h->p);
	h->p = NULL;
}

__attribute__((noinline)) static void *chain_a_leaf(size_t n)
{
	void *p = malloc(n);
	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noinline)) static void *chain_a(size_t n)
{
	void *p = chain_a_leaf(n);
	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noinline)) static void *chain_b(size_t n)
{
	void *p = calloc(1, n);
	__asm__ volatile("" ::: "memory");
	return p;
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct held keep[KEEP] = { { 0 } };
	for (;;) {
		pthread_barrier_wait(&go);
		unsigned long long a = 0, b = 0;
		for (unsigned i = 0; a + b < bytes; i++) {
			int use_b = rand_r(&seed) % 3 == 0;
			size_t n = use_b ? 3000 + rand_r(&seed) % 1000 : 1000 + rand_r(&seed) % 1000;
			unsigned char *p = use_b ? chain_b(n) : chain_a(n);
			if (!p)
				abort();
			fill(p, n);
			*(use_b ? &b : &a) += n;
			struct held *h = &keep[i % KEEP];
			release(h);
			*h = (struct held){ p, n };
			if (i % 128 == 127)
				usleep(2000);   /* at most 125 MB/s per thread: the drain keeps up */
		}
		for (int k = 0; k < KEEP; k++)
			release(&keep[k]);
		atomic_fetch_add(&total_a, a);
		atomic_fetch_add(&total_b, b);
		atomic_fetch_add(&done, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		nthreads = atoi(argv[1]);
	if (argc > 2)
		bytes = strtoull(argv[2], NULL, 0);
	if (nthreads < 1 || nthreads > 64)
		return 99;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
	pthread_t t;
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&t, NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
			return 99;
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	for (int n = 1;; n++) {
		int sig;
		sigwait(&set, &sig);
		atomic_store(&total_a, 0);
		atomic_store(&total_b, 0);
		atomic_store(&done, 0);
		pthread_barrier_wait(&go);
		while (atomic_load(&done) < nthreads)
			usleep(1000);
		printf("BURST %d a=%llu b=%llu\n%s\n", n, (unsigned long long)total_a, (unsigned long long)total_b,
		       atomic_load(&bad) ? "CHECK FAILED" : "CHECK OK");
		fflush(stdout);
	}
}
