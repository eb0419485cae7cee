/* glibc's tracer on and off in a live process: see mtrace.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtrace.h"
#include "mtrace_log.h"
#include "proc.h"
#include "state.h"

/* Is pid tracing, and into which file?  glibc's tracer keeps its log open
 * from mtrace() to muntrace().  heapscope's own start is recorded (the log
 * may still be empty, its "= Start" in the target's stdio buffer); a trace
 * started otherwise is seen by its log's first line. */
static bool tracing(pid_t pid, char *file, size_t len)
{
	struct hs_trace_record rec;
	if (hs_state_trace_record_read(pid, &rec, NULL) == 0) {
		bool injection = rec.dbg[0] != '\0';
		hs_state_trace_record_release(&rec);
		if (hs_proc_has_open(pid, rec.file) == 0) {
			snprintf(file, len, "%s", rec.file);
			return true;
		}
		/* stopped by someone else; but an injection's record is what
		 * puts its slots back, so it stays until stop */
		if (!injection)
			hs_state_remove(pid, "mtrace");
	}
	return hs_proc_open_file_with(pid, "= Start", file, len) == 0;
}

int hs_mtrace_status(pid_t pid, struct hs_mtrace_status *st, struct hs_err *err)
{
	struct hs_proc_status ps;
	int r;
	memset(st, 0, sizeof(*st));
	if ((r = hs_proc_check(pid, false, &ps, err)) < 0 || (r = hs_state_check(false, err)) < 0)
		return r;
	st->tracing = tracing(pid, st->file, sizeof(st->file));
	st->injected = st->tracing && hs_inject_recorded(pid, &st->inj) == 1 && !strcmp(st->inj.log, st->file);
	return 0;
}

/* The mtrace and muntrace to call: libc_malloc_debug.so's (2.34+, only
 * when loaded) or libc's own (before 2.34). */
static int tracer(const struct hs_snapshot *s, struct hs_libc *dbg, bool *have_dbg, struct hs_err *err)
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
	return hs_err_set(err, ENOTSUP, "glibc 2.34 and later keep mtrace in libc_malloc_debug.so, and this process did "
			  "not load it: libc.so.6's mtrace() is an empty stub and tracing cannot start without a restart; "
			  "restart it with LD_PRELOAD=libc_malloc_debug.so.0 (and MALLOC_TRACE=FILE), or use heapscope "
			  "chunks/bins now");
}

/* err's message with text after it */
static int append(struct hs_err *err, int r, const char *text)
{
	if (err && *text) {
		char m[sizeof(err->msg)];
		snprintf(m, sizeof(m), "%s", err->msg);
		hs_err_set(err, -r, "%.*s%s", (int)(sizeof(m) - strlen(text) - 1), m, text);
	}
	return r;
}

/* start --inject, and the stop of an injected trace */
static int injected(const struct hs_snapshot *s, const struct hs_mtrace_opts *o, bool start, const char *file,
		    bool private_log, struct hs_mtrace_report *rep, struct hs_err *err)
{
	struct hs_inject_opts io = { .log = file, .private_log = private_log, .wait_ms = o->wait_ms,
				     .timeout_ms = o->timeout_ms };
	struct hs_inject_report *ir = &rep->inj;
	rep->injected = true;
	int r = start ? hs_inject_start(s, &io, ir, err) : hs_inject_stop(s, &io, ir, err);
	snprintf(rep->file, sizeof(rep->file), "%s", ir->log);
	snprintf(rep->tracer, sizeof(rep->tracer), "%s", ir->dbg_path);
	if (r == -EAGAIN && !start && ir->slots)
		return hs_err_set(err, EAGAIN, "%zu GOT slots put back, but muntrace() was not safe within %d ms: %s; the "
				  "log stays open: run stop again", ir->slots, o->wait_ms, ir->call.unsafe);
	if (r == -EAGAIN)
		return hs_err_set(err, EAGAIN, "not safe to call into the target within %d ms: %s (nothing was called)",
				  o->wait_ms, ir->call.unsafe);
	if (r < 0 && start && ir->call.done)
		return append(err, r, " (undone: no slot changed, tracing off; the library stays loaded)");
	return r;
}

/* setenv (start) and mtrace(), or muntrace(), in one safe stop */
static int call_tracer(const struct hs_snapshot *s, const struct hs_libc *dbg, bool start, const char *file,
		       const struct hs_mtrace_opts *o, struct hs_call_report *rep, struct hs_err *err)
{
	struct hs_call calls[2];
	memset(calls, 0, sizeof(calls));
	size_t n = 0;
	char data[PATH_MAX + 32];
	if (start && hs_inject_setenv_call(&s->libc, file, data, sizeof(data), &calls[n++]) < 0)
		return hs_err_set(err, ENOENT, "cannot set up setenv in the target");
	if (hs_libc_lookup(dbg, start ? "mtrace" : "muntrace", &calls[n].func) < 0)
		return hs_err_set(err, ENOENT, "%s not found in %s", start ? "mtrace" : "muntrace", dbg->map_path);
	n++;
	/* stop: muntrace() clears the stream that a thread inside the tracer
	 * may be about to write to; no thread may be in there */
	struct hs_code_range extra[4];
	size_t nextra = start ? 0 : hs_inject_tracer_code(&s->maps, extra, 1);
	/* setenv takes the environment's lock, mtrace's fopen and muntrace's
	 * fclose stdio's list lock: a thread holding one would never let it
	 * go while stopped, and the call would wait for it */
	nextra += hs_inject_libc_locks(&s->libc, &s->maps, s->mem,
				       start ? HS_LIBC_LOCK_STDIO | HS_LIBC_LOCK_ENV : HS_LIBC_LOCK_STDIO, extra + nextra,
				       3);
	int r = hs_call_safely(s->pid, &s->libc, &s->maps, s->mem, extra, nextra, calls, n, o->wait_ms, o->timeout_ms,
			       rep, err);
	if (r == -EAGAIN)
		return hs_err_set(err, EAGAIN, "not safe to call into the target within %d ms: %s (nothing was called)",
				  o->wait_ms, rep->unsafe);
	if (r < 0)
		return append(err, r, rep->done && r != -ETIMEDOUT && r != -ESRCH && r != -ENOTSUP
					      ? " (the thread was put back as it was)" : "");
	if (start && rep->ret[0] != 0)
		return hs_err_set(err, EIO, "setenv failed in the target (returned %d)", (int)rep->ret[0]);
	return 0;
}

/* The plain start, the tracer found: the calls, then what the target
 * did, seen from outside (its log open), then the record. */
static int plain_start(const struct hs_snapshot *s, const struct hs_libc *dbg, const struct hs_mtrace_opts *o,
		       bool private_log, struct hs_mtrace_report *rep, struct hs_err *err)
{
	pid_t pid = s->pid;
	const char *path = rep->file;
	int r = call_tracer(s, dbg, true, path, o, &rep->call, err);
	if (r < 0)
		return r;
	if (path[0] != '/' || hs_proc_has_open(pid, path) < 0)
		return hs_err_set(err, EIO, "mtrace() ran but opened no %s: tracing is not on (a setuid process ignores "
				  "MALLOC_TRACE; a relative path is the target's cwd)", path);
	if ((r = hs_state_trace_opened(pid, path, private_log, err)) < 0) {
		char t[64];
		snprintf(t, sizeof(t), ": tracing is on, stop it with heapscope mtrace stop %d", (int)pid);
		return append(err, r, t);
	}
	struct hs_trace_record rec = { 0 };
	struct hs_err e = { 0 };
	snprintf(rec.file, sizeof(rec.file), "%s", path);
	if (hs_state_trace_record_write(pid, &rec, &e) < 0)
		snprintf(rep->warning, sizeof(rep->warning), "%s: heapscope mtrace status and a second start cannot know "
			 "of this trace until its log has data", e.msg);
	return 0;
}

/* The start, the look taken; *private_log set once a private log
 * directory was made (the caller removes it on failure). */
static int start_on(const struct hs_snapshot *s, const struct hs_mtrace_opts *o, struct hs_mtrace_report *rep,
		    bool *private_log, struct hs_err *err)
{
	pid_t pid = s->pid;
	char current[PATH_MAX];
	int r;
	/* mtrace() while tracing does nothing: say so rather than call */
	if (tracing(pid, current, sizeof(current)))
		return hs_err_set(err, EEXIST, "pid %d is already tracing into %s: nothing done (stop it first)", (int)pid,
				  current);
	/* the log: never a path someone else may have planted */
	if (!o->file) {
		if ((r = hs_state_trace_dir(pid, rep->file, sizeof(rep->file), err)) < 0)
			return append(err, r, ": nothing done");
		*private_log = true;
	} else if ((r = hs_state_trace_check_path(pid, o->file, err)) < 0) {
		return append(err, r, ": nothing done");
	} else {
		snprintf(rep->file, sizeof(rep->file), "%s", o->file);
	}
	struct hs_libc dbg;
	bool have_dbg;
	bool modern = !(s->libc.major == 2 && s->libc.minor < 34);
	if ((r = tracer(s, &dbg, &have_dbg, err)) < 0)
		return o->inject && modern ? injected(s, o, true, rep->file, *private_log, rep, err) : r;
	snprintf(rep->tracer, sizeof(rep->tracer), "%s", dbg.map_path);
	/* loaded, but is malloc routed to it?  Preloaded it is; loaded late
	 * (an earlier --inject, a dlopen) it is not */
	bool routed = true;
	if (have_dbg && (r = hs_inject_routed(pid, &s->maps, s->mem, &routed, err)) < 0)
		return r;
	if (!routed && o->inject)
		return injected(s, o, true, rep->file, *private_log, rep, err);
	if (!routed)
		return hs_err_set(err, ENOTSUP, "%s is loaded in pid %d but malloc does not go through it (it was loaded "
				  "late): mtrace() would log nothing; use start --inject", dbg.map_path, (int)pid);
	return plain_start(s, &dbg, o, *private_log, rep, err);
}

static int stop_on(const struct hs_snapshot *s, const struct hs_mtrace_opts *o, struct hs_mtrace_report *rep,
		   struct hs_err *err)
{
	pid_t pid = s->pid;
	bool on = tracing(pid, rep->file, sizeof(rep->file));
	/* an injection is undone from its record, its log open or not (a
	 * program may have closed it: its slots still go to the tracer) */
	struct hs_inject_report ir;
	if (hs_inject_recorded(pid, &ir) == 1)
		return injected(s, o, false, ir.log, false, rep, err);
	if (!on)
		return hs_err_set(err, ENOENT, "pid %d is not tracing: nothing to stop", (int)pid);
	struct hs_libc dbg;
	bool have_dbg;
	int r;
	if ((r = tracer(s, &dbg, &have_dbg, err)) < 0)
		return r;
	snprintf(rep->tracer, sizeof(rep->tracer), "%s", dbg.map_path);
	if ((r = call_tracer(s, &dbg, false, rep->file, o, &rep->call, err)) < 0)
		return r;
	if (hs_proc_has_open(pid, rep->file) == 0)
		return hs_err_set(err, EIO, "muntrace() ran but %s is still open: tracing is still on", rep->file);
	hs_state_remove(pid, "mtrace");
	return 0;
}

static int start_stop(pid_t pid, bool start, const struct hs_mtrace_opts *o, struct hs_mtrace_report *rep,
		      struct hs_err *err)
{
	memset(rep, 0, sizeof(*rep));
	/* records only from a trusted directory: stop writes their slots */
	int r = hs_state_check(false, err);
	if (r < 0)
		return r;
	struct hs_snapshot s;
	struct hs_snapshot_opts so = o->snap;
	so.residency = false;
	so.walk = 0;
	bool private_log = false;
	if ((r = hs_snapshot_take(pid, &so, &s, err)) == 0)
		r = start ? start_on(&s, o, rep, &private_log, err) : stop_on(&s, o, rep, err);
	if (private_log && r < 0) {
		/* the directory made for nothing (rmdir leaves one with a log) */
		char d[PATH_MAX + 64];
		snprintf(d, sizeof(d), "/proc/%d/root%s", (int)pid, rep->file);
		*strrchr(d, '/') = '\0';
		rmdir(d);
	}
	hs_snapshot_release(&s);
	return r;
}

int hs_mtrace_start(pid_t pid, const struct hs_mtrace_opts *o, struct hs_mtrace_report *rep, struct hs_err *err)
{
	return start_stop(pid, true, o, rep, err);
}

int hs_mtrace_stop(pid_t pid, const struct hs_mtrace_opts *o, struct hs_mtrace_report *rep, struct hs_err *err)
{
	return start_stop(pid, false, o, rep, err);
}

void hs_mtrace_name(struct hs_symbols *sym, pid_t pid, const char *text, struct hs_mtrace_named *nm)
{
	memset(nm, 0, sizeof(*nm));
	struct hs_mtrace_where w;
	if (!sym || !hs_mtrace_caller_parse(text, &w))
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
	/* not this process's object: the log is another process's, or its
	 * library was unloaded */
	if (pid > 0 && w.object[0] && !nm->y.mapped)
		snprintf(nm->unmapped, sizeof(nm->unmapped), "%s", w.object);
	if (!nm->y.function && w.sym[0] && !w.sym_neg) {
		/* dladdr's name from the log itself (the file is gone) */
		char *d = hs_symbols_demangle(w.sym);
		nm->function = d ? d : strdup(w.sym);
		nm->y.offset = w.sym_off;
	}
}

int hs_mtrace_summarise(const char *file, const struct hs_mtrace_summary_opts *o, struct hs_mtrace_summary *sm,
			struct hs_err *err)
{
	memset(sm, 0, sizeof(*sm));
	struct hs_mtrace_log *g = &sm->log;
	if (hs_mtrace_log_open(g) < 0)
		return hs_err_set(err, ENOMEM, "%s: out of memory", file);
	int r = hs_mtrace_log_read_file(g, file, err);
	if (r == 0 && hs_mtrace_log_finish(g, o->blocks ? o->top : 0) < 0)
		r = hs_err_set(err, ENOMEM, "%s: out of memory", file);
	if (r < 0)
		goto fail;
	sm->shown = g->ncallers < o->top ? g->ncallers : o->top;
	if (!(sm->named = calloc(sm->shown + 1, sizeof(*sm->named)))) {
		r = hs_err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	r = hs_symbols_new(o->pid, o->debug, &sm->sym, err);
	if (r < 0 && err && (err->code == ENOENT || err->code == ESRCH))
		r = hs_err_set(err, ESRCH, "no process %d (without --pid, callers are named from the files the log names)",
			       (int)o->pid);
	if (r < 0)
		goto fail;
	/* only the callers shown: each object is read once */
	for (size_t k = 0; k < sm->shown; k++) {
		struct hs_mtrace_named *nm = &sm->named[k];
		hs_mtrace_name(sm->sym, o->pid, g->callers[k].text, nm);
		size_t i = 0;
		while (i < k && strcmp(sm->named[i].unmapped, nm->unmapped))
			i++;
		nm->unmapped_first = nm->unmapped[0] && i == k;
	}
	return 0;
fail:
	hs_mtrace_summary_release(sm);
	return r;
}

void hs_mtrace_summary_release(struct hs_mtrace_summary *sm)
{
	for (size_t k = 0; sm->named && k < sm->shown; k++)
		free(sm->named[k].function);
	free(sm->named);
	sm->named = NULL;
	hs_symbols_free(sm->sym);
	sm->sym = NULL;
	hs_mtrace_log_release(&sm->log);
}
