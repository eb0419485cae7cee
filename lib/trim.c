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
	so.use_debuginfo = o->use_debuginfo;
	so.use_debuginfod = o->use_debuginfod;
	return hs_snapshot_take(pid, &so, s, err);
}

/* Is any thread inside malloc?  Every thread is stopped.  An arena mutex
 * held, a program counter inside malloc.c's code, or a return address into
 * it in the live top of a thread's stack (a thread in mmap, madvise or a
 * futex called from malloc) is unsafe: calling malloc_trim then deadlocks
 * or, single-threaded (no lock since 2.27), corrupts the lists. */
static bool safe(struct hs_session *ses, struct hs_snapshot *s, uint64_t lo, uint64_t hi, pid_t *pick, char *why,
		 size_t whysz, struct hs_err *err)
{
	struct hs_heap h;
	hs_mem_cache_drop(s->mem);
	if (hs_heap_walk(s->mem, &s->libc, NULL, 0, NULL, &h, err) < 0) {
		snprintf(why, whysz, "%s", err->msg);
		return false;
	}
	bool ok = true;
	for (size_t i = 0; i < h.narenas && ok; i++)
		if (h.arenas[i].mutex) {
			snprintf(why, whysz, "arena %zu (0x%" PRIx64 ") is locked by a thread inside malloc", i,
				 h.arenas[i].addr);
			ok = false;
		}
	hs_heap_release(&h);
	const pid_t *tids;
	size_t n = hs_session_threads(ses, &tids);
	*pick = 0;
	for (size_t i = 0; i < n && ok; i++) {
		struct hs_thread_regs r;
		if (hs_session_regs(ses, tids[i], &r, NULL) < 0)
			continue;
		if (r.ip >= lo && r.ip < hi) {
			snprintf(why, whysz, "thread %d is inside malloc (pc 0x%" PRIx64 ")", (int)tids[i], r.ip);
			ok = false;
			break;
		}
		uint64_t stack[512];
		if (hs_mem_read(s->mem, r.sp, stack, sizeof(stack)) < 0 &&
		    hs_mem_read(s->mem, r.sp, stack, 8 * 64) < 0)
			continue;
		for (size_t k = 0; k < 512; k++)
			if (stack[k] >= lo && stack[k] < hi) {
				snprintf(why, whysz, "thread %d is in a call made from malloc (return address 0x%" PRIx64
					 " on its stack)", (int)tids[i], stack[k]);
				ok = false;
				break;
			}
		if (!*pick || tids[i] == s->pid)
			*pick = tids[i];
	}
	return ok && *pick;
}

int hs_trim_run(pid_t pid, const struct hs_trim_opts *o, struct hs_trim *t, struct hs_err *err)
{
	memset(t, 0, sizeof(*t));
	t->before.pagemap_fd = t->after.pagemap_fd = -1;
	int r = snap(pid, o, &t->before, err);
	if (r < 0 || o->dry_run)
		return r;
	uint64_t fn, lo, hi;
	if (hs_libc_lookup(&t->before.libc, o->function, &fn) < 0)
		return hs_err_set(err, ENOENT, "%s not found in %s", o->function, t->before.libc.map_path);
	if (hs_libc_malloc_code(&t->before.libc, &lo, &hi) < 0)
		return hs_err_set(err, ENOENT, "cannot find malloc's code in %s", t->before.libc.map_path);
	uint64_t deadline = now_us() + (uint64_t)o->wait_ms * 1000;
	for (;;) {
		struct hs_session *ses;
		t->attempts++;
		if ((r = hs_session_attach(pid, 2000, &ses, err)) < 0)
			return r;
		pid_t tid;
		if (safe(ses, &t->before, lo, hi, &tid, t->unsafe, sizeof(t->unsafe), err)) {
			uint64_t args[1] = { o->pad }, t0 = now_us();
			r = hs_session_call(ses, tid, fn, args, 1, o->call_timeout_ms, &t->ret, err);
			t->call_us = now_us() - t0;
			t->tid = tid;
			t->called = r == 0;
			hs_session_detach(ses, NULL);
			t->pause_us += hs_session_last_pause_us();
			if (r < 0)
				return r;
			break;
		}
		hs_session_detach(ses, NULL);
		t->pause_us += hs_session_last_pause_us();
		if (now_us() > deadline)
			return -EAGAIN;
		/* let the thread finish what it does in malloc, and look again */
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
	}
	return snap(pid, o, &t->after, err);
}

void hs_trim_release(struct hs_trim *t)
{
	hs_snapshot_release(&t->before);
	hs_snapshot_release(&t->after);
}
