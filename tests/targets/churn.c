/* churn: the stress target for heapscope trim.  NTHREADS threads (default
 * 8) each keep 256 blocks, each filled with a pattern derived from its
 * address and size, and replace them in a tight malloc/free loop, checking
 * each block's pattern before it is freed.  "READY <pid>"; on SIGUSR1 the
 * threads stop, check every block they hold, and the process prints
 * "CHECK OK <replacements>" (or "CHECK FAILED ...") and exits. */
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

/* mostly small blocks, one in eight up to 200 KB */
static size_t churn_size(unsigned *seed, int first)
{
	if (first)
		return 16 + rand_r(seed) % 4000;
	return 16 + rand_r(seed) % (rand_r(seed) % 8 ? 4000 : 200000);
}

static void *worker(void *arg)
{
	churn_blocks((unsigned)(uintptr_t)arg, churn_size);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 8;
	if (n < 1 || n > 64)
		return 99;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t t[64];
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
			return 99;
	char line[64];
	int len = snprintf(line, sizeof(line), "READY %d\n", (int)getpid());
	if (write(STDOUT_FILENO, line, len) != len)
		return 99;
	int sig;
	sigwait(&set, &sig);
	atomic_store(&stop, 1);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	if (atomic_load(&bad))
		len = snprintf(line, sizeof(line), "CHECK FAILED: %ld blocks changed\n", atomic_load(&bad));
	else
		len = snprintf(line, sizeof(line), "CHECK OK %ld\n", atomic_load(&replaced));
	if (write(STDOUT_FILENO, line, len) != len)
		return 99;
	return atomic_load(&bad) ? 1 : 0;
}
