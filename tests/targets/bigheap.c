/* bigheap: benchmark target with a large malloc state.
 *
 * Usage: bigheap [NTHREADS [CHUNKS_PER_THREAD [BALLAST_MIB]]]
 *        (default 8, 131072 and 0)
 *
 * 8 threads, normally 8 arenas, about one million chunks in all.  Each thread
 * allocates small chunks (16..600 bytes) and frees every other one: tcache
 * takes 7 per size, fastbins the small overflow, the rest goes to the unsorted
 * bin.  A few large requests then sort part of the unsorted bin into the small
 * and large bins (each malloc sorts at most 10000 chunks), and a last round of
 * small frees refills the fastbins.  So the bins hold tens of thousands of
 * chunks per arena and the walker has to follow every list.
 * BALLAST_MIB spreads that much live, written memory evenly between the small
 * chunks (a block after each, in the same arena): the same free chunks, as
 * many of them, in a heap that many MiB bigger (the pause against resident
 * bytes, in make bench).
 * "READY <pid>", then block until SIGTERM.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 64

static pthread_barrier_t barrier;
static long per_thread = 131072;
static size_t ballast;          /* bytes after each small chunk */
/* Live pointers are published here: the compiler may delete a malloc whose
 * result is never used, and the sorting mallocs below matter. */
static void *volatile sink[MAX_THREADS + 1][8];

static void build(unsigned seed)
{
	void **v = malloc(per_thread * sizeof(*v));
	long i;

	if (!v)
		abort();
	for (i = 0; i < per_thread; i++) {
		size_t sz = 16 + ((size_t)i * 2654435761u + seed * 40503u) % 585;

		v[i] = malloc(sz);
		if (!v[i])
			abort();
		memset(v[i], 0x5a, sz < 64 ? sz : 64);
		if (ballast) {
			char *b = malloc(ballast);   /* live for good */
			if (!b)
				abort();
			memset(b, 0x6b, ballast);
			__asm__ volatile("" : : "r"(b) : "memory");
		}
	}
	/* every other chunk: the live neighbours keep the free ones apart */
	for (i = 0; i < per_thread * 3 / 4; i += 2)
		free(v[i]);
	sink[seed][7] = v;
	/* large requests below the mmap threshold: malloc_consolidate, then
	 * each sorts up to 10000 unsorted chunks and is carved from top */
	for (i = 0; i < 6; i++)
		sink[seed][i] = malloc(50000 + i * 4096);
	for (i = per_thread * 3 / 4; i < per_thread; i += 2)
		free(v[i]);
}

static void *thread_main(void *arg)
{
	build((unsigned)(uintptr_t)arg);
	pthread_barrier_wait(&barrier);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t tid;
	char line[64];
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 8;
	int i, len;

	if (argc > 2)
		per_thread = strtol(argv[2], NULL, 10);
	if (argc > 3 && n > 0 && per_thread > 0) {
		long mib = strtol(argv[3], NULL, 10);
		ballast = mib > 0 ? (size_t)(((uint64_t)mib << 20) / ((uint64_t)n * per_thread)) & ~(size_t)15 : 0;
		if (ballast > 100000)
			ballast = 100000;     /* below the mmap threshold: in the arena */
	}
	if (argc > 4 || n < 0 || n > MAX_THREADS || per_thread < 1) {
		fprintf(stderr, "usage: bigheap [NTHREADS [CHUNKS_PER_THREAD [BALLAST_MIB]]]\n");
		return 99;
	}
	signal(SIGTERM, SIG_DFL);
	pthread_barrier_init(&barrier, NULL, (unsigned)n + 1);
	for (i = 0; i < n; i++)
		if (pthread_create(&tid, NULL, thread_main,
				   (void *)(uintptr_t)(i + 1)) != 0) {
			fprintf(stderr, "bigheap: pthread_create failed\n");
			return 99;
		}
	pthread_barrier_wait(&barrier);

	len = snprintf(line, sizeof(line), "READY %d\n", (int)getpid());
	if (write(STDOUT_FILENO, line, len) != len)
		return 99;
	for (;;)
		pause();
}
