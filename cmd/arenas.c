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

/* The figures of an arena or of the total: a row's columns from HEAPS on. */
static void print_row(struct hs_out *o, const struct hs_arena_figures *r)
{
	hs_print_u64(o, HS_PRINT_ANY, "heap_count", " %5" PRIu64, r->nheaps);
	hs_print_size(o, HS_PRINT_ANY, "reserved", " %8s", r->reserved);
	hs_print_size(o, HS_PRINT_ANY, "committed", " %8s", r->committed);
	hs_print_size(o, HS_PRINT_ANY, "system", " %8s", r->system);
	hs_print_size(o, HS_PRINT_ANY, "resident", " %8s", r->resident);
	hs_print_size(o, HS_PRINT_ANY, "in_use", " %8s", r->in_use);
	hs_print_size(o, HS_PRINT_ANY, "free_bins", " %8s", r->bins);
	hs_print_size(o, HS_PRINT_ANY, "free_fastbins", " %8s", r->fast);
	hs_print_size(o, HS_PRINT_ANY, "free_tcache", " %8s", r->tcache);
	hs_print_size(o, HS_PRINT_ANY, "top", " %8s", r->top);
	hs_print_u64(o, HS_PRINT_JSON, "free_total", NULL, r->free);
	hs_print_size(o, HS_PRINT_ANY, "trimmable", " %9s", r->trimmable);
}

struct extra {
	bool threads;
	const struct hs_verdict *v;  /* NULL: --no-verdict */
	const struct hs_procenv *e;
};

/* JSON: what the snapshot saw; text: the first line. */
static void render_head(struct hs_out *o, const struct hs_snapshot *s)
{
	const struct hs_heap *h = &s->heap;
	const struct hs_libc *lc = &s->libc;
	hs_print_int(o, HS_PRINT_ANY, "pid", "pid %d", (int)s->pid);
	hs_print_text(o, ": glibc %s%s", lc->version[0] ? lc->version : "?", lc->is_static ? " (static)" : "");
	hs_print_u64(o, HS_PRINT_JSON, "pause_us", NULL, s->pause_us);
	hs_print_u64(o, HS_PRINT_JSON, "walk_us", NULL, s->walk_us);
	hs_print_str(o, HS_PRINT_JSON, "read_mode", NULL, hs_heap_read_mode(h));
	hs_print_u64(o, HS_PRINT_JSON, "stops", NULL, (uint64_t)s->attempts);
	if (h->running) {
		hs_print_u64(o, HS_PRINT_JSON, "walks", NULL, (uint64_t)s->walks);
		hs_print_bool(o, HS_PRINT_JSON, "approximate", NULL, s->approximate);
	}
	hs_print_u64(o, HS_PRINT_ANY, "threads", ", %" PRIu64, s->nthreads);
	hs_print_text(o, " thread%s, symbols from %s, layout from %s\n", s->nthreads == 1 ? "" : "s", lc->symbols_from,
		      lc->layout_from);
	hs_cli_glibc(o, s);
	hs_print_bool(o, HS_PRINT_JSON, "malloc_initialized", NULL, h->initialized);
	if (!h->initialized)
		hs_print_text(o, "malloc has not been used yet: no arena holds memory\n");
	hs_print_u64(o, HS_PRINT_JSON, "heap_max", NULL, h->heap_max);
	hs_cli_cut(o, h);
	hs_print_text(o, "%5s %-14s %-6s %4s %5s %8s %8s %8s %8s %8s %8s %8s %8s %8s %9s\n", "ARENA", "ADDRESS", "KIND",
		      "THR", "HEAPS", "RESERVED", "COMMIT", "SYSTEM", "RESIDENT", "IN-USE", "BINS", "FAST", "TCACHE", "TOP",
		      "TRIMMABLE");
}

/* One arena: a row in text, all that is known of it in JSON. */
static void render_arena(struct hs_out *o, const struct hs_arena *a)
{
	struct hs_arena_figures r;
	hs_arena_figures(a, &r);
	hs_out_obj_begin(o, NULL);
	hs_print_int(o, HS_PRINT_ANY, "index", "%5d", a->index);
	hs_print_hex(o, HS_PRINT_ANY, "address", " 0x%012" PRIx64, a->addr);
	hs_print_str(o, HS_PRINT_ANY, "kind", " %-6s", a->main ? "main" : "thread");
	hs_print_u64(o, HS_PRINT_ANY, "attached_threads", " %4" PRIu64, a->attached_threads);
	hs_out_arr_begin(o, "threads");
	for (size_t k = 0; k < a->nthreads; k++)
		hs_print_int(o, HS_PRINT_JSON, NULL, NULL, a->threads[k]);
	hs_out_arr_end(o);
	print_row(o, &r);
	hs_print_text(o, "%s\n", a->status ? "  PARTIAL" : a->mutex ? "  locked" : "");
	hs_print_u64(o, HS_PRINT_JSON, "max_system", NULL, a->max_system_mem);
	hs_print_u64(o, HS_PRINT_JSON, "bin_chunks", NULL, a->bin_count);
	hs_print_u64(o, HS_PRINT_JSON, "fastbin_chunks", NULL, a->fast_count);
	hs_print_u64(o, HS_PRINT_JSON, "tcache_chunks", NULL, a->tcache_count);
	hs_print_hex(o, HS_PRINT_JSON, "top_address", NULL, a->top);
	hs_print_bool(o, HS_PRINT_JSON, "locked", NULL, a->mutex != 0);
	hs_out_arr_begin(o, "heaps");
	for (size_t k = 0; k < a->nheaps && hs_out_json(o); k++) {
		hs_out_obj_begin(o, NULL);
		hs_print_hex(o, HS_PRINT_JSON, "address", NULL, a->heaps[k].addr);
		hs_print_u64(o, HS_PRINT_JSON, "size", NULL, a->heaps[k].size);
		hs_print_u64(o, HS_PRINT_JSON, "committed", NULL, a->heaps[k].mprotect_size);
		hs_print_u64(o, HS_PRINT_JSON, "reserved", NULL, a->heaps[k].reserved);
		hs_print_u64(o, HS_PRINT_JSON, "resident", NULL, a->heaps[k].resident);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
	hs_cli_arena_status(o, a);
	hs_out_obj_end(o);
}

static void render(struct hs_out *o, const struct hs_snapshot *s, const struct extra *x)
{
	const struct hs_heap *h = &s->heap;
	struct hs_arena_figures t;
	hs_heap_figures(h, &t);
	hs_out_obj_begin(o, NULL);
	render_head(o, s);
	hs_out_arr_begin(o, "arenas");
	for (size_t i = 0; i < h->narenas; i++)
		render_arena(o, &h->arenas[i]);
	hs_out_arr_end(o);
	hs_out_obj_begin(o, "mmapped");
	hs_print_int(o, HS_PRINT_JSON, "count", NULL, h->n_mmaps);
	hs_print_u64(o, HS_PRINT_JSON, "bytes", NULL, h->mmapped_mem);
	hs_out_obj_end(o);
	hs_out_obj_begin(o, "total");
	hs_print_u64(o, HS_PRINT_JSON, "arenas", NULL, h->narenas);
	hs_print_text(o, "%5s %-14s %-6s %4s", "total", "", "", "");
	print_row(o, &t);
	hs_print_text(o, "\n");
	hs_out_obj_end(o);
	if (hs_out_json(o))
		hs_cli_mallinfo2(o, "mallinfo2", h);
	char sum[512];
	hs_heap_summary(h, &t, sum, sizeof(sum));
	hs_print_str(o, HS_PRINT_ANY, "summary", "\n%s\n", sum);
	char f[HS_SIZE_BUF];
	hs_print_text(o, "mmapped chunks: %d, %s (not in any arena; free() returns them at once)\n", h->n_mmaps,
		      hs_fmt_size(h->mmapped_mem, f));
	hs_print_text(o, "target paused %s (read: %s)", hs_fmt_us(s->pause_us, f), hs_heap_read_mode(h));
	if (h->running)
		hs_print_text(o, s->approximate ? ": stopped only for its threads' registers; the figures changed "
				  "between each of %d walks: approximate" : ": stopped only for its threads' registers; "
				  "the last two of %d walks agree", s->walks);
	if (s->attempts > 1)
		hs_print_text(o, " in %d stops (an arena was locked by a thread inside malloc)", s->attempts);
	hs_print_text(o, "\n");
	if (x->threads)
		hs_cli_threads(o, s);
	if (x->v)
		hs_cli_verdict(o, x->v, x->e);
	hs_out_doc_end(o);
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
	struct hs_snapshot_opts so;
	hs_cli_snapshot_opts(cli, &so);
	so.residency = true;
	so.running = cli->opt['F'].set;
	if ((r = hs_cli_snapshot_take(cli, cli->pid, &so, &s)) < 0)
		return -r;
	struct hs_procenv env;
	struct hs_verdict v;
	if (verdict && hs_procenv_read(pid, &s.maps, true, &env, NULL) == 0) {
		hs_verdict_build(pid, &s.heap, &env, &v);
		x.v = &v;
		x.e = &env;
	}
	struct hs_out o = hs_cli_out(cli);
	render(&o, &s, &x);
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
	{ .name = "no-freeze", .key = 'F', .help = "walk while the target runs (stopped only to read its threads' "
	  "registers), until two walks agree; else approximate" },
	{ .name = "openmetrics", .key = 'O', .kind = HS_OPT_STR,
	  .arg = "FILE", .help = "also write the figures (per process and per arena) to FILE for node_exporter's "
	  "textfile collector, atomically" },
	{ 0 },
};

const struct hs_command hs_cmd_arenas = {
	.name = "arenas", .run = cmd_arenas, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS | HS_CMD_PID,
	.summary = "every arena: heaps, resident, free inside malloc, trimmable",
};
