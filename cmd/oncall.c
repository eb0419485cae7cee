/* The verdict and the thread list, in text and JSON. */
#include <inttypes.h>
#include <stdio.h>

#include "format.h"
#include "oncall.h"
#include "proc.h"

void hs_cli_verdict_text(const struct hs_verdict *v)
{
	printf("\nverdict: %s\n", v->headline);
	for (size_t i = 0; i < v->ncauses; i++)
		printf("  - %s\n", v->causes[i].text);
	if (v->nremedies) {
		printf("remedies, most effective first:\n");
		for (size_t i = 0; i < v->nremedies; i++)
			printf("  %zu. %s\n", i + 1, v->remedies[i].text);
	}
}

static void lines(struct hs_json *j, const char *key, const struct hs_verdict_line *l, size_t n)
{
	hs_json_arr_begin(j, key);
	for (size_t i = 0; i < n; i++) {
		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "id", l[i].id);
		hs_json_str(j, "text", l[i].text);
		if (l[i].command[0])
			hs_json_str(j, "command", l[i].command);
		else
			hs_json_null(j, "command");
		hs_json_u64(j, "bytes", l[i].bytes);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
}

static void tri(struct hs_json *j, const char *key, int v)
{
	if (v < 0)
		hs_json_null(j, key);
	else
		hs_json_bool(j, key, v);
}

void hs_cli_verdict_json(struct hs_json *j, const struct hs_verdict *v, const struct hs_procenv *e)
{
	hs_json_obj_begin(j, "verdict");
	hs_json_str(j, "headline", v->headline);
	hs_json_bool(j, "wasteful", v->wasteful);
	hs_json_bool(j, "fragmented", v->fragmented);
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
	lines(j, "causes", v->causes, v->ncauses);
	lines(j, "remedies", v->remedies, v->nremedies);
	hs_json_obj_end(j);
}

static int arena_index(const struct hs_snapshot *s, uint64_t addr)
{
	const struct hs_arena *a = addr ? hs_heap_arena_at(&s->heap, addr) : NULL;
	return a ? a->index : -1;
}

void hs_cli_threads_text(const struct hs_snapshot *s)
{
	printf("\n%8s %-16s %5s\n", "TID", "NAME", "ARENA");
	for (size_t i = 0; i < s->heap.ntcaches; i++) {
		const struct hs_tcache *t = &s->heap.tcaches[i];
		char name[64];
		hs_proc_comm(s->pid, t->tid, name, sizeof(name));
		int a = arena_index(s, t->thread_arena);
		if (a >= 0)
			printf("%8d %-16s %5d\n", (int)t->tid, name, a);
		else
			printf("%8d %-16s %5s\n", (int)t->tid, name, "-");
	}
}

void hs_cli_threads_json(struct hs_json *j, const struct hs_snapshot *s)
{
	hs_json_arr_begin(j, "thread_arenas");
	for (size_t i = 0; i < s->heap.ntcaches; i++) {
		const struct hs_tcache *t = &s->heap.tcaches[i];
		char name[64];
		hs_proc_comm(s->pid, t->tid, name, sizeof(name));
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "tid", t->tid);
		hs_json_str(j, "name", name);
		int a = arena_index(s, t->thread_arena);
		if (a >= 0)
			hs_json_i64(j, "arena", a);
		else
			hs_json_null(j, "arena");
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
}
