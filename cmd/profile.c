/* heapscope profile: who fills the arenas, by whole call stack.  The
 * sampler is loaded into PID and routed to (lib/profile.c), its ring
 * drained every 20 ms until --duration or Ctrl-C, the routing put back;
 * then the samples are unwound and grouped (lib/profile_report.c) and
 * rendered by the writers of lib/profile.h.  Here: the options, the
 * signals that end the sampling, and the messages. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "out.h"
#include "profile.h"
#include "profile_collect.h"

static const char help[] =
	"usage: heapscope profile [--duration S] [--rate BYTES] [--top N] [-o FILE] [--json]\n"
	"                         [--pprof FILE] [--folded] [--svg FILE] [--inuse] [--raw FILE] PID\n"
	"       heapscope profile --status PID\n"
	"       heapscope profile --stop PID\n"
	"\n"
	"Sample PID's allocations with their whole call stacks, attached late: a small\n"
	"library (libheapscope-sampler.so) is loaded into PID at a safe moment and the\n"
	"malloc family's GOT slots of every loaded object are routed to it; about one\n"
	"allocation per BYTES allocated is recorded (registers and a stack copy) and\n"
	"heapscope drains them from outside every 20 ms until --duration or Ctrl-C,\n"
	"then puts the slots back.  The stacks are unwound afterwards, offline.\n"
	"\n"
	"Exit status: 0 ok, 1 partial (samples dropped, or the analysis failed after\n"
	"--raw was written), 2 fatal, 64 usage, 75 refused (never safe within --wait,\n"
	"or a seccomp filter of PID would kill it on the sampler's system calls;\n"
	"nothing done).\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct opts {
	double duration;
	uint64_t rate;
	int top, wait_ms, timeout_ms;
	const char *out, *pprof, *svg, *raw;
	bool folded, inuse;
};

static int status_cmd(struct hs_cli *cli, pid_t pid)
{
	struct hs_profile_status st;
	struct hs_err err = { 0 };
	if (hs_profile_status(pid, &st, &err) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	bool active = st.recorded && st.loaded && st.ctl.enabled;
	int w = st.recorded ? HS_PRINT_ANY : HS_PRINT_JSON;   /* the counters are said of a recorded profile */
	struct hs_out o;
	hs_out_init(&o, stdout, cli->json ? &cli->j : NULL);
	hs_out_obj_begin(&o, NULL);
	hs_print_int(&o, HS_PRINT_ANY, "pid", "pid %d: ", (int)pid);
	hs_print_bool(&o, HS_PRINT_JSON, "active", NULL, active);
	hs_print_bool(&o, HS_PRINT_JSON, "recorded", NULL, st.recorded);
	hs_print_bool(&o, HS_PRINT_JSON, "loaded", NULL, st.loaded);
	hs_print_str(&o, HS_PRINT_JSON, "sampler", NULL, st.sampler[0] ? st.sampler : NULL);
	hs_print_u64(&o, HS_PRINT_JSON, "slots", NULL, st.slots);
	hs_print_bool(&o, HS_PRINT_JSON, "enabled", NULL, st.loaded && st.ctl.enabled);
	if (!st.recorded && !st.loaded)
		hs_print_text(&o, "no profile (the sampler is not loaded)\n");
	else if (!st.recorded)
		hs_print_text(&o, "no profile; %s loaded, %s\n", st.sampler, st.ctl.enabled ? "enabled (no slot recorded)" : "inert");
	else
		hs_print_text(&o, "profile %s: %zu slots routed to %s%s; ", active ? "active" : "recorded", st.slots,
			      st.sampler, st.loaded ? "" : " (not loaded)");
	hs_print_u64(&o, w, "rate", "rate %" PRIu64, st.ctl.rate);
	hs_print_u64(&o, w, "sampled", ", %" PRIu64 " sampled", st.ctl.sampled);
	hs_print_u64(&o, w, "freed", ", %" PRIu64 " frees", st.ctl.freed);
	hs_print_u64(&o, w, "dropped", ", %" PRIu64 " dropped", st.ctl.dropped);
	hs_print_u64(&o, HS_PRINT_JSON, "live_lost", NULL, st.ctl.live_lost);
	hs_print_u64(&o, w, "pending", ", %" PRIu64 " waiting in the ring\n", st.ctl.head - st.ctl.tail);
	hs_out_doc_end(&o);
	return HS_EXIT_OK;
}

static int stop_cmd(struct hs_cli *cli, pid_t pid, const struct opts *o)
{
	struct hs_profile_report_start rep;
	struct hs_err err = { 0 };
	int r = hs_profile_stop(pid, o->wait_ms, NULL, &rep, &err);
	if (r < 0)
		return hs_cli_fail(cli, r == -EAGAIN ? HS_EXIT_REFUSED : HS_EXIT_FATAL, "%s", err.msg);
	struct hs_out out;
	hs_out_init(&out, stdout, cli->json ? &cli->j : NULL);
	hs_out_obj_begin(&out, NULL);
	hs_print_int(&out, HS_PRINT_ANY, "pid", "pid %d: profile stopped: ", (int)pid);
	hs_print_u64(&out, HS_PRINT_ANY, "slots_restored", "%" PRIu64 " slots put back", rep.slots);
	hs_print_u64(&out, HS_PRINT_JSON, "slots_left", NULL, rep.left);
	hs_print_bool(&out, HS_PRINT_TEXT, NULL, " (some changed by the process since: left alone)", rep.left);
	hs_print_us(&out, HS_PRINT_ANY, "pause_us", ", sampler off (paused %s)\n", rep.call.pause_us);
	hs_out_doc_end(&out);
	return HS_EXIT_OK;
}

static int analyse_and_write(struct hs_cli *cli, const struct opts *o, const struct hs_profile_data *d,
			     uint64_t start_us, uint64_t stop_us)
{
	struct hs_profile_opts ao = { .use_debuginfo = !cli->no_debuginfo, .use_debuginfod = !cli->no_debuginfod };
	struct hs_profile_report rp;
	struct hs_err err = { 0 };
	if (hs_profile_analyze(d, &ao, &rp, &err) < 0)
		return hs_cli_fail(cli, o->raw ? HS_EXIT_PARTIAL : HS_EXIT_FATAL, "cannot analyse the samples: %s", err.msg);
	int r = 0;
	FILE *fp = stdout;
	if (o->out && !(fp = fopen(o->out, "w"))) {
		hs_profile_report_release(&rp);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "cannot open %s: %s", o->out, strerror(errno));
	}
	if (cli->json)
		r = hs_profile_write_json(fp, &rp, o->top);
	else if (o->folded)
		r = hs_profile_write_folded(fp, &rp, o->inuse);
	else
		hs_profile_write_text(fp, &rp, o->top, start_us, stop_us);
	if (o->out && fclose(fp) != 0 && r == 0)
		r = -errno;
	if (r < 0)
		hs_err_sys(&err, -r, "cannot write %s", o->out ? o->out : "the output");
	else
		r = hs_profile_save(&rp, o->pprof, o->svg, o->inuse, &err);
	hs_profile_report_release(&rp);
	if (r < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	if (d->dropped)
		hs_cli_warn(cli, "%" PRIu64 " samples dropped (the ring was full): the figures are low", d->dropped);
	return d->dropped ? HS_EXIT_PARTIAL : HS_EXIT_OK;
}

static int profile(struct hs_cli *cli, pid_t pid, const struct opts *o)
{
	struct hs_profile_start_opts so = { .rate = o->rate, .wait_ms = o->wait_ms, .timeout_ms = o->timeout_ms };
	struct hs_profile_session ps;
	struct hs_profile_report_start rep;
	struct hs_profile_collect_report crep;
	struct hs_profile_collect_opts co = { .duration = o->duration, .stop = &stop_requested, .wait_ms = o->wait_ms };
	struct hs_profile_data d = { .pid = pid, .rate = o->rate ? o->rate : HS_SAMPLER_DEFAULT_RATE };
	struct hs_err err = { 0 };
	struct sigaction sa = { .sa_handler = on_signal }, old[3];
	int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	int r = hs_profile_start(pid, &so, &ps, &rep, &err);
	if (r == -EAGAIN)
		return hs_cli_fail(cli, HS_EXIT_REFUSED, "never safe to start within %d ms (%s): nothing done", o->wait_ms,
				   rep.call.unsafe);
	if (r < 0)
		return hs_cli_fail(cli, r == -EPERM && rep.seccomp ? HS_EXIT_REFUSED : HS_EXIT_FATAL, "%s", err.msg);
	fprintf(stderr, "heapscope: profile: pid %d: %zu slots in %zu objects routed to %s%s (paused %" PRIu64
		" us); sampling one per %" PRIu64 " bytes%s\n", (int)pid, rep.slots, rep.objects, rep.sampler,
		rep.copied ? " (copied into its root)" : "", rep.call.pause_us, d.rate,
		o->duration > 0 ? "" : " until Ctrl-C");
	r = hs_profile_collect(&ps, &co, &d, &crep, &err);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (r == 0 && crep.drain_err.msg[0])
		hs_cli_warn(cli, "%s", crep.drain_err.msg);
	if (r == 0 && crep.stop_r < 0)
		hs_cli_warn(cli, "cannot stop the profile: %s ('heapscope profile --stop %d' retries)", crep.stop_err.msg,
			    (int)pid);
	if (r == 0 && o->raw)
		r = hs_profile_save_raw(&d, o->raw, &err);
	int status = r < 0 ? hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg)
			   : analyse_and_write(cli, o, &d, rep.call.pause_us, crep.stop.call.pause_us);
	if (status == HS_EXIT_OK && crep.partial)
		status = HS_EXIT_PARTIAL;
	hs_profile_data_release(&d);
	return status;
}

static int cmd_profile(struct hs_cli *cli)
{
	struct opts o = { .top = (int)hs_cli_num(cli, 'n', 10), .wait_ms = (int)hs_cli_num(cli, 'w', 3000),
			  .timeout_ms = (int)hs_cli_num(cli, 't', 10000), .rate = cli->opt['r'].u,
			  .out = hs_cli_str(cli, 'o'), .pprof = hs_cli_str(cli, 'P'), .svg = hs_cli_str(cli, 'S'),
			  .raw = hs_cli_str(cli, 'R'), .folded = cli->opt['f'].set, .inuse = cli->opt['i'].set };
	const char *dur = hs_cli_str(cli, 'd');
	if (dur) {
		char *end;
		o.duration = strtod(dur, &end);
		if (*end || !(o.duration > 0) || o.duration > 1e6)
			return hs_cli_usage(cli, "--duration takes seconds: '%s'", dur);
	}
	if (cli->opt['r'].set && (!o.rate || o.rate > (1ull << 40)))
		return hs_cli_usage(cli, "--rate takes a size in bytes (1 to 1T)");
	if (cli->opt['s'].set && cli->opt['x'].set)
		return hs_cli_usage(cli, "--status or --stop, not both");
	if (cli->json && o.folded)
		return hs_cli_usage(cli, "--json or --folded, not both");
	if (cli->opt['s'].set)
		return status_cmd(cli, cli->pid);
	if (cli->opt['x'].set)
		return stop_cmd(cli, cli->pid, &o);
	return profile(cli, cli->pid, &o);
}

static const struct hs_opt opts[] = {
	{ .name = "duration", .key = 'd', .kind = HS_OPT_STR,
	  .arg = "S", .help = "how long to sample (default: until Ctrl-C or SIGTERM)" },
	{ .name = "rate", .key = 'r', .kind = HS_OPT_SIZE, .bad = "--rate takes a size in bytes (1 to 1T)",
	  .arg = "BYTES", .help = "mean bytes between samples (default 512K)" },
	{ .name = "top", .key = 'n', .kind = HS_OPT_COUNT, .max = 1000000, .bad = "--top takes a count",
	  .arg = "N", .help = "stacks to show (default 10; 0: all)" },
	{ .name = "pprof", .key = 'P', .kind = HS_OPT_STR,
	  .arg = "FILE", .help = "also write a gzipped pprof profile to FILE" },
	{ .name = "folded", .key = 'f', .help = "folded stacks (for flamegraph.pl) instead of text" },
	{ .name = "svg", .key = 'S', .kind = HS_OPT_STR, .arg = "FILE", .help = "also write a flame graph to FILE" },
	{ .name = "inuse", .key = 'i', .help = "folded and SVG: bytes still live at the end, not allocated" },
	{ .name = "raw", .key = 'R', .kind = HS_OPT_STR,
	  .arg = "FILE", .help = "also write the drained samples, one line each (debugging)" },
	{ .name = "output", .key = 'o', .kind = HS_OPT_STR, .letter = 'o',
	  .arg = "FILE", .help = "write the report (text, JSON or folded) to FILE" },
	{ .name = "wait", .key = 'w', .kind = HS_OPT_MS, .bad = "--wait takes milliseconds",
	  .arg = "MS", .help = "how long to retry while unsafe to start (default 3000)" },
	{ .name = "timeout", .key = 't', .kind = HS_OPT_MS, .bad = "--timeout takes milliseconds",
	  .arg = "MS", .help = "how long the remote dlopen may run (default 10000)" },
	{ .name = "status", .key = 's', .help = "is a profile active in PID, and its counters" },
	{ .name = "stop", .key = 'x', .help = "end a profile left behind (heapscope killed): slots put back" },
	{ 0 },
};

const struct hs_command hs_cmd_profile = {
	.name = "profile", .run = cmd_profile, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS | HS_CMD_PID,
	.summary = "who allocates, by whole call stack: a sampler loaded late, near-zero cost",
};
