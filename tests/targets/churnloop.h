/* The checked churn of churn.c and rounds.c: a thread keeps BLOCKS blocks,
 * each filled with a pattern derived from its address, and replaces them
 * in a tight malloc/free loop until stop, checking each block before it is
 * freed, and all of them at the end.  Changed blocks are counted in bad,
 * replacements in replaced. */
#ifndef CHURNLOOP_H
#define CHURNLOOP_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define BLOCKS 256

static atomic_int stop;
static atomic_long replaced, bad;

static unsigned char pattern(const void *p, size_t i)
{
	return (unsigned char)(((uintptr_t)p >> 4) + i * 7);
}

static void fill(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(p, i);
}

static int check(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(p, i))
			return 0;
	return 1;
}

/* size(seed, first): the size of a new block (first: of the initial ones) */
static void churn_blocks(unsigned seed, size_t (*size)(unsigned *seed, int first))
{
	unsigned char *b[BLOCKS];
	size_t sz[BLOCKS];
	for (int i = 0; i < BLOCKS; i++) {
		sz[i] = size(&seed, 1);
		if (!(b[i] = malloc(sz[i])))
			abort();
		fill(b[i], sz[i]);
	}
	while (!atomic_load(&stop)) {
		int i = rand_r(&seed) % BLOCKS;
		if (!check(b[i], sz[i]))
			atomic_fetch_add(&bad, 1);
		free(b[i]);
		sz[i] = size(&seed, 0);
		if (!(b[i] = malloc(sz[i])))
			abort();
		fill(b[i], sz[i]);
		atomic_fetch_add(&replaced, 1);
	}
	for (int i = 0; i < BLOCKS; i++) {
		if (!check(b[i], sz[i]))
			atomic_fetch_add(&bad, 1);
		free(b[i]);
	}
}

#endif
