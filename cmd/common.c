/* Pieces the snapshot commands (arenas, stats) share. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "bins.h"
#include "common.h"

int hs_cli_snapshot(struct hs_cli *cli, pid_t pid, bool residency, struct hs_snapshot *s)
{
	return hs_cli_snapshot_walk(cli, pid, residency, HS_WALK_LISTS, s);
}

void hs_cli_snapshot_opts(const struct hs_cli *cli, struct hs_snapshot_opts *o)
{
	hs_snapshot_opts_default(o);
	o->use_debuginfo = !cli->no_debuginfo;
	o->use_debuginfod = !cli->no_debuginfod;
}

int hs_cli_snapshot_walk(struct hs_cli *cli, pid_t pid, bool residency, unsigned walk, struct hs_snapshot *s)
{
	struct hs_snapshot_opts o;
	hs_cli_snapshot_opts(cli, &o);
	o.residency = residency;
	o.walk = walk;
	return hs_cli_snapshot_take(cli, pid, &o, s);
}

int hs_cli_snapshot_take(struct hs_cli *cli, pid_t pid, const struct hs_snapshot_opts *o, struct hs_snapshot *s)
{
	struct hs_err err = { 0 };
	int r = hs_snapshot_take(pid, o, s, &err);
	if (r < 0) {
		int status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg[0] ? err.msg : strerror(-r));
		hs_snapshot_release(s);
		return -status;
	}
	return 0;
}

int hs_cli_report_partial(struct hs_cli *cli, const struct hs_snapshot *s)
{
	int status = HS_EXIT_OK;
	const struct hs_heap *h = &s->heap;
	/* Walked while the target ran and never twice the same: lists that
	 * looked broken were most likely met mid-change, not corrupt. */
	if (h->running && s->approximate) {
		bool broken = false;
		for (size_t i = 0; i < h->narenas; i++)
			broken |= h->arenas[i].status != 0;
		for (size_t i = 0; i < h->ntcaches; i++)
			broken |= h->tcaches[i].status != 0;
		hs_cli_warn(cli, "the heap changed under each of %d walks while the target ran: the figures are approximate%s",
			    s->walks, broken ? "; lists that looked broken were met mid-change (without --no-freeze, "
			    "heapscope stops the target and checks them)" : "");
		return HS_EXIT_PARTIAL;
	}
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_arena *a = &h->arenas[i];
		if (!a->status)
			continue;
		status = HS_EXIT_PARTIAL;
		/* every problem, not only the first */
		if (!a->nproblems)
			hs_cli_warn(cli, "arena %d (0x%" PRIx64 ") is partial: %s", a->index, a->addr, a->problem);
		for (size_t k = 0; k < a->nproblems; k++)
			hs_cli_warn(cli, "arena %d (0x%" PRIx64 ") is partial: %s", a->index, a->addr, a->problems[k].msg);
		if (a->problems_dropped)
			hs_cli_warn(cli, "arena %d (0x%" PRIx64 "): %zu more problems not shown", a->index, a->addr,
				    a->problems_dropped);
	}
	if (h->cut) {
		hs_cli_warn(cli, "walk cut short: %s", h->cut_msg);
		status = HS_EXIT_PARTIAL;
	}
	for (size_t i = 0; i < h->ntcaches; i++)
		if (h->tcaches[i].status) {
			hs_cli_warn(cli, "thread %d: %s", (int)h->tcaches[i].tid, h->tcaches[i].problem);
			status = HS_EXIT_PARTIAL;
		}
	if (s->locked_arenas) {
		hs_cli_warn(cli, "%d arena(s) were locked by a thread inside malloc in every one of %d stops: "
			    "their lists may be mid-update", s->locked_arenas, s->attempts);
		status = HS_EXIT_PARTIAL;
	}
	return status;
}

void hs_cli_glibc(struct hs_out *o, const struct hs_snapshot *s)
{
	const struct hs_libc *lc = &s->libc;
	const int J = HS_PRINT_JSON;
	hs_out_obj_begin(o, "glibc");
	hs_print_str(o, J, "version", NULL, lc->version[0] ? lc->version : NULL);
	hs_print_str(o, J, "path", NULL, lc->map_path);
	hs_print_str(o, J, "build_id", NULL, lc->build_id[0] ? lc->build_id : NULL);
	hs_print_bool(o, J, "static", NULL, lc->is_static);
	hs_print_hex(o, J, "base", NULL, lc->base);
	hs_print_hex(o, J, "main_arena", NULL, lc->main_arena);
	hs_print_hex(o, J, "mp", NULL, lc->mp);
	hs_print_hex_opt(o, J, "global_max_fast_addr", NULL, lc->global_max_fast, lc->global_max_fast);
	hs_print_u64_opt(o, J, "global_max_fast", NULL, s->heap.global_max_fast != UINT64_MAX, s->heap.global_max_fast);
	hs_print_str(o, J, "symbols", NULL, lc->symbols_from);
	hs_print_str(o, J, "layout", NULL, lc->layout_from);
	hs_print_str(o, J, "debuginfo", NULL, lc->debuginfo[0] ? lc->debuginfo : NULL);
	hs_print_str(o, J, "debuginfo_from", NULL, lc->debuginfo[0] ? lc->debuginfo_from : NULL);
	hs_out_obj_end(o);
}

void hs_cli_mallinfo2(struct hs_out *o, const char *key, const struct hs_heap *h)
{
	static const char *const names[] = { "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
					     "uordblks", "fordblks", "keepcost" };
	struct hs_mallinfo2 mi;
	hs_heap_mallinfo2(h, &mi);
	const uint64_t v[] = { mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd, mi.usmblks, mi.fsmblks,
			       mi.uordblks, mi.fordblks, mi.keepcost };
	if (key)
		hs_out_obj_begin(o, key);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		hs_print_text(o, "%-9s", names[i]);
		hs_print_u64(o, HS_PRINT_ANY, names[i], "%" PRIu64 "\n", v[i]);
	}
	if (key)
		hs_out_obj_end(o);
}

void hs_cli_arena_status(struct hs_out *o, const struct hs_arena *a)
{
	hs_print_bool(o, HS_PRINT_JSON, "partial", NULL, a->status != 0);
	if (!a->status)
		return;
	hs_print_str(o, HS_PRINT_JSON, "problem", NULL, a->problem);
	hs_print_hex(o, HS_PRINT_JSON, "bad_address", NULL, a->bad_addr);
	hs_out_arr_begin(o, "problems");
	for (size_t k = 0; k < a->nproblems; k++) {
		const struct hs_problem *p = &a->problems[k];
		hs_out_obj_begin(o, NULL);
		hs_print_str(o, HS_PRINT_JSON, "message", NULL, p->msg);
		hs_print_hex(o, HS_PRINT_JSON, "address", NULL, p->addr);
		hs_print_hex_opt(o, HS_PRINT_JSON, "chunk", NULL, p->chunk, p->chunk);
		hs_print_str(o, HS_PRINT_JSON, "list", NULL,
			     p->list == HS_PLIST_NONE ? NULL : hs_bins_kind(p->list == HS_PLIST_FAST, p->bin));
		if (p->list != HS_PLIST_NONE)
			hs_print_int(o, HS_PRINT_JSON, "bin", NULL, p->bin);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
}

void hs_cli_cut(struct hs_out *o, const struct hs_heap *h)
{
	hs_print_str(o, HS_PRINT_JSON, "walk_cut", NULL, h->cut ? h->cut_msg : NULL);
}

const char *hs_cli_call_failed(size_t calls, int r)
{
	return calls && r != -ETIMEDOUT && r != -ESRCH && r != -ENOTSUP ? " (the thread was put back as it was)" : "";
}
