/* heapscope bins: every free list with its chunks, checked as glibc would
 * check them. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bins.h"
#include "common.h"

static const char help[] =
	"usage: heapscope bins [--arena N] [--json] [--no-debuginfo] PID\n"
	"\n"
	"For each arena, every fastbin, the unsorted bin, every small and large bin,\n"
	"and each thread's tcache: the chunks in it (address, size), count and bytes.\n"
	"Safe-linked pointers are revealed.  A cycle, a misaligned or unmapped\n"
	"pointer, a size that does not belong in its bin, a bk that does not point\n"
	"back, or a next chunk whose prev_size or PREV_INUSE disagrees is reported\n"
	"as corruption with the address, and that list is not followed further.\n";

/* One free list. */
static void render_list(struct hs_out *o, const struct hs_bins_list *l)
{
	hs_out_obj_begin(o, NULL);
	hs_print_str(o, HS_PRINT_ANY, "kind", "  %-8s", hs_bins_kind(l->fast, l->bin));
	hs_print_int(o, HS_PRINT_ANY, "bin", " %3d", l->bin);
	hs_print_bool(o, HS_PRINT_JSON, "corrupt", NULL, l->corrupt);
	if (l->lo == l->hi)
		hs_print_text(o, "  size 0x%" PRIx64, l->lo);
	else
		hs_print_text(o, "  sizes 0x%" PRIx64 "-0x%" PRIx64, l->lo, l->hi);
	hs_print_u64(o, HS_PRINT_ANY, "count", ": %" PRIu64 " chunk", l->n);
	hs_print_text(o, "%s, ", l->n == 1 ? "" : "s");
	hs_print_size(o, HS_PRINT_ANY, "bytes", "%s", l->bytes);
	hs_print_text(o, "%s\n", l->corrupt ? ": CORRUPT" : "");
	hs_out_arr_begin(o, "chunks");
	for (size_t m = 0; m < l->n; m++) {
		hs_out_obj_begin(o, NULL);
		hs_print_hex(o, HS_PRINT_ANY, "address", "    0x%012" PRIx64, l->v[m].addr);
		hs_print_u64(o, HS_PRINT_ANY, "size", "  0x%" PRIx64 "\n", l->v[m].size);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
	hs_out_obj_end(o);
}

/* One arena: its lists, then its problems.  -ENOMEM, nothing printed. */
static int render_arena(struct hs_out *o, const struct hs_arena *a)
{
	struct hs_bins b;
	if (hs_bins_group(a, &b) < 0)
		return -ENOMEM;
	hs_out_obj_begin(o, NULL);
	hs_print_int(o, HS_PRINT_ANY, "index", "arena %d", a->index);
	hs_print_hex(o, HS_PRINT_JSON, "address", NULL, a->addr);
	hs_print_str(o, HS_PRINT_ANY, "kind", " (%s", a->main ? "main" : "thread");
	hs_print_text(o, ", 0x%" PRIx64 ")%s\n", a->addr, a->status ? ": PARTIAL" : "");
	hs_out_arr_begin(o, "lists");
	for (size_t k = 0; k < b.n; k++)
		render_list(o, &b.v[k]);
	hs_bins_release(&b);
	hs_out_arr_end(o);
	hs_cli_arena_status(o, a);
	hs_out_obj_end(o);
	for (size_t k = 0; k < a->nproblems; k++)
		hs_print_text(o, "  CORRUPT at 0x%" PRIx64 ": %s\n", a->problems[k].addr, a->problems[k].msg);
	if (a->nproblems && a->problems_dropped)
		hs_print_text(o, "  CORRUPT: %zu more problems\n", a->problems_dropped);
	if (!a->nproblems && a->status)
		hs_print_text(o, "  CORRUPT at 0x%" PRIx64 ": %s\n", a->bad_addr, a->problem);
	return 0;
}

/* One thread's tcache, its entries by bin (ta: the arena it belongs to). */
static void render_tcache(struct hs_out *o, const struct hs_tcache *t, const struct hs_arena *ta)
{
	hs_out_obj_begin(o, NULL);
	hs_print_int(o, HS_PRINT_ANY, "tid", "tcache of thread %d", (int)t->tid);
	hs_print_hex(o, HS_PRINT_ANY, "address", " (0x%" PRIx64, t->addr);
	hs_print_int(o, HS_PRINT_ANY, "arena", ", arena %d)", ta ? ta->index : -1);
	hs_print_u64(o, HS_PRINT_ANY, "count", ": %" PRIu64 " chunks", t->count);
	hs_print_size(o, HS_PRINT_ANY, "bytes", ", %s", t->bytes);
	hs_print_text(o, "%s\n", t->status ? ": PARTIAL" : "");
	hs_out_arr_begin(o, "chunks");
	int last = -1;
	for (size_t m = 0; m < t->nentries; m++) {
		int bin = t->entries[m].bin;
		if (bin != last)
			hs_print_text(o, "  tcache %3d  size 0x%x\n", bin, 0x20 + 0x10 * bin);
		last = bin;
		hs_out_obj_begin(o, NULL);
		hs_print_hex(o, HS_PRINT_ANY, "address", "    0x%012" PRIx64 "\n", t->entries[m].chunk);
		hs_print_int(o, HS_PRINT_JSON, "bin", NULL, bin);
		hs_print_u64(o, HS_PRINT_JSON, "size", NULL, 0x20 + 0x10 * (uint64_t)bin);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
	hs_print_bool(o, HS_PRINT_JSON, "partial", NULL, t->status != 0);
	if (t->status)
		hs_print_str(o, HS_PRINT_ANY, "problem", "  CORRUPT: %s\n", t->problem);
	hs_out_obj_end(o);
}

static int cmd_bins(struct hs_cli *cli)
{
	long only = hs_cli_num(cli, 'a', -1);
	int r;
	struct hs_snapshot s;
	if ((r = hs_cli_snapshot_walk(cli, cli->pid, false, HS_WALK_LISTS | HS_WALK_DEEP, &s)) < 0)
		return -r;
	const struct hs_heap *h = &s.heap;
	if (only >= 0 && (size_t)only >= h->narenas) {
		int st = hs_cli_fail(cli, HS_EXIT_FATAL, "no arena %ld: the process has %zu", only, h->narenas);
		hs_snapshot_release(&s);
		return st;
	}
	struct hs_out o = hs_cli_out(cli);
	hs_out_obj_begin(&o, NULL);
	hs_print_int(&o, HS_PRINT_JSON, "pid", NULL, cli->pid);
	hs_print_u64(&o, HS_PRINT_JSON, "pause_us", NULL, s.pause_us);
	hs_print_bool(&o, HS_PRINT_JSON, "safe_linking", NULL, h->l->safe_linking);
	hs_cli_cut(&o, h);
	hs_out_arr_begin(&o, "arenas");
	for (size_t i = 0; i < h->narenas; i++) {
		if (only >= 0 && (size_t)only != i)
			continue;
		if (render_arena(&o, &h->arenas[i]) < 0) {
			hs_snapshot_release(&s);
			return hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
		}
	}
	hs_out_arr_end(&o);
	hs_out_arr_begin(&o, "tcaches");
	for (size_t i = 0; i < h->ntcaches; i++) {
		const struct hs_tcache *t = &h->tcaches[i];
		if (!t->addr)
			continue;
		const struct hs_arena *ta = hs_heap_arena_of((struct hs_heap *)h, t->addr);
		if (only >= 0 && (!ta || ta->index != only))
			continue;
		render_tcache(&o, t, ta);
	}
	hs_out_arr_end(&o);
	hs_out_doc_end(&o);
	int status = hs_cli_report_partial(cli, &s);
	hs_snapshot_release(&s);
	return status;
}

static const struct hs_opt opts[] = {
	{ .name = "arena", .key = 'a', .kind = HS_OPT_COUNT, .max = LONG_MAX, .bad = "--arena takes an arena index",
	  .arg = "N", .help = "only arena N (as heapscope arenas numbers them)" },
	{ 0 },
};

const struct hs_command hs_cmd_bins = {
	.name = "bins", .run = cmd_bins, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS | HS_CMD_PID,
	.summary = "every free list and its chunks, checked for corruption",
};
