/* heapscope bins: every free list with its chunks, checked as glibc would
 * check them. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "format.h"

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
static void render_list(struct hs_cli *cli, const struct hs_arena *a, int k, const struct hs_free *g, size_t n)
{
	struct hs_json *j = &cli->j;
	char f[HS_SIZE_BUF];
	int fast = k < 10, bin = fast ? k : k - 9;
	bool bad = fast ? (a->bad_fast >> bin) & 1 : hs_arena_bin_bad(a, bin);
	uint64_t bytes = 0, lo = UINT64_MAX, hi = 0;
	for (size_t m = 0; m < n; m++) {
		bytes += g[m].size;
		lo = g[m].size < lo ? g[m].size : lo;
		hi = g[m].size > hi ? g[m].size : hi;
	}
	if (cli->json) {
		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "kind", list_kind(fast, bin));
		hs_json_i64(j, "bin", bin);
		hs_json_bool(j, "corrupt", bad);
		hs_json_u64(j, "count", n);
		hs_json_u64(j, "bytes", bytes);
		hs_json_arr_begin(j, "chunks");
		for (size_t m = 0; m < n; m++) {
			hs_json_obj_begin(j, NULL);
			hs_json_hex(j, "address", g[m].addr);
			hs_json_u64(j, "size", g[m].size);
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
		hs_json_obj_end(j);
		return;
	}
	if (lo == hi)
		printf("  %-8s %3d  size 0x%" PRIx64 ": %zu chunk%s, %s%s\n", list_kind(fast, bin), bin, lo, n,
		       n == 1 ? "" : "s", hs_fmt_size(bytes, f), bad ? ": CORRUPT" : "");
	else
		printf("  %-8s %3d  sizes 0x%" PRIx64 "-0x%" PRIx64 ": %zu chunk%s, %s%s\n", list_kind(fast, bin), bin, lo,
		       hi, n, n == 1 ? "" : "s", hs_fmt_size(bytes, f), bad ? ": CORRUPT" : "");
	for (size_t m = 0; m < n; m++)
		printf("    0x%012" PRIx64 "  0x%" PRIx64 "\n", g[m].addr, g[m].size);
}

/* One arena: its lists, then its problems.  -ENOMEM, nothing printed. */
static int render_arena(struct hs_cli *cli, const struct hs_arena *a)
{
	struct hs_json *j = &cli->j;
	size_t start[139];
	struct hs_free *g = grouped(a, start);
	if (!g)
		return -ENOMEM;
	if (cli->json) {
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "index", a->index);
		hs_json_hex(j, "address", a->addr);
		hs_json_str(j, "kind", a->main ? "main" : "thread");
		hs_json_arr_begin(j, "lists");
	} else {
		printf("arena %d (%s, 0x%" PRIx64 ")%s\n", a->index, a->main ? "main" : "thread", a->addr,
		       a->status ? ": PARTIAL" : "");
	}
	for (int k = 0; k < 138; k++)
		if (start[k + 1] > start[k])
			render_list(cli, a, k, g + start[k], start[k + 1] - start[k]);
	free(g);
	if (cli->json) {
		hs_json_arr_end(j);
		hs_cli_json_arena_status(j, a);
		hs_json_obj_end(j);
	} else if (a->nproblems) {
		for (size_t k = 0; k < a->nproblems; k++)
			printf("  CORRUPT at 0x%" PRIx64 ": %s\n", a->problems[k].addr, a->problems[k].msg);
		if (a->problems_dropped)
			printf("  CORRUPT: %zu more problems\n", a->problems_dropped);
	} else if (a->status) {
		printf("  CORRUPT at 0x%" PRIx64 ": %s\n", a->bad_addr, a->problem);
	}
	return 0;
}

/* One thread's tcache, its entries by bin (ta: the arena it belongs to). */
static void render_tcache(struct hs_cli *cli, const struct hs_tcache *t, const struct hs_arena *ta)
{
	struct hs_json *j = &cli->j;
	char f[HS_SIZE_BUF];
	if (cli->json) {
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "tid", t->tid);
		hs_json_hex(j, "address", t->addr);
		hs_json_i64(j, "arena", ta ? ta->index : -1);
		hs_json_u64(j, "count", t->count);
		hs_json_u64(j, "bytes", t->bytes);
		hs_json_arr_begin(j, "chunks");
		for (size_t m = 0; m < t->nentries; m++) {
			hs_json_obj_begin(j, NULL);
			hs_json_hex(j, "address", t->entries[m].chunk);
			hs_json_i64(j, "bin", t->entries[m].bin);
			hs_json_u64(j, "size", 0x20 + 0x10 * (uint64_t)t->entries[m].bin);
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
		hs_json_bool(j, "partial", t->status != 0);
		if (t->status)
			hs_json_str(j, "problem", t->problem);
		hs_json_obj_end(j);
		return;
	}
	printf("tcache of thread %d (0x%" PRIx64 ", arena %d): %" PRIu64 " chunks, %s%s\n", (int)t->tid, t->addr,
	       ta ? ta->index : -1, t->count, hs_fmt_size(t->bytes, f), t->status ? ": PARTIAL" : "");
	int last = -1;
	for (size_t m = 0; m < t->nentries; m++) {
		if (t->entries[m].bin != last) {
			last = t->entries[m].bin;
			printf("  tcache %3d  size 0x%x\n", last, 0x20 + 0x10 * last);
		}
		printf("    0x%012" PRIx64 "\n", t->entries[m].chunk);
	}
	if (t->status)
		printf("  CORRUPT: %s\n", t->problem);
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
	struct hs_json *j = &cli->j;
	if (cli->json) {
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", cli->pid);
		hs_json_u64(j, "pause_us", s.pause_us);
		hs_json_bool(j, "safe_linking", h->l->safe_linking);
		hs_cli_json_cut(j, h);
		hs_json_arr_begin(j, "arenas");
	}
	for (size_t i = 0; i < h->narenas; i++) {
		if (only >= 0 && (size_t)only != i)
			continue;
		if (render_arena(cli, &h->arenas[i]) < 0) {
			hs_snapshot_release(&s);
			return hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
		}
	}
	if (cli->json) {
		hs_json_arr_end(j);
		hs_json_arr_begin(j, "tcaches");
	}
	for (size_t i = 0; i < h->ntcaches; i++) {
		const struct hs_tcache *t = &h->tcaches[i];
		if (!t->addr)
			continue;
		const struct hs_arena *ta = hs_heap_arena_of((struct hs_heap *)h, t->addr);
		if (only >= 0 && (!ta || ta->index != only))
			continue;
		render_tcache(cli, t, ta);
	}
	if (cli->json) {
		hs_json_arr_end(j);
		hs_json_obj_end(j);
		hs_json_finish(j);
	}
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
