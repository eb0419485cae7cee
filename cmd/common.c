/* Pieces the snapshot commands (arenas, stats) share. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

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

void hs_cli_json_glibc(struct hs_json *j, const struct hs_snapshot *s)
{
	const struct hs_libc *lc = &s->libc;
	hs_json_obj_begin(j, "glibc");
	hs_json_str(j, "version", lc->version[0] ? lc->version : NULL);
	hs_json_str(j, "path", lc->map_path);
	hs_json_str(j, "build_id", lc->build_id[0] ? lc->build_id : NULL);
	hs_json_bool(j, "static", lc->is_static);
	hs_json_hex(j, "base", lc->base);
	hs_json_hex(j, "main_arena", lc->main_arena);
	hs_json_hex(j, "mp", lc->mp);
	if (lc->global_max_fast)
		hs_json_hex(j, "global_max_fast_addr", lc->global_max_fast);
	else
		hs_json_null(j, "global_max_fast_addr");
	if (s->heap.global_max_fast != UINT64_MAX)
		hs_json_u64(j, "global_max_fast", s->heap.global_max_fast);
	else
		hs_json_null(j, "global_max_fast");
	hs_json_str(j, "symbols", lc->symbols_from);
	hs_json_str(j, "layout", lc->layout_from);
	hs_json_str(j, "debuginfo", lc->debuginfo[0] ? lc->debuginfo : NULL);
	hs_json_str(j, "debuginfo_from", lc->debuginfo[0] ? lc->debuginfo_from : NULL);
	hs_json_obj_end(j);
}

void hs_cli_json_mallinfo2(struct hs_json *j, const char *key, const struct hs_heap *h)
{
	struct hs_mallinfo2 mi;
	hs_heap_mallinfo2(h, &mi);
	if (key)
		hs_json_obj_begin(j, key);
	hs_json_u64(j, "arena", mi.arena);
	hs_json_u64(j, "ordblks", mi.ordblks);
	hs_json_u64(j, "smblks", mi.smblks);
	hs_json_u64(j, "hblks", mi.hblks);
	hs_json_u64(j, "hblkhd", mi.hblkhd);
	hs_json_u64(j, "usmblks", mi.usmblks);
	hs_json_u64(j, "fsmblks", mi.fsmblks);
	hs_json_u64(j, "uordblks", mi.uordblks);
	hs_json_u64(j, "fordblks", mi.fordblks);
	hs_json_u64(j, "keepcost", mi.keepcost);
	if (key)
		hs_json_obj_end(j);
}

void hs_cli_json_arena_status(struct hs_json *j, const struct hs_arena *a)
{
	hs_json_bool(j, "partial", a->status != 0);
	if (a->status) {
		hs_json_str(j, "problem", a->problem);
		hs_json_hex(j, "bad_address", a->bad_addr);
		hs_json_arr_begin(j, "problems");
		for (size_t k = 0; k < a->nproblems; k++) {
			const struct hs_problem *p = &a->problems[k];
			hs_json_obj_begin(j, NULL);
			hs_json_str(j, "message", p->msg);
			hs_json_hex(j, "address", p->addr);
			if (p->chunk)
				hs_json_hex(j, "chunk", p->chunk);
			else
				hs_json_null(j, "chunk");
			if (p->list == HS_PLIST_NONE) {
				hs_json_null(j, "list");
			} else {
				hs_json_str(j, "list", p->list == HS_PLIST_FAST ? "fastbin" : p->bin == 1 ? "unsorted"
						       : p->bin < 64 ? "small" : "large");
				hs_json_i64(j, "bin", p->bin);
			}
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
	}
}

void hs_cli_json_cut(struct hs_json *j, const struct hs_heap *h)
{
	if (h->cut)
		hs_json_str(j, "walk_cut", h->cut_msg);
	else
		hs_json_null(j, "walk_cut");
}

const char *hs_cli_call_failed(size_t calls, int r)
{
	return calls && r != -ETIMEDOUT && r != -ESRCH && r != -ENOTSUP ? " (the thread was put back as it was)" : "";
}
