#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "session.h"
#include "trim.h"

void hs_trim_opts_default(struct hs_trim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->wait_ms = 3000;
	o->call_timeout_ms = 10000;
	o->use_debuginfo = o->use_debuginfod = true;
	o->function = "malloc_trim";
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + ts.tv_nsec / 1000;
}

static int snap(pid_t pid, const struct hs_trim_opts *o, struct hs_snapshot *s, struct hs_err *err)
{
	struct hs_snapshot_opts so;
	hs_snapshot_opts_default(&so);
	so.pad = o->pad;
	so.use_debuginfo = o->use_debuginfo;
	so.use_debuginfod = o->use_debuginfod;
	return hs_snapshot_take(pid, &so, s, err);
}

/* May a call into malloc be made now, and in which thread?  Every thread
 * is stopped.  No arena mutex may be held: malloc_trim would wait for a
 * thread that never runs.  The calling thread must not be inside malloc:
 * neither its program counter in malloc.c's code nor a return address into
 * it in the live top of its stack (a call to mmap, madvise or a futex made
 * from malloc; a signal handler's frame on top of an interrupted malloc);
 * nested into its own half-done malloc, the call would corrupt the lists.
 * Other threads may be inside malloc without a lock (its tcache, a lock-
 * free fastbin push, an mmapped chunk): glibc runs exactly that beside
 * another thread's malloc_trim.  A single-threaded process takes no locks
 * (since 2.27), so its one thread is checked as the caller.
 *
 * The stack check matches words, not frames: a stale return address left
 * in a big frame (a JVM's launcher keeps some from its start-up mallocs)
 * rules that thread out as the caller, and the next one is tried. */
struct code_ranges {
	size_t n;
	struct hs_code_range r[16];
};

static const char *in_code(const struct code_ranges *c, uint64_t a)
{
	for (size_t i = 0; i < c->n; i++)
		if (a >= c->r[i].lo && a < c->r[i].hi)
			return c->r[i].what;
	return NULL;
}

/* Why thread tid cannot make the call (why[0] stays 0 if it can); with
 * only_all, only whether it is inside a range no thread may be in. */
static void caller_check(struct hs_session *ses, struct hs_snapshot *s, const struct hs_maps *maps,
			 const struct code_ranges *all_code, pid_t tid, bool only_all, char *why, size_t whysz)
{
	struct code_ranges sub = { 0 };
	struct code_ranges deep = { 0 };    /* those checked in the stack too */
	for (size_t i = 0; i < all_code->n; i++)
		if ((!only_all || all_code->r[i].all) && !all_code->r[i].lock) {
			sub.r[sub.n++] = all_code->r[i];
			if (!all_code->r[i].pc_only)
				deep.r[deep.n++] = all_code->r[i];
		}
	const struct code_ranges *code = &sub;
	if (!sub.n)
		return;
	struct hs_thread_regs r;
	if (hs_session_regs(ses, tid, &r, NULL) < 0) {
		snprintf(why, whysz, "thread %d: registers unreadable", (int)tid);
		return;
	}
	const char *what;
	if ((what = in_code(code, r.ip))) {
		snprintf(why, whysz, "thread %d is inside %s (pc 0x%" PRIx64 ")", (int)tid, what, r.ip);
		return;
	}
	/* the live part of the stack, up to 64 KiB, never past its mapping */
	static uint64_t stack[8192];
	const struct hs_mapping *m = maps ? hs_maps_find(maps, r.sp) : NULL;
	uint64_t avail = m ? m->end - r.sp : sizeof(stack);
	size_t words = (avail < sizeof(stack) ? avail : sizeof(stack)) / 8;
	while (words >= 8 && hs_mem_read(s->mem, r.sp, stack, 8 * words) < 0)
		words /= 2;
	for (size_t k = 0; k < words; k++)
		if ((what = in_code(&deep, stack[k]))) {
			snprintf(why, whysz, "thread %d is in a call made from %s (return address 0x%" PRIx64 " on its stack)",
				 (int)tid, what, stack[k]);
			return;
		}
	if (only_all)
		return;
	/* The call runs on this thread's stack like a signal handler: it
	 * needs room below sp inside a writable stack mapping, and a thread
	 * holding a signal for delivery is left alone. */
	if (!m || m->perms[0] != 'r' || m->perms[1] != 'w' || r.sp - m->start < (64u << 10) ||
	    !(hs_mapping_anon(m) || !strcmp(m->path, "[stack]")))
		snprintf(why, whysz, "thread %d has not 64 KiB of its own stack free for the call", (int)tid);
	else if (hs_session_holds_signal(ses, tid))
		snprintf(why, whysz, "thread %d holds a signal for delivery", (int)tid);
}

static bool safe(struct hs_session *ses, struct hs_snapshot *s, const struct hs_maps *maps,
		 const struct code_ranges *code, pid_t *pick, char *why, size_t whysz, struct hs_err *err)
{
	struct hs_heap h;
	*pick = 0;
	hs_mem_cache_drop(s->mem);
	if (hs_heap_walk(s->mem, &s->libc, NULL, 0, NULL, &h, err) < 0) {
		snprintf(why, whysz, "%s", err->msg);
		return false;
	}
	for (size_t i = 0; i < h.narenas; i++)
		if (h.arenas[i].mutex) {
			snprintf(why, whysz, "arena %zu (0x%" PRIx64 ") is locked by a thread inside malloc", i,
				 h.arenas[i].addr);
			hs_heap_release(&h);
			return false;
		}
	hs_heap_release(&h);
	for (size_t i = 0; i < code->n; i++) {
		uint32_t lw[3];
		if (code->r[i].lock && code->r[i].lll && hs_mem_read(s->mem, code->r[i].lock, lw, 4) == 0 && lw[0]) {
			snprintf(why, whysz, "%s is held", code->r[i].what);
			return false;
		}
		if (code->r[i].lock && !code->r[i].lll && hs_mem_read(s->mem, code->r[i].lock, lw, sizeof(lw)) == 0 &&
		    lw[0]) {
			snprintf(why, whysz, "%s is held by thread %u", code->r[i].what, lw[2]);
			return false;
		}
	}
	/* the main thread first (its stack is the largest), then the others;
	 * the first one's reason is the one reported */
	const pid_t *tids;
	size_t n = hs_session_threads(ses, &tids);
	why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		caller_check(ses, s, maps, code, tids[i], true, why, whysz);
		if (why[0])
			return false;
	}
	for (int pass = 0; pass < 2 && !*pick; pass++)
		for (size_t i = 0; i < n && !*pick; i++) {
			if ((pass == 0) != (tids[i] == s->pid))
				continue;
			char reason[256] = "";
			caller_check(ses, s, maps, code, tids[i], false, reason, sizeof(reason));
			if (!reason[0])
				*pick = tids[i];
			else if (!why[0])
				snprintf(why, whysz, "%s", reason);
		}
	if (!n)
		snprintf(why, whysz, "no thread is stopped");
	return *pick != 0;
}

int hs_call_attach(pid_t pid, uint64_t deadline_us, struct hs_session **ses, struct hs_call_report *rep,
		   struct hs_err *err)
{
	for (;;) {
		struct hs_err aerr = { 0 };
		int r = hs_session_attach(pid, 2000, ses, &aerr);
		if (r == 0)
			return 0;
		/* Threads that do not stop in time (a loaded machine, a thread
		 * in uninterruptible sleep): nothing was done; like an unsafe
		 * moment, wait and try again. */
		if (r != -ETIMEDOUT) {
			if (err)
				*err = aerr;
			return r;
		}
		snprintf(rep->unsafe, sizeof(rep->unsafe), "%s", aerr.msg);
		rep->pause_us += hs_session_last_pause_us();
		if (now_us() > deadline_us)
			return -EAGAIN;
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
	}
}

uint64_t hs_call_deadline(int wait_ms)
{
	return now_us() + (uint64_t)wait_ms * 1000;
}

int hs_call_begin(pid_t pid, const struct hs_libc *libc, const struct hs_maps *maps, struct hs_mem *mem,
		  const struct hs_code_range *extra, size_t nextra, int wait_ms, struct hs_session **out,
		  struct hs_call_report *rep, struct hs_err *err)
{
	/* Unsafe code: malloc.c's, and all of libc_malloc_debug.so's (its
	 * wrappers take the trace stream's lock around libc's malloc). */
	struct code_ranges code = { 0 };
	if (hs_libc_malloc_code(libc, &code.r[0].lo, &code.r[0].hi) < 0)
		return hs_err_set(err, ENOENT, "cannot find malloc's code in %s", libc->map_path);
	code.r[0].what = "malloc";
	code.n = 1;
	for (size_t i = 0; maps && i < maps->n && code.n < 8; i++)
		if (strstr(maps->v[i].path, "libc_malloc_debug") && maps->v[i].perms[2] == 'x')
			code.r[code.n++] = (struct hs_code_range){ maps->v[i].start, maps->v[i].end, "malloc", false, false, 0 };
	for (size_t i = 0; i < nextra && code.n < sizeof(code.r) / sizeof(code.r[0]); i++)
		code.r[code.n++] = extra[i];
	struct hs_call_return cr;
	if (hs_libc_call_return(libc, &cr) < 0)
		return hs_err_set(err, ENOTSUP, "no return trampoline (rt_sigreturn) found in %s: no call made",
				  libc->map_path);
	/* a snapshot-like view for the check: libc and memory as given */
	struct hs_snapshot view;
	memset(&view, 0, sizeof(view));
	view.pid = pid;
	view.libc = *libc;
	view.mem = mem;
	uint64_t deadline = hs_call_deadline(wait_ms);
	for (;;) {
		struct hs_session *ses;
		int r;
		rep->attempts++;
		if ((r = hs_call_attach(pid, deadline, &ses, rep, err)) < 0)
			return r;
		hs_session_set_return(ses, &cr);
		pid_t tid;
		if (safe(ses, &view, maps, &code, &tid, rep->unsafe, sizeof(rep->unsafe), err)) {
			rep->tid = tid;
			rep->t0_us = now_us();
			*out = ses;
			return 0;
		}
		hs_session_detach(ses, NULL);
		rep->pause_us += hs_session_last_pause_us();
		if (now_us() > deadline)
			return -EAGAIN;
		/* let the thread finish what it does in malloc, and look again */
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
	}
}

void hs_call_end(struct hs_session *ses, struct hs_call_report *rep)
{
	rep->call_us = now_us() - rep->t0_us;
	hs_session_detach(ses, NULL);
	rep->pause_us += hs_session_last_pause_us();
}

int hs_call_safely(pid_t pid, const struct hs_libc *libc, const struct hs_maps *maps, struct hs_mem *mem,
		   const struct hs_code_range *extra, size_t nextra, const struct hs_call *calls, size_t n, int wait_ms,
		   int timeout_ms, struct hs_call_report *rep, struct hs_err *err)
{
	struct hs_session *ses;
	int r = hs_call_begin(pid, libc, maps, mem, extra, nextra, wait_ms, &ses, rep, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		r = hs_session_call_data(ses, rep->tid, calls[i].func, calls[i].args, calls[i].nargs, calls[i].data,
					 calls[i].dlen, timeout_ms, &rep->ret[i], err);
		rep->done = i + 1;
	}
	if (rep->t0_us)
		hs_call_end(ses, rep);
	return r;
}

/* snap, again while the threads do not stop in time, up to o->wait_ms:
 * then -EAGAIN with t->unsafe saying why. */
static int snap_retry(pid_t pid, const struct hs_trim_opts *o, struct hs_snapshot *s, struct hs_trim *t,
		      struct hs_err *err)
{
	uint64_t deadline = hs_call_deadline(o->wait_ms);
	for (;;) {
		struct hs_err e = { 0 };
		int r = snap(pid, o, s, &e);
		if (r != -ETIMEDOUT) {
			if (r < 0 && err)
				*err = e;
			return r;
		}
		hs_snapshot_release(s);
		memset(s, 0, sizeof(*s));
		s->pagemap_fd = -1;
		t->attempts++;
		snprintf(t->unsafe, sizeof(t->unsafe), "%s", e.msg);
		if (now_us() > deadline)
			return -EAGAIN;
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
	}
}

int hs_trim_run(pid_t pid, const struct hs_trim_opts *o, struct hs_trim *t, struct hs_err *err)
{
	memset(t, 0, sizeof(*t));
	t->before.pagemap_fd = t->after.pagemap_fd = -1;
	/* Threads that do not stop in time for a look (a loaded machine) are,
	 * like an unsafe moment, waited out up to wait_ms: a refusal, not a
	 * failure.  Nothing is changed by a look. */
	int r = snap_retry(pid, o, &t->before, t, err);
	if (r < 0 || o->dry_run)
		return r;
	struct hs_call call = { .nargs = 1, .args = { o->pad } };
	if (hs_libc_lookup(&t->before.libc, o->function, &call.func) < 0)
		return hs_err_set(err, ENOENT, "%s not found in %s", o->function, t->before.libc.map_path);
	struct hs_call_report rep = { 0 };
	r = hs_call_safely(pid, &t->before.libc, &t->before.maps, t->before.mem, NULL, 0, &call, 1, o->wait_ms,
			   o->call_timeout_ms,
			   &rep, err);
	t->attempts += rep.attempts;
	t->pause_us = rep.pause_us;
	t->call_us = rep.call_us;
	t->tid = rep.tid;
	t->calls_made = rep.done;
	snprintf(t->unsafe, sizeof(t->unsafe), "%s", rep.unsafe);
	if (r < 0)
		return r;
	t->called = true;
	t->ret = rep.ret[0];
	/* done: a look after that cannot be had is no failure of the trim */
	struct hs_err e = { 0 };
	t->have_after = snap_retry(pid, o, &t->after, t, &e) == 0;
	if (!t->have_after)
		snprintf(t->unsafe, sizeof(t->unsafe), "%s", e.msg[0] ? e.msg : "the look after the call was refused");
	return 0;
}

void hs_trim_release(struct hs_trim *t)
{
	hs_snapshot_release(&t->before);
	hs_snapshot_release(&t->after);
}
