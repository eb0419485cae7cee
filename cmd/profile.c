/* heapscope profile: who fills the arenas, by whole call stack.  The
 * sampler is loaded into PID and routed to (lib/profile.c), its ring
 * drained every 20 ms until --duration or Ctrl-C, the routing put back;
 * then the samples are unwound and grouped (lib/profile_report.c) and
 * rendered: text here, JSON, pprof, folded stacks and SVG by the
 * writers of lib/profile.h. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "dump.h"
#include "format.h"
#include "profile.h"
#include "profile_collect.h"
#include "proc.h"

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
	"nothing done).\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct opts {
	double duration;
	uint64_t rate;
	int top, wait_ms, timeout_ms;
	const char *out, *pprof, *svg, *raw;
	bool folded, inuse, status, stop;
};

/* r, or -errno when closing f fails after a good write */
static int close_file(FILE *f, int r)
{
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

static int status_cmd(struct hs_cli *cli, pid_t pid)
{
	struct hs_profile_status st;
	struct hs_err err = { 0 };
	if (hs_profile_status(pid, &st, &err) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	bool active = st.recorded && st.loaded && st.ctl.enabled;
	if (cli->json) {
		struct hs_json *j = &cli->j;
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", pid);
		hs_json_bool(j, "active", active);
		hs_json_bool(j, "recorded", st.recorded);
		hs_json_bool(j, "loaded", st.loaded);
		hs_json_str(j, "sampler", st.sampler[0] ? st.sampler : NULL);
		hs_json_u64(j, "slots", st.slots);
		hs_json_bool(j, "enabled", st.loaded && st.ctl.enabled);
		hs_json_u64(j, "rate", st.ctl.rate);
		hs_json_u64(j, "sampled", st.ctl.sampled);
		hs_json_u64(j, "freed", st.ctl.freed);
		hs_json_u64(j, "dropped", st.ctl.dropped);
		hs_json_u64(j, "live_lost", st.ctl.live_lost);
		hs_json_u64(j, "pending", st.ctl.head - st.ctl.tail);
		hs_json_obj_end(j);
		hs_json_finish(j);
		return HS_EXIT_OK;
	}
	if (!st.recorded && !st.loaded)
		printf("pid %d: no profile (the sampler is not loaded)\n", (int)pid);
	else if (!st.recorded)
		printf("pid %d: no profile; %s loaded, %s\n", (int)pid, st.sampler, st.ctl.enabled ? "enabled (no slot recorded)" : "inert");
	else
		printf("pid %d: profile %s: %zu slots routed to %s%s; rate %" PRIu64 ", %" PRIu64 " sampled, %" PRIu64
		       " frees, %" PRIu64 " dropped, %" PRIu64 " waiting in the ring\n", (int)pid,
		       active ? "active" : "recorded", st.slots, st.sampler, st.loaded ? "" : " (not loaded)", st.ctl.rate,
		       st.ctl.sampled, st.ctl.freed, st.ctl.dropped, st.ctl.head - st.ctl.tail);
	return HS_EXIT_OK;
}

static int stop_cmd(struct hs_cli *cli, pid_t pid, const struct opts *o)
{
	struct hs_profile_report_start rep;
	struct hs_err err = { 0 };
	int r = hs_profile_stop(pid, o->wait_ms, NULL, &rep, &err);
	if (r == -EAGAIN)
		return hs_cli_fail(cli, HS_EXIT_REFUSED, "%s", err.msg);
	if (r < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	char pb[HS_SIZE_BUF];
	if (cli->json) {
		hs_json_obj_begin(&cli->j, NULL);
		hs_json_i64(&cli->j, "pid", pid);
		hs_json_u64(&cli->j, "slots_restored", rep.slots);
		hs_json_u64(&cli->j, "slots_left", rep.left);
		hs_json_u64(&cli->j, "pause_us", rep.call.pause_us);
		hs_json_obj_end(&cli->j);
		hs_json_finish(&cli->j);
	} else
		printf("pid %d: profile stopped: %zu slots put back%s, sampler off (paused %s)\n", (int)pid, rep.slots,
		       rep.left ? " (some changed by the process since: left alone)" : "", hs_fmt_us(rep.call.pause_us, pb));
	return HS_EXIT_OK;
}

static void render_text(FILE *fp, const struct hs_profile_report *rp, const struct hs_profile_data *d, int top,
			uint64_t start_us, uint64_t stop_us)
{
	char b1[HS_SIZE_BUF], b2[HS_SIZE_BUF], b3[HS_SIZE_BUF], b4[HS_SIZE_BUF];
	double alloc = 0, inuse = 0;
	for (size_t i = 0; i < rp->nstacks; i++) {
		alloc += rp->stacks[i].alloc_bytes;
		inuse += rp->stacks[i].inuse_bytes;
	}
	fprintf(fp, "pid %d: %.1f s sampled at one per %s: %zu samples, %zu frees, %zu dropped; start paused %s, stop %s\n",
		(int)rp->pid, rp->seconds, hs_fmt_size(rp->rate, b1), rp->nsamples, rp->nfrees, rp->dropped,
		hs_fmt_us(start_us, b3), hs_fmt_us(stop_us, b4));
	fprintf(fp, "allocated %s (estimated), still live at the end %s, in %zu stacks\n\n",
		hs_fmt_size((uint64_t)alloc, b1), hs_fmt_size((uint64_t)inuse, b2), rp->nstacks);
	fprintf(fp, "%10s %6s %10s %8s  %s\n", "ALLOC", "%", "LIVE", "SAMPLES", "STACK (innermost first)");
	size_t n = top > 0 && (size_t)top < rp->nstacks ? (size_t)top : rp->nstacks;
	for (size_t i = 0; i < n; i++) {
		const struct hs_profile_stack *s = &rp->stacks[i];
		fprintf(fp, "%10s %5.1f%% %10s %8zu  ", hs_fmt_size((uint64_t)s->alloc_bytes, b1),
			alloc > 0 ? 100.0 * s->alloc_bytes / alloc : 0.0, hs_fmt_size((uint64_t)s->inuse_bytes, b2), s->samples);
		for (size_t k = 0; k < s->nframes; k++) {
			const struct hs_profile_frame *f = &s->frames[k];
			const char *obj = f->object ? strrchr(f->object, '/') : NULL;
			obj = obj ? obj + 1 : f->object;
			if (k)
				fprintf(fp, "%10s %6s %10s %8s  ", "", "", "", "");
			if (f->name)
				fprintf(fp, "%s", f->name);
			else
				fprintf(fp, "0x%" PRIx64, f->pc);
			if (f->file)
				fprintf(fp, " (%s)", f->file);
			else if (obj)
				fprintf(fp, " [%s]", obj);
			fputc('\n', fp);
		}
		if (!s->nframes)
			fputs("?\n", fp);
		if (s->truncated)
			fprintf(fp, "%10s %6s %10s %8s  ... (unwinding stopped here)\n", "", "", "", "");
	}
	if (rp->nthreads) {
		fprintf(fp, "\n%8s %-16s %10s %10s\n", "TID", "THREAD", "ALLOC", "LIVE");
		for (size_t i = 0; i < rp->nthreads; i++)
			fprintf(fp, "%8d %-16s %10s %10s\n", (int)rp->threads[i].tid, rp->threads[i].name,
				hs_fmt_size((uint64_t)rp->threads[i].alloc_bytes, b1),
				hs_fmt_size((uint64_t)rp->threads[i].inuse_bytes, b2));
	}
	if (rp->narenas) {
		fprintf(fp, "\n%6s %18s %10s %7s\n", "ARENA", "ADDRESS", "LIVE", "STACKS");
		for (size_t i = 0; i < rp->narenas; i++) {
			const struct hs_profile_arena *a = &rp->arenas[i];
			char idx[16];
			snprintf(idx, sizeof(idx), a->index < 0 ? "mmap" : "%d", a->index);
			fprintf(fp, "%6s %#18" PRIx64 " %10s %7zu\n", idx, a->addr, hs_fmt_size((uint64_t)a->inuse_bytes, b1),
				a->nstacks);
		}
	}
	if (d->live_lost)
		fprintf(fp, "\n%" PRIu64 " sampled blocks were not followed to their free (the sampler's set was full)\n",
			d->live_lost);
}

static int analyse_and_write(struct hs_cli *cli, const struct opts *o, const struct hs_profile_data *d,
			     uint64_t start_us, uint64_t stop_us)
{
	struct hs_profile_opts ao = { .use_debuginfo = !cli->no_debuginfo, .use_debuginfod = !cli->no_debuginfod };
	struct hs_profile_report rp;
	struct hs_err err = { 0 };
	if (hs_profile_analyze(d, &ao, &rp, &err) < 0)
		return hs_cli_fail(cli, o->raw ? HS_EXIT_PARTIAL : HS_EXIT_FATAL, "cannot analyse the samples: %s", err.msg);
	int status = d->dropped ? HS_EXIT_PARTIAL : HS_EXIT_OK, r = 0;
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
		render_text(fp, &rp, d, o->top, start_us, stop_us);
	const char *what = o->out ? o->out : "the output";
	if (o->out && fclose(fp) != 0 && r == 0)
		r = -errno;
	if (r == 0 && o->pprof) {
		FILE *pf = fopen(o->pprof, "wb");
		r = pf ? close_file(pf, hs_profile_write_pprof(pf, &rp)) : -errno;
		what = o->pprof;
	}
	if (r == 0 && o->svg) {
		FILE *sf = fopen(o->svg, "w");
		r = sf ? close_file(sf, hs_profile_write_svg(sf, &rp, o->inuse)) : -errno;
		what = o->svg;
	}
	hs_profile_report_release(&rp);
	if (r < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "cannot write %s: %s", what, strerror(-r));
	if (d->dropped)
		hs_cli_warn(cli, "%" PRIu64 " samples dropped (the ring was full): the figures are low", d->dropped);
	return status;
}

static int profile(struct hs_cli *cli, pid_t pid, const struct opts *o)
{
	char sampler[PATH_MAX];
	if (hs_profile_find_sampler(sampler, sizeof(sampler)) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "cannot find libheapscope-sampler.so (beside heapscope, or in its "
				   "install directory; HEAPSCOPE_SAMPLER names another)");
	struct hs_profile_start_opts so = { .rate = o->rate, .sampler = sampler, .wait_ms = o->wait_ms,
					    .timeout_ms = o->timeout_ms };
	struct hs_profile_session ps;
	struct hs_profile_report_start rep, srep;
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
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	d.t_start_ns = mono_ns();
	fprintf(stderr, "heapscope: profile: pid %d: %zu slots in %zu objects routed to %s%s (paused %" PRIu64
		" us); sampling one per %" PRIu64 " bytes%s\n", (int)pid, rep.slots, rep.objects, rep.sampler,
		rep.copied ? " (copied into its root)" : "", rep.call.pause_us, d.rate,
		o->duration > 0 ? "" : " until Ctrl-C");
	int status = HS_EXIT_OK;
	uint64_t deadline = o->duration > 0 ? d.t_start_ns + (uint64_t)(o->duration * 1e9) : 0;
	while (!stop_requested && (!deadline || mono_ns() < deadline)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		if ((r = hs_profile_drain(&ps, &d, &err)) < 0) {
			if (!hs_proc_alive(pid))
				break;
			hs_cli_warn(cli, "%s", err.msg);
			status = HS_EXIT_PARTIAL;
			break;
		}
	}
	d.t_end_ns = mono_ns();
	if (!hs_proc_alive(pid)) {
		hs_profile_session_close(&ps);
		hs_profile_data_release(&d);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "pid %d exited while sampled", (int)pid);
	}
	r = hs_profile_stop(pid, o->wait_ms > 10000 ? o->wait_ms : 10000, NULL, &srep, &err);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (r < 0) {
		hs_cli_warn(cli, "cannot stop the profile: %s ('heapscope profile --stop %d' retries)", err.msg, (int)pid);
		status = HS_EXIT_PARTIAL;
	}
	/* what the threads wrote before the sampler went off */
	if (hs_profile_drain(&ps, &d, &err) < 0)
		status = HS_EXIT_PARTIAL;
	hs_profile_session_close(&ps);
	FILE *rf = o->raw ? fopen(o->raw, "w") : NULL;
	if (rf)
		r = close_file(rf, hs_profile_write_raw(rf, &d));
	if (o->raw && (!rf || r < 0)) {
		r = rf ? r : -errno;
		hs_profile_data_release(&d);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "cannot write %s: %s", o->raw, strerror(-r));
	}
	int s2 = analyse_and_write(cli, o, &d, rep.call.pause_us, srep.call.pause_us);
	hs_profile_data_release(&d);
	return s2 > status ? s2 : status;
}

static int cmd_profile(struct hs_cli *cli)
{
	struct opts o = { .top = (int)hs_cli_num(cli, 'n', 10), .wait_ms = (int)hs_cli_num(cli, 'w', 3000),
			  .timeout_ms = (int)hs_cli_num(cli, 't', 10000) };
	const char *dur = hs_cli_str(cli, 'd');
	if (dur) {
		char *end;
		o.duration = strtod(dur, &end);
		if (*end || !(o.duration > 0) || o.duration > 1e6)
			return hs_cli_usage(cli, "--duration takes seconds: '%s'", dur);
	}
	if (cli->opt['r'].set) {
		o.rate = cli->opt['r'].u;
		if (!o.rate || o.rate > (1ull << 40))
			return hs_cli_usage(cli, "--rate takes a size in bytes (1 to 1T)");
	}
	o.pprof = hs_cli_str(cli, 'P');
	o.folded = cli->opt['f'].set;
	o.svg = hs_cli_str(cli, 'S');
	o.inuse = cli->opt['i'].set;
	o.raw = hs_cli_str(cli, 'R');
	o.out = hs_cli_str(cli, 'o');
	o.status = cli->opt['s'].set;
	o.stop = cli->opt['x'].set;
	pid_t pid = cli->pid;
	if (o.status && o.stop)
		return hs_cli_usage(cli, "--status or --stop, not both");
	if (cli->json && o.folded)
		return hs_cli_usage(cli, "--json or --folded, not both");
	if (o.status)
		return status_cmd(cli, pid);
	if (o.stop)
		return stop_cmd(cli, pid, &o);
	return profile(cli, pid, &o);
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
