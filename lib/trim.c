#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "call.h"
#include "trim.h"

void hs_trim_opts_default(struct hs_trim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->wait_ms = 3000;
	o->call_timeout_ms = 10000;
	o->use_debuginfo = o->use_debuginfod = true;
	o->function = "malloc_trim";
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
		if (hs_call_retry_wait(deadline) < 0)
			return -EAGAIN;
	}
}

static bool is_java(pid_t pid)
{
	char path[64], exe[4096];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	return !strcmp(basename(exe), "java");
}

/* The sums over the arenas of before (and after, when it was had). */
static void sums(struct hs_trim *t)
{
	const struct hs_heap *hb = &t->before.heap;
	t->resident_before = t->trimmable = t->resident_after = 0;
	for (size_t i = 0; i < hb->narenas; i++) {
		const struct hs_arena *b = &hb->arenas[i];
		const struct hs_arena *a = t->have_after ? hs_heap_arena_at(&t->after.heap, b->addr) : NULL;
		t->resident_before += b->resident;
		t->trimmable += b->trimmable;
		t->resident_after += a ? a->resident : 0;
	}
}

int hs_trim_run(pid_t pid, const struct hs_trim_opts *o, struct hs_trim *t, struct hs_err *err)
{
	memset(t, 0, sizeof(*t));
	t->before.pagemap_fd = t->after.pagemap_fd = -1;
	t->java = is_java(pid);
	/* Threads that do not stop in time for a look (a loaded machine) are,
	 * like an unsafe moment, waited out up to wait_ms: a refusal, not a
	 * failure.  Nothing is changed by a look. */
	int r = snap_retry(pid, o, &t->before, t, err);
	if (r < 0 || o->dry_run) {
		sums(t);
		return r;
	}
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
	t->released = rep.released;
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
	sums(t);
	return 0;
}

void hs_trim_release(struct hs_trim *t)
{
	hs_snapshot_release(&t->before);
	hs_snapshot_release(&t->after);
}
