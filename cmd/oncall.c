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

/* The verdict's figures and the environment they were judged in (JSON only). */
static void figures_json(struct hs_out *o, const struct hs_verdict *v, const struct hs_procenv *e)
{
	const int J = HS_PRINT_JSON;
	hs_out_obj_begin(o, "figures");
	hs_print_u64(o, J, "arenas", NULL, v->narenas);
	hs_print_u64(o, J, "arena_cap", NULL, v->arena_cap);
	hs_print_str(o, J, "arena_cap_source", NULL, v->cap_source);
	hs_print_bool(o, J, "arena_max_set", NULL, v->arena_max_set);
	hs_print_i64(o, J, "cpus", NULL, v->ncpus);
	hs_print_u64(o, J, "threads_with_arena", NULL, v->threads_with_arena);
	hs_print_u64(o, J, "arenas_with_threads", NULL, v->arenas_with_threads);
	hs_print_u64(o, J, "max_threads_per_arena", NULL, v->max_threads_per_arena);
	hs_print_u64(o, J, "resident", NULL, v->resident);
	hs_print_u64(o, J, "in_use", NULL, v->in_use);
	hs_print_u64(o, J, "free_total", NULL, v->free_total);
	hs_print_u64(o, J, "free_resident", NULL, v->free_resident);
	hs_print_u64(o, J, "trimmable", NULL, v->trimmable);
	hs_print_u64(o, J, "tcache", NULL, v->tcache);
	hs_print_u64(o, J, "top", NULL, v->top);
	hs_print_u64(o, J, "pinned_arenas", NULL, v->pinned_arenas);
	hs_print_u64(o, J, "pinned_free", NULL, v->pinned_free);
	hs_print_u64(o, J, "free_chunks", NULL, v->free_chunks);
	hs_print_u64_opt(o, J, "suggested_arena_max", NULL, v->suggest_arena_max, v->suggest_arena_max);
	hs_out_obj_end(o);
	hs_out_obj_begin(o, "environment");
	hs_print_u64_opt(o, J, "malloc_arena_max", NULL, e->has_arena_max_env, e->arena_max_env);
	hs_print_str(o, J, "glibc_tunables", NULL, e->tunables);
	hs_print_bool(o, J, "jvm", NULL, e->jvm);
	if (e->jvm) {
		hs_print_str(o, J, "java_home", NULL, e->java_home);
		hs_print_str(o, J, "java_version", NULL, e->java_version);
		hs_print_bool_opt(o, J, "jcmd_trim_native_heap", NULL, e->jcmd_trim >= 0, e->jcmd_trim > 0);
		hs_print_bool_opt(o, J, "trim_native_heap_interval", NULL, e->trim_interval_flag >= 0, e->trim_interval_flag > 0);
	}
	hs_out_obj_end(o);
}

void hs_cli_verdict(struct hs_out *o, const struct hs_verdict *v, const struct hs_procenv *e)
{
	hs_out_obj_begin(o, "verdict");
	hs_print_str(o, HS_PRINT_ANY, "headline", "\nverdict: %s\n", v->headline);
	hs_print_bool(o, HS_PRINT_JSON, "wasteful", NULL, v->wasteful);
	hs_print_bool(o, HS_PRINT_JSON, "fragmented", NULL, v->fragmented);
	figures_json(o, v, e);
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
