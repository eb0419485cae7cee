/* heapscope top: the processes of the host (or a cgroup, or a list)
 * ranked by what their glibc arenas hold resident but free.  A first pass
 * over smaps stops nothing; then the top N are walked exactly, one short
 * stop each (the arenas snapshot). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "format.h"
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

static uint64_t now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

static void render_text(const struct hs_top_entry *v, size_t n, size_t limit, uint64_t scan_us, size_t nexact,
			uint64_t pause_us)
{
	char a[HS_SIZE_BUF], b[HS_SIZE_BUF], c[8][HS_SIZE_BUF];
	printf("%zu processes with glibc malloc; first pass (smaps, nothing stopped) %s; exact for %zu, "
	       "paused %s in all\n", n, hs_fmt_us(scan_us, a), nexact, hs_fmt_us(pause_us, b));
	printf("%8s %-16s %8s %8s %6s %8s %8s %8s %9s\n", "PID", "COMM", "RSS", "HEAP-RSS", "ARENAS", "IN-USE",
	       "FREE", "FREE-RES", "TRIMMABLE");
	for (size_t i = 0; i < n && (!limit || i < limit); i++) {
		const struct hs_top_entry *e = &v[i];
		if (e->exact)
			printf("%8d %-16s %8s %8s %6" PRIu64 " %8s %8s %8s %9s\n", (int)e->pid, e->comm,
			       hs_fmt_size(e->rss, c[0]), hs_fmt_size(e->heap_rss, c[1]), e->narenas,
			       hs_fmt_size(e->in_use, c[2]), hs_fmt_size(e->free_total, c[3]),
			       hs_fmt_size(e->free_resident, c[4]), hs_fmt_size(e->trimmable, c[5]));
		else
			printf("%8d %-16s %8s %8s %6s %8s %8s %8s %9s%s%s\n", (int)e->pid, e->comm,
			       hs_fmt_size(e->rss, c[0]), hs_fmt_size(e->heap_rss, c[1]), "-", "-", "-", "-", "-",
			       e->exact_error ? "  " : "", e->exact_error ? e->exact_msg : "");
	}
}

static void render_json(struct hs_json *j, const struct hs_top_entry *v, size_t n, uint64_t scan_us, size_t nexact,
			uint64_t pause_us)
{
	hs_json_obj_begin(j, NULL);
	hs_json_u64(j, "processes", n);
	hs_json_u64(j, "scan_us", scan_us);
	hs_json_u64(j, "exact", nexact);
	hs_json_u64(j, "pause_us", pause_us);
	hs_json_arr_begin(j, "top");
	for (size_t i = 0; i < n; i++) {
		const struct hs_top_entry *e = &v[i];
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", e->pid);
		hs_json_str(j, "comm", e->comm);
		hs_json_u64(j, "rss", e->rss);
		hs_json_u64(j, "heap_rss", e->heap_rss);
		hs_json_u64(j, "arena_heaps", e->arena_heaps);
		hs_json_bool(j, "exact", e->exact);
		if (e->exact) {
			hs_json_u64(j, "arenas", e->narenas);
			hs_json_u64(j, "resident", e->resident);
			hs_json_u64(j, "in_use", e->in_use);
			hs_json_u64(j, "free_total", e->free_total);
			hs_json_u64(j, "free_resident", e->free_resident);
			hs_json_u64(j, "trimmable", e->trimmable);
		} else if (e->exact_error) {
			hs_json_str(j, "error", e->exact_msg);
		}
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_json_obj_end(j);
	hs_json_finish(j);
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
		struct hs_top_entry *v;
		size_t n;
		uint64_t t0 = now_us();
		int r = hs_top_scan((pidlist || cgroup) ? pids : NULL, npids, &v, &n, &err);
		uint64_t scan_us = now_us() - t0;
		free(pids);
		if (r < 0)
			return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		uint64_t pause = 0;
		size_t done = 0;
		struct hs_snapshot_opts o;
		hs_cli_snapshot_opts(cli, &o);
		o.residency = true;
		for (size_t i = 0; i < n && i < (size_t)nexact && !stop; i++) {
			hs_top_exact(&v[i], &o, &pause);
			done += v[i].exact;
			if (v[i].exact_error && (pidlist || cgroup))
				status = HS_EXIT_PARTIAL;
		}
		hs_top_sort(v, n);
		if (watch && tty && !cli->json)
			fputs("\033[H\033[2J", stdout);
		if (cli->json) {
			hs_json_init(&cli->j, stdout);
			render_json(&cli->j, v, n, scan_us, done, pause);
		} else {
			render_text(v, n, (size_t)limit, scan_us, done, pause);
		}
		fflush(stdout);
		free(v);
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
