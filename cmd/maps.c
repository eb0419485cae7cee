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
	size_t *order = hs_maps_by_rss(&s.maps);
	if (!cls || !order) {
		free(cls);
		free(order);
		hs_snapshot_release(&s);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
	}
	hs_classify(cli->pid, &s.maps, h, s.mem, cls);

	struct hs_out out = hs_cli_out(cli);
	char a[HS_SIZE_BUF];
	uint64_t kind_rss[HS_MAP_OTHER + 1] = { 0 };
	hs_out_obj_begin(&out, NULL);
	hs_print_int(&out, HS_PRINT_JSON, "pid", NULL, cli->pid);
	if (note[0])
		hs_print_str(&out, HS_PRINT_JSON, "note", NULL, note);
	hs_print_text(&out, "%-14s %-14s %-4s %8s %8s  %-12s %5s  %s\n", "START", "END", "PERM", "SIZE", "RSS", "KIND",
		      "ARENA", "PATH");
	hs_out_arr_begin(&out, "mappings");
	for (size_t n = 0; n < s.maps.n; n++) {
		size_t i = order[n];
		const struct hs_mapping *m = &s.maps.v[i];
		kind_rss[cls[i].kind] += m->rss;
		hs_out_obj_begin(&out, NULL);
		hs_print_hex(&out, HS_PRINT_ANY, "start", "%014" PRIx64, m->start);
		hs_print_hex(&out, HS_PRINT_ANY, "end", " %014" PRIx64, m->end);
		hs_print_text(&out, " %-4s", m->perms);
		hs_print_size(&out, HS_PRINT_ANY, "size", " %8s", m->end - m->start);
		hs_print_size(&out, HS_PRINT_ANY, "rss", " %8s", m->rss);
		hs_print_u64(&out, HS_PRINT_JSON, "pss", NULL, m->pss);
		hs_print_u64(&out, HS_PRINT_JSON, "private_dirty", NULL, m->private_dirty);
		hs_print_u64(&out, HS_PRINT_JSON, "anonymous", NULL, m->anonymous);
		hs_print_u64(&out, HS_PRINT_JSON, "swap", NULL, m->swap);
		hs_print_str(&out, HS_PRINT_JSON, "perms", NULL, m->perms);
		hs_print_str(&out, HS_PRINT_ANY, "kind", "  %-12s", hs_map_kind_name(cls[i].kind));
		if (cls[i].arena >= 0)
			hs_print_int(&out, HS_PRINT_ANY, "arena", " %5d", cls[i].arena);
		else
			hs_print_text(&out, " %5s", "");
		if (cls[i].kind == HS_MAP_MMAP_CHUNK) {
			hs_print_u64(&out, HS_PRINT_JSON, "chunks", NULL, cls[i].nchunks);
			hs_print_u64(&out, HS_PRINT_JSON, "chunk_bytes", NULL, cls[i].chunk_bytes);
		}
		hs_print_str(&out, HS_PRINT_ANY, "path", "  %s", m->path);
		hs_print_text(&out, "%s\n", m->deleted ? " (deleted)" : "");
		hs_out_obj_end(&out);
	}
	hs_out_arr_end(&out);
	hs_print_text(&out, "\nRss by kind:");
	for (int k = 0; k <= HS_MAP_OTHER; k++)
		if (kind_rss[k])
			hs_print_text(&out, " %s %s", hs_map_kind_name(k), hs_fmt_size(kind_rss[k], a));
	hs_print_text(&out, "\n");
	hs_out_doc_end(&out);
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
