/* execloop: a multithreaded process that exec()s itself again and again,
 * for heapscope's tests of a target that changes its program while it is
 * looked at.
 *
 * Usage: execloop [GENERATION]
 *
 * Each generation starts six threads that malloc and free, mallocs some
 * itself, sleeps a moment and execve()s /proc/self/exe with GENERATION+1:
 * from the main thread in even generations, from one of the other threads
 * in odd ones (the kernel then makes that thread the leader).  Generation
 * 0 writes "READY <pid>" first.  Runs until killed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long gen;
static char *self;
#define NTHREADS 6
static void *volatile sink[NTHREADS + 1][64];   /* one row per thread */

static void again(void)
{
	char arg[32];
	char *argv[] = { self, arg, NULL };

	snprintf(arg, sizeof(arg), "%ld", gen + 1);
	execv("/proc/self/exe", argv);
	_exit(99);
}

static void churn(int row, unsigned seed)
{
	for (unsigned i = 0; i < 64; i++) {
		free(sink[row][(i + seed) % 64]);
		sink[row][(i + seed) % 64] = malloc(16 + (i * 97 + seed) % 3000);
	}
}

static void *thread_main(void *arg)
{
	int row = (int)(long)arg & 15, execs = (int)(long)arg >> 4;

	for (int i = 0;; i++) {
		churn(row, (unsigned)i);
		usleep(1000);
		if (execs && i == 2)
			again();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[NTHREADS];

	self = argv[0];
	gen = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	churn(0, 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, thread_main, (void *)(long)((i + 1) | (i == NTHREADS - 1 && gen % 2) << 4));
	if (gen == 0) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "READY %d\n", (int)getpid());
		if (write(STDOUT_FILENO, buf, (size_t)n) != n)
			_exit(99);
	}
	usleep(2000);
	if (gen % 2 == 0)
		again();
	for (;;)
		pause();
}
