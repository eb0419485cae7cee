/* Target for the real sampler on hard binaries (tests/live/profile_chains.sh,
 * built -O2 -fomit-frame-pointer, and stripped by the test with its debug
 * info kept apart): three threads allocate through known call chains,
 * three functions deep each, one in a shared library, one in C++:
 *   hs-alpha: alpha_outer -> alpha_mid -> alpha_leaf -> malloc
 *   hs-beta:  beta_outer -> lib_beta_mid -> lib_beta_leaf (libhsprof.so)
 *   hs-gamma: gamma_outer -> gamma_cxx -> hsprof::Builder<long>::make
 * Usage: profchains [MiB per chain, 32].  Prints "READY pid"; on each
 * SIGUSR2 every thread allocates MiB of blocks of 512-4095 bytes (slowly
 * enough for heapscope to drain), keeps every other one, and the process
 * prints "BURST n alpha=ALLOC/LIVE beta=ALLOC/LIVE gamma=ALLOC/LIVE": the
 * bytes each chain allocated in the burst and still holds (all bursts). */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *lib_beta_mid(size_t n);
void *gamma_cxx(size_t n);

#define NOTAIL(p) __asm__ volatile("" : : "r"(p) : "memory")

__attribute__((noinline, noipa)) static void *alpha_leaf(size_t n)
{
	void *p = malloc(n);
	NOTAIL(p);
	return p;
}

__attribute__((noinline, noipa)) static void *alpha_mid(size_t n)
{
	void *p = alpha_leaf(n);
	NOTAIL(p);
	return p;
}

static size_t per_chain;
static sem_t go[3], done;
static uint64_t alloc_b[3], live_b[3];

/* one burst of chain c through fn; every other block kept for good
 * (inlined into each chain's outer function: its frame is the outer's) */
__attribute__((always_inline)) static inline void burst(int c, void *(*fn)(size_t))
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(c + 1), got = 0;
	for (uint64_t i = 0; got < per_chain; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		size_t n = 512 + (size_t)(seed % 3584);
		unsigned char *p = fn(n);
		if (!p)
			abort();
		p[0] = (unsigned char)i;
		got += n;
		if (i % 2) {
			free(p);
		} else {
			live_b[c] += n;
		}
		if (i % 16 == 15)
			usleep(1000);   /* let heapscope drain: no drops */
	}
	alloc_b[c] = got;
}

__attribute__((noinline, noipa)) static void alpha_outer(void)
{
	burst(0, alpha_mid);
}

__attribute__((noinline, noipa)) static void beta_outer(void)
{
	burst(1, lib_beta_mid);
}

__attribute__((noinline, noipa)) static void gamma_outer(void)
{
	burst(2, gamma_cxx);
}

static void *run(void *arg)
{
	int c = (int)(intptr_t)arg;
	static void (*const fns[3])(void) = { alpha_outer, beta_outer, gamma_outer };
	for (;;) {
		while (sem_wait(&go[c]))
			;
		fns[c]();
		sem_post(&done);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	per_chain = (size_t)(argc > 1 ? atol(argv[1]) : 32) << 20;
	static const char *const names[3] = { "hs-alpha", "hs-beta", "hs-gamma" };
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sem_init(&done, 0, 0);
	for (int c = 0; c < 3; c++) {
		pthread_t t;
		sem_init(&go[c], 0, 0);
		pthread_create(&t, NULL, run, (void *)(intptr_t)c);
		pthread_setname_np(t, names[c]);
	}
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	for (int n = 1;; n++) {
		int sig;
		sigwait(&set, &sig);
		for (int c = 0; c < 3; c++)
			sem_post(&go[c]);
		for (int c = 0; c < 3; c++)
			while (sem_wait(&done))
				;
		printf("BURST %d alpha=%llu/%llu beta=%llu/%llu gamma=%llu/%llu\n", n,
		       (unsigned long long)alloc_b[0], (unsigned long long)live_b[0], (unsigned long long)alloc_b[1],
		       (unsigned long long)live_b[1], (unsigned long long)alloc_b[2], (unsigned long long)live_b[2]);
		fflush(stdout);
	}
}
