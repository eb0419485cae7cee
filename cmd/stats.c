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

/* What malloc_info(0, fp) would write, or NULL if this glibc's is not
 * reproduced. */
static char *malloc_info_xml(const struct hs_heap *h)
{
	char *xml = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&xml, &len);
	if (!mf)
		return NULL;
	int r = hs_info_malloc_info(h, mf);
	fclose(mf);
	if (r < 0) {
		free(xml);
		return NULL;
	}
	return xml;
}

static int cmd_stats(struct hs_cli *cli)
{
	enum mode mode = (enum mode)hs_cli_num(cli, 'm', SUMMARY);
	int r;
	struct hs_snapshot s;
	if ((r = hs_cli_snapshot(cli, cli->pid, false, &s)) < 0)
		return -r;
	const struct hs_heap *h = &s.heap;
	char *xml = NULL;
	if (mode == MALLOC_INFO && !(xml = malloc_info_xml(h))) {
		int status = hs_cli_fail(cli, HS_EXIT_FATAL, "malloc_info output of glibc %s is not reproduced yet",
					 s.libc.version);
		hs_snapshot_release(&s);
		return status;
	}
	struct hs_out o = hs_cli_out(cli);
	if (!cli->json && mode == SUMMARY) {
		summary_text(&s);
	} else {
		hs_out_obj_begin(&o, NULL);
		hs_print_int(&o, HS_PRINT_JSON, "pid", NULL, s.pid);
		hs_print_u64(&o, HS_PRINT_JSON, "pause_us", NULL, s.pause_us);
		if (xml) {
			hs_print_str(&o, HS_PRINT_ANY, "malloc_info", "%s", xml);
		} else {
			hs_cli_mallinfo2(&o, NULL, h);
			hs_print_u64(&o, HS_PRINT_JSON, "arenas", NULL, h->narenas);
			hs_print_str(&o, HS_PRINT_JSON, "glibc_version", NULL, s.libc.version);
		}
		hs_out_doc_end(&o);
	}
	free(xml);
	int p = hs_cli_report_partial(cli, &s);
	hs_snapshot_release(&s);
	return p;
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
