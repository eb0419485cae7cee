#include <stdlib.h>
#include <string.h>

#include "strtab.h"

/* 8 bytes a step, multiply and fold: good enough for a table of strings. */
static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		s += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	return h ^ h >> 29;
}

#define BLOCK_MIN ((size_t)1 << 20)

/* Room for n bytes in the arena. */
static char *arena_alloc(struct hs_strtab *t, size_t n)
{
	if (t->block && t->size - t->used >= n) {
		char *p = t->block + t->used;
		t->used += n;
		return p;
	}
	size_t size = n + sizeof(char *) > BLOCK_MIN ? n + sizeof(char *) : BLOCK_MIN;
	char *b = malloc(size);
	if (!b)
		return NULL;
	memcpy(b, &t->block, sizeof(char *));
	t->block = b;
	t->size = size;
	t->used = sizeof(char *) + n;
	return b + sizeof(char *);
}

static int grow(struct hs_strtab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 4096;
	struct hs_strent *nv = calloc(ncap, sizeof(*nv));
	if (!nv)
		return -1;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].s) {
			size_t j = t->v[i].hash & (ncap - 1);
			while (nv[j].s)
				j = (j + 1) & (ncap - 1);
			nv[j] = t->v[i];
		}
	free(t->v);
	t->v = nv;
	t->cap = ncap;
	return 0;
}

void hs_strtab_add(struct hs_strtab *t, const char *s, size_t len, uint64_t bytes)
{
	if (t->n * 2 >= t->cap && (t->n >= HS_STRTAB_MAX || grow(t) < 0) && !t->cap) {
		t->untracked++;
		return;
	}
	uint64_t hv = hash(s, len);
	size_t j = hv & (t->cap - 1);
	while (t->v[j].s) {
		if (t->v[j].hash == hv && t->v[j].len == len && !memcmp(t->v[j].s, s, len)) {
			t->v[j].count++;
			t->v[j].bytes += bytes;
			return;
		}
		j = (j + 1) & (t->cap - 1);
	}
	/* a new string: only while the table has room */
	if (t->n * 2 >= t->cap || !(t->v[j].s = arena_alloc(t, len + 1))) {
		t->untracked++;
		return;
	}
	memcpy(t->v[j].s, s, len);
	t->v[j].s[len] = '\0';
	t->v[j].len = len;
	t->v[j].hash = hv;
	t->v[j].count = 1;
	t->v[j].bytes = bytes;
	t->n++;
}

static int cmp(const void *x, const void *y)
{
	const struct hs_strent *a = x, *b = y;
	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->s, b->s, n);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

size_t hs_strtab_sort(struct hs_strtab *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].s)
			t->v[n++] = t->v[i];
	for (size_t i = n; i < t->cap; i++)
		t->v[i].s = NULL;
	qsort(t->v, n, sizeof(*t->v), cmp);
	return n;
}

void hs_strtab_release(struct hs_strtab *t)
{
	while (t->block) {
		char *next;
		memcpy(&next, t->block, sizeof(char *));
		free(t->block);
		t->block = next;
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}
