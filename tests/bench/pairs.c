/* pairs: the cost of one malloc + free pair, as the process itself sees it.
 *
 * Usage: pairs N [wait]
 *
 * Makes N pairs of malloc(64..1024) and free in a tight loop (sizes cycle,
 * so the tcache and the bins both serve), timed with CLOCK_MONOTONIC, and
 * prints "PAIRS N NS_PER_PAIR".  With "wait" it first prints "READY pid"
 * and makes the pairs only after SIGUSR2 (so that heapscope can inject a
 * tracer first), then waits for SIGTERM. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t go;
static void on_usr2(int sig)
{
	(void)sig;
	go = 1;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int wait = argc > 2 && !strcmp(argv[2], "wait");
	if (wait) {
		signal(SIGUSR2, on_usr2);
		printf("READY %d\n", (int)getpid());
		fflush(stdout);
		while (!go)
			pause();
	}
	void *volatile keep;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		keep = malloc(64 + (size_t)(i % 16) * 60);
		free(keep);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
	printf("PAIRS %ld %.1f\n", n, ns);
	fflush(stdout);
	if (wait)
		for (;;)
			pause();
	return 0;
}
