/* shiftheap: a heap whose free lists change on request, to check that a
 * reader which looks twice (once running, once stopped) reports the second.
 *
 * Usage: shiftheap OUTFILE
 *
 * The main thread (main arena only) allocates 3000 chunks of 100..1000 bytes
 * and frees every third: tcache, fastbins, small and unsorted bins.  It
 * writes malloc_info(0) to OUTFILE, prints "READY <pid>" and blocks.
 * SIGUSR2: it frees every third chunk again (the next ones), writes
 * malloc_info(0) to OUTFILE.2, prints "CHANGED" and blocks again.
 * SIGUSR1: it frees every chunk it still holds (a live one after them keeps
 * them off the top), calls malloc_trim(0), which drops the pages inside the
 * free chunk they make (pages that held chunk headers), prints "TRIMMED"
 * and blocks again.
 * SIGTERM: default action.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 3000

static void *v[N];
static volatile sig_atomic_t shift;

static void on_usr2(int sig)
{
	(void)sig;
	shift = sig == SIGUSR1 ? 2 : 1;
}

static int info(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	malloc_info(0, f);
	return fclose(f);
}

int main(int argc, char **argv)
{
	char path[4096];
	sigset_t block, old;

	if (argc != 2 || strlen(argv[1]) + 3 > sizeof(path)) {
		fprintf(stderr, "usage: shiftheap OUTFILE\n");
		return 99;
	}
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR2, on_usr2);
	signal(SIGUSR1, on_usr2);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	for (int i = 0; i < N; i++) {
		v[i] = malloc(100 + (size_t)(i * 7919) % 900);
		if (!v[i])
			abort();
		memset(v[i], 0x3c, 16);
	}
	void *guard = malloc(64);
	for (int i = 0; i < N; i += 3)
		free(v[i]);
	if (!guard || info(argv[1]) < 0)
		return 99;
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	while (!shift)
		sigsuspend(&old);
	if (shift == 2) {
		for (int i = 0; i < N; i++)
			if (i % 3)
				free(v[i]);
		malloc_trim(0);
		printf("TRIMMED\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	for (int i = 1; i < N; i += 3)
		free(v[i]);
	snprintf(path, sizeof(path), "%s.2", argv[1]);
	if (info(path) < 0)
		return 99;
	printf("CHANGED\n");
	fflush(stdout);
	for (;;)
		pause();
}
