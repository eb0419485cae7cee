/* heapscope bins: every free list with its chunks, checked as glibc would
 * check them. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const char *list_kind(int fast, int bin)
{
	if (fast)
		return "fastbin";
	return bin == 1 ? "unsorted" : bin < 64 ? "small" : "large";
}

/* The arena's free chunks grouped by list, each list in list order. */
static struct hs_free *grouped(const struct hs_arena *a, size_t start[139])
{
	size_t count[139] = { 0 };
	struct hs_free *g = malloc((a->nfree + 1) * sizeof(*g));
	if (!g)
		return NULL;
	/* keys: fastbins 0..9, then bins 1..127 at 10..136 */
	for (size_t i = 0; i < a->nfree; i++)
		count[(a->free[i].kind == HS_FREE_FAST ? 0 : 9) + a->free[i].bin]++;
	start[0] = 0;
	for (int k = 0; k < 138; k++)
		start[k + 1] = start[k] + count[k];
	size_t pos[139];
	memcpy(pos, start, sizeof(pos));
	for (size_t i = 0; i < a->nfree; i++)
		g[pos[(a->free[i].kind == HS_FREE_FAST ? 0 : 9) + a->free[i].bin]++] = a->free[i];
	return g;
}

/* One free list: chunks g[0..n), list key k (see grouped). */
static void render_list(struct hs_out *o, const struct hs_arena *a, int k, const struct hs_free *g, size_t n)
{
	int fast = k < 10, bin = fast ? k : k - 9;
	bool bad = fast ? (a->bad_fast >> bin) & 1 : hs_arena_bin_bad(a, bin);
	uint64_t bytes = 0, lo = UINT64_MAX, hi = 0;
	for (size_t m = 0; m < n; m++) {
		bytes += g[m].size;
		lo = g[m].size < lo ? g[m].size : lo;
		hi = g[m].size > hi ? g[m].size : hi;
	}
	hs_out_obj_begin(o, NULL);
	hs_print_str(o, HS_PRINT_ANY, "kind", "  %-8s", list_kind(fast, bin));
	hs_print_int(o, HS_PRINT_ANY, "bin", " %3d", bin);
	hs_print_bool(o, HS_PRINT_JSON, "corrupt", NULL, bad);
	if (lo == hi)
		hs_print_text(o, "  size 0x%" PRIx64, lo);
	else
		hs_print_text(o, "  sizes 0x%" PRIx64 "-0x%" PRIx64, lo, hi);
	hs_print_u64(o, HS_PRINT_ANY, "count", ": %" PRIu64 " chunk", n);
	hs_print_text(o, "%s, ", n == 1 ? "" : "s");
	hs_print_size(o, HS_PRINT_ANY, "bytes", "%s", bytes);
	hs_print_text(o, "%s\n", bad ? ": CORRUPT" : "");
	hs_out_arr_begin(o, "chunks");
	for (size_t m = 0; m < n; m++) {
		hs_out_obj_begin(o, NULL);
		hs_print_hex(o, HS_PRINT_ANY, "address", "    0x%012" PRIx64, g[m].addr);
		hs_print_u64(o, HS_PRINT_ANY, "size", "  0x%" PRIx64 "\n", g[m].size);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
	hs_out_obj_end(o);
}

/* One arena: its lists, then its problems.  -ENOMEM, nothing printed. */
static int render_arena(struct hs_out *o, const struct hs_arena *a)
{
	size_t start[139];
	struct hs_free *g = grouped(a, start);
	if (!g)
		return -ENOMEM;
	hs_out_obj_begin(o, NULL);
	hs_print_int(o, HS_PRINT_ANY, "index", "arena %d", a->index);
	hs_print_hex(o, HS_PRINT_JSON, "address", NULL, a->addr);
	hs_print_str(o, HS_PRINT_ANY, "kind", " (%s", a->main ? "main" : "thread");
	hs_print_text(o, ", 0x%" PRIx64 ")%s\n", a->addr, a->status ? ": PARTIAL" : "");
	hs_out_arr_begin(o, "lists");
	for (int k = 0; k < 138; k++)
		if (start[k + 1] > start[k])
			render_list(o, a, k, g + start[k], start[k + 1] - start[k]);
	free(g);
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
