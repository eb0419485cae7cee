/* heapscope arenas: every arena, what it holds, what is resident, what a
 * trim would give back. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "format.h"
#include "oncall.h"

static const char help[] =
	"usage: heapscope arenas [--json] [--threads] [--no-verdict] [--openmetrics FILE] PID\n"
	"\n"
	"Every glibc malloc arena of PID: its heaps (reserved, committed), system\n"
	"bytes, resident bytes, what is in use, what malloc holds free in bins,\n"
	"fastbins, tcache and top, and what malloc_trim(0) would return.\n"
	"Threads are stopped only while the arenas are walked.  Ends with a verdict:\n"
	"the causes of memory held and not used, and the remedies for this process,\n"
	"most effective first (on a JVM this runs the JDK's jcmd and java to see\n"
	"what it offers).\n";

struct row {
	uint64_t reserved, committed, system, resident, in_use, bins, fast, tcache, top, trimmable, nheaps;
};

static void totals(const struct hs_arena *a, struct row *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t k = 0; k < a->nheaps; k++) {
		r->reserved += a->heaps[k].reserved;
		r->committed += a->heaps[k].mprotect_size;
	}
	r->nheaps = a->nheaps;
	r->system = a->system_mem;
	r->resident = a->resident;
	r->bins = a->bin_bytes;
	r->fast = a->fast_bytes;
	r->tcache = a->tcache_bytes;
	r->top = a->top_size;
	uint64_t freeb = r->bins + r->fast + r->tcache + r->top;
	r->in_use = r->system > freeb ? r->system - freeb : 0;
	r->trimmable = a->trimmable;
}

static void add(struct row *t, const struct row *r)
{
	uint64_t *d = (uint64_t *)t;
	const uint64_t *s = (const uint64_t *)r;
	for (size_t i = 0; i < sizeof(*r) / sizeof(uint64_t); i++)
		d[i] += s[i];
}

static void json_row(struct hs_json *j, const struct row *r)
{
	hs_json_u64(j, "heap_count", r->nheaps);
	hs_json_u64(j, "reserved", r->reserved);
	hs_json_u64(j, "committed", r->committed);
	hs_json_u64(j, "system", r->system);
	hs_json_u64(j, "resident", r->resident);
	hs_json_u64(j, "in_use", r->in_use);
	hs_json_u64(j, "free_bins", r->bins);
	hs_json_u64(j, "free_fastbins", r->fast);
	hs_json_u64(j, "free_tcache", r->tcache);
	hs_json_u64(j, "top", r->top);
	hs_json_u64(j, "free_total", r->bins + r->fast + r->tcache + r->top);
	hs_json_u64(j, "trimmable", r->trimmable);
}

static void summary(const struct hs_snapshot *s, const struct row *t, char *buf, size_t sz)
{
	const struct hs_heap *h = &s->heap;
	size_t nthread = h->narenas ? h->narenas - 1 : 0;
	char a[HS_SIZE_BUF], b[HS_SIZE_BUF], c[HS_SIZE_BUF], d[HS_SIZE_BUF], hm[HS_SIZE_BUF];
	snprintf(buf, sz, "%zu arena%s (%zu thread arena%s with %s heaps): %s reserved, %s resident, "
		 "%s free inside malloc, ~%s trimmable", h->narenas, h->narenas == 1 ? "" : "s", nthread,
		 nthread == 1 ? "" : "s", hs_fmt_size(h->heap_max, hm), hs_fmt_size(t->reserved, a),
		 hs_fmt_size(t->resident, b), hs_fmt_size(t->bins + t->fast + t->tcache + t->top, c),
		 hs_fmt_size(t->trimmable, d));
}

struct extra {
	bool threads;
	const struct hs_verdict *v;  /* NULL: --no-verdict */
	const struct hs_procenv *e;
};

static void render_json(struct hs_cli *cli, const struct hs_snapshot *s, const struct row *t, const char *sum,
			const struct extra *x)
{
	struct hs_json *j = &cli->j;
	const struct hs_heap *h = &s->heap;
	hs_json_obj_begin(j, NULL);
	hs_json_i64(j, "pid", s->pid);
	hs_json_u64(j, "pause_us", s->pause_us);
	hs_json_u64(j, "walk_us", s->walk_us);
	hs_json_str(j, "read_mode", hs_heap_read_mode(h));
	hs_json_u64(j, "stops", (uint64_t)s->attempts);
	hs_json_u64(j, "threads", s->nthreads);
	hs_cli_json_glibc(j, s);
	hs_json_bool(j, "malloc_initialized", h->initialized);
	hs_json_u64(j, "heap_max", h->heap_max);
	hs_cli_json_cut(j, h);
	hs_json_arr_begin(j, "arenas");
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_arena *a = &h->arenas[i];
		struct row r;
		totals(a, &r);
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "index", a->index);
		hs_json_hex(j, "address", a->addr);
		hs_json_str(j, "kind", a->main ? "main" : "thread");
		hs_json_u64(j, "attached_threads", a->attached_threads);
		hs_json_arr_begin(j, "threads");
		for (size_t k = 0; k < a->nthreads; k++)
			hs_json_i64(j, NULL, a->threads[k]);
		hs_json_arr_end(j);
		json_row(j, &r);
		hs_json_u64(j, "max_system", a->max_system_mem);
		hs_json_u64(j, "bin_chunks", a->bin_count);
		hs_json_u64(j, "fastbin_chunks", a->fast_count);
		hs_json_u64(j, "tcache_chunks", a->tcache_count);
		hs_json_hex(j, "top_address", a->top);
		hs_json_bool(j, "locked", a->mutex != 0);
		hs_json_arr_begin(j, "heaps");
		for (size_t k = 0; k < a->nheaps; k++) {
			hs_json_obj_begin(j, NULL);
			hs_json_hex(j, "address", a->heaps[k].addr);
			hs_json_u64(j, "size", a->heaps[k].size);
			hs_json_u64(j, "committed", a->heaps[k].mprotect_size);
			hs_json_u64(j, "reserved", a->heaps[k].reserved);
			hs_json_u64(j, "resident", a->heaps[k].resident);
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
		hs_cli_json_arena_status(j, a);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_json_obj_begin(j, "mmapped");
	hs_json_i64(j, "count", h->n_mmaps);
	hs_json_u64(j, "bytes", h->mmapped_mem);
	hs_json_obj_end(j);
	hs_json_obj_begin(j, "total");
	hs_json_u64(j, "arenas", h->narenas);
	json_row(j, t);
	hs_json_obj_end(j);
	hs_cli_json_mallinfo2(j, "mallinfo2", h);
	hs_json_str(j, "summary", sum);
	if (x->threads)
		hs_cli_threads_json(j, s);
	if (x->v)
		hs_cli_verdict_json(j, x->v, x->e);
	hs_json_obj_end(j);
	hs_json_finish(j);
}

static void render_text(const struct hs_snapshot *s, const struct row *t, const char *sum, const struct extra *x)
{
	const struct hs_heap *h = &s->heap;
	const struct hs_libc *lc = &s->libc;
	char f[12][HS_SIZE_BUF];
	printf("pid %d: glibc %s%s, %zu thread%s, symbols from %s, layout from %s\n", (int)s->pid,
	       lc->version[0] ? lc->version : "?", lc->is_static ? " (static)" : "", s->nthreads,
	       s->nthreads == 1 ? "" : "s",
	       lc->symbols_from, lc->layout_from);
	if (!h->initialized) {
		printf("malloc has not been used yet: no arena holds memory\n");
	}
	printf("%5s %-14s %-6s %4s %5s %8s %8s %8s %8s %8s %8s %8s %8s %8s %9s\n", "ARENA", "ADDRESS", "KIND",
	       "THR", "HEAPS", "RESERVED", "COMMIT", "SYSTEM", "RESIDENT", "IN-USE", "BINS", "FAST", "TCACHE", "TOP",
	       "TRIMMABLE");
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_arena *a = &h->arenas[i];
		struct row r;
		totals(a, &r);
		printf("%5d 0x%012" PRIx64 " %-6s %4" PRIu64 " %5zu %8s %8s %8s %8s %8s %8s %8s %8s %8s %9s%s\n",
		       a->index, a->addr, a->main ? "main" : "thread", a->attached_threads, a->nheaps,
		       hs_fmt_size(r.reserved, f[0]), hs_fmt_size(r.committed, f[1]), hs_fmt_size(r.system, f[2]),
		       hs_fmt_size(r.resident, f[3]), hs_fmt_size(r.in_use, f[4]), hs_fmt_size(r.bins, f[5]),
		       hs_fmt_size(r.fast, f[6]), hs_fmt_size(r.tcache, f[7]), hs_fmt_size(r.top, f[8]),
		       hs_fmt_size(r.trimmable, f[9]), a->status ? "  PARTIAL" : a->mutex ? "  locked" : "");
	}
	printf("%5s %-14s %-6s %4s %5" PRIu64 " %8s %8s %8s %8s %8s %8s %8s %8s %8s %9s\n", "total", "", "", "",
	       t->nheaps, hs_fmt_size(t->reserved, f[0]), hs_fmt_size(t->committed, f[1]),
	       hs_fmt_size(t->system, f[2]), hs_fmt_size(t->resident, f[3]), hs_fmt_size(t->in_use, f[4]),
	       hs_fmt_size(t->bins, f[5]), hs_fmt_size(t->fast, f[6]), hs_fmt_size(t->tcache, f[7]),
	       hs_fmt_size(t->top, f[8]), hs_fmt_size(t->trimmable, f[9]));
	printf("\n%s\n", sum);
	printf("mmapped chunks: %d, %s (not in any arena; free() returns them at once)\n", h->n_mmaps,
	       hs_fmt_size(h->mmapped_mem, f[0]));
	printf("target paused %s (read: %s)", hs_fmt_us(s->pause_us, f[0]), hs_heap_read_mode(h));
	if (s->attempts > 1)
		printf(" in %d stops (an arena was locked by a thread inside malloc)", s->attempts);
	printf("\n");
	if (x->threads)
		hs_cli_threads_text(s);
	if (x->v)
		hs_cli_verdict_text(x->v);
}

static int cmd_arenas(struct hs_cli *cli)
{
	struct extra x = { 0 };
	x.threads = cli->opt['T'].set;
	bool verdict = !cli->opt['V'].set;
	const char *om = hs_cli_str(cli, 'O');
	pid_t pid = cli->pid;
	int r;
	struct hs_snapshot s;
	if ((r = hs_cli_snapshot(cli, cli->pid, true, &s)) < 0)
		return -r;
	struct row t = { 0 };
	for (size_t i = 0; i < s.heap.narenas; i++) {
		struct row ar;
		totals(&s.heap.arenas[i], &ar);
		add(&t, &ar);
	}
	char sum[512];
	summary(&s, &t, sum, sizeof(sum));
	struct hs_procenv env;
	struct hs_verdict v;
	if (verdict && hs_procenv_read(pid, &s.maps, true, &env, NULL) == 0) {
		hs_verdict_build(pid, &s.heap, &env, &v);
		x.v = &v;
		x.e = &env;
	}
	if (cli->json)
		render_json(cli, &s, &t, sum, &x);
	else
		render_text(&s, &t, sum, &x);
	int status = hs_cli_report_partial(cli, &s);
	if (om) {
		struct hs_om_process p;
		struct hs_err err = { 0 };
		char name[64];
		r = hs_om_process_of(s.pid, &s.heap, name, sizeof(name), &p);
		if (!r)
			r = hs_openmetrics_write(om, &p, 1, &err);
		free((void *)p.arenas);
		if (r) {
			hs_cli_warn(cli, "%s", err.msg[0] ? err.msg : strerror(-r));
			status = HS_EXIT_PARTIAL;
		}
	}
	hs_snapshot_release(&s);
	return status;
}

static const struct hs_opt opts[] = {
	{ .name = "threads", .key = 'T', .help = "each thread (tid, name) and the arena it allocates from" },
	{ .name = "no-verdict", .key = 'V', .help = "figures only: no verdict, no JDK probe" },
	{ .name = "openmetrics", .key = 'O', .kind = HS_OPT_STR,
	  .arg = "FILE", .help = "also write the figures (per process and per arena) to FILE for node_exporter's "
	  "textfile collector, atomically" },
	{ 0 },
};

const struct hs_command hs_cmd_arenas = {
	.name = "arenas", .run = cmd_arenas, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS | HS_CMD_PID,
	.summary = "every arena: heaps, resident, free inside malloc, trimmable",
};
