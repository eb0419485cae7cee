/* A page-by-page picture of each arena heap: every page of the heap's used
 * part in one of four classes, from the walk's free chunks and top and
 * /proc/PID/pagemap.  A page counts as free when it lies wholly inside a
 * free chunk (bins, fastbins) or the top chunk. */
#ifndef HS_HEAPMAP_H
#define HS_HEAPMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"
#include "heap.h"

enum hs_page_class {
	HS_PAGE_USED,        /* resident, holds (part of) a chunk in use */
	HS_PAGE_FREE,        /* resident (or swapped), wholly free: held, not used */
	HS_PAGE_RETURNED,    /* wholly free and not resident: given back (madvise, trim) */
	HS_PAGE_UNTOUCHED,   /* not resident and not wholly free: never touched */
	HS_PAGE_NCLASS
};

struct hs_heapmap_heap {
	int arena;               /* arena index */
	uint64_t start, end;     /* [start, end), page-aligned */
	size_t npages;
	uint8_t *cls;            /* enum hs_page_class per page */
	uint64_t count[HS_PAGE_NCLASS];
};

struct hs_heapmap {
	uint64_t page;
	size_t n;
	struct hs_heapmap_heap *v;
	uint64_t count[HS_PAGE_NCLASS];
};

int hs_heapmap_build(const struct hs_heap *h, int pagemap_fd, struct hs_heapmap *m, struct hs_err *err);
void hs_heapmap_release(struct hs_heapmap *m);

/* The terminal's picture of hp, at most lines rows of width cells: how
 * many pages a cell holds. */
size_t hs_heapmap_per_cell(const struct hs_heapmap_heap *hp, size_t width, size_t lines);
/* What cell i (pages [i * per, (i + 1) * per)) shows: its pages' most
 * common class, the first on a tie. */
enum hs_page_class hs_heapmap_cell(const struct hs_heapmap_heap *hp, size_t i, size_t per);

/* Each class's name ("free, resident") and key ("free_resident"). */
extern const char *const hs_page_class_name[HS_PAGE_NCLASS];
extern const char *const hs_page_class_key[HS_PAGE_NCLASS];

/* An SVG picture of m, one square per page: 0 or -EIO (a write error). */
int hs_heapmap_write_svg(FILE *f, pid_t pid, const struct hs_heapmap *m);

#endif
