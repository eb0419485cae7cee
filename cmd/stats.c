/* heapscope stats: glibc's own malloc_info() and mallinfo2(), computed from
 * outside the target; no code runs in it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "format.h"
#include "info.h"

static const char help[] =
	"usage: heapscope stats [--malloc-info | --mallinfo2] [--json] [--no-debuginfo] PID\n"
	"\n"
	"What glibc's malloc_info(0, fp) or mallinfo2() would report inside PID at\n"
	"this moment, byte for byte, computed from outside: no code runs in the\n"
	"target.  Without an option, a short summary.\n";

enum mode { SUMMARY, MALLOC_INFO, MALLINFO2 };

static void mallinfo2_text(const struct hs_heap *h)
{
	struct hs_mallinfo2 mi;
	hs_heap_mallinfo2(h, &mi);
	printf("arena    %" PRIu64 "\nordblks  %" PRIu64 "\nsmblks   %" PRIu64 "\nhblks    %" PRIu64
	       "\nhblkhd   %" PRIu64 "\nusmblks  %" PRIu64 "\nfsmblks  %" PRIu64 "\nuordblks %" PRIu64
	       "\nfordblks %" PRIu64 "\nkeepcost %" PRIu64 "\n",
	       mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd, mi.usmblks, mi.fsmblks, mi.uordblks, mi.fordblks,
	       mi.keepcost);
}

static void summary_text(const struct hs_snapshot *s)
{
	const struct hs_heap *h = &s->heap;
	struct hs_mallinfo2 mi;
	hs_heap_mallinfo2(h, &mi);
	char f[8][HS_SIZE_BUF];
	uint64_t tops = 0, bins = 0, nbins = 0;
	for (size_t i = 0; i < h->narenas; i++) {
		tops += h->arenas[i].top_size;
		bins += h->arenas[i].bin_bytes;
		nbins += h->arenas[i].bin_count;
	}
	printf("pid %d, glibc %s: %zu arena%s\n", (int)s->pid, s->libc.version, h->narenas, h->narenas == 1 ? "" : "s");
	printf("  from the system  %8s in arenas, %s in %" PRIu64 " mmapped chunks\n", hs_fmt_size(mi.arena, f[0]),
	       hs_fmt_size(mi.hblkhd, f[1]), mi.hblks);
	printf("  in use           %8s (tcache counts as in use, as glibc counts it)\n",
	       hs_fmt_size(mi.uordblks, f[2]));
	printf("  free             %8s: %s in %" PRIu64 " fastbin chunks, %s in %" PRIu64
	       " bin chunks, %s in top chunks\n",
	       hs_fmt_size(mi.fordblks, f[3]), hs_fmt_size(mi.fsmblks, f[4]), mi.smblks, hs_fmt_size(bins, f[5]), nbins,
	       hs_fmt_size(tops, f[6]));
	printf("  main arena top   %8s (keepcost)\n", hs_fmt_size(mi.keepcost, f[7]));
}

static int cmd_stats(struct hs_cli *cli)
{
	enum mode mode = (enum mode)hs_cli_num(cli, 'm', SUMMARY);
	int r;
	struct hs_snapshot s;
	if ((r = hs_cli_snapshot(cli, cli->pid, false, &s)) < 0)
		return -r;
	const struct hs_heap *h = &s.heap;
	int status = HS_EXIT_OK;
	if (mode == MALLOC_INFO) {
		char *xml = NULL;
		size_t len = 0;
		FILE *mf = open_memstream(&xml, &len);
		if (!mf || hs_info_malloc_info(h, mf) < 0) {
			if (mf)
				fclose(mf);
			free(xml);
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "malloc_info output of glibc %s is not reproduced yet",
					     s.libc.version);
			hs_snapshot_release(&s);
			return status;
		}
		fclose(mf);
		if (cli->json) {
			hs_json_obj_begin(&cli->j, NULL);
			hs_json_i64(&cli->j, "pid", s.pid);
			hs_json_u64(&cli->j, "pause_us", s.pause_us);
			hs_json_str(&cli->j, "malloc_info", xml);
			hs_json_obj_end(&cli->j);
			hs_json_finish(&cli->j);
		} else {
			fwrite(xml, 1, len, stdout);
		}
		free(xml);
	} else if (cli->json) {
		struct hs_json *j = &cli->j;
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", s.pid);
		hs_json_u64(j, "pause_us", s.pause_us);
		hs_cli_json_mallinfo2(j, NULL, h);
		hs_json_u64(j, "arenas", h->narenas);
		hs_json_str(j, "glibc_version", s.libc.version);
		hs_json_obj_end(j);
		hs_json_finish(j);
	} else if (mode == MALLINFO2) {
		mallinfo2_text(h);
	} else {
		summary_text(&s);
	}
	int p = hs_cli_report_partial(cli, &s);
	hs_snapshot_release(&s);
	return status ? status : p;
}

static const struct hs_opt opts[] = {
	{ .name = "malloc-info", .key = 'm', .val = MALLOC_INFO, .help = "the XML malloc_info(0, fp) would write" },
	{ .name = "mallinfo2", .key = 'm', .val = MALLINFO2, .help = "the ten fields of struct mallinfo2" },
	{ 0 },
};

const struct hs_command hs_cmd_stats = {
	.name = "stats", .run = cmd_stats, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS | HS_CMD_PID,
	.summary = "malloc_info() and mallinfo2() of the target, computed from outside",
};
