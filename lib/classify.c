#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunks.h"
#include "classify.h"
#include "proc.h"

const char *hs_map_kind_name(enum hs_map_kind k)
{
	static const char *names[] = { "main_heap", "arena_heap", "thread_stack", "mmap_chunk",
				       "file", "anon", "other" };
	return k <= HS_MAP_OTHER ? names[k] : "other";
}

int hs_classify(pid_t pid, const struct hs_maps *maps, struct hs_heap *h, struct hs_mem *mem, struct hs_class *out)
{
	pid_t *tids = NULL;
	size_t ntids = 0;
	hs_proc_threads(pid, &tids, &ntids, NULL);
	uint64_t *sps = calloc(ntids ? ntids : 1, sizeof(*sps));
	for (size_t i = 0; sps && i < ntids; i++)
		hs_proc_thread_sp(pid, tids[i], &sps[i]);
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_mapping *m = &maps->v[i];
		struct hs_class *c = &out[i];
		memset(c, 0, sizeof(*c));
		c->arena = -1;
		c->kind = hs_mapping_anon(m) ? HS_MAP_ANON : m->path[0] == '/' ? HS_MAP_FILE : HS_MAP_OTHER;
		if (!strcmp(m->path, "[heap]")) {
			c->kind = HS_MAP_MAIN_HEAP;
			c->arena = 0;
			continue;
		}
		if (!strcmp(m->path, "[stack]")) {
			c->kind = HS_MAP_THREAD_STACK;
			continue;
		}
		if (c->kind != HS_MAP_ANON)
			continue;
		bool done = false;
		for (size_t a = 0; h && a < h->narenas && !done; a++) {
			const struct hs_arena *ar = &h->arenas[a];
			for (size_t k = 0; k < ar->nheaps && !done; k++) {
				uint64_t s = ar->heaps[k].addr, e = s + ar->heaps[k].reserved;
				if (m->start < e && m->end > s) {
					c->kind = ar->main ? HS_MAP_MAIN_HEAP : HS_MAP_ARENA_HEAP;
					c->arena = ar->index;
					done = true;
				}
			}
		}
		if (done)
			continue;
		for (size_t t = 0; sps && t < ntids; t++)
			if (sps[t] >= m->start && sps[t] < m->end) {
				c->kind = HS_MAP_THREAD_STACK;
				done = true;
			}
		if (done || m->perms[0] != 'r')
			continue;
		if (mem)
			hs_chunks_mmapped_in(m, mem, NULL, NULL, &c->nchunks, &c->chunk_bytes);
		if (c->nchunks) {
			c->kind = HS_MAP_MMAP_CHUNK;
			continue;
		}
		/* A glibc thread stack that was not in a system call: rw memory
		 * right above its ---p guard page. */
		if (i > 0 && !strcmp(maps->v[i - 1].perms, "---p") && hs_mapping_anon(&maps->v[i - 1]) &&
		    maps->v[i - 1].end == m->start && maps->v[i - 1].end - maps->v[i - 1].start <= 1 << 20 &&
		    m->end - m->start >= 64 << 10)
			c->kind = HS_MAP_THREAD_STACK;
	}
	free(sps);
	free(tids);
	return 0;
}

static int by_rss(const void *x, const void *y, void *ctx)
{
	const struct hs_maps *maps = ctx;
	const struct hs_mapping *ma = &maps->v[*(const size_t *)x], *mb = &maps->v[*(const size_t *)y];
	if (ma->rss != mb->rss)
		return ma->rss < mb->rss ? 1 : -1;
	uint64_t sa = ma->end - ma->start, sb = mb->end - mb->start;
	if (sa != sb)
		return sa < sb ? 1 : -1;
	return (ma->start > mb->start) - (ma->start < mb->start);
}

size_t *hs_maps_by_rss(const struct hs_maps *maps)
{
	size_t *order = calloc(maps->n + 1, sizeof(*order));
	if (!order)
		return NULL;
	for (size_t i = 0; i < maps->n; i++)
		order[i] = i;
	qsort_r(order, maps->n, sizeof(*order), by_rss, (void *)maps);
	return order;
}
