/* heapscope chunks: every chunk of the heaps, walked linearly. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "chunks.h"
#include "common.h"
#include "format.h"
#include "strtab.h"

static const char help[] =
	"usage: heapscope chunks [--arena N | --heap ADDR] [--state used|free|all]\n"
	"                        [--histogram] [--strings[=N]] [--top K] [--json] PID\n"
	"\n"
	"Every chunk of the arena's heaps, first to top, in use or free in a bin,\n"
	"fastbin or tcache (those look in use on the heap; the lists tell them\n"
	"apart), and the mmapped chunks, found in the mappings and reconciled with\n"
	"glibc's own count.  The main heap starts at mp_.sbrk_base, a thread heap\n"
	"after its heap_info (and arena), and a full thread heap ends in a fencepost.\n";

struct ctx {
	struct hs_cli *cli;
	struct hs_out o;
	struct hs_mem *mem;
	enum hs_chunks_filter state;
	bool histogram, list;
	unsigned strmin;
	long topk;
	struct hs_chunks_hist all;   /* every chunk, by state and size class */
	struct hs_strtab tops;
	char str[256];
};

/* After the walk, still stopped: the mmapped chunks. */
static int walk_stopped(struct hs_snapshot *s, void *ctx, struct hs_err *err)
{
	return hs_chunks_collect_mmapped(ctx, &s->maps, &s->heap, s->mem, err);
}

/* A chunk after the walk: its first string, into --top's table, listed. */
static int on_chunk(void *vctx, const struct hs_chunk *c)
{
	struct ctx *x = vctx;
	if (!hs_chunk_kept(c, x->state))
		return 0;
	size_t sl = 0;
	x->str[0] = '\0';
	if (x->strmin && c->state != HS_CHUNK_TOP && c->state != HS_CHUNK_FENCEPOST)
		sl = hs_chunk_first_string(x->mem, c, x->strmin, x->str, sizeof(x->str));
	if (x->topk && sl)
		hs_chunks_top_add(&x->tops, c, x->str);
	if (!x->list)
		return 0;
	struct hs_out *o = &x->o;
	hs_out_obj_begin(o, NULL);
	hs_print_hex(o, HS_PRINT_ANY, "address", "0x%012" PRIx64, c->addr);
	hs_print_u64(o, HS_PRINT_ANY, "size", " %#10" PRIx64, c->size);
	hs_print_str(o, HS_PRINT_ANY, "state", " %-9s", hs_chunk_state_name(c->state));
	hs_print_int(o, HS_PRINT_ANY, "arena", " %5d", c->arena);
	if (hs_chunk_is_free(c->state))
		hs_print_int(o, HS_PRINT_JSON, "bin", NULL, c->bin);
	if (x->strmin)
		hs_print_str(o, HS_PRINT_JSON, "string", NULL, sl ? x->str : NULL);
	hs_print_text(o, "%s%s\n", sl ? "  " : "", sl ? x->str : "");
	hs_out_obj_end(o);
	return 0;
}

/* The size classes of the chunks --state keeps (in use [0], free [1]). */
static void print_histogram(struct ctx *x)
{
	struct hs_out *o = &x->o;
	hs_print_text(o, "%-21s %10s %9s %10s %9s\n", "SIZE CLASS", "USED", "BYTES", "FREE", "BYTES");
	hs_out_arr_begin(o, "histogram");
	for (int k = 0; k < 129; k++) {
		const struct hs_chunks_class *kl = &x->all.cls[k];
		bool in[2];
		uint64_t lo, hi;
		if (!hs_chunks_class_kept(kl, x->state, in, &lo, &hi))
			continue;
		char label[48];
		if (k == 128)
			snprintf(label, sizeof(label), "mmapped");
		else if (lo == hi)
			snprintf(label, sizeof(label), "0x%" PRIx64, lo);
		else
			snprintf(label, sizeof(label), "0x%" PRIx64 "-0x%" PRIx64, lo, hi);
		hs_out_obj_begin(o, NULL);
		if (k == 128)
			hs_print_str(o, HS_PRINT_JSON, "class", NULL, "mmapped");
		else
			hs_print_int(o, HS_PRINT_JSON, "bin", NULL, k);
		hs_print_u64(o, HS_PRINT_JSON, "min_size", NULL, lo);
		hs_print_u64(o, HS_PRINT_JSON, "max_size", NULL, hi);
		hs_print_str(o, HS_PRINT_TEXT, NULL, "%-21s", label);
		hs_print_u64(o, HS_PRINT_ANY, "used", " %10" PRIu64, in[0] ? kl->n[0] : 0);
		hs_print_size(o, HS_PRINT_ANY, "used_bytes", " %9s", in[0] ? kl->bytes[0] : 0);
		hs_print_u64(o, HS_PRINT_ANY, "free", " %10" PRIu64, in[1] ? kl->n[1] : 0);
		hs_print_size(o, HS_PRINT_ANY, "free_bytes", " %9s\n", in[1] ? kl->bytes[1] : 0);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
}

static void print_tops(struct ctx *x)
{
	struct hs_out *o = &x->o;
	size_t n = hs_strtab_sort(&x->tops);
	hs_print_text(o, "%-6s %8s %9s  %s\n", "BIN", "CHUNKS", "BYTES", "FIRST STRING");
	hs_out_arr_begin(o, "top_strings");
	/* per class: the K most frequent (the table is sorted by count) */
	long per[129] = { 0 };
	for (size_t i = 0; i < n; i++) {
		const struct hs_strent *e = &x->tops.v[i];
		int k = hs_chunks_top_class(e, x->topk, per);
		if (k < 0)
			continue;
		hs_out_obj_begin(o, NULL);
		hs_print_int(o, HS_PRINT_ANY, "bin", "%-6d", k);
		hs_print_str(o, HS_PRINT_JSON, "string", NULL, e->s + 3);
		hs_print_u64(o, HS_PRINT_ANY, "chunks", " %8" PRIu64, e->count);
		hs_print_size(o, HS_PRINT_ANY, "bytes", " %9s", e->bytes);
		hs_print_str(o, HS_PRINT_TEXT, NULL, "  %s\n", e->s + 3);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
}

/* The tail: per-arena sums (JSON), mmapped (with_mmapped), histogram,
 * top strings, the totals line (text). */
static void render_summary(struct ctx *x, const struct hs_chunks_set *k, const struct hs_heap *h,
			   const struct hs_chunks_sum *sum, bool with_mmapped)
{
	struct hs_out *o = &x->o;
	if (x->list)
		hs_out_arr_end(o);
	hs_out_arr_begin(o, "arenas");
	for (size_t w = 0; w < k->narenas && hs_out_json(o); w++) {
		hs_out_obj_begin(o, NULL);
		hs_print_int(o, HS_PRINT_JSON, "index", NULL, sum[w].index);
		hs_print_u64(o, HS_PRINT_JSON, "system", NULL, h->arenas[sum[w].index].system_mem);
		for (int q = 0; q < HS_CHUNK_MMAPPED; q++) {
			hs_out_obj_begin(o, hs_chunk_state_name(q));
			hs_print_u64(o, HS_PRINT_JSON, "count", NULL, sum[w].n[q]);
			hs_print_u64(o, HS_PRINT_JSON, "bytes", NULL, sum[w].bytes[q]);
			hs_out_obj_end(o);
		}
		hs_cli_arena_status(o, &h->arenas[sum[w].index]);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
	if (with_mmapped && hs_out_json(o)) {
		hs_out_obj_begin(o, "mmapped");
		hs_print_u64(o, HS_PRINT_JSON, "count", NULL, k->mm_n);
		hs_print_u64(o, HS_PRINT_JSON, "bytes", NULL, k->mm_b);
		hs_print_int(o, HS_PRINT_JSON, "glibc_count", NULL, h->n_mmaps);
		hs_print_u64(o, HS_PRINT_JSON, "glibc_bytes", NULL, h->mmapped_mem);
		hs_out_obj_end(o);
	}
	if (x->histogram)
		print_histogram(x);
	if (x->topk)
		print_tops(x);
	char f[5][HS_SIZE_BUF];
	const struct hs_chunks_hist *tot = &x->all;
	hs_print_text(o, "%s%" PRIu64 " chunks in use (%s), %" PRIu64 " in bins (%s), %" PRIu64 " in fastbins (%s), %"
		      PRIu64 " in tcaches (%s), top %s", x->histogram || x->topk || x->list ? "\n" : "",
		      tot->n[HS_CHUNK_USED], hs_fmt_size(tot->bytes[HS_CHUNK_USED], f[0]), tot->n[HS_CHUNK_BIN],
		      hs_fmt_size(tot->bytes[HS_CHUNK_BIN], f[1]), tot->n[HS_CHUNK_FAST], hs_fmt_size(tot->bytes[HS_CHUNK_FAST], f[2]),
		      tot->n[HS_CHUNK_TCACHE], hs_fmt_size(tot->bytes[HS_CHUNK_TCACHE], f[3]),
		      hs_fmt_size(tot->bytes[HS_CHUNK_TOP], f[4]));
	if (with_mmapped)
		hs_print_text(o, "; %" PRIu64 " mmapped chunks (%s; glibc counts %d, %s)", k->mm_n,
			      hs_fmt_size(k->mm_b, f[0]), h->n_mmaps, hs_fmt_size(h->mmapped_mem, f[1]));
	hs_print_text(o, "\n");
	hs_out_doc_end(o);
}

static int cmd_chunks(struct hs_cli *cli)
{
	struct ctx x = { .cli = cli, .state = (enum hs_chunks_filter)hs_cli_num(cli, 'S', HS_CHUNKS_ALL), .histogram = cli->opt['g'].set,
			 .strmin = (unsigned)hs_cli_num(cli, 's', 0), .topk = hs_cli_num(cli, 't', 0) };
	long only = hs_cli_num(cli, 'a', -1);
	uint64_t heap_addr = cli->opt['H'].set ? cli->opt['H'].u : 0;
	if (only >= 0 && heap_addr)
		return hs_cli_usage(cli, "--arena and --heap exclude each other");
	if (x.topk && !x.strmin)
		x.strmin = 4;
	x.list = !x.histogram && !x.topk;
	int r;
	/* --histogram alone: the walk sums, keeping no chunk */
	struct hs_chunks_set k = { .user_only = only, .only = only, .heap_addr = heap_addr,
				   .histogram = x.histogram && !x.topk };
	struct hs_snapshot s;
	struct hs_snapshot_opts o;
	hs_cli_snapshot_opts(cli, &o);
	o.residency = false;
	o.walk = HS_WALK_LISTS | HS_WALK_DEEP;
	o.stopped = walk_stopped;
	o.stopped_ctx = &k;
	o.arena_hook.arena = hs_chunks_collect_arena;
	o.arena_hook.ctx = &k;
	int status = HS_EXIT_OK;
	hs_chunks_set_prepare(&k);      /* before the stop */
	if ((r = hs_cli_snapshot_take(cli, cli->pid, &o, &s)) < 0) {
		status = -r;
		goto out;
	}
	struct hs_heap *h = &s.heap;
	x.mem = s.mem;
	struct hs_chunks_sum *sum = calloc(k.narenas + 1, sizeof(*sum));
	if (!sum) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
		hs_snapshot_release(&s);
		goto out;
	}
	hs_chunks_set_sum(&k, h, sum, &x.all);
	x.o = hs_cli_out(cli);
	hs_out_obj_begin(&x.o, NULL);
	hs_print_int(&x.o, HS_PRINT_JSON, "pid", NULL, cli->pid);
	hs_print_u64(&x.o, HS_PRINT_JSON, "pause_us", NULL, s.pause_us);
	hs_cli_cut(&x.o, h);
	if (x.list) {
		hs_out_arr_begin(&x.o, "chunks");
		hs_print_text(&x.o, "%-14s %10s %-9s %5s\n", "ADDRESS", "SIZE", "STATE", "ARENA");
	}
	for (size_t w = 0; w < k.narenas; w++) {
		const struct hs_arena *a = &h->arenas[sum[w].index];
		if (!sum[w].unmet)
			continue;
		hs_cli_warn(cli, "arena %d: the lists hold %" PRIu64 " bin and %" PRIu64 " fastbin chunks, the walk met %" PRIu64
			    " and %" PRIu64, a->index, a->bin_count, a->fast_count, sum[w].n[HS_CHUNK_BIN], sum[w].n[HS_CHUNK_FAST]);
		status = HS_EXIT_PARTIAL;
	}
	for (size_t i = 0; i < k.n; i++)
		on_chunk(&x, &k.v[i]);
	/* no mmapped figures for one arena or one heap */
	bool with_mmapped = only < 0 && !k.heap_addr;
	render_summary(&x, &k, h, sum, with_mmapped);
	if (with_mmapped && (k.mm_n != (uint64_t)(int64_t)h->n_mmaps || k.mm_b != h->mmapped_mem)) {
		hs_cli_warn(cli, "found %" PRIu64 " mmapped chunks (%" PRIu64 " bytes), glibc counts %d (%" PRIu64 " bytes)",
			    k.mm_n, k.mm_b, h->n_mmaps, h->mmapped_mem);
		status = HS_EXIT_PARTIAL;
	}
	free(sum);
	int p = hs_cli_report_partial(cli, &s);
	if (p > status)
		status = p;
	hs_snapshot_release(&s);
out:
	hs_chunks_set_release(&k);
	hs_strtab_release(&x.tops);
	return status;
}

static const char *const states[] = { "used", "free", "all", NULL };
static const struct hs_opt opts[] = {
	{ .name = "arena", .key = 'a', .kind = HS_OPT_COUNT, .max = LONG_MAX, .bad = "--arena takes an arena index",
	  .arg = "N", .help = "only arena N; --heap ADDR: only the heap holding ADDR" },
	{ .name = "heap", .key = 'H', .kind = HS_OPT_SIZE, .bad = "--heap takes an address" },
	{ .name = "state", .key = 'S', .kind = HS_OPT_CHOICE, .choices = states, .bad = "--state takes used, free or all",
	  .arg = "S", .help = "used, free or all (default)" },
	{ .name = "histogram", .key = 'g', .help = "counts and bytes in use and free, by size class" },
	{ .name = "strings", .key = 's', .kind = HS_OPT_COUNT, .has_arg = optional_argument, .val = 4, .min = 1,
	  .max = 200, .bad = "--strings=N takes a length from 1 to 200",
	  .arg = "N", .help = "the first printable string (at least N characters, default 4) in each chunk's first 4 "
	  "KiB" },
	{ .name = "top", .key = 't', .kind = HS_OPT_COUNT, .min = 1, .max = LONG_MAX, .bad = "--top takes a positive count",
	  .arg = "K", .help = "with --strings: the K most frequent first strings of each size class" },
	{ 0 },
};

const struct hs_command hs_cmd_chunks = {
	.name = "chunks", .run = cmd_chunks, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS | HS_CMD_PID,
	.summary = "every chunk of the heaps, walked linearly; --histogram",
};
