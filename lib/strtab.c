#include <stdlib.h>
#include <string.h>

#include "strtab.h"

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;       /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static int grow(struct hs_strtab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 4096;
	struct hs_strent *nv = calloc(ncap, sizeof(*nv));
	if (!nv)
		return -1;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].s) {
			size_t j = hash(t->v[i].s, t->v[i].len) & (ncap - 1);
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
	size_t j = hash(s, len) & (t->cap - 1);
	while (t->v[j].s) {
		if (t->v[j].len == len && !memcmp(t->v[j].s, s, len)) {
			t->v[j].count++;
			t->v[j].bytes += bytes;
			return;
		}
		j = (j + 1) & (t->cap - 1);
	}
	/* a new string: only while the table has room */
	if (t->n * 2 >= t->cap || !(t->v[j].s = malloc(len + 1))) {
		t->untracked++;
		return;
	}
	memcpy(t->v[j].s, s, len);
	t->v[j].s[len] = '\0';
	t->v[j].len = len;
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
	for (size_t i = 0; i < t->cap; i++)
		free(t->v[i].s);
	free(t->v);
	memset(t, 0, sizeof(*t));
}
