/* demo: the "64 MiB arena problem".
 *
 * Usage: demo [NTHREADS]          (default 8, at most 256)
 *
 * Each thread (normally on its own arena, whose heap reserves 64 MiB of
 * address space) allocates about 40 MiB in 1-4 KiB chunks and touches it, then
 * frees all but every KEEP_EVERY-th chunk and the last one.  The freed memory
 * cannot go back to the kernel: it lies between live chunks, below the top of
 * the heap, so it stays resident and fragmented inside the arena (free() only
 * trims the top of a heap, and malloc_trim() is never called).  The main thread
 * does the same with 8 MiB.  Then "READY <pid>" and block until SIGTERM.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define KEEP_EVERY 16

static pthread_barrier_t barrier;
/* each thread's pointer array, published so the compiler keeps every malloc */
static void **volatile sink[MAX_THREADS + 1];

static void fragment(size_t target_bytes, unsigned seed)
{
	size_t n = target_bytes / 2048 + 1, i, used = 0;
	void **v = malloc(n * sizeof(*v));

	if (!v)
		abort();
	for (i = 0; i < n && used < target_bytes; i++) {
		size_t sz = 1024 + (i * 2654435761u + seed) % 3073; /* 1-4 KiB */

		v[i] = malloc(sz);
		if (!v[i])
			abort();
		/* recognisable text, for strings(1) on a memory dump */
		snprintf(v[i], sz, "demo secret %u/%zu ", seed, i);
		memset((char *)v[i] + 32, 'a' + i % 26, sz - 32); /* resident */
		used += sz;
	}
	n = i;
	sink[seed] = v;
	for (i = 0; i + 1 < n; i++)
		if (i % KEEP_EVERY != 0)
			free(v[i]);
	/* v[] itself and every kept chunk stay allocated on purpose */
}

static long resident_pages(void)
{
	char buf[128];
	long size = 0, res = -1, shared = 0;
	int fd = open("/proc/self/statm", O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* Anonymous pages only: the first call of malloc_trim faults in libc's
	 * code for it, which is file-backed and "shared" here. */
	sscanf(buf, "%ld %ld %ld", &size, &res, &shared);
	return res - shared;
}

static void *thread_main(void *arg)
{
	fragment(40u << 20, (unsigned)(uintptr_t)arg);
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

	if (argc > 2 || n < 0 || n > MAX_THREADS) {
		fprintf(stderr, "usage: demo [NTHREADS]  (0..%d)\n", MAX_THREADS);
		return 99;
	}
	signal(SIGTERM, SIG_DFL);
	/* SIGUSR1 is taken by sigwait in the main thread only. */
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	pthread_barrier_init(&barrier, NULL, (unsigned)n + 1);
	for (i = 0; i < n; i++)
		if (pthread_create(&tid, NULL, thread_main,
				   (void *)(uintptr_t)(i + 1)) != 0) {
			fprintf(stderr, "demo: pthread_create failed\n");
			return 99;
		}
	fragment(8u << 20, 0);
	pthread_barrier_wait(&barrier);

	len = snprintf(line, sizeof(line), "READY %d\n", (int)getpid());
	if (write(STDOUT_FILENO, line, len) != len)
		return 99;
	/* On SIGUSR1: malloc_trim(0) here, and report what it gave back, as
	 * the change of resident anonymous pages (statm): the ground truth for what
	 * heapscope predicted as trimmable. */
	for (;;) {
		int sig;
		if (sigwait(&usr1, &sig) != 0)
			continue;
		long before = resident_pages();
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int ret = malloc_trim(0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long after = resident_pages();
		long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
		len = snprintf(line, sizeof(line), "TRIMMED %ld %d %ld\n", (before - after) * 4096L, ret, us);
		if (write(STDOUT_FILENO, line, len) != len)
			return 99;
	}
}
