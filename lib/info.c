#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "info.h"

/* __malloc_info (malloc.c), as each version writes it: fastbin lines from
 * the first chunk's size, raw bin sizes (flag bits included), the top chunk
 * in "rest" from 2.31, the indentation the backslash-newline in the source
 * leaves (7 TABs and spaces before 2.31), the mmap total from 2.20, every
 * heap of an arena in "aspace" with a "subheaps" line from 2.27 (the top
 * heap alone before), no fastbins at all after 2.42. */
static void size_line(FILE *fp, const char *tag, const char *prefix, const struct hs_binstat *b)
{
	fprintf(fp, "%s<%s from=\"%" PRIu64 "\" to=\"%" PRIu64 "\" total=\"%" PRIu64 "\" count=\"%" PRIu64 "\"/>\n", prefix,
		tag, b->from, b->to, b->total, b->count);
}

int hs_info_malloc_info(const struct hs_heap *h, FILE *fp)
{
	const struct hs_layout *l = h->l;
	if (!l->mi_reproducible || !l->mi_size_prefix || !l->mi_unsorted_prefix)
		return -ENOTSUP;
	uint64_t t_nfast = 0, t_fast = 0, t_nblocks = 0, t_avail = 0, t_sys = 0, t_max = 0, t_asp = 0, t_aspm = 0;
	fputs("<malloc version=\"1\">\n", fp);
	for (size_t n = 0; n < h->narenas; n++) {
		const struct hs_arena *a = &h->arenas[n];
		fprintf(fp, "<heap nr=\"%zu\">\n<sizes>\n", n);
		uint64_t nblocks = l->top_in_rest ? 1 : 0, avail = l->top_in_rest ? a->top_size : 0;
		for (int i = 0; i < l->nfastbins; i++)
			if (a->fast[i].count)
				size_line(fp, "size", l->mi_size_prefix, &a->fast[i]);
		for (int i = 1; i < HS_NBINS; i++) {
			nblocks += a->bins[i].count;
			avail += a->bins[i].total;
			if (i > 1 && a->bins[i].count)
				size_line(fp, "size", l->mi_size_prefix, &a->bins[i]);
		}
		if (a->bins[1].count)
			size_line(fp, "unsorted", l->mi_unsorted_prefix, &a->bins[1]);
		fputs("</sizes>\n", fp);
		if (l->mi_fast)
			fprintf(fp, "<total type=\"fast\" count=\"%" PRIu64 "\" size=\"%" PRIu64 "\"/>\n", a->fast_count,
				a->fast_bytes_mi);
		fprintf(fp,
			"<total type=\"rest\" count=\"%" PRIu64 "\" size=\"%" PRIu64 "\"/>\n"
			"<system type=\"current\" size=\"%" PRIu64 "\"/>\n"
			"<system type=\"max\" size=\"%" PRIu64 "\"/>\n",
			nblocks, avail, a->system_mem, a->max_system_mem);
		uint64_t asp = 0, aspm = 0;
		if (a->main) {
			asp = aspm = a->system_mem;
			fprintf(fp, "<aspace type=\"total\" size=\"%" PRIu64 "\"/>\n<aspace type=\"mprotect\" size=\"%" PRIu64 "\"/>\n",
				asp, aspm);
		} else {
			/* heaps[0] is the heap holding top */
			size_t nh = l->mi_subheaps ? a->nheaps : (a->nheaps ? 1 : 0);
			for (size_t k = 0; k < nh; k++) {
				asp += a->heaps[k].size;
				aspm += a->heaps[k].mprotect_size;
			}
			fprintf(fp, "<aspace type=\"total\" size=\"%" PRIu64 "\"/>\n<aspace type=\"mprotect\" size=\"%" PRIu64 "\"/>\n",
				asp, aspm);
			if (l->mi_subheaps)
				fprintf(fp, "<aspace type=\"subheaps\" size=\"%zu\"/>\n", a->nheaps);
		}
		fputs("</heap>\n", fp);
		t_nfast += a->fast_count;
		t_fast += a->fast_bytes_mi;
		t_nblocks += nblocks;
		t_avail += avail;
		t_sys += a->system_mem;
		t_max += a->max_system_mem;
		t_asp += asp;
		t_aspm += aspm;
	}
	if (l->mi_fast)
		fprintf(fp, "<total type=\"fast\" count=\"%" PRIu64 "\" size=\"%" PRIu64 "\"/>\n", t_nfast, t_fast);
	fprintf(fp, "<total type=\"rest\" count=\"%" PRIu64 "\" size=\"%" PRIu64 "\"/>\n", t_nblocks, t_avail);
	if (l->mi_mmap_total)
		fprintf(fp, "<total type=\"mmap\" count=\"%d\" size=\"%" PRIu64 "\"/>\n", h->n_mmaps, h->mmapped_mem);
	fprintf(fp,
		"<system type=\"current\" size=\"%" PRIu64 "\"/>\n"
		"<system type=\"max\" size=\"%" PRIu64 "\"/>\n"
		"<aspace type=\"total\" size=\"%" PRIu64 "\"/>\n"
		"<aspace type=\"mprotect\" size=\"%" PRIu64 "\"/>\n"
		"</malloc>\n",
		t_sys, t_max, t_asp, t_aspm);
	return 0;
}

char *hs_info_malloc_info_str(const struct hs_heap *h)
{
	char *xml = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&xml, &len);
	if (!mf)
		return NULL;
	int r = hs_info_malloc_info(h, mf);
	fclose(mf);
	if (r < 0) {
		free(xml);
		return NULL;
	}
	return xml;
}
