/* heapscope mtrace: glibc's allocation trace switched on and off in a live
 * process (lib/mtrace.c), and its log summarised (lib/mtrace_log.c); here
 * the options and the rendering. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "common.h"
#include "format.h"
#include "mtrace.h"
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
	if (cli->json) {
		struct hs_json *j = &cli->j;
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", pid);
		hs_json_bool(j, "tracing", st.tracing);
		if (st.tracing) {
			hs_json_str(j, "file", st.file);
			hs_json_bool(j, "injected", st.injected);
			if (st.injected)
				hs_json_u64(j, "slots", st.inj.slots);
		}
		hs_json_obj_end(j);
		hs_json_finish(j);
	} else if (st.injected) {
		printf("pid %d is tracing into %s, through %s injected (%zu GOT slots routed to it)\n", (int)pid, st.file,
		       st.inj.dbg_path, st.inj.slots);
	} else if (st.tracing) {
		printf("pid %d is tracing into %s\n", (int)pid, st.file);
	} else {
		printf("pid %d is not tracing\n", (int)pid);
	}
	return HS_EXIT_OK;
}

/* The JSON of a start or a stop: what every kind has, the injection's
 * keys, then the call's figures. */
static void json_action(struct hs_json *j, pid_t pid, bool start, const struct hs_mtrace_report *rep)
{
	const struct hs_inject_report *ir = &rep->inj;
	const struct hs_call_report *call = rep->injected ? &ir->call : &rep->call;
	hs_json_obj_begin(j, NULL);
	hs_json_i64(j, "pid", pid);
	hs_json_str(j, "action", start ? "start" : "stop");
	hs_json_bool(j, "tracing", start);
	hs_json_str(j, "file", rep->file);
	hs_json_str(j, "tracer", rep->tracer);
	if (rep->injected) {
		hs_json_bool(j, "injected", true);
		hs_json_u64(j, start ? "slots_routed" : "slots_restored", ir->slots);
		if (start)
			hs_json_u64(j, "objects", ir->objects);
		hs_json_u64(j, start ? "slots_left" : "slots_changed_since", ir->left);
	}
	hs_json_i64(j, "thread", call->tid);
	hs_json_u64(j, "attempts", (uint64_t)call->attempts);
	hs_json_u64(j, "pause_us", call->pause_us);
	hs_json_u64(j, "call_us", call->call_us);
	hs_json_obj_end(j);
	hs_json_finish(j);
}

static void print_action(pid_t pid, bool start, const struct hs_mtrace_report *rep)
{
	const struct hs_inject_report *ir = &rep->inj;
	char f[HS_SIZE_BUF];
	if (rep->injected && start)
		printf("tracing pid %d into %s: %s %s, %zu GOT slots in %zu objects routed to it; target paused %s; stop "
		       "with: heapscope mtrace stop %d\n",
		       (int)pid, ir->log, ir->dbg_path, ir->loaded_before ? "(already loaded)" : "loaded", ir->slots,
		       ir->objects, hs_fmt_us(ir->call.pause_us, f), (int)pid);
	else if (rep->injected)
		printf("tracing of pid %d stopped: %s closed, %zu GOT slots put back%s; %s stays loaded; target paused %s\n",
		       (int)pid, ir->log, ir->slots, ir->left ? " (some changed by the process since: left alone)" : "",
		       ir->dbg_path, hs_fmt_us(ir->call.pause_us, f));
	else if (start)
		printf("tracing pid %d into %s, from %s; stop with: heapscope mtrace stop %d\n", (int)pid, rep->file,
		       rep->tracer, (int)pid);
	else
		printf("tracing of pid %d stopped: %s closed (muntrace() called in thread %d)\n", (int)pid, rep->file,
		       (int)rep->call.tid);
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
	if (cli->json)
		json_action(&cli->j, pid, start, &rep);
	else
		print_action(pid, start, &rep);
	if (rep.injected && rep.inj.left && !start)
		hs_cli_warn(cli, "%zu GOT slots no longer held the tracer's address and were left as the process set them",
			    rep.inj.left);
	return HS_EXIT_OK;
}

/* ---- report ------------------------------------------------------------- */

static void print_caller(const struct hs_mtrace_caller *c, const struct hs_mtrace_named *nm)
{
	const char *f = hs_mtrace_named_function(nm);
	if (!f) {
		printf("%s\n", c->text[0] ? c->text : "(unknown)");
		return;
	}
	printf("%s+0x%" PRIx64, f, nm->y.offset);
	if (nm->y.file)
		printf(" at %s:%d\n", nm->y.file, nm->y.line);
	else if (nm->y.object)
		printf(" from %s\n", nm->y.object);
	else
		putchar('\n');
}

/* a number, or null when there is none */
static void json_opt(struct hs_json *j, const char *key, bool have, bool hex, uint64_t v)
{
	if (!have)
		hs_json_null(j, key);
	else if (hex)
		hs_json_hex(j, key, v);
	else
		hs_json_u64(j, key, v);
}

static void json_caller(struct hs_json *j, const struct hs_mtrace_caller *c, const struct hs_mtrace_named *nm)
{
	const char *f = hs_mtrace_named_function(nm);
	hs_json_str(j, "caller", c->text[0] ? c->text : "(unknown)");
	hs_json_u64(j, "count", c->count);
	hs_json_u64(j, "bytes", c->bytes);
	hs_json_str(j, "object", nm->y.object);
	json_opt(j, "address", nm->y.address, true, nm->y.address);
	json_opt(j, "elf_address", nm->known, true, nm->y.elf_address);
	hs_json_str(j, "function", f);
	hs_json_str(j, "symbol", nm->y.symbol);
	json_opt(j, "offset", f, false, nm->y.offset);
	hs_json_str(j, "file", nm->y.file);
	json_opt(j, "line", nm->y.line, false, (uint64_t)nm->y.line);
	hs_json_str(j, "debuginfo", nm->y.debuginfo);
	if (c->blocks) {
		hs_json_arr_begin(j, "blocks");
		for (size_t i = 0; i < c->nblocks; i++) {
			hs_json_obj_begin(j, NULL);
			hs_json_hex(j, "address", c->blocks[i].addr);
			hs_json_u64(j, "size", c->blocks[i].size);
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
	}
}

static void render_report(struct hs_cli *cli, const char *file, pid_t pid, const struct hs_mtrace_log *g,
			  size_t shown, const struct hs_mtrace_named *nm)
{
	if (!cli->json) {
		char fsz[HS_SIZE_BUF];
		printf("%" PRIu64 " blocks (%s) allocated and not freed in %s:\n", g->not_freed,
		       hs_fmt_size(g->not_freed_bytes, fsz), file);
		printf("%10s %10s  %s\n", "BLOCKS", "BYTES", "CALLER");
		for (size_t k = 0; k < shown; k++) {
			const struct hs_mtrace_caller *c = &g->callers[k];
			printf("%10" PRIu64 " %10" PRIu64 "  ", c->count, c->bytes);
			print_caller(c, &nm[k]);
			for (size_t i = 0; i < c->nblocks; i++)
				printf("%23s%#018" PRIx64 " %10" PRIu64 "\n", "", c->blocks[i].addr, c->blocks[i].size);
		}
		return;
	}
	struct hs_json *j = &cli->j;
	hs_json_obj_begin(j, NULL);
	hs_json_str(j, "file", file);
	json_opt(j, "pid", pid > 0, false, (uint64_t)pid);
	hs_json_str(j, "demangler", hs_symbols_demangler());
	hs_json_u64(j, "lines", g->lines);
	hs_json_u64(j, "not_freed", g->not_freed);
	hs_json_u64(j, "not_freed_bytes", g->not_freed_bytes);
	hs_json_u64(j, "freed_unknown", g->freed_unknown);
	hs_json_arr_begin(j, "callers");
	for (size_t k = 0; k < shown; k++) {
		hs_json_obj_begin(j, NULL);
		json_caller(j, &g->callers[k], &nm[k]);
		hs_json_obj_end(j);
	}
	hs_json_arr_end(j);
	hs_json_obj_end(j);
	hs_json_finish(j);
}

/* Name the callers shown: only those, each object read once; an object
 * the process does not map said once. */
static int name_callers(struct hs_cli *cli, struct hs_symbols *sym, pid_t pid, const struct hs_mtrace_log *g,
			size_t shown, struct hs_mtrace_named *nm)
{
	int status = HS_EXIT_OK;
	for (size_t k = 0; k < shown; k++) {
		hs_mtrace_name(sym, pid, g->callers[k].text, &nm[k]);
		size_t i = 0;
		while (i < k && strcmp(nm[i].unmapped, nm[k].unmapped))
			i++;
		if (nm[k].unmapped[0] && i == k) {
			hs_cli_warn(cli, "%s is not mapped in pid %d: %s", nm[k].unmapped, (int)pid,
				    nm[k].known ? "named from the file on disk" : "not named");
			status = HS_EXIT_PARTIAL;
		}
	}
	return status;
}

/* The "memory not freed" of a trace log, as glibc's mtrace script finds
 * it, grouped by caller, the callers named. */
static int report(struct hs_cli *cli, const char *file, long topk, pid_t pid, bool blocks)
{
	struct hs_mtrace_log g;
	struct hs_err err = { 0 };
	if (hs_mtrace_log_open(&g) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s: out of memory", file);
	int r = hs_mtrace_log_read_file(&g, file, &err);
	if (r == 0 && hs_mtrace_log_finish(&g, blocks ? (size_t)topk : 0) < 0)
		r = hs_err_set(&err, ENOMEM, "%s: out of memory", file);
	if (r < 0) {
		hs_mtrace_log_release(&g);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	}
	size_t shown = g.ncallers < (size_t)topk ? g.ncallers : (size_t)topk;
	struct hs_symbols *sym = NULL;
	unsigned debug = cli->no_debuginfo ? 0 : HS_DEBUG_LOCAL | (cli->no_debuginfod ? 0 : HS_DEBUG_DEBUGINFOD);
	struct hs_mtrace_named *nm = calloc(shown + 1, sizeof(*nm));
	int status;
	r = nm ? hs_symbols_new(pid, debug, &sym, &err) : -ENOMEM;
	if (!nm) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
	} else if (r < 0 && (err.code == ENOENT || err.code == ESRCH)) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "no process %d (without --pid, callers are named from the files "
				     "the log names)", (int)pid);
	} else if (r < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	} else {
		status = name_callers(cli, sym, pid, &g, shown, nm);
		render_report(cli, file, pid, &g, shown, nm);
	}
	for (size_t k = 0; nm && k < shown; k++)
		free(nm[k].function);
	free(nm);
	hs_symbols_free(sym);
	hs_mtrace_log_release(&g);
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
