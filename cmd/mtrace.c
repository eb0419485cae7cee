/* heapscope mtrace: glibc's allocation trace switched on and off in a live
 * process (lib/mtrace.c), and its log summarised (lib/mtrace_log.c); here
 * the options and the rendering. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "call.h"
#include "common.h"
#include "mtrace.h"
#include "out.h"
#include "mtrace_log.h"
#include "symbols.h"

static const char help[] =
	"usage: heapscope mtrace start [--file PATH] [--inject] PID\n"
	"       heapscope mtrace stop PID\n"
	"       heapscope mtrace status PID\n"
	"       heapscope mtrace report [--pid PID] [--top K] [--blocks] [--json] FILE\n"
	"\n"
	"start: set MALLOC_TRACE=PATH in PID and call glibc's mtrace(); stop: call\n"
	"muntrace().  On glibc 2.34 and later the tracer lives in libc_malloc_debug.so,\n"
	"and traces only a process that loaded it at start (LD_PRELOAD); without it,\n"
	"nothing is done to the target and the exit status is 2, unless --inject.\n"
	"The calls are made only when no thread is inside malloc, as heapscope trim\n"
	"makes them.\n"
	"PATH is opened by the target, inside its own mount namespace: an existing\n"
	"symlink, FIFO or other non-regular file is refused.  The default is\n"
	"mtrace.PID.log in a new private directory, /tmp/heapscope-mtrace.XXXXXX.\n"
	"Starting while the target traces, or stopping while it does not, is refused.\n"
	"status: whether PID is tracing, and into which file (its open log).\n"
	"report: the blocks a trace log shows allocated and never freed, grouped by\n"
	"caller, largest first, each caller named: function+offset from the object's\n"
	"symbols, file:line from its debug info or separate debug file (none with\n"
	"--no-debuginfo).  With --pid, the objects are those the live process maps\n"
	"(the log must be its own), else the files the log names.\n";

static int status_cmd(struct hs_cli *cli, pid_t pid)
{
	struct hs_mtrace_status st;
	struct hs_err err = { 0 };
	if (hs_mtrace_status(pid, &st, &err) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	struct hs_out o;
	hs_out_init(&o, stdout, cli->json ? &cli->j : NULL);
	hs_out_obj_begin(&o, NULL);
	hs_print_int(&o, HS_PRINT_ANY, "pid", "pid %d is ", (int)pid);
	hs_print_bool(&o, HS_PRINT_ANY, "tracing", "tracing into ", st.tracing);
	if (st.tracing) {
		hs_print_str(&o, HS_PRINT_ANY, "file", "%s", st.file);
		hs_print_bool(&o, HS_PRINT_JSON, "injected", NULL, st.injected);
		if (st.injected) {
			hs_print_str(&o, HS_PRINT_TEXT, NULL, ", through %s injected", st.inj.dbg_path);
			hs_print_u64(&o, HS_PRINT_ANY, "slots", " (%" PRIu64 " GOT slots routed to it)", st.inj.slots);
		}
	}
	hs_print_text(&o, "%s", st.tracing ? "\n" : "not tracing\n");
	hs_out_doc_end(&o);
	return HS_EXIT_OK;
}

/* A start or a stop: what every kind has, the injection's figures (for
 * one injected, file is the log it opened and tracer the library), then
 * the call's.  The text is one sentence per kind. */
static void render_action(struct hs_out *o, pid_t pid, bool start, const struct hs_mtrace_report *rep)
{
	const struct hs_inject_report *ir = &rep->inj;
	bool inj = rep->injected;
	const struct hs_call_report *call = inj ? &ir->call : &rep->call;
	hs_out_obj_begin(o, NULL);
	hs_print_int(o, HS_PRINT_ANY, "pid", start ? "tracing pid %d into " : "tracing of pid %d stopped: ", (int)pid);
	hs_print_str(o, HS_PRINT_JSON, "action", NULL, start ? "start" : "stop");
	hs_print_bool(o, HS_PRINT_JSON, "tracing", NULL, start);
	hs_print_str(o, HS_PRINT_ANY, "file", start ? "%s" : "%s closed", rep->file);
	hs_print_str(o, HS_PRINT_ANY, "tracer", !start ? NULL : inj ? ": %s " : ", from %s", rep->tracer);
	if (inj) {
		hs_print_bool(o, HS_PRINT_JSON, "injected", NULL, true);
		hs_print_str(o, HS_PRINT_TEXT, NULL, start ? "%s, " : NULL, ir->loaded_before ? "(already loaded)" : "loaded");
		hs_print_u64(o, HS_PRINT_ANY, start ? "slots_routed" : "slots_restored",
			     start ? "%" PRIu64 " GOT slots in " : ", %" PRIu64 " GOT slots put back", ir->slots);
		if (start)
			hs_print_u64(o, HS_PRINT_ANY, "objects", "%" PRIu64 " objects routed to it", ir->objects);
		hs_print_u64(o, HS_PRINT_JSON, start ? "slots_left" : "slots_changed_since", NULL, ir->left);
		hs_print_bool(o, HS_PRINT_TEXT, NULL, " (some changed by the process since: left alone)", !start && ir->left);
		hs_print_str(o, HS_PRINT_TEXT, NULL, start ? NULL : "; %s stays loaded", rep->tracer);
	}
	hs_print_int(o, HS_PRINT_ANY, "thread", start || inj ? NULL : " (muntrace() called in thread %d)\n", (int)call->tid);
	hs_print_u64(o, HS_PRINT_JSON, "attempts", NULL, (uint64_t)call->attempts);
	hs_print_us(o, HS_PRINT_ANY, "pause_us", inj ? "; target paused %s" : NULL, call->pause_us);
	hs_print_u64(o, HS_PRINT_JSON, "call_us", NULL, call->call_us);
	if (start)
		hs_print_text(o, "; stop with: heapscope mtrace stop %d\n", (int)pid);
	else if (inj)
		hs_print_text(o, "\n");
	hs_out_doc_end(o);
}

static int start_stop(struct hs_cli *cli, bool start, const struct hs_mtrace_opts *o, pid_t pid)
{
	struct hs_mtrace_report rep;
	struct hs_err err = { 0 };
	int r = start ? hs_mtrace_start(pid, o, &rep, &err) : hs_mtrace_stop(pid, o, &rep, &err);
	if (r < 0)
		return hs_cli_fail(cli, r == -EAGAIN ? HS_EXIT_REFUSED : HS_EXIT_FATAL, "%s", err.msg);
	if (rep.warning[0])
		hs_cli_warn(cli, "%s", rep.warning);
	struct hs_out out;
	hs_out_init(&out, stdout, cli->json ? &cli->j : NULL);
	render_action(&out, pid, start, &rep);
	if (rep.injected && rep.inj.left && !start)
		hs_cli_warn(cli, "%zu GOT slots no longer held the tracer's address and were left as the process set them",
			    rep.inj.left);
	return HS_EXIT_OK;
}

/* ---- report ------------------------------------------------------------- */

/* A caller: in text, function+offset at file:line (or from the object)
 * when it has a name, else as the log writes it; then its blocks. */
static void render_caller(struct hs_out *o, const struct hs_mtrace_caller *c, const struct hs_mtrace_named *nm)
{
	const char *f = hs_mtrace_named_function(nm);
	const struct hs_symbol *y = &nm->y;
	hs_print_str(o, HS_PRINT_JSON, "caller", NULL, c->text[0] ? c->text : "(unknown)");
	hs_print_u64(o, HS_PRINT_ANY, "count", "%10" PRIu64, c->count);
	hs_print_u64(o, HS_PRINT_ANY, "bytes", " %10" PRIu64 "  ", c->bytes);
	if (!f)
		hs_print_text(o, "%s\n", c->text[0] ? c->text : "(unknown)");
	hs_print_str(o, HS_PRINT_JSON, "object", NULL, y->object);
	hs_print_hex_opt(o, HS_PRINT_JSON, "address", NULL, y->address, y->address);
	hs_print_hex_opt(o, HS_PRINT_JSON, "elf_address", NULL, nm->known, y->elf_address);
	hs_print_str(o, HS_PRINT_ANY, "function", f ? "%s" : NULL, f);
	hs_print_str(o, HS_PRINT_JSON, "symbol", NULL, y->symbol);
	hs_print_u64_opt(o, HS_PRINT_ANY, "offset", "+0x%" PRIx64, f, y->offset);
	hs_print_str(o, HS_PRINT_ANY, "file", f && y->file ? " at %s" : NULL, y->file);
	hs_print_u64_opt(o, HS_PRINT_JSON, "line", NULL, y->line, (uint64_t)y->line);
	if (f && y->file)
		hs_print_text(o, ":%d\n", y->line);
	else if (f)
		hs_print_text(o, y->object ? " from %s\n" : "\n", y->object);
	hs_print_str(o, HS_PRINT_JSON, "debuginfo", NULL, y->debuginfo);
	if (!c->blocks)
		return;
	hs_out_arr_begin(o, "blocks");
	for (size_t i = 0; i < c->nblocks; i++) {
		hs_out_obj_begin(o, NULL);
		hs_print_text(o, "%23s", "");
		hs_print_hex(o, HS_PRINT_ANY, "address", "%#018" PRIx64, c->blocks[i].addr);
		hs_print_u64(o, HS_PRINT_ANY, "size", " %10" PRIu64 "\n", c->blocks[i].size);
		hs_out_obj_end(o);
	}
	hs_out_arr_end(o);
}

/* The "memory not freed" of a trace log, as glibc's mtrace script finds
 * it, grouped by caller, the callers named. */
static int report(struct hs_cli *cli, const char *file, long topk, pid_t pid, bool blocks)
{
	struct hs_mtrace_summary_opts so = { .top = (size_t)topk, .blocks = blocks, .pid = pid,
		.debug = cli->no_debuginfo ? 0 : HS_DEBUG_LOCAL | (cli->no_debuginfod ? 0 : HS_DEBUG_DEBUGINFOD) };
	struct hs_mtrace_summary sm;
	struct hs_err err = { 0 };
	if (hs_mtrace_summarise(file, &so, &sm, &err) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	const struct hs_mtrace_log *g = &sm.log;
	int status = HS_EXIT_OK;
	for (size_t k = 0; k < sm.shown; k++)
		if (sm.named[k].unmapped_first) {
			hs_cli_warn(cli, "%s is not mapped in pid %d: %s", sm.named[k].unmapped, (int)pid,
				    sm.named[k].known ? "named from the file on disk" : "not named");
			status = HS_EXIT_PARTIAL;
		}
	struct hs_out o;
	hs_out_init(&o, stdout, cli->json ? &cli->j : NULL);
	hs_out_obj_begin(&o, NULL);
	hs_print_str(&o, HS_PRINT_JSON, "file", NULL, file);
	hs_print_u64_opt(&o, HS_PRINT_JSON, "pid", NULL, pid > 0, (uint64_t)pid);
	hs_print_str(&o, HS_PRINT_JSON, "demangler", NULL, hs_symbols_demangler());
	hs_print_u64(&o, HS_PRINT_JSON, "lines", NULL, g->lines);
	hs_print_u64(&o, HS_PRINT_ANY, "not_freed", "%" PRIu64 " blocks", g->not_freed);
	hs_print_size(&o, HS_PRINT_ANY, "not_freed_bytes", " (%s) allocated and not freed in ", g->not_freed_bytes);
	hs_print_text(&o, "%s:\n%10s %10s  %s\n", file, "BLOCKS", "BYTES", "CALLER");
	hs_print_u64(&o, HS_PRINT_JSON, "freed_unknown", NULL, g->freed_unknown);
	hs_out_arr_begin(&o, "callers");
	for (size_t k = 0; k < sm.shown; k++) {
		hs_out_obj_begin(&o, NULL);
		render_caller(&o, &g->callers[k], &sm.named[k]);
		hs_out_obj_end(&o);
	}
	hs_out_arr_end(&o);
	hs_out_doc_end(&o);
	hs_mtrace_summary_release(&sm);
	return status;
}

static int cmd_mtrace(struct hs_cli *cli)
{
	int argc = cli->argc;
	char **argv = cli->argv;
	struct hs_mtrace_opts o = { .wait_ms = (int)hs_cli_num(cli, 'w', 3000), .timeout_ms = 10000,
				    .file = hs_cli_str(cli, 'f'), .inject = cli->opt['i'].set };
	if (argc < 1)
		return hs_cli_usage(cli, "missing start, stop, status or report");
	const char *what = argv[0];
	if (!strcmp(what, "report")) {
		if (argc != 2)
			return hs_cli_usage(cli, "report takes one FILE");
		return report(cli, argv[1], hs_cli_num(cli, 't', 20), (pid_t)hs_cli_num(cli, 'p', 0),
			      cli->opt['b'].set);
	}
	if (strcmp(what, "start") && strcmp(what, "stop") && strcmp(what, "status"))
		return hs_cli_usage(cli, "'%s': start, stop, status or report", what);
	pid_t pid;
	int r = hs_cli_pid(cli, argc, argv, 1, &pid);
	if (r)
		return r;
	if (o.inject && strcmp(what, "start"))
		return hs_cli_usage(cli, "--inject goes with start");
	if (!strcmp(what, "status"))
		return status_cmd(cli, pid);
	if (!strcmp(what, "stop") && o.file)
		return hs_cli_usage(cli, "stop takes no --file: it stops the log the target has open");
	hs_cli_snapshot_opts(cli, &o.snap);
	return start_stop(cli, !strcmp(what, "start"), &o, pid);
}

static void help_more(FILE *fp)
{
	if (hs_symbols_demangler())
		fprintf(fp, "\nC++ names are demangled with %s.\n", hs_symbols_demangler());
	else
		fputs("\nC++ names are left mangled: this heapscope was built without libbfd.\n", fp);
}

static const struct hs_opt opts[] = {
	{ .name = "file", .key = 'f', .kind = HS_OPT_STR, .arg = "PATH", .help = "where the target writes the trace" },
	{ .name = "inject", .key = 'i',
	  .help = "glibc 2.34+ without the preload: load libc_malloc_debug.so into PID and route its malloc family "
	  "there (GOT slots rewritten, all threads stopped; stop puts them back)" },
	{ .name = "wait", .key = 'w', .kind = HS_OPT_MS, .bad = "--wait takes milliseconds",
	  .arg = "MS", .help = "how long to retry while a thread is inside malloc (3000)" },
	{ .name = "top", .key = 't', .kind = HS_OPT_COUNT, .min = 1, .max = LONG_MAX, .bad = "--top takes a positive count",
	  .arg = "K", .help = "report: the K callers with most bytes (default 20)" },
	{ .name = "pid", .key = 'p', .kind = HS_OPT_COUNT, .min = 1, .max = INT_MAX, .bad = "--pid takes a process id",
	  .arg = "PID", .help = "report: name callers from PID's mappings (never stopped)" },
	{ .name = "blocks", .key = 'b', .help = "report: each caller's blocks, address and size" },
	{ 0 },
};

const struct hs_command hs_cmd_mtrace = {
	.name = "mtrace", .run = cmd_mtrace, .help = help, .opts = opts, .flags = HS_CMD_GLOBALS,
	.help_more = help_more,
	.summary = "glibc's allocation trace on and off in the target; its log summarised",
};
