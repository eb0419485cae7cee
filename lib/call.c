#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "call.h"
#include "heap.h"
#include "proc.h"

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + ts.tv_nsec / 1000;
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
	struct hs_code_range r[24];
};

/* What the check looks at: the stopped process, its libc and memory, and
 * the code and locks no caller may be in or hold. */
struct call_target {
	pid_t pid;
	const struct hs_libc *libc;
	const struct hs_maps *maps;
	struct hs_mem *mem;
	struct code_ranges code;
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
static void caller_check(struct hs_session *ses, const struct call_target *t, pid_t tid, bool only_all, char *why,
			 size_t whysz)
{
	struct code_ranges sub = { 0 };
	struct code_ranges deep = { 0 };    /* those checked in the stack too */
	for (size_t i = 0; i < t->code.n; i++)
		if ((!only_all || t->code.r[i].all) && !t->code.r[i].lock) {
			sub.r[sub.n++] = t->code.r[i];
			if (!t->code.r[i].pc_only)
				deep.r[deep.n++] = t->code.r[i];
		}
	if (!sub.n)
		return;
	struct hs_thread_regs r;
	if (hs_session_regs(ses, tid, &r, NULL) < 0) {
		snprintf(why, whysz, "thread %d: registers unreadable", (int)tid);
		return;
	}
	const char *what;
	if ((what = in_code(&sub, r.ip))) {
		snprintf(why, whysz, "thread %d is inside %s (pc 0x%" PRIx64 ")", (int)tid, what, r.ip);
		return;
	}
	/* the live part of the stack, up to 64 KiB, never past its mapping */
	static uint64_t stack[8192];
	const struct hs_mapping *m = t->maps ? hs_maps_find(t->maps, r.sp) : NULL;
	uint64_t avail = m ? m->end - r.sp : sizeof(stack);
	size_t words = (avail < sizeof(stack) ? avail : sizeof(stack)) / 8;
	while (words >= 8 && hs_mem_read(t->mem, r.sp, stack, 8 * words) < 0)
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

/* No arena mutex held: malloc_trim would wait for a thread that never runs. */
static bool arenas_unlocked(const struct call_target *t, char *why, size_t whysz, struct hs_err *err)
{
	struct hs_heap h;
	/* the mutexes as they are now: nothing read before this stop */
	hs_mem_cache_preload_unload(t->mem);
	hs_mem_cache_drop(t->mem);
	if (hs_heap_walk(t->mem, t->libc, NULL, 0, NULL, &h, err) < 0) {
		snprintf(why, whysz, "%s", err->msg);
		return false;
	}
	bool ok = true;
	for (size_t i = 0; ok && i < h.narenas; i++)
		if (h.arenas[i].mutex) {
			snprintf(why, whysz, "arena %zu (0x%" PRIx64 ") is locked by a thread inside malloc", i,
				 h.arenas[i].addr);
			ok = false;
		}
	hs_heap_release(&h);
	return ok;
}

/* No lock the caller named is held. */
static bool locks_free(const struct call_target *t, char *why, size_t whysz)
{
	for (size_t i = 0; i < t->code.n; i++) {
		const struct hs_code_range *c = &t->code.r[i];
		uint32_t lw[3];
		if (c->lock && c->lll && hs_mem_read(t->mem, c->lock, lw, 4) == 0 && lw[0]) {
			snprintf(why, whysz, "%s is held", c->what);
			return false;
		}
		if (c->lock && !c->lll && hs_mem_read(t->mem, c->lock, lw, sizeof(lw)) == 0 && lw[0]) {
			snprintf(why, whysz, "%s is held by thread %u", c->what, lw[2]);
			return false;
		}
	}
	return true;
}

/* No thread inside code no thread may be in, then the caller: the main
 * thread first (its stack is the largest), then the others; the first
 * one's reason is the one reported. */
static pid_t pick_caller(struct hs_session *ses, const struct call_target *t, char *why, size_t whysz)
{
	const pid_t *tids;
	size_t n = hs_session_threads(ses, &tids);
	pid_t pick = 0;
	why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		caller_check(ses, t, tids[i], true, why, whysz);
		if (why[0])
			return 0;
	}
	for (int pass = 0; pass < 2 && !pick; pass++)
		for (size_t i = 0; i < n && !pick; i++) {
			if ((pass == 0) != (tids[i] == t->pid))
				continue;
			char reason[256] = "";
			caller_check(ses, t, tids[i], false, reason, sizeof(reason));
			if (!reason[0])
				pick = tids[i];
			else if (!why[0])
				snprintf(why, whysz, "%s", reason);
		}
	if (!n)
		snprintf(why, whysz, "no thread is stopped");
	return pick;
}

static bool safe(struct hs_session *ses, const struct call_target *t, pid_t *pick, char *why, size_t whysz,
		 struct hs_err *err)
{
	*pick = 0;
	if (!arenas_unlocked(t, why, whysz, err) || !locks_free(t, why, whysz))
		return false;
	*pick = pick_caller(ses, t, why, whysz);
	return *pick != 0;
}

int hs_call_retry_wait(uint64_t deadline_us)
{
	if (now_us() > deadline_us)
		return -EAGAIN;
	struct timespec ts = { 0, 20000000 };
	nanosleep(&ts, NULL);
	return 0;
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
		if (hs_call_retry_wait(deadline_us) < 0)
			return -EAGAIN;
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
	struct call_target t = { .pid = pid, .libc = libc, .maps = maps, .mem = mem };
	struct code_ranges *code = &t.code;
	if (hs_libc_malloc_code(libc, &code->r[0].lo, &code->r[0].hi) < 0)
		return hs_err_set(err, ENOENT, "cannot find malloc's code in %s", libc->map_path);
	code->r[0].what = "malloc";
	code->n = 1;
	for (size_t i = 0; maps && i < maps->n && code->n < 8; i++)
		if (strstr(maps->v[i].path, "libc_malloc_debug") && maps->v[i].perms[2] == 'x')
			code->r[code->n++] = (struct hs_code_range){ maps->v[i].start, maps->v[i].end, "malloc", false, false, 0 };
	for (size_t i = 0; i < nextra && code->n < sizeof(code->r) / sizeof(code->r[0]); i++)
		code->r[code->n++] = extra[i];
	struct hs_call_return cr;
	if (hs_libc_call_return(libc, &cr) < 0)
		return hs_err_set(err, ENOTSUP, "no return trampoline (rt_sigreturn) found in %s: no call made",
				  libc->map_path);
	uint64_t deadline = hs_call_deadline(wait_ms);
	/* test hook: after the look, before the stop for the call */
	hs_test_wait("HEAPSCOPE_TEST_CALL_WAIT", "call");
	for (;;) {
		struct hs_session *ses;
		int r;
		rep->attempts++;
		if ((r = hs_call_attach(pid, deadline, &ses, rep, err)) < 0)
			return r;
		hs_session_set_return(ses, &cr);
		pid_t tid;
		if (safe(ses, &t, &tid, rep->unsafe, sizeof(rep->unsafe), err)) {
			rep->tid = tid;
			rep->t0_us = now_us();
			*out = ses;
			return 0;
		}
		hs_session_detach(ses, NULL);
		rep->pause_us += hs_session_last_pause_us();
		/* let the thread finish what it does in malloc, and look again */
		if (hs_call_retry_wait(deadline) < 0)
			return -EAGAIN;
	}
}

void hs_call_end(struct hs_session *ses, struct hs_call_report *rep)
{
	rep->call_us = now_us() - rep->t0_us;
	rep->released = hs_session_released(ses);
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
