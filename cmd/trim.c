/* heapscope trim: malloc_trim inside the target, safely, and what it gave
 * back. */
#include <errno.h>
#include <inttypes.h>
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
	uint64_t tb = t.resident_before, tp = t.trimmable, ta = t.resident_after;
	char f[4][HS_SIZE_BUF];
	struct hs_out out = hs_cli_out(cli);
	hs_out_obj_begin(&out, NULL);
	hs_print_int(&out, HS_PRINT_JSON, "pid", NULL, cli->pid);
	hs_print_bool(&out, HS_PRINT_JSON, "dry_run", NULL, o.dry_run);
	hs_print_u64(&out, HS_PRINT_JSON, "pad", NULL, o.pad);
	hs_print_text(&out, "%5s %-14s %10s %10s %10s %10s\n", "ARENA", "ADDRESS", "RESIDENT", "TRIMMABLE",
		      o.dry_run ? "" : "AFTER", o.dry_run ? "" : "RETURNED");
	hs_out_arr_begin(&out, "arenas");
	for (size_t i = 0; i < hb->narenas; i++) {
		const struct hs_arena *b = &hb->arenas[i], *a = o.dry_run ? NULL : hs_heap_arena_at(ha, b->addr);
		uint64_t after = a ? a->resident : 0, ret = a && b->resident > after ? b->resident - after : 0;
		hs_out_obj_begin(&out, NULL);
		hs_print_int(&out, HS_PRINT_ANY, "index", "%5d", b->index);
		hs_print_hex(&out, HS_PRINT_ANY, "address", " 0x%012" PRIx64, b->addr);
		hs_print_size(&out, HS_PRINT_ANY, "resident_before", " %10s", b->resident);
		hs_print_size(&out, HS_PRINT_ANY, "trimmable", " %10s", b->trimmable);
		if (a) {
			hs_print_size(&out, HS_PRINT_ANY, "resident_after", " %10s", after);
			hs_print_size(&out, HS_PRINT_ANY, "returned", " %10s\n", ret);
		} else {
			hs_print_text(&out, " %10s %10s\n", "", "");
		}
		hs_out_obj_end(&out);
	}
	hs_out_arr_end(&out);
	bool after = !o.dry_run && t.have_after;
	uint64_t returned = after && tb > ta ? tb - ta : 0;
	hs_print_u64(&out, HS_PRINT_JSON, "resident_before", NULL, tb);
	hs_print_u64(&out, HS_PRINT_JSON, "trimmable", NULL, tp);
	if (after) {
		hs_print_u64(&out, HS_PRINT_JSON, "resident_after", NULL, ta);
		hs_print_u64(&out, HS_PRINT_JSON, "returned", NULL, returned);
	}
	if (o.dry_run)
		hs_print_text(&out, "\ndry run: malloc_trim(%" PRIu64 ") would return about %s of %s resident in arenas; "
			      "nothing was called\n", o.pad, hs_fmt_size(tp, f[0]), hs_fmt_size(tb, f[1]));
	if (!o.dry_run) {
		hs_print_text(&out, "\n%s(%" PRIu64 ")", o.function, o.pad);
		hs_print_bool(&out, HS_PRINT_JSON, "called", NULL, t.called);
		hs_print_u64(&out, HS_PRINT_ANY, "return_value", " returned %" PRIu64, t.ret);
		hs_print_int(&out, HS_PRINT_ANY, "thread", " in thread %d", (int)t.tid);
		hs_print_text(&out, ": %s returned to the system (predicted %s)", after ? hs_fmt_size(returned, f[0]) : "?",
			      hs_fmt_size(tp, f[1]));
		hs_print_u64(&out, HS_PRINT_JSON, "attempts", NULL, (uint64_t)t.attempts);
		hs_print_us(&out, HS_PRINT_ANY, "pause_us", "; target paused %s", t.pause_us);
		hs_print_us(&out, HS_PRINT_ANY, "call_us", ", the call itself %s", t.call_us);
		hs_print_text(&out, "%s\n", t.attempts > 1 ? " (after waiting for threads inside malloc)" : "");
		hs_print_bool(&out, HS_PRINT_JSON, "threads_released", NULL, t.released);
	}
	hs_print_bool(&out, HS_PRINT_JSON, "java", NULL, t.java);
	hs_out_doc_end(&out);
	if (t.released)
		hs_cli_warn(cli, "the call outlived --timeout (%d ms): the other threads ran before it returned "
			    "(it waited for something one of them held)", o.call_timeout_ms);
	if (!o.dry_run && !t.have_after) {
		hs_cli_warn(cli, "the call was made, but the look after it failed: %s; what it returned is not known", t.unsafe);
		status = HS_EXIT_PARTIAL;
	}
	if (!cli->json && t.java)
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
