/* heapscope maps: the pmap view that names the 64 MiB regions. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "common.h"
#include "format.h"
#include "proc.h"

static const char help[] =
	"usage: heapscope maps [--json] [--no-debuginfo] PID\n"
	"\n"
	"The mappings of PID, classified: main heap, thread-arena heap (with its\n"
	"arena index), thread stack, mmapped malloc chunks, file-backed, other\n"
	"anonymous; with size and Rss, largest Rss first.  Threads are not stopped.\n";

static const struct hs_maps *sort_maps;

static int by_rss(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	const struct hs_mapping *ma = &sort_maps->v[a], *mb = &sort_maps->v[b];
	if (ma->rss != mb->rss)
		return ma->rss < mb->rss ? 1 : -1;
	uint64_t sa = ma->end - ma->start, sb = mb->end - mb->start;
	if (sa != sb)
		return sa < sb ? 1 : -1;
	return (ma->start > mb->start) - (ma->start < mb->start);
}

static int cmd_maps(struct hs_cli *cli)
{
	int r;
	struct hs_snapshot_opts o;
	hs_cli_snapshot_opts(cli, &o);
	o.freeze = false;           /* classification needs no consistent lists */
	o.residency = false;
	o.lock_retries = 0;
	struct hs_snapshot s;
	struct hs_err err = { 0 };
	int status = HS_EXIT_OK;
	char note[600] = "";
	r = hs_snapshot_take(cli->pid, &o, &s, &err);
	if (r < 0 && !s.maps.n) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		hs_snapshot_release(&s);
		return status;
	}
	if (r < 0) {
		/* The mappings are still worth showing: say why malloc's view is missing. */
		snprintf(note, sizeof(note), "malloc state not read: %s", err.msg);
		status = r == -ENOTSUP ? HS_EXIT_OK : HS_EXIT_PARTIAL;
	}
	struct hs_heap *h = r == 0 ? &s.heap : NULL;
	struct hs_class *cls = calloc(s.maps.n + 1, sizeof(*cls));
	size_t *order = calloc(s.maps.n + 1, sizeof(*order));
	if (!cls || !order) {
		free(cls);
		free(order);
		hs_snapshot_release(&s);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
	}
	hs_classify(cli->pid, &s.maps, h, s.mem, cls);
	for (size_t i = 0; i < s.maps.n; i++)
		order[i] = i;
	sort_maps = &s.maps;
	qsort(order, s.maps.n, sizeof(*order), by_rss);

	if (cli->json) {
		struct hs_json *j = &cli->j;
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", cli->pid);
		if (note[0])
			hs_json_str(j, "note", note);
		hs_json_arr_begin(j, "mappings");
		for (size_t n = 0; n < s.maps.n; n++) {
			size_t i = order[n];
			const struct hs_mapping *m = &s.maps.v[i];
			hs_json_obj_begin(j, NULL);
			hs_json_hex(j, "start", m->start);
			hs_json_hex(j, "end", m->end);
			hs_json_u64(j, "size", m->end - m->start);
			hs_json_u64(j, "rss", m->rss);
			hs_json_u64(j, "pss", m->pss);
			hs_json_u64(j, "private_dirty", m->private_dirty);
			hs_json_u64(j, "anonymous", m->anonymous);
			hs_json_u64(j, "swap", m->swap);
			hs_json_str(j, "perms", m->perms);
			hs_json_str(j, "kind", hs_map_kind_name(cls[i].kind));
			if (cls[i].arena >= 0)
				hs_json_i64(j, "arena", cls[i].arena);
			if (cls[i].kind == HS_MAP_MMAP_CHUNK) {
				hs_json_u64(j, "chunks", cls[i].nchunks);
				hs_json_u64(j, "chunk_bytes", cls[i].chunk_bytes);
			}
			hs_json_str(j, "path", m->path);
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
		hs_json_obj_end(j);
		hs_json_finish(j);
	} else {
		char a[HS_SIZE_BUF], b[HS_SIZE_BUF];
		uint64_t kind_rss[HS_MAP_OTHER + 1] = { 0 };
		printf("%-14s %-14s %-4s %8s %8s  %-12s %5s  %s\n", "START", "END", "PERM", "SIZE", "RSS", "KIND", "ARENA",
		       "PATH");
		for (size_t n = 0; n < s.maps.n; n++) {
			size_t i = order[n];
			const struct hs_mapping *m = &s.maps.v[i];
			char arena[16] = "";
			if (cls[i].arena >= 0)
				snprintf(arena, sizeof(arena), "%d", cls[i].arena);
			kind_rss[cls[i].kind] += m->rss;
			printf("%014" PRIx64 " %014" PRIx64 " %-4s %8s %8s  %-12s %5s  %s%s\n", m->start, m->end, m->perms,
			       hs_fmt_size(m->end - m->start, a), hs_fmt_size(m->rss, b), hs_map_kind_name(cls[i].kind),
			       arena, m->path, m->deleted ? " (deleted)" : "");
		}
		printf("\nRss by kind:");
		for (int k = 0; k <= HS_MAP_OTHER; k++)
			if (kind_rss[k])
				printf(" %s %s", hs_map_kind_name(k), hs_fmt_size(kind_rss[k], a));
		printf("\n");
	}
	if (note[0])
		hs_cli_warn(cli, "%s", note);
	free(cls);
	free(order);
	hs_snapshot_release(&s);
	return status;
}

const struct hs_command hs_cmd_maps = {
	.name = "maps", .run = cmd_maps, .help = help, .flags = HS_CMD_GLOBALS | HS_CMD_PID,
	.summary = "the mappings, classified: heaps, arena heaps, stacks, mmapped chunks",
};
