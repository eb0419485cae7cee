/* leaky: leaks from functions with known names and lines under glibc's
 * mtrace, for heapscope mtrace report's symbolising.
 *
 * Usage: leaky exit|wait
 *
 * Started with LD_PRELOAD=libc_malloc_debug.so.0 and MALLOC_TRACE=FILE, it
 * traces itself with mtrace(), then leaks 10 blocks of 24 bytes from
 * leak_small, 3 of 4096 from leak_big, 4 of 200 from leak_realloc (a
 * realloc), 5 of 100 from lib_leak (libhsleak.so) and 2 from strdup (inside
 * libc), frees as many again, and stops tracing with muntrace().  exit:
 * exits; wait: writes "READY <pid>" and waits for SIGTERM.
 *
 * Each line that allocates a leaked block carries a "LEAK name" comment:
 * the test finds the line numbers it expects there. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <mcheck.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *lib_leak(size_t n);
void leak_small(void);
void leak_realloc(void);

/* volatile: the compiler may drop a malloc whose result is never read */
static void *volatile kept[64];
static int nkept;

/* noinline, and the result stored after the call: a tail call would leave
 * the caller's caller as malloc's return address. */
__attribute__((noinline)) void leak_small(void)
{
	kept[nkept] = malloc(24); /* LEAK leak_small */
	nkept++;
}

__attribute__((noinline)) static void leak_big(void)
{
	kept[nkept] = malloc(4096); /* LEAK leak_big */
	nkept++;
}

__attribute__((noinline)) void leak_realloc(void)
{
	void *p = malloc(20);
	kept[nkept] = realloc(p, 200); /* LEAK leak_realloc */
	nkept++;
}

__attribute__((noinline)) static void churn(void)
{
	for (int i = 0; i < 20; i++) {
		void *volatile p = malloc(16 + (size_t)i * 8);
		free(p);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "exit") && strcmp(argv[1], "wait"))) {
		fprintf(stderr, "usage: leaky exit|wait\n");
		return 64;
	}
	mtrace();
	for (int i = 0; i < 10; i++)
		leak_small();
	for (int i = 0; i < 3; i++)
		leak_big();
	for (int i = 0; i < 4; i++)
		leak_realloc();
	for (int i = 0; i < 5; i++)
		kept[nkept++] = lib_leak(100);
	for (int i = 0; i < 2; i++)
		kept[nkept++] = strdup("leaked by strdup");
	churn();
	muntrace();
	if (!strcmp(argv[1], "wait")) {
		printf("READY %d\n", (int)getpid());
		fflush(stdout);
		for (;;)
			pause();
	}
	return 0;
}
