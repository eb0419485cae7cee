#include <errno.h>
#include <inttypes.h>

#include "info.h"

/* The 2.31+ format of __malloc_info (malloc.c): top counted in "rest",
 * fastbin lines from the first chunk's size, raw bin sizes, two spaces of
 * indentation left by the backslash-newline in the source. */
int hs_info_malloc_info(const struct hs_heap *h, FILE *fp)
{
	if (!h->l->top_in_rest)
		return -ENOTSUP;
	uint64_t t_nfast = 0, t_fast = 0, t_nblocks = 0, t_avail = 0, t_sys = 0, t_max = 0, t_asp = 0, t_aspm = 0;
	fputs("<malloc version=\"1\">\n", fp);
	for (size_t n = 0; n < h->narenas; n++) {
		const struct hs_arena *a = &h->arenas[n];
		fprintf(fp, "<heap nr=\"%zu\">\n<sizes>\n", n);
		uint64_t nblocks = 1, avail = a->top_size;
		for (int i = 0; i < h->l->nfastbins; i++)
			if (a->fast[i].count)
				fprintf(fp, "  <size from=\"%" PRIu64 "\" to=\"%" PRIu64 "\" total=\"%" PRIu64 "\" count=\"%" PRIu64 "\"/>\n",
					a->fast[i].from, a->fast[i].to, a->fast[i].total, a->fast[i].count);
		for (int i = 1; i < HS_NBINS; i++) {
			nblocks += a->bins[i].count;
			avail += a->bins[i].total;
			if (i > 1 && a->bins[i].count)
				fprintf(fp, "  <size from=\"%" PRIu64 "\" to=\"%" PRIu64 "\" total=\"%" PRIu64 "\" count=\"%" PRIu64 "\"/>\n",
					a->bins[i].from, a->bins[i].to, a->bins[i].total, a->bins[i].count);
		}
		if (a->bins[1].count)
			fprintf(fp, "  <unsorted from=\"%" PRIu64 "\" to=\"%" PRIu64 "\" total=\"%" PRIu64 "\" count=\"%" PRIu64 "\"/>\n",
				a->bins[1].from, a->bins[1].to, a->bins[1].total, a->bins[1].count);
		fprintf(fp,
			"</sizes>\n<total type=\"fast\" count=\"%" PRIu64 "\" size=\"%" PRIu64 "\"/>\n"
			"<total type=\"rest\" count=\"%" PRIu64 "\" size=\"%" PRIu64 "\"/>\n"
			"<system type=\"current\" size=\"%" PRIu64 "\"/>\n"
			"<system type=\"max\" size=\"%" PRIu64 "\"/>\n",
			a->fast_count, a->fast_bytes_mi, nblocks, avail, a->system_mem, a->max_system_mem);
		uint64_t asp = 0, aspm = 0;
		if (a->main) {
			asp = aspm = a->system_mem;
			fprintf(fp, "<aspace type=\"total\" size=\"%" PRIu64 "\"/>\n<aspace type=\"mprotect\" size=\"%" PRIu64 "\"/>\n",
				asp, aspm);
		} else {
			for (size_t k = 0; k < a->nheaps; k++) {
				asp += a->heaps[k].size;
				aspm += a->heaps[k].mprotect_size;
			}
			fprintf(fp,
				"<aspace type=\"total\" size=\"%" PRIu64 "\"/>\n<aspace type=\"mprotect\" size=\"%" PRIu64 "\"/>\n"
				"<aspace type=\"subheaps\" size=\"%zu\"/>\n", asp, aspm, a->nheaps);
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
	fprintf(fp,
		"<total type=\"fast\" count=\"%" PRIu64 "\" size=\"%" PRIu64 "\"/>\n"
		"<total type=\"rest\" count=\"%" PRIu64 "\" size=\"%" PRIu64 "\"/>\n"
		"<total type=\"mmap\" count=\"%d\" size=\"%" PRIu64 "\"/>\n"
		"<system type=\"current\" size=\"%" PRIu64 "\"/>\n"
		"<system type=\"max\" size=\"%" PRIu64 "\"/>\n"
		"<aspace type=\"total\" size=\"%" PRIu64 "\"/>\n"
		"<aspace type=\"mprotect\" size=\"%" PRIu64 "\"/>\n"
		"</malloc>\n",
		t_nfast, t_fast, t_nblocks, t_avail, h->n_mmaps, h->mmapped_mem, t_sys, t_max, t_asp, t_aspm);
	return 0;
}
