/* heapscope profile's report written out: as text (JSON and folded are
 * in profile_report.c, pprof in pprof.c, SVG in flame.c), and the files
 * named on the command line opened, written and closed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "profile.h"

static void text_stack(FILE *fp, const struct hs_profile_stack *s, double alloc)
{
	char b1[HS_SIZE_BUF], b2[HS_SIZE_BUF];
	fprintf(fp, "%10s %5.1f%% %10s %8zu  ", hs_fmt_size((uint64_t)s->alloc_bytes, b1),
		alloc > 0 ? 100.0 * s->alloc_bytes / alloc : 0.0, hs_fmt_size((uint64_t)s->inuse_bytes, b2), s->samples);
	for (size_t k = 0; k < s->nframes; k++) {
		const struct hs_profile_frame *f = &s->frames[k];
		const char *obj = f->object ? strrchr(f->object, '/') : NULL;
		obj = obj ? obj + 1 : f->object;
		if (k)
			fprintf(fp, "%10s %6s %10s %8s  ", "", "", "", "");
		if (f->name)
			fprintf(fp, "%s", f->name);
		else
			fprintf(fp, "0x%" PRIx64, f->pc);
		if (f->file)
			fprintf(fp, " (%s)", f->file);
		else if (obj)
			fprintf(fp, " [%s]", obj);
		fputc('\n', fp);
	}
	if (!s->nframes)
		fputs("?\n", fp);
	if (s->truncated)
		fprintf(fp, "%10s %6s %10s %8s  ... (unwinding stopped here)\n", "", "", "", "");
}

void hs_profile_write_text(FILE *fp, const struct hs_profile_report *rp, int top, uint64_t start_us, uint64_t stop_us)
{
	char b1[HS_SIZE_BUF], b2[HS_SIZE_BUF], b3[HS_SIZE_BUF], b4[HS_SIZE_BUF];
	double alloc = 0, inuse = 0;
	for (size_t i = 0; i < rp->nstacks; i++) {
		alloc += rp->stacks[i].alloc_bytes;
		inuse += rp->stacks[i].inuse_bytes;
	}
	fprintf(fp, "pid %d: %.1f s sampled at one per %s: %zu samples, %zu frees, %zu dropped; start paused %s, stop %s\n",
		(int)rp->pid, rp->seconds, hs_fmt_size(rp->rate, b1), rp->nsamples, rp->nfrees, rp->dropped,
		hs_fmt_us(start_us, b3), hs_fmt_us(stop_us, b4));
	fprintf(fp, "allocated %s (estimated), still live at the end %s, in %zu stacks\n\n",
		hs_fmt_size((uint64_t)alloc, b1), hs_fmt_size((uint64_t)inuse, b2), rp->nstacks);
	fprintf(fp, "%10s %6s %10s %8s  %s\n", "ALLOC", "%", "LIVE", "SAMPLES", "STACK (innermost first)");
	size_t n = top > 0 && (size_t)top < rp->nstacks ? (size_t)top : rp->nstacks;
	for (size_t i = 0; i < n; i++)
		text_stack(fp, &rp->stacks[i], alloc);
	if (rp->nthreads) {
		fprintf(fp, "\n%8s %-16s %10s %10s\n", "TID", "THREAD", "ALLOC", "LIVE");
		for (size_t i = 0; i < rp->nthreads; i++)
			fprintf(fp, "%8d %-16s %10s %10s\n", (int)rp->threads[i].tid, rp->threads[i].name,
				hs_fmt_size((uint64_t)rp->threads[i].alloc_bytes, b1),
				hs_fmt_size((uint64_t)rp->threads[i].inuse_bytes, b2));
	}
	if (rp->narenas) {
		fprintf(fp, "\n%6s %18s %10s %7s\n", "ARENA", "ADDRESS", "LIVE", "STACKS");
		for (size_t i = 0; i < rp->narenas; i++) {
			const struct hs_profile_arena *a = &rp->arenas[i];
			char idx[16];
			snprintf(idx, sizeof(idx), a->index < 0 ? "mmap" : "%d", a->index);
			fprintf(fp, "%6s %#18" PRIx64 " %10s %7zu\n", idx, a->addr, hs_fmt_size((uint64_t)a->inuse_bytes, b1),
				a->nstacks);
		}
	}
	if (rp->live_lost)
		fprintf(fp, "\n%" PRIu64 " sampled blocks were not followed to their free (the sampler's set was full)\n",
			rp->live_lost);
}

/* Open path, write with w, close: 0, or -errno with err filled. */
static int write_file(const char *path, const char *mode, int (*w)(FILE *, const void *, bool), const void *arg,
		      bool flag, struct hs_err *err)
{
	FILE *fp = fopen(path, mode);
	int r = fp ? w(fp, arg, flag) : -errno;
	if (fp && fclose(fp) != 0 && r == 0)
		r = -errno;
	return r < 0 ? hs_err_sys(err, -r, "cannot write %s", path) : 0;
}

static int w_raw(FILE *fp, const void *d, bool flag)
{
	(void)flag;
	return hs_profile_write_raw(fp, d);
}

static int w_pprof(FILE *fp, const void *r, bool flag)
{
	(void)flag;
	return hs_profile_write_pprof(fp, r);
}

static int w_svg(FILE *fp, const void *r, bool inuse)
{
	return hs_profile_write_svg(fp, r, inuse);
}

int hs_profile_save_raw(const struct hs_profile_data *d, const char *path, struct hs_err *err)
{
	return write_file(path, "w", w_raw, d, false, err);
}

int hs_profile_save(const struct hs_profile_report *r, const char *pprof, const char *svg, bool inuse,
		    struct hs_err *err)
{
	int rc = pprof ? write_file(pprof, "wb", w_pprof, r, false, err) : 0;
	return rc == 0 && svg ? write_file(svg, "w", w_svg, r, inuse, err) : rc;
}
