/* rounds: a target for heapscope mtrace that counts its own allocations.
 *
 * Usage: rounds [NWORK [NCHURN [K]]]   (defaults 4, 4, 100)
 *
 * NWORK worker threads wait for a round (SIGUSR2).  In a round worker i
 * makes K times, with S = 5000 + 16 * i:
 *   malloc(S), calloc(1, S+1), posix_memalign(64, S+2), strdup of S+2
 *   characters (S+3 bytes, allocated inside libc), malloc(S+4) then
 *   realloc to S+5; and frees all of them.
 * so a trace shows exactly K "+" lines of each size S..S+4 and K ">" lines
 * of size S+5 per worker and round, each block later freed.  When every
 * worker is done the main thread prints "ROUND n DONE".  NCHURN threads
 * meanwhile replace blocks of 16..4000 bytes in a tight loop, checking a
 * pattern in each before freeing it.  SIGUSR1: everything stops, every
 * block held is checked, "CHECK OK <replacements> <rounds>" (or "CHECK
 * FAILED") is printed, and the process exits 0 (or 1). */
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

#include "churnloop.h"

static atomic_int round_wanted, round_done_by;
static int k_per_round = 100;

/* below the workers' sizes (5000 and up), so that a trace tells them apart */
static size_t churn_size(unsigned *seed, int first)
{
	(void)first;
	return 16 + rand_r(seed) % 3985;
}

static void *churn(void *arg)
{
	churn_blocks((unsigned)(uintptr_t)arg, churn_size);
	return NULL;
}

static void *worker(void *arg)
{
	size_t s = 5000 + 16 * (size_t)(uintptr_t)arg;
	char *text = malloc(s + 3);
	memset(text, 'r', s + 2);
	text[s + 2] = '\0';
	int seen = 0;
	while (!atomic_load(&stop)) {
		if (atomic_load(&round_wanted) == seen) {
			usleep(1000);
			continue;
		}
		seen++;
		for (int k = 0; k < k_per_round; k++) {
			void *a = malloc(s), *b = calloc(1, s + 1), *c = NULL, *d = strdup(text), *e = malloc(s + 4);
			if (posix_memalign(&c, 64, s + 2) || !a || !b || !d || !e)
				abort();
			void *f = realloc(e, s + 5);
			if (!f)
				abort();
			memset(a, 1, s);
			free(a);
			free(b);
			free(c);
			free(d);
			free(f);
		}
		atomic_fetch_add(&round_done_by, 1);
	}
	free(text);
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&stop, 1);
}

static void on_usr2(int sig)
{
	(void)sig;
	atomic_fetch_add(&round_wanted, 1);
}

int main(int argc, char **argv)
{
	int nwork = argc > 1 ? atoi(argv[1]) : 4, nchurn = argc > 2 ? atoi(argv[2]) : 4;
	if (argc > 3)
		k_per_round = atoi(argv[3]);
	if (nwork < 0 || nwork > 64 || nchurn < 0 || nchurn > 64 || k_per_round < 1) {
		fputs("usage: rounds [NWORK [NCHURN [K]]]\n", stderr);
		return 99;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	pthread_t t[128];
	int n = 0;
	for (int i = 0; i < nwork; i++)
		pthread_create(&t[n++], NULL, worker, (void *)(uintptr_t)i);
	for (int i = 0; i < nchurn; i++)
		pthread_create(&t[n++], NULL, churn, (void *)(uintptr_t)(i + 1));
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("READY %d\n", (int)getpid());
	int reported = 0;
	while (!atomic_load(&stop)) {
		int want = atomic_load(&round_wanted);
		if (reported < want && atomic_load(&round_done_by) == want * nwork)
			printf("ROUND %d DONE\n", ++reported);
		usleep(2000);
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	if (atomic_load(&bad)) {
		printf("CHECK FAILED %ld bad blocks\n", atomic_load(&bad));
		return 1;
	}
	printf("CHECK OK %ld %d\n", atomic_load(&replaced), reported);
	return 0;
}
