/* heapscope stats: glibc's own malloc_info() and mallinfo2(), computed from
 * outside the target; no code runs in it. */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "info.h"
#include "verdict.h"

static const char help[] =
	"usage: heapscope stats [--malloc-info | --mallinfo2] [--json] [--no-debuginfo] PID\n"
	"\n"
	"What glibc's malloc_info(0, fp) or mallinfo2() would report inside PID at\n"
	"this moment, byte for byte, computed from outside: no code runs in the\n"
	"target.  Without an option, a short summary.\n";

enum mode { SUMMARY, MALLOC_INFO, MALLINFO2 };

static int cmd_stats(struct hs_cli *cli)
{
	enum mode mode = (enum mode)hs_cli_num(cli, 'm', SUMMARY);
	int r;
	struct hs_snapshot s;
	if ((r = hs_cli_snapshot(cli, cli->pid, false, &s)) < 0)
		return -r;
	const struct hs_heap *h = &s.heap;
	char *xml = NULL;
	if (mode == MALLOC_INFO && !(xml = hs_info_malloc_info_str(h))) {
		int status = hs_cli_fail(cli, HS_EXIT_FATAL, "malloc_info output of glibc %s is not reproduced yet",
					 s.libc.version);
		hs_snapshot_release(&s);
		return status;
	}
	struct hs_out o = hs_cli_out(cli);
	if (!cli->json && mode == SUMMARY) {
		hs_heap_summary_write(stdout, s.pid, s.libc.version, h);
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
