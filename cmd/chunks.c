/* heapscope chunks: every chunk of the heaps, walked linearly. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunks.h"
#include "common.h"
#include "dump.h"
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

enum { ST_USED, ST_FREE, ST_ALL };   /* --state, in its words' order */

struct klass {
	uint64_t lo, hi;
	uint64_t used, used_bytes, free, free_bytes;
};

struct ctx {
	struct hs_cli *cli;
	struct hs_out o;
	struct hs_mem *mem;
	int state;
	bool histogram, list;
	unsigned strmin;
	long topk;
	bool first;
	/* per arena */
	uint64_t n[HS_CHUNK_MMAPPED + 1], bytes[HS_CHUNK_MMAPPED + 1];
	struct klass cls[129];   /* bins 0..127, 128: mmapped */
	struct hs_strtab tops;
	uint64_t nchunks;
	char str[256];
};

/* The first printable run of at least min characters in a chunk's user
 * data (its first 4 KiB), cut to fit out. */
static size_t first_string(struct hs_mem *mem, const struct hs_chunk *c, unsigned min, char *out, size_t outsz)
{
	unsigned char buf[4096];
	uint64_t len = c->size > 16 ? c->size - 16 : 0;
	if (len > sizeof(buf))
		len = sizeof(buf);
	if (!len || hs_mem_read(mem, c->addr + 16, buf, len) < 0)
		return 0;
	size_t run = 0;
	for (size_t i = 0; i <= len; i++) {
		bool g = i < len && (buf[i] == '\t' || (buf[i] >= 0x20 && buf[i] <= 0x7e));
		if (g) {
			run++;
			continue;
		}
		if (run >= min) {
			size_t n = run < outsz - 1 ? run : outsz - 1;
			memcpy(out, buf + i - run, n);
			out[n] = '\0';
			return n;
		}
		run = 0;
	}
	return 0;
}

/* After the walk, still stopped: the mmapped chunks. */
static int walk_stopped(struct hs_snapshot *s, void *ctx, struct hs_err *err)
{
	return hs_chunks_collect_mmapped(ctx, &s->maps, &s->heap, s->mem, err);
}

static bool is_free(enum hs_chunk_state s)
{
	return s == HS_CHUNK_BIN || s == HS_CHUNK_FAST || s == HS_CHUNK_TCACHE;
}

static int on_chunk(void *vctx, const struct hs_chunk *c)
{
	struct ctx *x = vctx;
	x->n[c->state]++;
	x->bytes[c->state] += c->size;
	if (x->state == ST_USED && c->state != HS_CHUNK_USED && c->state != HS_CHUNK_MMAPPED)
		return 0;
	if (x->state == ST_FREE && !is_free(c->state))
		return 0;
	x->nchunks++;
	int k = c->state == HS_CHUNK_MMAPPED ? 128 : hs_bin_index(c->size);
	if (c->state != HS_CHUNK_TOP && c->state != HS_CHUNK_FENCEPOST) {
		struct klass *kl = &x->cls[k];
		if (!kl->lo || c->size < kl->lo)
			kl->lo = c->size;
		if (c->size > kl->hi)
			kl->hi = c->size;
		if (is_free(c->state)) {
			kl->free++;
			kl->free_bytes += c->size;
		} else {
			kl->used++;
			kl->used_bytes += c->size;
		}
	}
	size_t sl = 0;
	x->str[0] = '\0';
	if (x->strmin && c->state != HS_CHUNK_TOP && c->state != HS_CHUNK_FENCEPOST)
		sl = first_string(x->mem, c, x->strmin, x->str, sizeof(x->str));
	if (x->topk && sl) {
		char key[300];
		int kl = snprintf(key, sizeof(key), "%03d%s", k, x->str);
		hs_strtab_add(&x->tops, key, (size_t)kl, c->size);
	}
	if (!x->list)
		return 0;
	struct hs_out *o = &x->o;
	hs_out_obj_begin(o, NULL);
	hs_print_hex(o, HS_PRINT_ANY, "address", "0x%012" PRIx64, c->addr);
	hs_print_u64(o, HS_PRINT_ANY, "size", " %#10" PRIx64, c->size);
	hs_print_str(o, HS_PRINT_ANY, "state", " %-9s", hs_chunk_state_name(c->state));
	hs_print_int(o, HS_PRINT_ANY, "arena", " %5d", c->arena);
	if (is_free(c->state))
		hs_print_int(o, HS_PRINT_JSON, "bin", NULL, c->bin);
	if (x->strmin)
		hs_print_str(o, HS_PRINT_JSON, "string", NULL, sl ? x->str : NULL);
	hs_print_text(o, "%s%s\n", sl ? "  " : "", sl ? x->str : "");
	hs_out_obj_end(o);
	return 0;
}

static void print_histogram(struct ctx *x)
{
	struct hs_out *o = &x->o;
	hs_print_text(o, "%-21s %10s %9s %10s %9s\n", "SIZE CLASS", "USED", "BYTES", "FREE", "BYTES");
	hs_out_arr_begin(o, "histogram");
	for (int k = 0; k < 129; k++) {
		const struct klass *kl = &x->cls[k];
		if (!kl->used && !kl->free)
			continue;
		char label[48];
		if (k == 128)
			snprintf(label, sizeof(label), "mmapped");
		else if (kl->lo == kl->hi)
			snprintf(label, sizeof(label), "0x%" PRIx64, kl->lo);
		else
			snprintf(label, sizeof(label), "0x%" PRIx64 "-0x%" PRIx64, kl->lo, kl->hi);
		hs_out_obj_begin(o, NULL);
		if (k == 128)
			hs_print_str(o, HS_PRINT_JSON, "class", NULL, "mmapped");
		else
			hs_print_int(o, HS_PRINT_JSON, "bin", NULL, k);
		hs_print_u64(o, HS_PRINT_JSON, "min_size", NULL, kl->lo);
		hs_print_u64(o, HS_PRINT_JSON, "max_size", NULL, kl->hi);
		hs_print_str(o, HS_PRINT_TEXT, NULL, "%-21s", label);
		hs_print_u64(o, HS_PRINT_ANY, "used", " %10" PRIu64, kl->used);
		hs_print_size(o, HS_PRINT_ANY, "used_bytes", " %9s", kl->used_bytes);
		hs_print_u64(o, HS_PRINT_ANY, "free", " %10" PRIu64, kl->free);
		hs_print_size(o, HS_PRINT_ANY, "free_bytes", " %9s\n", kl->free_bytes);
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
		int k = atoi((char[4]){ e->s[0], e->s[1], e->s[2], 0 });
		if (k < 0 || k > 128 || per[k]++ >= x->topk)
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

/* An arena's sums, from a walk that kept no chunk (--histogram). */
static void add_hist(struct ctx *x, const struct hs_chunks_hist *hist)
{
	memcpy(x->n, hist->n, sizeof(x->n));
	memcpy(x->bytes, hist->bytes, sizeof(x->bytes));
	for (int q = 0; q < 128; q++)
		for (int f = 0; f < 2; f++) {
			const struct hs_chunks_class *c = &hist->cls[q];
			if (!c->n[f] || (x->state == ST_USED && f) || (x->state == ST_FREE && !f))
				continue;
			struct klass *kl = &x->cls[q];
			if (!kl->lo || c->lo[f] < kl->lo)
				kl->lo = c->lo[f];
			if (c->hi[f] > kl->hi)
				kl->hi = c->hi[f];
			*(f ? &kl->free : &kl->used) += c->n[f];
			*(f ? &kl->free_bytes : &kl->used_bytes) += c->bytes[f];
		}
}

/* Counts and bytes by chunk state: one arena's, or all of them. */
struct arena_sum {
	int index;
	uint64_t n[HS_CHUNK_MMAPPED + 1], b[HS_CHUNK_MMAPPED + 1];
	uint64_t system;
};

/* Every collected chunk through on_chunk, arena by arena (into sum, when
 * there is one), then the mmapped ones; the totals into tot.  Returns
 * HS_EXIT_PARTIAL when an arena's lists hold chunks the walk did not meet. */
static int tally(struct ctx *x, const struct hs_chunks_set *k, const struct hs_heap *h, struct arena_sum *sum,
		 struct arena_sum *tot)
{
	int status = HS_EXIT_OK;
	size_t at = 0;
	for (size_t w = 0; w < k->narenas && sum; w++) {
		const struct hs_arena *a = &h->arenas[k->arena_idx[w]];
		memset(x->n, 0, sizeof(x->n));
		memset(x->bytes, 0, sizeof(x->bytes));
		if (k->histogram)
			add_hist(x, &k->hist[w]);
		for (; at < k->arena_end[w]; at++)
			on_chunk(x, &k->v[at]);
		sum[w].index = a->index;
		memcpy(sum[w].n, x->n, sizeof(x->n));
		memcpy(sum[w].b, x->bytes, sizeof(x->bytes));
		sum[w].system = a->system_mem;
		for (int q = 0; q <= HS_CHUNK_MMAPPED; q++) {
			tot->n[q] += x->n[q];
			tot->b[q] += x->bytes[q];
		}
		/* Every chunk the lists hold must be met on the walk. */
		if (!k->heap_addr && !a->status && (a->contiguous || !a->main) &&
		    (x->n[HS_CHUNK_BIN] != a->bin_count || x->n[HS_CHUNK_FAST] != a->fast_count)) {
			hs_cli_warn(x->cli, "arena %d: the lists hold %" PRIu64 " bin and %" PRIu64 " fastbin chunks, the walk met %" PRIu64
				    " and %" PRIu64, a->index, a->bin_count, a->fast_count, x->n[HS_CHUNK_BIN], x->n[HS_CHUNK_FAST]);
			status = HS_EXIT_PARTIAL;
		}
	}
	for (; at < k->n; at++)         /* the mmapped chunks */
		on_chunk(x, &k->v[at]);
	return status;
}

/* The tail: per-arena sums (JSON), mmapped (with_mmapped), histogram,
 * top strings, the totals line (text). */
static void render_summary(struct ctx *x, const struct hs_chunks_set *k, const struct hs_heap *h,
			   const struct arena_sum *sum, const struct arena_sum *tot, bool with_mmapped)
{
	struct hs_out *o = &x->o;
	if (x->list)
		hs_out_arr_end(o);
	hs_out_arr_begin(o, "arenas");
	for (size_t w = 0; w < k->narenas && sum && hs_out_json(o); w++) {
		hs_out_obj_begin(o, NULL);
		hs_print_int(o, HS_PRINT_JSON, "index", NULL, sum[w].index);
		hs_print_u64(o, HS_PRINT_JSON, "system", NULL, sum[w].system);
		for (int q = 0; q < HS_CHUNK_MMAPPED; q++) {
			hs_out_obj_begin(o, hs_chunk_state_name(q));
			hs_print_u64(o, HS_PRINT_JSON, "count", NULL, sum[w].n[q]);
			hs_print_u64(o, HS_PRINT_JSON, "bytes", NULL, sum[w].b[q]);
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
	hs_print_text(o, "%s%" PRIu64 " chunks in use (%s), %" PRIu64 " in bins (%s), %" PRIu64 " in fastbins (%s), %"
		      PRIu64 " in tcaches (%s), top %s", x->histogram || x->topk || x->list ? "\n" : "",
		      tot->n[HS_CHUNK_USED], hs_fmt_size(tot->b[HS_CHUNK_USED], f[0]), tot->n[HS_CHUNK_BIN],
		      hs_fmt_size(tot->b[HS_CHUNK_BIN], f[1]), tot->n[HS_CHUNK_FAST], hs_fmt_size(tot->b[HS_CHUNK_FAST], f[2]),
		      tot->n[HS_CHUNK_TCACHE], hs_fmt_size(tot->b[HS_CHUNK_TCACHE], f[3]),
		      hs_fmt_size(tot->b[HS_CHUNK_TOP], f[4]));
	if (with_mmapped)
		hs_print_text(o, "; %" PRIu64 " mmapped chunks (%s; glibc counts %d, %s)", k->mm_n,
			      hs_fmt_size(k->mm_b, f[0]), h->n_mmaps, hs_fmt_size(h->mmapped_mem, f[1]));
	hs_print_text(o, "\n");
	hs_out_doc_end(o);
}

static int cmd_chunks(struct hs_cli *cli)
{
	struct ctx x = { .cli = cli, .state = (int)hs_cli_num(cli, 'S', ST_ALL), .histogram = cli->opt['g'].set,
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
	x.o = hs_cli_out(cli);
	hs_out_obj_begin(&x.o, NULL);
	hs_print_int(&x.o, HS_PRINT_JSON, "pid", NULL, cli->pid);
	hs_print_u64(&x.o, HS_PRINT_JSON, "pause_us", NULL, s.pause_us);
	hs_cli_cut(&x.o, h);
	if (x.list) {
		hs_out_arr_begin(&x.o, "chunks");
		hs_print_text(&x.o, "%-14s %10s %-9s %5s\n", "ADDRESS", "SIZE", "STATE", "ARENA");
	}
	struct arena_sum tot = { 0 };
	struct arena_sum *sum = calloc(k.narenas + 1, sizeof(*sum));
	status = tally(&x, &k, h, sum, &tot);
	/* no mmapped figures for one arena or one heap */
	bool with_mmapped = only < 0 && !k.heap_addr;
	render_summary(&x, &k, h, sum, &tot, with_mmapped);
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
