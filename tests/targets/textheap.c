/* textheap: a fragmented arena heap full of text, for dump --strings.
 *
 * Usage: textheap [MIB]            (default 40)
 *
 * One thread (on its own arena, a 64 MiB-aligned heap) allocates about MIB
 * MiB in 1-4 KiB chunks full of lines of words, 10 to 160 characters a line,
 * then frees every other chunk (the text stays: free() overwrites only the
 * first words of a chunk).  Nearly every byte is in a printable run of 10 or
 * more, so strings -n 10 prints about as much as the heap holds.  Then
 * "READY <pid>" and block until SIGTERM.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void **volatile sink;
static size_t mib = 40;
static pthread_barrier_t barrier;

static const char *const words[] = { "heap", "arena", "chunk", "malloc", "free", "the", "of", "a", "memory",
				     "process", "string", "tcache", "bin", "top", "thread", "page", "resident",
				     "segment", "fragmented", "lorem", "ipsum", "dolor", "sit", "amet", "1234" };

static void fill(char *p, size_t sz, uint64_t *seed)
{
	size_t i = 0, line = 0, linelen = 10 + *seed % 150;
	while (i + 1 < sz) {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		const char *w = words[(*seed >> 33) % (sizeof(words) / sizeof(words[0]))];
		size_t wl = strlen(w);
		for (size_t k = 0; k < wl && i + 1 < sz; k++, line++)
			p[i++] = w[k];
		if (i + 1 >= sz)
			break;
		if (line >= linelen) {
			p[i++] = '\n';
			line = 0;
			linelen = 10 + (*seed >> 40) % 150;
		} else {
			p[i++] = ' ';
			line++;
		}
	}
	p[sz - 1] = '\0';
}

static void *thread_main(void *arg)
{
	(void)arg;
	size_t target = mib << 20, used = 0, n = target / 1024 + 1, i;
	void **v = malloc(n * sizeof(*v));
	uint64_t seed = 42;
	if (!v)
		abort();
	for (i = 0; i < n && used < target; i++) {
		size_t sz = 1024 + (i * 2654435761u) % 3073;
		if (!(v[i] = malloc(sz)))
			abort();
		fill(v[i], sz, &seed);
		used += sz;
	}
	sink = v;
	for (size_t k = 0; k + 1 < i; k += 2)
		free(v[k]);
	pthread_barrier_wait(&barrier);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t tid;
	char line[64];
	if (argc > 1)
		mib = strtoul(argv[1], NULL, 10);
	if (argc > 2 || mib < 1 || mib > 60) {
		fprintf(stderr, "usage: textheap [MIB]  (1..60)\n");
		return 99;
	}
	signal(SIGTERM, SIG_DFL);
	pthread_barrier_init(&barrier, NULL, 2);
	if (pthread_create(&tid, NULL, thread_main, NULL) != 0)
		return 99;
	pthread_barrier_wait(&barrier);
	int len = snprintf(line, sizeof(line), "READY %d\n", (int)getpid());
	if (write(STDOUT_FILENO, line, len) != len)
		return 99;
	for (;;)
		pause();
}
