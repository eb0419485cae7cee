/* The verdict and the thread list, in text and JSON. */
#include <inttypes.h>
#include <stdio.h>

#include "oncall.h"
#include "proc.h"

/* The causes or the remedies: "  - text" or "  1. text" in text. */
static void lines(struct hs_out *o, const char *key, const struct hs_verdict_line *l, size_t n, bool numbered)
{
	hs_out_arr_begin(o, key);
	for (size_t i = 0; i < n; i++) {
		hs_out_obj_begin(o, NULL);
		hs_print_str(o, HS_PRINT_JSON, "id", NULL, l[i].id);
		if (numbered)
			hs_print_text(o, "  %zu. ", i + 1);
		else
			hs_print_text(o, "  - ");
		hs_print_str(o, HS_PRINT_ANY, "text", "%s\n", l[i].text);
		hs_print_str(o, HS_PRINT_JSON, "command", NULL, l[i].command[0] ? l[i].command : NULL);
		hs_print_u64(o, HS_PRINT_JSON, "bytes", NULL, l[i].bytes);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
}

static void tri(struct hs_json *j, const char *key, int v)
{
	if (v < 0)
		hs_json_null(j, key);
	else
		hs_json_bool(j, key, v);
}

/* The verdict's figures and the environment they were judged in (JSON only). */
static void figures_json(struct hs_json *j, const struct hs_verdict *v, const struct hs_procenv *e)
{
	hs_json_obj_begin(j, "figures");
	hs_json_u64(j, "arenas", v->narenas);
	hs_json_u64(j, "arena_cap", v->arena_cap);
	hs_json_str(j, "arena_cap_source", v->cap_source);
	hs_json_bool(j, "arena_max_set", v->arena_max_set);
	hs_json_i64(j, "cpus", v->ncpus);
	hs_json_u64(j, "threads_with_arena", v->threads_with_arena);
	hs_json_u64(j, "arenas_with_threads", v->arenas_with_threads);
	hs_json_u64(j, "max_threads_per_arena", v->max_threads_per_arena);
	hs_json_u64(j, "resident", v->resident);
	hs_json_u64(j, "in_use", v->in_use);
	hs_json_u64(j, "free_total", v->free_total);
	hs_json_u64(j, "free_resident", v->free_resident);
	hs_json_u64(j, "trimmable", v->trimmable);
	hs_json_u64(j, "tcache", v->tcache);
	hs_json_u64(j, "top", v->top);
	hs_json_u64(j, "pinned_arenas", v->pinned_arenas);
	hs_json_u64(j, "pinned_free", v->pinned_free);
	hs_json_u64(j, "free_chunks", v->free_chunks);
	if (v->suggest_arena_max)
		hs_json_u64(j, "suggested_arena_max", v->suggest_arena_max);
	else
		hs_json_null(j, "suggested_arena_max");
	hs_json_obj_end(j);
	hs_json_obj_begin(j, "environment");
	if (e->has_arena_max_env)
		hs_json_u64(j, "malloc_arena_max", e->arena_max_env);
	else
		hs_json_null(j, "malloc_arena_max");
	hs_json_str(j, "glibc_tunables", e->tunables);
	hs_json_bool(j, "jvm", e->jvm);
	if (e->jvm) {
		hs_json_str(j, "java_home", e->java_home);
		hs_json_str(j, "java_version", e->java_version);
		tri(j, "jcmd_trim_native_heap", e->jcmd_trim);
		tri(j, "trim_native_heap_interval", e->trim_interval_flag);
	}
	hs_json_obj_end(j);
}

void hs_cli_verdict(struct hs_out *o, const struct hs_verdict *v, const struct hs_procenv *e)
{
	hs_out_obj_begin(o, "verdict");
	hs_print_str(o, HS_PRINT_ANY, "headline", "\nverdict: %s\n", v->headline);
	hs_print_bool(o, HS_PRINT_JSON, "wasteful", NULL, v->wasteful);
	hs_print_bool(o, HS_PRINT_JSON, "fragmented", NULL, v->fragmented);
	if (hs_out_json(o))
		figures_json(o->j, v, e);
	lines(o, "causes", v->causes, v->ncauses, false);
	if (v->nremedies)
		hs_print_text(o, "remedies, most effective first:\n");
	lines(o, "remedies", v->remedies, v->nremedies, true);
	hs_out_obj_end(o);
}

static int arena_index(const struct hs_snapshot *s, uint64_t addr)
{
	const struct hs_arena *a = addr ? hs_heap_arena_at(&s->heap, addr) : NULL;
	return a ? a->index : -1;
}

void hs_cli_threads(struct hs_out *o, const struct hs_snapshot *s)
{
	hs_print_text(o, "\n%8s %-16s %5s\n", "TID", "NAME", "ARENA");
	hs_out_arr_begin(o, "thread_arenas");
	for (size_t i = 0; i < s->heap.ntcaches; i++) {
		const struct hs_tcache *t = &s->heap.tcaches[i];
		char name[64];
		hs_proc_comm(s->pid, t->tid, name, sizeof(name));
		int a = arena_index(s, t->thread_arena);
		hs_out_obj_begin(o, NULL);
		hs_print_int(o, HS_PRINT_ANY, "tid", "%8d", (int)t->tid);
		hs_print_str(o, HS_PRINT_ANY, "name", " %-16s", name);
		if (a >= 0)
			hs_print_int(o, HS_PRINT_ANY, "arena", " %5d\n", a);
		else
			hs_print_null(o, HS_PRINT_ANY, "arena", "     -\n");
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
}
