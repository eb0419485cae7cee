/* heapscope top: the processes of the host (or a cgroup, or a list)
 * ranked by what their glibc arenas hold resident but free.  A first pass
 * over smaps stops nothing; then the top N are walked exactly, one short
 * stop each (the arenas snapshot). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "top.h"

static const char help[] =
	"usage: heapscope top [--json] [--exact N] [--watch SECONDS] [--cgroup PATH | --pids PID,...]\n"
	"\n"
	"Every process of the host using glibc's malloc, ranked by the bytes its\n"
	"arenas hold resident but free.  First a pass over /proc/PID/smaps that\n"
	"stops nothing: the resident bytes of [heap] and of the 64 MiB-aligned\n"
	"thread arena heaps; then the top N by that figure are walked exactly, each\n"
	"stopped only while its arenas are (as by heapscope arenas).\n";

static volatile sig_atomic_t stop;
static void on_int(int sig)
{
	(void)sig;
	stop = 1;
}

static void render(struct hs_out *o, const struct hs_top_round *t, size_t limit)
{
	const struct hs_top_entry *v = t->v;
	size_t n = t->n;
	hs_out_obj_begin(o, NULL);
	hs_print_u64(o, HS_PRINT_ANY, "processes", "%" PRIu64 " processes with glibc malloc", n);
	hs_print_us(o, HS_PRINT_ANY, "scan_us", "; first pass (smaps, nothing stopped) %s", t->scan_us);
	hs_print_u64(o, HS_PRINT_ANY, "exact", "; exact for %" PRIu64, t->exact);
	hs_print_us(o, HS_PRINT_ANY, "pause_us", ", paused %s in all\n", t->pause_us);
	hs_print_text(o, "%8s %-16s %8s %8s %6s %8s %8s %8s %9s\n", "PID", "COMM", "RSS", "HEAP-RSS", "ARENAS", "IN-USE",
		      "FREE", "FREE-RES", "TRIMMABLE");
	hs_out_arr_begin(o, "top");
	/* --limit cuts the table only */
	for (size_t i = 0; i < n && (hs_out_json(o) || !limit || i < limit); i++) {
		const struct hs_top_entry *e = &v[i];
		hs_out_obj_begin(o, NULL);
		hs_print_int(o, HS_PRINT_ANY, "pid", "%8d", (int)e->pid);
		hs_print_str(o, HS_PRINT_ANY, "comm", " %-16s", e->comm);
		hs_print_size(o, HS_PRINT_ANY, "rss", " %8s", e->rss);
		hs_print_size(o, HS_PRINT_ANY, "heap_rss", " %8s", e->heap_rss);
		hs_print_u64(o, HS_PRINT_JSON, "arena_heaps", NULL, e->arena_heaps);
		hs_print_bool(o, HS_PRINT_JSON, "exact", NULL, e->exact);
		if (e->exact) {
			hs_print_u64(o, HS_PRINT_ANY, "arenas", " %6" PRIu64, e->narenas);
			hs_print_u64(o, HS_PRINT_JSON, "resident", NULL, e->resident);
			hs_print_size(o, HS_PRINT_ANY, "in_use", " %8s", e->in_use);
			hs_print_size(o, HS_PRINT_ANY, "free_total", " %8s", e->free_total);
			hs_print_size(o, HS_PRINT_ANY, "free_resident", " %8s", e->free_resident);
			hs_print_size(o, HS_PRINT_ANY, "trimmable", " %9s\n", e->trimmable);
		} else {
			hs_print_text(o, " %6s %8s %8s %8s %9s", "-", "-", "-", "-", "-");
			if (e->exact_error)
				hs_print_str(o, HS_PRINT_ANY, "error", "  %s", e->exact_msg);
			hs_print_text(o, "\n");
		}
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
	hs_out_doc_end(o);
}

static int cmd_top(struct hs_cli *cli)
{
	long nexact = hs_cli_num(cli, 'e', 5), watch = hs_cli_num(cli, 'w', 0), limit = hs_cli_num(cli, 'l', 20);
	const char *cgroup = hs_cli_str(cli, 'c'), *pidlist = hs_cli_str(cli, 'p');
	if (cli->argc > 0)
		return hs_cli_usage(cli, "unexpected argument '%s'", cli->argv[0]);
	if (cgroup && pidlist)
		return hs_cli_usage(cli, "--cgroup and --pids exclude each other");
	bool tty = isatty(1);
	if (watch) {
		signal(SIGINT, on_int);
		signal(SIGTERM, on_int);
	}
	int status = HS_EXIT_OK;
	do {
		pid_t *pids = NULL;
		size_t npids = 0;
		struct hs_err err = { 0 };
		if (pidlist && hs_top_parse_pids(pidlist, &pids, &npids) < 0) {
			free(pids);
			return hs_cli_usage(cli, "--pids wants a comma-separated list of process ids, not '%s'", pidlist);
		}
		if (cgroup && hs_top_cgroup_pids(cgroup, &pids, &npids, &err) < 0)
			return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		struct hs_snapshot_opts o;
		hs_cli_snapshot_opts(cli, &o);
		o.residency = true;
		struct hs_top_round t;
		int r = hs_top_round((pidlist || cgroup) ? pids : NULL, npids, (size_t)nexact, &o, &stop, &t, &err);
		free(pids);
		if (r < 0)
			return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		/* on the whole host, processes that end or refuse are no failure */
		if (t.exact_failed && (pidlist || cgroup))
			status = HS_EXIT_PARTIAL;
		if (watch && tty && !cli->json)
			fputs("\033[H\033[2J", stdout);
		if (cli->json)
			hs_json_init(&cli->j, stdout);
		struct hs_out out = hs_cli_out(cli);
		render(&out, &t, (size_t)limit);
		fflush(stdout);
		free(t.v);
		for (long s = 0; watch && s < watch * 10 && !stop; s++)
			usleep(100000);
	} while (watch && !stop);
	return status;
}

static const struct hs_opt opts[] = {
	{ .name = "exact", .key = 'e', .kind = HS_OPT_COUNT, .max = 1000000, .bad = "--exact wants a count",
	  .arg = "N", .help = "walk the top N exactly (default 5; 0: the first pass only)" },
	{ .name = "cgroup", .key = 'c', .kind = HS_OPT_STR,
	  .arg = "PATH", .help = "only the processes of this cgroup (v2) and below it" },
	{ .name = "pids", .key = 'p', .kind = HS_OPT_STR,
	  .arg = "LIST", .help = "only these processes (comma-separated)" },
	{ .name = "watch", .key = 'w', .kind = HS_OPT_COUNT, .min = 1, .max = 86400, .bad = "--watch wants seconds",
	  .arg = "SECONDS", .help = "refresh every SECONDS, like top(1), until interrupted" },
	{ .name = "limit", .key = 'l', .kind = HS_OPT_COUNT, .max = 1000000, .bad = "--limit wants a count",
	  .arg = "N", .help = "show N processes (default 20, 0: all)" },
	{ 0 },
};

const struct hs_command hs_cmd_top = {
	.name = "top", .run = cmd_top, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS,
	.summary = "every process ranked by what its arenas hold resident but free",
};
