#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"

#define BLOCK (1u << 20)
#define PAGE  4096u

/* ---- ranges ------------------------------------------------------------------ */

int hs_parse_size(const char *s, uint64_t *v)
{
	char *end;
	if (!*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (*end || (shift && x > (UINT64_MAX >> shift)))
		return -EINVAL;
	*v = (uint64_t)x << shift;
	return 0;
}

bool hs_range_needs_heap(const char *spec)
{
	return !strncmp(spec, "arena:", 6) || !strncmp(spec, "heap:", 5);
}

static int push(struct hs_ranges *r, uint64_t start, uint64_t end, const char *what)
{
	struct hs_range *nv = realloc(r->v, (r->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	r->v = nv;
	nv[r->n].start = start;
	nv[r->n].end = end;
	snprintf(nv[r->n].what, sizeof(nv[r->n].what), "%s", what);
	r->n++;
	return 0;
}

static bool touches_mapping(const struct hs_maps *maps, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < maps->n; i++)
		if (maps->v[i].start < end && maps->v[i].end > start)
			return true;
	return false;
}

static int push_heap(struct hs_ranges *out, const struct hs_arena *a, const struct hs_heapseg *s)
{
	char what[96];
	snprintf(what, sizeof(what), "arena %d heap 0x%" PRIx64, a->index, s->addr);
	/* The readable part: a thread heap's reserve past mprotect_size is
	 * PROT_NONE. */
	return push(out, s->addr, s->addr + s->mprotect_size, what);
}

/* arena:N, N an index: digits only (no sign, no -1). */
static int check_arena(const char *spec, struct hs_err *err)
{
	const char *p = spec + 6;
	size_t len = strlen(p);
	if (!len || len > 9 || strspn(p, "0123456789") != len)
		return hs_err_set(err, EINVAL, "'%s': arena:N takes an arena index (0, 1, ...)", spec);
	return 0;
}

/* ADDR, ADDR-END or ADDR+LEN: [*a, *b) and *span, or ADDR alone. */
static int parse_span(const char *spec, uint64_t *a, uint64_t *b, bool *span, struct hs_err *err)
{
	const char *dash = strchr(spec, '-'), *plus = strchr(spec, '+');
	char lhs[64];
	const char *sep = dash ? dash : plus;
	size_t ll = sep ? (size_t)(sep - spec) : strlen(spec);
	if (ll >= sizeof(lhs))
		return hs_err_set(err, EINVAL, "'%s' is not a range", spec);
	memcpy(lhs, spec, ll);
	lhs[ll] = '\0';
	if (hs_parse_size(lhs, a) < 0 || (sep && hs_parse_size(sep + 1, b) < 0))
		return hs_err_set(err, EINVAL,
				  "'%s' is not a range (0xSTART-0xEND, 0xSTART+LEN, arena:N, heap:ADDR, [heap], "
				  "[stack], a mapping's start or a mapped file)", spec);
	*span = sep != NULL;
	if (!sep)
		return 0;
	if (plus && !dash) {
		if (*b == 0)
			return hs_err_set(err, EINVAL, "'%s': the length is 0", spec);
		if (*a + *b < *a)
			return hs_err_set(err, EINVAL, "'%s' overflows the address space", spec);
		*b = *a + *b;
	}
	if (*b <= *a)
		return hs_err_set(err, EINVAL, "'%s': the end is not after the start", spec);
	return 0;
}

int hs_range_check(const char *spec, struct hs_err *err)
{
	uint64_t a, b;
	bool span;
	if (!strncmp(spec, "arena:", 6))
		return check_arena(spec, err);
	if (!strncmp(spec, "heap:", 5))
		return hs_parse_size(spec + 5, &a) < 0
			       ? hs_err_set(err, EINVAL, "'%s': heap:ADDR takes an address", spec) : 0;
	if (spec[0] == '[' || spec[0] == '/')
		return 0;
	return parse_span(spec, &a, &b, &span, err);
}

int hs_range_resolve(const char *spec, const struct hs_maps *maps, const struct hs_heap *h,
		     struct hs_ranges *out, struct hs_err *err)
{
	out->n = 0;
	out->v = NULL;
	int r = 0;
	uint64_t a, b;
	if (!strncmp(spec, "arena:", 6)) {
		if ((r = check_arena(spec, err)) < 0)
			return r;
		unsigned long n = strtoul(spec + 6, NULL, 10);
		if (!h || n >= h->narenas)
			return hs_err_set(err, EINVAL, "no arena %lu: the process has %zu (see heapscope arenas)", n,
					  h ? h->narenas : 0);
		const struct hs_arena *ar = &h->arenas[n];
		for (size_t k = 0; k < ar->nheaps && r == 0; k++)
			r = push_heap(out, ar, &ar->heaps[k]);
		if (r == 0 && out->n == 0)
			return hs_err_set(err, EINVAL, "arena %lu has no heap yet", n);
	} else if (!strncmp(spec, "heap:", 5)) {
		if (hs_parse_size(spec + 5, &a) < 0)
			return hs_err_set(err, EINVAL, "'%s': heap:ADDR takes an address", spec);
		for (size_t i = 0; h && i < h->narenas && !out->n && r == 0; i++)
			for (size_t k = 0; k < h->arenas[i].nheaps && !out->n && r == 0; k++) {
				const struct hs_heapseg *s = &h->arenas[i].heaps[k];
				if (a >= s->addr && a - s->addr < s->reserved)
					r = push_heap(out, &h->arenas[i], s);
			}
		if (r == 0 && !out->n)
			return hs_err_set(err, EINVAL, "0x%" PRIx64 " is in no malloc heap", a);
	} else if (spec[0] == '[' || spec[0] == '/') {
		for (size_t i = 0; i < maps->n && r == 0; i++)
			if (!strcmp(maps->v[i].path, spec))
				r = push(out, maps->v[i].start, maps->v[i].end, spec);
		if (r == 0 && !out->n)
			return hs_err_set(err, EINVAL, "'%s' is not mapped in the process", spec);
	} else {
		bool span;
		if ((r = parse_span(spec, &a, &b, &span, err)) < 0)
			return r;
		if (!span) {
			for (size_t i = 0; i < maps->n && !out->n && r == 0; i++)
				if (maps->v[i].start == a)
					r = push(out, maps->v[i].start, maps->v[i].end,
						 maps->v[i].path[0] ? maps->v[i].path : "mapping");
			if (r == 0 && !out->n)
				return hs_err_set(err, EINVAL, "no mapping starts at 0x%" PRIx64, a);
		} else {
			if (!touches_mapping(maps, a, b))
				return hs_err_set(err, EINVAL, "0x%" PRIx64 "-0x%" PRIx64 " is outside every mapping", a, b);
			r = push(out, a, b, "range");
		}
	}
	if (r < 0) {
		hs_ranges_release(out);
		return hs_err_set(err, -r, "out of memory");
	}
	return 0;
}

void hs_ranges_release(struct hs_ranges *r)
{
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

/* ---- streaming reads ------------------------------------------------------------ */

static bool anon(const struct hs_mapping *m)
{
	return hs_mapping_anon(m) || !strcmp(m->path, "[heap]") || !strcmp(m->path, "[stack]");
}

/* Is the page at pa absent (anonymous, never touched: neither present nor
 * swapped)?  pm holds the pagemap entries from page a/PAGE on, got bytes
 * of them. */
static bool page_absent(const uint64_t *pm, ssize_t got, uint64_t a, uint64_t pa)
{
	uint64_t page = pa / PAGE - a / PAGE;
	return got > 0 && (ssize_t)(page * 8) < got && !(pm[page] >> 62);
}

/* Hand [a, a+len) of one readable mapping on, in runs of pages of one
 * kind: pages the target never touched go to ops->zeros (or to ops->data
 * as zeros) without a read; the rest is read into buf or ops->dest. */
static int stream_block(struct hs_mem *mem, const struct hs_mapping *m, int pagemap_fd, uint64_t a, size_t len,
			unsigned char *buf, const struct hs_stream_ops *ops, void *ctx)
{
	uint64_t pm[BLOCK / PAGE + 2];
	size_t npages = (len + PAGE - 1) / PAGE + 1;
	ssize_t got = -1;
	if (pagemap_fd >= 0 && anon(m))
		got = pread(pagemap_fd, pm, npages * 8, (off_t)(a / PAGE * 8));
	size_t off = 0;
	while (off < len) {
		uint64_t pa = a + off;
		size_t run = PAGE - pa % PAGE;
		if (run > len - off)
			run = len - off;
		bool absent = page_absent(pm, got, a, pa);
		/* extend over pages of the same kind */
		while (off + run < len && page_absent(pm, got, a, a + off + run) == absent)
			run += len - off - run < PAGE ? len - off - run : PAGE;
		int r;
		if (absent && ops->zeros) {
			r = ops->zeros(ctx, pa, run);
		} else {
			unsigned char *dst = ops->dest ? ops->dest(ctx, run) : NULL;
			if (!dst)
				dst = buf;
			if (absent) {
				memset(dst, 0, run);
				r = 0;
			} else {
				r = hs_mem_read(mem, pa, dst, run);
			}
			if (r == -ESRCH)
				return r;
			if (r < 0) {
				/* the mapping changed under us: skip what cannot be read */
				if (ops->skip)
					ops->skip(ctx, pa, run, "unreadable");
				r = 0;
			} else {
				r = ops->data(ctx, pa, dst, run);
			}
		}
		if (r < 0)
			return r;
		off += run;
	}
	return 0;
}

int hs_range_mapped(const struct hs_maps *maps, int pagemap_fd, uint64_t start, uint64_t end, uint64_t *bytes)
{
	uint64_t pm[BLOCK / PAGE];
	*bytes = 0;
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_mapping *m = &maps->v[i];
		uint64_t a = m->start > start ? m->start : start, b = m->end < end ? m->end : end;
		if (a >= b || m->perms[0] != 'r')
			continue;
		if (pagemap_fd < 0 || !anon(m)) {
			*bytes += b - a;
			continue;
		}
		/* count the pages present or swapped, by whole pages */
		for (uint64_t p = a / PAGE; p < (b + PAGE - 1) / PAGE;) {
			uint64_t n = (b + PAGE - 1) / PAGE - p;
			if (n > BLOCK / PAGE)
				n = BLOCK / PAGE;
			ssize_t got = pread(pagemap_fd, pm, n * 8, (off_t)(p * 8));
			if (got <= 0) {
				/* cannot tell: count what is left as resident */
				*bytes += b - (p * PAGE > a ? p * PAGE : a);
				break;
			}
			for (size_t k = 0; k < (size_t)got / 8; k++)
				if (pm[k] >> 62) {
					uint64_t lo = (p + k) * PAGE, hi = lo + PAGE;
					*bytes += (hi < b ? hi : b) - (lo > a ? lo : a);
				}
			p += (uint64_t)got / 8;
		}
	}
	return 0;
}

int hs_stream_range(struct hs_mem *mem, const struct hs_maps *maps, int pagemap_fd, uint64_t start,
		    uint64_t end, const struct hs_stream_ops *ops, void *ctx, struct hs_err *err)
{
	unsigned char *buf = malloc(BLOCK);
	if (!buf)
		return hs_err_set(err, ENOMEM, "out of memory");
	uint64_t a = start;
	int r = 0;
	while (a < end && r == 0) {
		/* the mapping holding a, or the first one after it */
		const struct hs_mapping *m = NULL;
		for (size_t i = 0; i < maps->n; i++)
			if (maps->v[i].end > a) {
				m = &maps->v[i];
				break;
			}
		if (!m || m->start >= end) {
			if (ops->skip)
				ops->skip(ctx, a, end - a, "unmapped");
			break;
		}
		if (m->start > a) {
			if (ops->skip)
				ops->skip(ctx, a, m->start - a, "unmapped");
			a = m->start;
			continue;
		}
		uint64_t stop = m->end < end ? m->end : end;
		if (m->perms[0] != 'r') {
			if (ops->skip)
				ops->skip(ctx, a, stop - a, "not readable (PROT_NONE)");
			a = stop;
			continue;
		}
		while (a < stop && r == 0) {
			size_t n = stop - a > BLOCK ? BLOCK : (size_t)(stop - a);
			/* keep blocks page-aligned after the first */
			if (a % PAGE && n > PAGE - a % PAGE && stop - a > BLOCK)
				n = BLOCK - a % PAGE;
			r = stream_block(mem, m, pagemap_fd, a, n, buf, ops, ctx);
			if (r == -ESRCH)
				r = hs_err_set(err, ESRCH, "the process exited during the dump");
			a += n;
		}
	}
	free(buf);
	return r;
}
