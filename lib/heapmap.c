/* The page classes of each arena heap. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "heapmap.h"

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)

/* Mark the pages wholly inside [a, a+len) free in the heap holding them. */
static void mark_free(struct hs_heapmap *m, size_t first, size_t nheaps, uint64_t a, uint64_t len)
{
	uint64_t ps = m->page;
	uint64_t lo = (a + ps - 1) / ps * ps, hi = (a + len) / ps * ps;
	for (size_t k = first; k < first + nheaps; k++) {
		struct hs_heapmap_heap *hp = &m->v[k];
		uint64_t s = lo > hp->start ? lo : hp->start, e = hi < hp->end ? hi : hp->end;
		for (uint64_t p = s; p < e; p += ps)
			hp->cls[(p - hp->start) / ps] = HS_PAGE_FREE;
	}
}

int hs_heapmap_build(const struct hs_heap *h, int pagemap_fd, struct hs_heapmap *m, struct hs_err *err)
{
	memset(m, 0, sizeof(*m));
	m->page = (uint64_t)sysconf(_SC_PAGESIZE);
	if (pagemap_fd < 0)
		return hs_err_set(err, EACCES, "pagemap cannot be read: no page map without it");
	size_t total = 0;
	for (size_t i = 0; i < h->narenas; i++)
		total += h->arenas[i].nheaps;
	m->v = calloc(total ? total : 1, sizeof(*m->v));
	if (!m->v)
		return hs_err_sys(err, ENOMEM, "page map");
	uint64_t ps = m->page;
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_arena *a = &h->arenas[i];
		size_t first = m->n;
		for (size_t k = 0; k < a->nheaps; k++) {
			const struct hs_heapseg *hs = &a->heaps[k];
			struct hs_heapmap_heap *hp = &m->v[m->n];
			hp->arena = a->index;
			hp->start = hs->addr / ps * ps;
			/* the main arena's region holds top; a heap's used part is heap->size */
			uint64_t end = hs->addr + hs->size;
			hp->end = (end + ps - 1) / ps * ps;
			hp->npages = (hp->end - hp->start) / ps;
			hp->cls = calloc(hp->npages ? hp->npages : 1, 1);
			if (!hp->cls) {
				hs_heapmap_release(m);
				return hs_err_sys(err, ENOMEM, "page map");
			}
			m->n++;
		}
		for (size_t f = 0; f < a->nfree; f++)
			mark_free(m, first, a->nheaps, a->free[f].addr, a->free[f].size);
		/* top: its header's page stays in use */
		if (a->top && a->top_size)
			mark_free(m, first, a->nheaps, a->top, a->top_size);
	}
	uint64_t buf[512];
	for (size_t k = 0; k < m->n; k++) {
		struct hs_heapmap_heap *hp = &m->v[k];
		for (size_t p = 0; p < hp->npages; p += 512) {
			size_t want = hp->npages - p < 512 ? hp->npages - p : 512;
			ssize_t r = pread(pagemap_fd, buf, want * 8, (off_t)((hp->start / ps + p) * 8));
			if (r != (ssize_t)(want * 8)) {
				int e = r < 0 ? errno : EIO;
				hs_heapmap_release(m);
				return hs_err_sys(err, e, "read pagemap");
			}
			for (size_t q = 0; q < want; q++) {
				bool held = buf[q] & (PM_PRESENT | PM_SWAPPED);
				uint8_t *c = &hp->cls[p + q];
				if (*c == HS_PAGE_FREE)
					*c = held ? HS_PAGE_FREE : HS_PAGE_RETURNED;
				else
					*c = held ? HS_PAGE_USED : HS_PAGE_UNTOUCHED;
				hp->count[*c]++;
				m->count[*c]++;
			}
		}
	}
	return 0;
}

void hs_heapmap_release(struct hs_heapmap *m)
{
	for (size_t k = 0; k < m->n; k++)
		free(m->v[k].cls);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

const char *const hs_page_class_name[HS_PAGE_NCLASS] = { "in use", "free, resident", "free, returned", "never touched" };
const char *const hs_page_class_key[HS_PAGE_NCLASS] = { "in_use", "free_resident", "free_returned", "untouched" };
static const char *const fill[HS_PAGE_NCLASS] = { "#3b6fb6", "#d9412b", "#5fb85f", "#e4e4e4" };

int hs_heapmap_write_svg(FILE *f, pid_t pid, const struct hs_heapmap *m)
{
	const size_t cols = 128, cell = 4;
	size_t height = 40 + HS_PAGE_NCLASS * 18 + 10;
	for (size_t k = 0; k < m->n; k++)
		height += 28 + ((m->v[k].npages + cols - 1) / cols) * cell + 6;
	size_t width = cols * cell + 20 > 560 ? cols * cell + 20 : 560;
	char b[HS_SIZE_BUF];
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%zu\" height=\"%zu\" viewBox=\"0 0 %zu %zu\" "
		   "font-family=\"monospace\" font-size=\"12\">\n"
		   "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
		   "<text x=\"10\" y=\"20\" font-size=\"14\">heapscope map: pid %d, %zu arena heaps, %" PRIu64
		   "-byte pages</text>\n", width, height, width, height, (int)pid, m->n, m->page);
	size_t y = 34;
	fprintf(f, "<g id=\"legend\">\n");
	for (int c = 0; c < HS_PAGE_NCLASS; c++, y += 18)
		fprintf(f, "<rect x=\"10\" y=\"%zu\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"28\" y=\"%zu\" "
			   "data-class=\"%s\" data-pages=\"%" PRIu64 "\" data-bytes=\"%" PRIu64 "\">%s: %s (%" PRIu64
			   " bytes, %" PRIu64 " pages)</text>\n", y, fill[c], y + 11, hs_page_class_key[c], m->count[c],
			m->count[c] * m->page, hs_page_class_name[c], hs_fmt_size(m->count[c] * m->page, b), m->count[c] * m->page,
			m->count[c]);
	fprintf(f, "</g>\n");
	y += 10;
	for (size_t k = 0; k < m->n; k++) {
		const struct hs_heapmap_heap *hp = &m->v[k];
		fprintf(f, "<g class=\"heap\" data-arena=\"%d\" data-start=\"0x%" PRIx64 "\" data-end=\"0x%" PRIx64 "\">\n"
			   "<text x=\"10\" y=\"%zu\">arena %d heap 0x%" PRIx64 " (%s)</text>\n", hp->arena, hp->start,
			hp->end, y + 14, hp->arena, hp->start, hs_fmt_size(hp->end - hp->start, b));
		y += 22;
		/* one rect per run of a class within a row */
		for (size_t row = 0; row * cols < hp->npages; row++) {
			size_t p = row * cols, end = p + cols < hp->npages ? p + cols : hp->npages;
			while (p < end) {
				size_t q = p;
				while (q < end && hp->cls[q] == hp->cls[p])
					q++;
				fprintf(f, "<rect class=\"%s\" x=\"%zu\" y=\"%zu\" width=\"%zu\" height=\"%zu\" fill=\"%s\" "
					   "data-pages=\"%zu\"/>\n", hs_page_class_key[hp->cls[p]], 10 + (p - row * cols) * cell,
					y + row * cell, (q - p) * cell, cell, fill[hp->cls[p]], q - p);
				p = q;
			}
		}
		y += ((hp->npages + cols - 1) / cols) * cell + 6;
		fprintf(f, "</g>\n");
	}
	fprintf(f, "</svg>\n");
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

size_t hs_heapmap_per_cell(const struct hs_heapmap_heap *hp, size_t width, size_t lines)
{
	size_t per = (hp->npages + width * lines - 1) / (width * lines);
	return per < 1 ? 1 : per;
}

enum hs_page_class hs_heapmap_cell(const struct hs_heapmap_heap *hp, size_t i, size_t per)
{
	uint64_t n[HS_PAGE_NCLASS] = { 0 };
	for (size_t p = i * per; p < hp->npages && p < (i + 1) * per; p++)
		n[hp->cls[p]]++;
	int best = 0;
	for (int c = 1; c < HS_PAGE_NCLASS; c++)
		if (n[c] > n[best])
			best = c;
	return (enum hs_page_class)best;
}
