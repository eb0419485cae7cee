/* heapscope mtrace: glibc's allocation trace switched on and off in a live
 * process, and its log summarised. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "call.h"
#include "common.h"
#include "format.h"
#include "inject.h"
#include "libc.h"
#include "proc.h"
#include "session.h"
#include "state.h"
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
	"(the log must be its own), else the files the log names.\n"
	"\n"
	"  --file PATH      where the target writes the trace\n"
	"  --inject         glibc 2.34+ without the preload: load libc_malloc_debug.so\n"
	"                   into PID and route its malloc family there (GOT slots\n"
	"                   rewritten, all threads stopped; stop puts them back)\n"
	"  --wait MS        how long to retry while a thread is inside malloc (3000)\n"
	"  --top K          report: the K callers with most bytes (default 20)\n"
	"  --pid PID        report: name callers from PID's mappings (never stopped)\n"
	"  --blocks         report: each caller's blocks, address and size\n"
	"  --json           one JSON document\n"
	"  -h, --help       this help\n";

/* The mtrace and muntrace to call: libc_malloc_debug.so's (2.34+, only
 * when loaded) or libc's own (before 2.34). */
static int tracer(const struct hs_snapshot *s, struct hs_libc *dbg, bool *have_dbg, const char **why)
{
	*have_dbg = false;
	if (s->libc.major == 2 && s->libc.minor < 34) {
		*dbg = s->libc;
		return 0;
	}
	if (hs_inject_tracer_lib(s->pid, &s->maps, dbg) == 0) {
		*have_dbg = true;
		return 0;
	}
	*why = "glibc 2.34 and later keep mtrace in libc_malloc_debug.so, and this process did not load it: "
	       "libc.so.6's mtrace() is an empty stub and tracing cannot start without a restart; restart it with "
	       "LD_PRELOAD=libc_malloc_debug.so.0 (and MALLOC_TRACE=FILE), or use heapscope chunks/bins now";
	return -ENOTSUP;
}

/* Is pid tracing, and into which file?  glibc's tracer keeps its log open
 * from mtrace() to muntrace().  heapscope's own start is recorded (the log
 * may still be empty, its "= Start" in the target's stdio buffer); a trace
 * started otherwise is seen by its log's first line. */
static bool tracing(pid_t pid, char *file, size_t len)
{
	char rec[PATH_MAX + 16];
	if (hs_state_read(pid, "mtrace", rec, sizeof(rec), NULL) == 0 && !strncmp(rec, "file ", 5)) {
		bool injection = strstr(rec, "\ninject ") != NULL;
		rec[strcspn(rec, "\n")] = '\0';
		if (hs_proc_has_open(pid, rec + 5) == 0) {
			snprintf(file, len, "%s", rec + 5);
			return true;
		}
		/* stopped by someone else; but an injection's record is what
		 * puts its slots back, so it stays until stop */
		if (!injection)
			hs_state_remove(pid, "mtrace");
	}
	return hs_proc_open_file_with(pid, "= Start", file, len) == 0;
}

static int status_cmd(struct hs_cli *cli, pid_t pid)
{
	struct hs_proc_status ps;
	struct hs_err err = { 0 };
	if (hs_proc_check(pid, false, &ps, &err) < 0 || hs_state_check(false, &err) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	char file[PATH_MAX];
	bool on = tracing(pid, file, sizeof(file));
	struct hs_inject_report ir;
	bool injected = on && hs_inject_recorded(pid, &ir) == 1 && !strcmp(ir.log, file);
	if (cli->json) {
		struct hs_json *j = &cli->j;
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", pid);
		hs_json_bool(j, "tracing", on);
		if (on) {
			hs_json_str(j, "file", file);
			hs_json_bool(j, "injected", injected);
			if (injected)
				hs_json_u64(j, "slots", ir.slots);
		}
		hs_json_obj_end(j);
		hs_json_finish(j);
	} else if (on && injected) {
		printf("pid %d is tracing into %s, through %s injected (%zu GOT slots routed to it)\n", (int)pid, file,
		       ir.dbg_path, ir.slots);
	} else if (on) {
		printf("pid %d is tracing into %s\n", (int)pid, file);
	} else {
		printf("pid %d is not tracing\n", (int)pid);
	}
	return HS_EXIT_OK;
}

/* The JSON of a start or a stop: what every kind has, the caller's own
 * keys, then the stop's figures. */
static void json_action_begin(struct hs_json *j, pid_t pid, bool start, const char *file, const char *tracer)
{
	hs_json_obj_begin(j, NULL);
	hs_json_i64(j, "pid", pid);
	hs_json_str(j, "action", start ? "start" : "stop");
	hs_json_bool(j, "tracing", start);
	hs_json_str(j, "file", file);
	hs_json_str(j, "tracer", tracer);
}

static void json_action_end(struct hs_json *j, const struct hs_call_report *rep)
{
	hs_json_i64(j, "thread", rep->tid);
	hs_json_u64(j, "attempts", (uint64_t)rep->attempts);
	hs_json_u64(j, "pause_us", rep->pause_us);
	hs_json_u64(j, "call_us", rep->call_us);
	hs_json_obj_end(j);
	hs_json_finish(j);
}

/* start --inject, and the stop of an injected trace */
static int injected(struct hs_cli *cli, bool start, const char *file, bool private_log, int wait_ms,
		    const struct hs_snapshot *s)
{
	struct hs_inject_opts io = { .log = file, .private_log = private_log, .wait_ms = wait_ms, .timeout_ms = 10000 };
	struct hs_inject_report rep;
	struct hs_err err = { 0 };
	pid_t pid = s->pid;
	int r = start ? hs_inject_start(s, &io, &rep, &err) : hs_inject_stop(s, &io, &rep, &err);
	if (r == -EAGAIN && !start && rep.slots)
		return hs_cli_fail(cli, HS_EXIT_REFUSED, "%zu GOT slots put back, but muntrace() was not safe within %d ms: "
				   "%s; the log stays open: run stop again", rep.slots, wait_ms, rep.call.unsafe);
	if (r == -EAGAIN)
		return hs_cli_fail(cli, HS_EXIT_REFUSED, "not safe to call into malloc within %d ms: %s (nothing was called)",
				   wait_ms, rep.call.unsafe);
	if (r < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s%s", err.msg,
				   start && rep.call.done ? " (undone: no slot changed, tracing off; the library stays loaded)"
							  : "");
	if (cli->json) {
		struct hs_json *j = &cli->j;
		json_action_begin(j, pid, start, rep.log, rep.dbg_path);
		hs_json_bool(j, "injected", true);
		hs_json_u64(j, start ? "slots_routed" : "slots_restored", rep.slots);
		if (start)
			hs_json_u64(j, "objects", rep.objects);
		hs_json_u64(j, start ? "slots_left" : "slots_changed_since", rep.left);
		json_action_end(j, &rep.call);
	} else if (start) {
		char f[HS_SIZE_BUF];
		printf("tracing pid %d into %s: %s %s, %zu GOT slots in %zu objects routed to it; target paused %s; stop "
		       "with: heapscope mtrace stop %d\n",
		       (int)pid, rep.log, rep.dbg_path, rep.loaded_before ? "(already loaded)" : "loaded", rep.slots,
		       rep.objects, hs_fmt_us(rep.call.pause_us, f), (int)pid);
	} else {
		char f[HS_SIZE_BUF];
		printf("tracing of pid %d stopped: %s closed, %zu GOT slots put back%s; %s stays loaded; target paused %s\n",
		       (int)pid, rep.log, rep.slots, rep.left ? " (some changed by the process since: left alone)" : "",
		       rep.dbg_path, hs_fmt_us(rep.call.pause_us, f));
	}
	if (rep.left && !start)
		hs_cli_warn(cli, "%zu GOT slots no longer held the tracer's address and were left as the process set them",
			    rep.left);
	return HS_EXIT_OK;
}

static int start_stop(struct hs_cli *cli, bool start, bool inject, const char *file, int wait_ms, pid_t pid)
{
	struct hs_snapshot s;
	struct hs_snapshot_opts o;
	hs_cli_snapshot_opts(cli, &o);
	o.residency = false;
	o.walk = 0;
	struct hs_err err = { 0 };
	int status = HS_EXIT_OK;
	char privpath[PATH_MAX];
	bool private_log = false;
	/* records only from a trusted directory: stop writes their slots */
	if (hs_state_check(false, &err) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	if (hs_snapshot_take(pid, &o, &s, &err) < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		hs_snapshot_release(&s);
		return status;
	}
	/* mtrace() while tracing does nothing, muntrace() while not does
	 * nothing: say so rather than call */
	char current[PATH_MAX];
	bool on = tracing(pid, current, sizeof(current));
	if (start && on) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "pid %d is already tracing into %s: nothing done (stop it first)",
				     (int)pid, current);
		goto out;
	}
	/* an injection is undone from its record, its log open or not (a
	 * program may have closed it: its slots still go to the tracer) */
	struct hs_inject_report ir;
	if (!start && hs_inject_recorded(pid, &ir) == 1) {
		status = injected(cli, false, ir.log, false, wait_ms, &s);
		goto out;
	}
	if (!start && !on) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "pid %d is not tracing: nothing to stop", (int)pid);
		goto out;
	}
	/* the log: never a path someone else may have planted */
	if (start && !file) {
		if (hs_state_trace_dir(pid, privpath, sizeof(privpath), &err) < 0) {
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s: nothing done", err.msg);
			goto out;
		}
		file = privpath;
		private_log = true;
	} else if (start && hs_state_trace_check_path(pid, file, &err) < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s: nothing done", err.msg);
		goto out;
	}
	struct hs_libc dbg;
	bool have_dbg;
	const char *why = NULL;
	bool modern = !(s.libc.major == 2 && s.libc.minor < 34);
	if (tracer(&s, &dbg, &have_dbg, &why) < 0) {
		if (start && inject && modern)
			status = injected(cli, true, file, private_log, wait_ms, &s);
		else
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", why);
		goto out;
	}
	if (start && have_dbg) {
		/* loaded, but is malloc routed to it?  Preloaded it is; loaded
		 * late (an earlier --inject, a dlopen) it is not */
		bool routed = false;
		if (hs_inject_routed(pid, &s.maps, s.mem, &routed, &err) < 0) {
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
			goto out;
		}
		if (!routed && inject) {
			status = injected(cli, true, file, private_log, wait_ms, &s);
			goto out;
		}
		if (!routed) {
			status = hs_cli_fail(cli, HS_EXIT_FATAL,
					     "%s is loaded in pid %d but malloc does not go through it (it was loaded late): "
					     "mtrace() would log nothing; use start --inject",
					     dbg.map_path, (int)pid);
			goto out;
		}
	}
	struct hs_call calls[2];
	memset(calls, 0, sizeof(calls));
	size_t n = 0;
	char data[4096];
	char path[1024];
	snprintf(path, sizeof(path), "%s", file);
	if (start) {
		/* setenv("MALLOC_TRACE", path, 1): both strings on the stack */
		int k = snprintf(data, sizeof(data), "MALLOC_TRACE%c%s", 0, path);
		if (k <= 0 || (size_t)k >= sizeof(data) || hs_libc_lookup(&s.libc, "setenv", &calls[0].func) < 0) {
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "cannot set up setenv in the target");
			goto out;
		}
		calls[0].args[0] = HS_CALL_DATA(0);
		calls[0].args[1] = HS_CALL_DATA(13);
		calls[0].args[2] = 1;
		calls[0].nargs = 3;
		calls[0].data = data;
		calls[0].dlen = (size_t)k + 1;
		n = 1;
	}
	if (hs_libc_lookup(&dbg, start ? "mtrace" : "muntrace", &calls[n].func) < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s not found in %s", start ? "mtrace" : "muntrace", dbg.map_path);
		goto out;
	}
	n++;
	struct hs_call_report rep = { 0 };
	/* stop: muntrace() clears the stream that a thread inside the tracer
	 * may be about to write to; no thread may be in there */
	struct hs_code_range extra[1];
	size_t nextra = start ? 0 : hs_inject_tracer_code(&s.maps, extra, 1);
	int r = hs_call_safely(pid, &s.libc, &s.maps, s.mem, extra, nextra, calls, n, wait_ms, 10000, &rep, &err);
	if (r == -EAGAIN) {
		status = hs_cli_fail(cli, HS_EXIT_REFUSED, "not safe to call into malloc within %d ms: %s (nothing was called)",
				     wait_ms, rep.unsafe);
		goto out;
	}
	if (r < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s%s", err.msg, hs_cli_call_failed(rep.done, r));
		goto out;
	}
	if (start && rep.ret[0] != 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "setenv failed in the target (returned %d)", (int)rep.ret[0]);
		goto out;
	}
	/* what the target did, seen from outside: its log open, or closed */
	if (start && (path[0] != '/' || hs_proc_has_open(pid, path) < 0)) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL,
				     "mtrace() ran but opened no %s: tracing is not on (a setuid process ignores "
				     "MALLOC_TRACE; a relative path is the target's cwd)", path);
		goto out;
	}
	if (start && hs_state_trace_opened(pid, path, private_log, &err) < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s: tracing is on, stop it with heapscope mtrace stop %d", err.msg,
				     (int)pid);
		goto out;
	}
	if (!start && hs_proc_has_open(pid, file) == 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "muntrace() ran but %s is still open: tracing is still on", file);
		goto out;
	}
	char rec[PATH_MAX + 16];
	snprintf(rec, sizeof(rec), "file %s\n", path);
	if (start && hs_state_write(pid, "mtrace", rec, &err) < 0)
		hs_cli_warn(cli, "%s: heapscope mtrace status and a second start cannot know of this trace until its log "
			    "has data", err.msg);
	if (!start)
		hs_state_remove(pid, "mtrace");
	if (cli->json) {
		struct hs_json *j = &cli->j;
		json_action_begin(j, pid, start, start ? path : file, have_dbg ? dbg.map_path : s.libc.map_path);
		json_action_end(j, &rep);
	} else if (start) {
		printf("tracing pid %d into %s, from %s; stop with: heapscope mtrace stop %d\n", (int)pid, path,
		       have_dbg ? dbg.map_path : s.libc.map_path, (int)pid);
	} else {
		printf("tracing of pid %d stopped: %s closed (muntrace() called in thread %d)\n", (int)pid, file,
		       (int)rep.tid);
	}
out:
	if (private_log && status != HS_EXIT_OK) {
		/* the directory made for nothing (rmdir leaves one with a log) */
		char d[PATH_MAX + 64];
		snprintf(d, sizeof(d), "/proc/%d/root%s", (int)pid, privpath);
		*strrchr(d, '/') = '\0';
		rmdir(d);
	}
	hs_snapshot_release(&s);
	return status;
}

/* ---- report ------------------------------------------------------------- */

/* A caller as the log writes it, interned: blocks refer to it by index. */
struct caller {
	char *text;              /* "" for a line without "@ ..." */
	uint64_t count, bytes;
	size_t order;            /* its place after sorting */
};

struct live {
	uint64_t addr, size;
	uint32_t caller;
	bool used;
};

struct log {
	struct caller *c;
	size_t nc, capc;
	uint32_t *chash;         /* caller index + 1, 0 empty; open addressing */
	size_t caphash;
	struct live *tab;        /* blocks allocated and not (yet) freed */
	size_t n, cap;
	uint64_t lines, freed_unknown;
};

static size_t str_hash(const char *s)
{
	size_t h = 1469598103934665603ull;   /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int caller_index(struct log *g, const char *text, uint32_t *out)
{
	if ((g->nc + 1) * 2 > g->caphash) {
		size_t nh = g->caphash ? g->caphash * 2 : 256;
		uint32_t *t = calloc(nh, sizeof(*t));
		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < g->nc; i++) {
			size_t j = str_hash(g->c[i].text) & (nh - 1);
			while (t[j])
				j = (j + 1) & (nh - 1);
			t[j] = (uint32_t)i + 1;
		}
		free(g->chash);
		g->chash = t;
		g->caphash = nh;
	}
	size_t j = str_hash(text) & (g->caphash - 1);
	for (; g->chash[j]; j = (j + 1) & (g->caphash - 1))
		if (!strcmp(g->c[g->chash[j] - 1].text, text)) {
			*out = g->chash[j] - 1;
			return 0;
		}
	if (g->nc == g->capc) {
		size_t nc = g->capc ? g->capc * 2 : 64;
		struct caller *v = realloc(g->c, nc * sizeof(*v));
		if (!v)
			return -ENOMEM;
		g->c = v;
		g->capc = nc;
	}
	struct caller *c = &g->c[g->nc];
	memset(c, 0, sizeof(*c));
	if (!(c->text = strdup(text)))
		return -ENOMEM;
	g->chash[j] = (uint32_t)g->nc + 1;
	*out = (uint32_t)g->nc++;
	return 0;
}

static size_t slot(const struct log *g, uint64_t a)
{
	size_t j = (a >> 4) & (g->cap - 1);
	while (g->tab[j].used && g->tab[j].addr != a)
		j = (j + 1) & (g->cap - 1);
	return j;
}

static int grow_blocks(struct log *g)
{
	size_t nc = g->cap ? g->cap * 2 : 1 << 16;
	struct live *old = g->tab, *nt = calloc(nc, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	size_t ocap = g->cap;
	g->tab = nt;
	g->cap = nc;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].used)
			g->tab[slot(g, old[i].addr)] = old[i];
	free(old);
	return 0;
}

/* One line of the log, as glibc's mtrace script reads it: "[@ CALLER] OP
 * ADDR [SIZE]", split at whitespace.  A block allocated again before it
 * is freed keeps its first caller and size, as the script keeps them. */
static int log_line(struct log *g, char *line)
{
	char *cols[5];
	int nc = 0;
	char *save;
	for (char *t = strtok_r(line, " \t\n", &save); t && nc < 5; t = strtok_r(NULL, " \t\n", &save))
		cols[nc++] = t;
	int k = nc > 0 && !strcmp(cols[0], "@") ? 2 : 0;
	if (nc < k + 2 || strlen(cols[k]) != 1)
		return 0;
	char op = cols[k][0];
	if (strncmp(cols[k + 1], "0x", 2))
		return 0;       /* "(nil)": a failed allocation */
	uint64_t a = strtoull(cols[k + 1], NULL, 16);
	if (op == '+' || op == '>') {
		if (g->n * 2 >= g->cap && grow_blocks(g) < 0)
			return -ENOMEM;
		size_t j = slot(g, a);
		if (g->tab[j].used)
			return 0;
		uint32_t ci;
		if (caller_index(g, k ? cols[1] : "", &ci) < 0)
			return -ENOMEM;
		uint64_t sz = nc > k + 2 ? strtoull(cols[k + 2], NULL, 16) : 0;
		g->tab[j] = (struct live){ a, sz, ci, true };
		g->n++;
	} else if (op == '-' || op == '<') {
		size_t j = g->cap ? slot(g, a) : 0;
		if (!g->cap || !g->tab[j].used) {
			g->freed_unknown += op == '-';   /* freed what the trace never saw allocated */
			return 0;
		}
		/* remove, keeping the probe chains whole */
		g->tab[j].used = false;
		g->n--;
		for (size_t i = (j + 1) & (g->cap - 1); g->tab[i].used; i = (i + 1) & (g->cap - 1)) {
			struct live e = g->tab[i];
			g->tab[i].used = false;
			g->tab[slot(g, e.addr)] = e;
		}
	}
	return 0;
}

static void log_release(struct log *g)
{
	for (size_t i = 0; i < g->nc; i++)
		free(g->c[i].text);
	free(g->c);
	free(g->chash);
	free(g->tab);
}

static int cmp_callers(const void *x, const void *y)
{
	const struct caller *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	return strcmp(a->text, b->text);
}

static int cmp_blocks(const void *x, const void *y)
{
	const struct live *a = x, *b = y;
	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

/* A caller as glibc's tr_where() writes it: "OBJECT:[0xOFF]" or, when
 * dladdr found a dynamic symbol, "OBJECT:(SYM+OFF)[0xOFF]", OFF from the
 * object's load base (dli_fbase); "[0xADDR]" when dladdr knew no object. */
struct where {
	char object[PATH_MAX];   /* "" for the bare address form */
	char sym[256];           /* dladdr's symbol, "" when none */
	uint64_t sym_off;
	bool sym_neg;
	uint64_t off;            /* or the address */
};

static bool parse_caller(const char *c, struct where *w)
{
	memset(w, 0, sizeof(*w));
	size_t n = strlen(c);
	const char *lb = strrchr(c, '[');
	char *end;
	if (!n || c[n - 1] != ']' || !lb || strncmp(lb + 1, "0x", 2))
		return false;
	w->off = strtoull(lb + 1, &end, 16);
	if (end != c + n - 1)
		return false;
	if (lb == c)
		return true;
	const char *colon = lb - 1;
	if (*colon == ')') {
		const char *lp = colon;
		while (lp > c && *lp != '(')
			lp--;
		if (*lp != '(' || lp == c || lp[-1] != ':')
			return false;
		const char *pm = colon;
		while (pm > lp && *pm != '+' && *pm != '-')
			pm--;
		if (pm > lp) {
			snprintf(w->sym, sizeof(w->sym), "%.*s", (int)(pm - lp - 1), lp + 1);
			w->sym_off = strtoull(pm + 1, NULL, 16);
			w->sym_neg = *pm == '-';
		}
		colon = lp - 1;
	}
	if (*colon != ':')
		return false;
	snprintf(w->object, sizeof(w->object), "%.*s", (int)(colon - c), c);
	return true;
}

/* What the report shows of one caller. */
struct named {
	struct hs_symbol y;
	bool known;              /* an object was found for it */
	char *function;          /* from the log's dladdr symbol when ours has none (malloc'd) */
};

static void name_caller(struct hs_cli *cli, struct hs_symbols *sym, pid_t pid, const char *text, struct named *nm,
			char ***warned, size_t *nwarned, int *status)
{
	memset(nm, 0, sizeof(*nm));
	struct where w;
	if (!sym || !parse_caller(text, &w))
		return;
	int r;
	if (!w.object[0]) {
		if (pid <= 0)
			return;
		r = hs_symbols_address(sym, w.off, HS_SYM_RETURN, &nm->y, NULL);
	} else {
		r = hs_symbols_object(sym, w.object, w.off, HS_SYM_RETURN, &nm->y, NULL);
	}
	nm->known = r == 0;
	if (pid > 0 && w.object[0] && !nm->y.mapped) {
		/* Not this process's object: the log is another process's, or
		 * its library was unloaded.  Say so once per object. */
		size_t i;
		for (i = 0; i < *nwarned && strcmp((*warned)[i], w.object); i++)
			;
		if (i == *nwarned) {
			char **v = realloc(*warned, (*nwarned + 1) * sizeof(*v));
			if (v) {
				*warned = v;
				v[(*nwarned)++] = strdup(w.object);
			}
			hs_cli_warn(cli, "%s is not mapped in pid %d: %s", w.object, (int)pid,
				    r == 0 ? "named from the file on disk" : "not named");
			*status = HS_EXIT_PARTIAL;
		}
	}
	if (!nm->y.function && w.sym[0] && !w.sym_neg) {
		/* dladdr's name from the log itself (the file is gone) */
		char *d = hs_symbols_demangle(w.sym);
		nm->function = d ? d : strdup(w.sym);
		nm->y.offset = w.sym_off;
	}
}

static const char *named_function(const struct named *nm)
{
	return nm->y.function ? nm->y.function : nm->function;
}

static void print_caller(const struct caller *c, const struct named *nm)
{
	const char *f = named_function(nm);
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

static void json_caller(struct hs_json *j, const struct caller *c, const struct named *nm)
{
	hs_json_str(j, "caller", c->text[0] ? c->text : "(unknown)");
	hs_json_u64(j, "count", c->count);
	hs_json_u64(j, "bytes", c->bytes);
	hs_json_str(j, "object", nm->y.object);
	if (nm->y.address)
		hs_json_hex(j, "address", nm->y.address);
	else
		hs_json_null(j, "address");
	if (nm->known)
		hs_json_hex(j, "elf_address", nm->y.elf_address);
	else
		hs_json_null(j, "elf_address");
	hs_json_str(j, "function", named_function(nm));
	hs_json_str(j, "symbol", nm->y.symbol);
	if (named_function(nm))
		hs_json_u64(j, "offset", nm->y.offset);
	else
		hs_json_null(j, "offset");
	hs_json_str(j, "file", nm->y.file);
	if (nm->y.line)
		hs_json_u64(j, "line", (uint64_t)nm->y.line);
	else
		hs_json_null(j, "line");
	hs_json_str(j, "debuginfo", nm->y.debuginfo);
}

/* The "memory not freed" of a trace log, as glibc's mtrace script finds
 * it, grouped by caller, the callers named. */
static int report(struct hs_cli *cli, const char *file, long topk, pid_t pid, bool blocks)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "cannot open %s: %s", file, strerror(errno));
	struct log g = { 0 };
	char *line = NULL;
	size_t linecap = 0;
	int r = 0;
	while (r == 0 && getline(&line, &linecap, f) >= 0) {
		g.lines++;
		r = log_line(&g, line);
	}
	bool rerr = ferror(f);
	free(line);
	fclose(f);
	if (r < 0 || rerr) {
		log_release(&g);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s: %s", file, r < 0 ? "out of memory" : "read error");
	}

	/* Count per caller, sort the callers, then the blocks by caller's
	 * place and address (only when they are listed). */
	uint64_t tot = 0, cnt = 0;
	for (size_t i = 0; i < g.cap; i++)
		if (g.tab[i].used) {
			g.c[g.tab[i].caller].count++;
			g.c[g.tab[i].caller].bytes += g.tab[i].size;
			tot += g.tab[i].size;
			cnt++;
		}
	struct caller *by = calloc(g.nc + 1, sizeof(*by));
	size_t nb = 0;
	for (size_t i = 0; by && i < g.nc; i++)
		if (g.c[i].count) {
			by[nb] = g.c[i];
			by[nb++].order = i;    /* for now: the caller's index */
		}
	if (by)
		qsort(by, nb, sizeof(*by), cmp_callers);
	size_t shown = by ? (nb < (size_t)topk ? nb : (size_t)topk) : 0;
	struct live *bl = NULL;
	size_t *first = NULL;   /* by sorted place: its first block in bl */
	if (blocks && by) {
		for (size_t k = 0; k < nb; k++)
			g.c[by[k].order].order = k;
		bl = malloc((cnt + 1) * sizeof(*bl));
		first = calloc(shown + 2, sizeof(*first));
		if (bl && first) {
			size_t m = 0;
			for (size_t i = 0; i < g.cap; i++)
				if (g.tab[i].used && g.c[g.tab[i].caller].order < shown)
					bl[m++] = g.tab[i];
			for (size_t i = 0; i < m; i++)
				first[g.c[bl[i].caller].order + 1]++;
			for (size_t k = 1; k <= shown; k++)
				first[k] += first[k - 1];
			/* place each block after its caller's: a counting sort */
			struct live *sorted = malloc((m + 1) * sizeof(*sorted));
			size_t *at = calloc(shown + 1, sizeof(*at));
			if (sorted && at) {
				memcpy(at, first, shown * sizeof(*at));
				for (size_t i = 0; i < m; i++)
					sorted[at[g.c[bl[i].caller].order]++] = bl[i];
				for (size_t k = 0; k < shown; k++)
					qsort(sorted + first[k], first[k + 1] - first[k], sizeof(*sorted), cmp_blocks);
				free(bl);
				bl = sorted;
				sorted = NULL;
			} else {
				blocks = false;
			}
			free(sorted);
			free(at);
		} else {
			blocks = false;
		}
	}

	/* Name the callers shown: only those, each object read once. */
	int status = HS_EXIT_OK;
	struct hs_symbols *sym = NULL;
	struct hs_err err = { 0 };
	unsigned debug = cli->no_debuginfo ? 0 : HS_DEBUG_LOCAL | (cli->no_debuginfod ? 0 : HS_DEBUG_DEBUGINFOD);
	if (hs_symbols_new(pid, debug, &sym, &err) < 0) {
		if (err.code == ENOENT || err.code == ESRCH)
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "no process %d (without --pid, callers are named from the "
					     "files the log names)", (int)pid);
		else
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		goto out;
	}
	struct named *nm = calloc(shown + 1, sizeof(*nm));
	char **warned = NULL;
	size_t nwarned = 0;
	for (size_t k = 0; nm && k < shown; k++)
		name_caller(cli, sym, pid, by[k].text, &nm[k], &warned, &nwarned, &status);
	for (size_t i = 0; i < nwarned; i++)
		free(warned[i]);
	free(warned);

	char fsz[HS_SIZE_BUF];
	static const struct named none;
	if (cli->json) {
		struct hs_json *j = &cli->j;
		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "file", file);
		if (pid > 0)
			hs_json_i64(j, "pid", pid);
		else
			hs_json_null(j, "pid");
		hs_json_str(j, "demangler", hs_symbols_demangler());
		hs_json_u64(j, "lines", g.lines);
		hs_json_u64(j, "not_freed", cnt);
		hs_json_u64(j, "not_freed_bytes", tot);
		hs_json_u64(j, "freed_unknown", g.freed_unknown);
		hs_json_arr_begin(j, "callers");
		for (size_t k = 0; k < shown; k++) {
			hs_json_obj_begin(j, NULL);
			json_caller(j, &by[k], nm ? &nm[k] : &none);
			if (blocks) {
				hs_json_arr_begin(j, "blocks");
				for (size_t i = first[k]; i < first[k + 1]; i++) {
					hs_json_obj_begin(j, NULL);
					hs_json_hex(j, "address", bl[i].addr);
					hs_json_u64(j, "size", bl[i].size);
					hs_json_obj_end(j);
				}
				hs_json_arr_end(j);
			}
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
		hs_json_obj_end(j);
		hs_json_finish(j);
	} else {
		printf("%" PRIu64 " blocks (%s) allocated and not freed in %s:\n", cnt, hs_fmt_size(tot, fsz), file);
		printf("%10s %10s  %s\n", "BLOCKS", "BYTES", "CALLER");
		for (size_t k = 0; k < shown; k++) {
			printf("%10" PRIu64 " %10" PRIu64 "  ", by[k].count, by[k].bytes);
			print_caller(&by[k], nm ? &nm[k] : &none);
			for (size_t i = blocks ? first[k] : 0; blocks && i < first[k + 1]; i++)
				printf("%23s%#018" PRIx64 " %10" PRIu64 "\n", "", bl[i].addr, bl[i].size);
		}
	}
	for (size_t k = 0; nm && k < shown; k++)
		free(nm[k].function);
	free(nm);
out:
	hs_symbols_free(sym);
	free(bl);
	free(first);
	free(by);
	log_release(&g);
	return status;
}

int cmd_mtrace(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "inject", no_argument, NULL, 'i' },
		{ "wait", required_argument, NULL, 'w' },
		{ "top", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "pid", required_argument, NULL, 'p' },
		{ "blocks", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *file = NULL;
	bool inject = false;
	int wait_ms = 3000;
	long topk = 20;
	long rpid = 0;
	bool blocks = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'f': file = optarg; break;
		case 'i': inject = true; break;
		case 'w':
			wait_ms = (int)strtol(optarg, &end, 10);
			if (*end || wait_ms < 0)
				return hs_cli_usage(cli, "--wait takes milliseconds");
			break;
		case 't':
			topk = strtol(optarg, &end, 10);
			if (*end || topk < 1)
				return hs_cli_usage(cli, "--top takes a positive count");
			break;
		case 'j': cli->json = true; break;
		case 'p':
			errno = 0;
			rpid = strtol(optarg, &end, 10);
			if (!*optarg || *end || errno || rpid <= 0 || rpid > INT_MAX)
				return hs_cli_usage(cli, "--pid takes a process id");
			break;
		case 'b': blocks = true; break;
		case 'h':
			fputs(help, stdout);
			if (hs_symbols_demangler())
				printf("\nC++ names are demangled with %s.\n", hs_symbols_demangler());
			else
				fputs("\nC++ names are left mangled: this heapscope was built without libbfd.\n", stdout);
			return HS_EXIT_OK;
		default: return hs_cli_usage(cli, "bad option");
		}
	}
	if (optind >= argc)
		return hs_cli_usage(cli, "missing start, stop, status or report");
	const char *what = argv[optind++];
	if (!strcmp(what, "report")) {
		if (optind + 1 != argc)
			return hs_cli_usage(cli, "report takes one FILE");
		return report(cli, argv[optind], topk, (pid_t)rpid, blocks);
	}
	if (strcmp(what, "start") && strcmp(what, "stop") && strcmp(what, "status"))
		return hs_cli_usage(cli, "'%s': start, stop, status or report", what);
	pid_t pid;
	int r = hs_cli_pid(cli, argc, argv, optind, &pid);
	if (r)
		return r;
	if (inject && strcmp(what, "start"))
		return hs_cli_usage(cli, "--inject goes with start");
	if (!strcmp(what, "status"))
		return status_cmd(cli, pid);
	char def[PATH_MAX];
	if (!strcmp(what, "stop")) {
		if (file)
			return hs_cli_usage(cli, "stop takes no --file: it stops the log the target has open");
		if (!tracing(pid, def, sizeof(def)))
			def[0] = '\0';
		file = def;
	}
	return start_stop(cli, !strcmp(what, "start"), inject, file, wait_ms, pid);
}
