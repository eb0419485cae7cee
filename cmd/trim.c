/* heapscope trim: malloc_trim inside the target, safely, and what it gave
 * back. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "dump.h"
#include "format.h"
#include "trim.h"

static const char help[] =
	"usage: heapscope trim [--pad N] [--dry-run] [--wait MS] [--timeout MS] [--json] PID\n"
	"\n"
	"Call malloc_trim(pad) inside PID and report what it returned to the system:\n"
	"per arena, resident bytes before, what heapscope predicted, resident after.\n"
	"The call is made only when no thread is inside malloc (no arena locked, no\n"
	"program counter or return address in malloc's code); otherwise heapscope\n"
	"lets the target run, waits a little and looks again, up to --wait.  Every\n"
	"register, the signal mask and the stack are restored; the threads are\n"
	"stopped only for the check and the call.\n"
	"\n"
	"Exit status: 0 trimmed (or dry run), 75 refused as unsafe for --wait (nothing\n"
	"called: try again), 2 failed (the target put back as it was), 64 usage.\n";

static bool is_java(pid_t pid)
{
	char path[64], exe[4096];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	return !strcmp(basename(exe), "java");
}

static int cmd_trim(struct hs_cli *cli)
{
	struct hs_trim_opts o;
	hs_trim_opts_default(&o);
	if (cli->opt['p'].set)
		o.pad = cli->opt['p'].u;
	o.dry_run = cli->opt['n'].set;
	o.wait_ms = (int)hs_cli_num(cli, 'w', o.wait_ms);
	o.call_timeout_ms = (int)hs_cli_num(cli, 't', o.call_timeout_ms);
	if (cli->opt['F'].set)
		o.function = cli->opt['F'].s;
	int r;
	o.use_debuginfo = !cli->no_debuginfo;
	o.use_debuginfod = !cli->no_debuginfod;
	struct hs_trim t;
	struct hs_err err = { 0 };
	r = hs_trim_run(cli->pid, &o, &t, &err);
	int status = HS_EXIT_OK;
	if (r == -EAGAIN) {
		status = hs_cli_fail(cli, HS_EXIT_REFUSED, "not safe to call malloc_trim within %d ms: %s (nothing was called)",
				     o.wait_ms, t.unsafe);
		goto out;
	}
	if (r < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s%s", err.msg, hs_cli_call_failed(t.calls_made, r));
		goto out;
	}
	const struct hs_heap *hb = &t.before.heap, *ha = &t.after.heap;
	uint64_t tb = 0, tp = 0, ta = 0;
	char f[4][HS_SIZE_BUF];
	struct hs_json *j = &cli->j;
	if (cli->json) {
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", cli->pid);
		hs_json_bool(j, "dry_run", o.dry_run);
		hs_json_u64(j, "pad", o.pad);
		hs_json_arr_begin(j, "arenas");
	} else {
		printf("%5s %-14s %10s %10s %10s %10s\n", "ARENA", "ADDRESS", "RESIDENT", "TRIMMABLE", o.dry_run ? "" : "AFTER",
		       o.dry_run ? "" : "RETURNED");
	}
	for (size_t i = 0; i < hb->narenas; i++) {
		const struct hs_arena *b = &hb->arenas[i], *a = o.dry_run ? NULL : hs_heap_arena_at(ha, b->addr);
		uint64_t after = a ? a->resident : 0, ret = a && b->resident > after ? b->resident - after : 0;
		tb += b->resident;
		tp += b->trimmable;
		ta += after;
		if (cli->json) {
			hs_json_obj_begin(j, NULL);
			hs_json_i64(j, "index", b->index);
			hs_json_hex(j, "address", b->addr);
			hs_json_u64(j, "resident_before", b->resident);
			hs_json_u64(j, "trimmable", b->trimmable);
			if (a) {
				hs_json_u64(j, "resident_after", after);
				hs_json_u64(j, "returned", ret);
			}
			hs_json_obj_end(j);
		} else {
			printf("%5d 0x%012" PRIx64 " %10s %10s %10s %10s\n", b->index, b->addr, hs_fmt_size(b->resident, f[0]),
			       hs_fmt_size(b->trimmable, f[1]), a ? hs_fmt_size(after, f[2]) : "",
			       a ? hs_fmt_size(ret, f[3]) : "");
		}
	}
	bool after = !o.dry_run && t.have_after;
	uint64_t returned = after && tb > ta ? tb - ta : 0;
	if (cli->json) {
		hs_json_arr_end(j);
		hs_json_u64(j, "resident_before", tb);
		hs_json_u64(j, "trimmable", tp);
		if (after) {
			hs_json_u64(j, "resident_after", ta);
			hs_json_u64(j, "returned", returned);
		}
		if (!o.dry_run) {
			hs_json_bool(j, "called", t.called);
			hs_json_u64(j, "return_value", t.ret);
			hs_json_i64(j, "thread", t.tid);
			hs_json_u64(j, "attempts", (uint64_t)t.attempts);
			hs_json_u64(j, "pause_us", t.pause_us);
			hs_json_u64(j, "call_us", t.call_us);
		}
		hs_json_bool(j, "java", is_java(cli->pid));
		hs_json_obj_end(j);
		hs_json_finish(j);
	} else if (o.dry_run) {
		printf("\ndry run: malloc_trim(%" PRIu64 ") would return about %s of %s resident in arenas; nothing was called\n",
		       o.pad, hs_fmt_size(tp, f[0]), hs_fmt_size(tb, f[1]));
	} else {
		printf("\n%s(%" PRIu64 ") returned %" PRIu64 " in thread %d: %s returned to the system (predicted %s); "
		       "target paused %s",
		       o.function, o.pad, t.ret, (int)t.tid, after ? hs_fmt_size(returned, f[0]) : "?", hs_fmt_size(tp, f[1]),
		       hs_fmt_us(t.pause_us, f[2]));
		printf(", the call itself %s%s\n", hs_fmt_us(t.call_us, f[3]),
		       t.attempts > 1 ? " (after waiting for threads inside malloc)" : "");
	}
	if (!o.dry_run && !t.have_after) {
		hs_cli_warn(cli, "the call was made, but the look after it failed: %s; what it returned is not known", t.unsafe);
		status = HS_EXIT_PARTIAL;
	}
	if (!cli->json && is_java(cli->pid))
		printf("note: this is a JVM; JDK 17.0.9 and later trim their own heap: jcmd %d System.trim_native_heap\n",
		       (int)cli->pid);
out:
	hs_trim_release(&t);
	return status;
}

static const struct hs_opt opts[] = {
	{ .name = "pad", .key = 'p', .kind = HS_OPT_SIZE, .bad = "--pad takes a size",
	  .arg = "N", .help = "malloc_trim's argument (default 0)" },
	{ .name = "dry-run", .key = 'n', .help = "the prediction only: nothing runs in the target" },
	{ .name = "wait", .key = 'w', .kind = HS_OPT_MS, .bad = "--wait takes milliseconds",
	  .arg = "MS", .help = "how long to retry while unsafe (default 3000)" },
	{ .name = "timeout", .key = 't', .kind = HS_OPT_MS, .min = 1, .bad = "--timeout takes milliseconds",
	  .arg = "MS", .help = "how long the call may run (default 10000)" },
	{ .name = "test-function", .key = 'F', .kind = HS_OPT_STR },   /* tests only */
	{ 0 },
};

const struct hs_command hs_cmd_trim = {
	.name = "trim", .run = cmd_trim, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS | HS_CMD_PID,
	.summary = "malloc_trim inside the target, safely, and what it returned",
};
