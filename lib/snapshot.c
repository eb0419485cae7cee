#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "session.h"
#include "snapshot.h"

void hs_snapshot_opts_default(struct hs_snapshot_opts *o)
{
	memset(o, 0, sizeof(*o));        /* every field a caller does not set: off */
	o->use_debuginfo = true;
	o->use_debuginfod = true;
	o->freeze = true;
	o->residency = true;
	o->pad = 0;
	o->walk = HS_WALK_LISTS;
	o->stopped = NULL;
	o->arena_hook.arena = NULL;
	o->arena_hook.ctx = NULL;
	o->stopped_ctx = NULL;
	o->stop_timeout_ms = 2000;
	o->lock_retries = 5;
	o->stop_budget_ms = HS_SNAPSHOT_STOP_BUDGET_MS;
	o->max_arenas = 0;
	o->max_chunks = 0;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + ts.tv_nsec / 1000;
}

static bool execd_since(pid_t pid);

/* A read met a vanished process: it exited, or it exec'd (its old memory
 * gone with the old image). */
static int gone(pid_t pid, struct hs_err *err)
{
	if (!hs_proc_gone_settled(pid) || execd_since(pid))
		return hs_err_set(err, ESTALE, "pid %d exec'd (began a new program) during the look; run heapscope again",
				  (int)pid);
	return hs_err_set(err, ESRCH, "pid %d exited during the run", (int)pid);
}

/* The budgets of a walk that begins now. */
static struct hs_walk_limits walk_limits(const struct hs_snapshot_opts *o)
{
	return (struct hs_walk_limits){ o->max_arenas, o->max_chunks,
					o->stop_budget_ms ? now_us() + (uint64_t)o->stop_budget_ms * 1000 : 0,
					o->stop_budget_ms };
}

/* Each held thread's thread pointer (fs_base), from which the walk finds
 * its tcache (none without a session); threads that exited meanwhile are
 * left out.  0, or -ENOMEM; thread_regs_free on both. */
static int thread_regs(struct hs_session *ses, struct hs_heap_threads *th)
{
	const pid_t *tids = NULL;
	size_t n = ses ? hs_session_threads(ses, &tids) : 0;
	pid_t *ok = calloc(n + 1, sizeof(*ok));
	uint64_t *fs = calloc(n + 1, sizeof(*fs));
	*th = (struct hs_heap_threads){ 0, ok, fs };
	for (size_t i = 0; ok && fs && i < n; i++) {
		struct hs_thread_regs regs;
		if (hs_session_regs(ses, tids[i], &regs, NULL) < 0)
			continue;       /* it exited meanwhile */
		ok[th->n] = tids[i];
		fs[th->n++] = regs.fs_base;
	}
	return ok && fs ? 0 : -ENOMEM;
}

static void thread_regs_free(struct hs_heap_threads *th)
{
	free((void *)th->tids);
	free((void *)th->fs_base);
}

/* Walk while every thread is stopped.  Sets *locked to the number of
 * arenas whose mutex was held: some thread was inside malloc, so its lists
 * may be half-updated. */
static int walk_stopped(struct hs_snapshot *s, const struct hs_snapshot_opts *o, int *locked, struct hs_err *err)
{
	struct hs_session *ses = NULL;
	int r = 0;
	if (o->freeze) {
		r = hs_session_attach(s->pid, o->stop_timeout_ms, &ses, err);
		if (r < 0)
			return r;
	}
	uint64_t t0 = now_us();
	struct hs_walk_limits lim = walk_limits(o);
	hs_mem_cache_drop(s->mem);
	/* What the walk of the running target read, read again now (test
	 * hook: stopped, before that read, so that a test can kill the target
	 * there). */
	if (s->preload && ses)
		hs_test_wait("HEAPSCOPE_TEST_STOPPED_WAIT", "stopped");
	bool preloaded = s->preload && hs_mem_cache_preload_read(s->mem) == 0;
	if (s->preload)
		hs_mem_cache_preload_stats(s->mem, &s->preload_stats);
	/* Registers first: the walk finds each thread's tcache from them. */
	struct hs_heap_threads th;
	bool regs_ok = thread_regs(ses, &th) == 0;
	/* HEAPSCOPE_READ_MODE=bulk or lists: one way only (to compare). */
	const char *rm = getenv("HEAPSCOPE_READ_MODE");
	unsigned walk = o->walk | HS_WALK_LATE_CHECKS | (rm && !strcmp(rm, "bulk") ? HS_WALK_BULK : 0) |
			(rm && !strcmp(rm, "lists") ? HS_WALK_GATHER : 0);
	s->nthreads = th.n;
	if (!regs_ok)
		r = hs_err_set(err, ENOMEM, "out of memory");
	else
		r = hs_heap_walk_limited(s->mem, &s->libc, &th, walk, o->arena_hook.arena ? &o->arena_hook : NULL, &lim,
					 &s->heap, err);
	/* The maps were read before the stop: a heap that grew since (its
	 * PROT_NONE reserve made rw) looks unreadable to the page cache, and
	 * its arena partial.  Read them again, still stopped, and walk once
	 * more (not when a budget cut the walk: that would only double it). */
	if (r == 0 && s->heap.status == -EUCLEAN && !s->heap.cut) {
		hs_mem_cache_set_pagemap(s->mem, s->pagemap_fd, &s->maps);
		hs_maps_release(&s->stopped_maps);
	}
	if (r == 0 && s->heap.status == -EUCLEAN && !s->heap.cut &&
	    hs_maps_read(s->pid, false, &s->stopped_maps, NULL) == 0) {
		hs_mem_cache_set_pagemap(s->mem, s->pagemap_fd, &s->stopped_maps);
		hs_mem_cache_drop(s->mem);
		hs_heap_release(&s->heap);
		r = hs_heap_walk_limited(s->mem, &s->libc, &th, walk, o->arena_hook.arena ? &o->arena_hook : NULL, &lim,
					 &s->heap, err);
	}
	thread_regs_free(&th);
	if (r == 0)
		s->heap.preloaded = preloaded;
	/* More reading that must see the same stopped image (the chunk walk). */
	if (r == 0 && o->stopped)
		r = o->stopped(s, o->stopped_ctx, err);
	s->walk_us = now_us() - t0;
	/* Test hook: hold the threads stopped, so that a test can signal
	 * heapscope mid-session and check the target is released. */
	const char *hold = getenv("HEAPSCOPE_TEST_HOLD_MS");
	if (ses && hold) {
		long ms = strtol(hold, NULL, 10);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	*locked = 0;
	for (size_t i = 0; i < s->heap.narenas; i++)
		*locked += s->heap.arenas[i].mutex != 0;
	/* What the preload read is this stop's: once the target runs, a read
	 * served from it would be stale (a lock taken since read as free). */
	hs_mem_cache_preload_unload(s->mem);
	struct hs_err derr;
	int d = hs_session_detach(ses, &derr);
	if (ses)
		s->pause_us += hs_session_last_pause_us();
	if (r == 0 && d < 0) {
		if (err)
			*err = derr;
		r = d;
	}
	if (r == -ESRCH || (r < 0 && kill(s->pid, 0) < 0 && errno == ESRCH))
		return gone(s->pid, err);
	if (r == 0)
		hs_heap_late_checks(&s->heap);   /* the threads run again */
	return r;
}

/* A walk that met no broken list, arena or tcache. */
static bool walk_clean(const struct hs_heap *h)
{
	if (h->status)
		return false;
	for (size_t i = 0; i < h->ntcaches; i++)
		if (h->tcaches[i].status)
			return false;
	return true;
}

/* opts.running: the threads stopped only for their registers (their
 * tcaches are found from them), then the lists walked while the target
 * runs, until two walks in a row agree (each reads afresh: the cache is
 * dropped).  A walk of a running heap may meet lists half-changed: such
 * a walk does not agree with the next, unless the lists really are so. */
static int walk_running(struct hs_snapshot *s, const struct hs_snapshot_opts *o, struct hs_err *err)
{
	struct hs_session *ses = NULL;
	int r = hs_session_attach(s->pid, o->stop_timeout_ms, &ses, err);
	if (r < 0)
		return r == -ESRCH ? gone(s->pid, err) : r;
	struct hs_heap_threads th;
	bool regs_ok = thread_regs(ses, &th) == 0;
	struct hs_err derr;
	int d = hs_session_detach(ses, &derr);
	s->pause_us += hs_session_last_pause_us();
	s->attempts = 1;
	s->nthreads = th.n;
	if (!regs_ok)
		r = hs_err_set(err, ENOMEM, "out of memory");
	else if (d < 0 && err)
		*err = derr;
	r = r < 0 ? r : d;
	/* the last walk, and the last earlier one that met no broken list (a
	 * walk that read a list mid-change may hold nonsense: a chunk's bytes
	 * taken for a size), shown when no two agree and the last is broken */
	struct hs_heap last, clean;
	bool have_last = false, have_clean = false, agree = false;
	uint64_t t0 = now_us();
	for (int k = 0; r == 0 && k < HS_SNAPSHOT_WALKS && !agree; k++) {
		struct hs_walk_limits lim = walk_limits(o);
		struct hs_heap h;
		hs_mem_cache_drop(s->mem);
		r = hs_heap_walk_limited(s->mem, &s->libc, &th, o->walk | HS_WALK_LATE_CHECKS, NULL, &lim, &h, err);
		if (r < 0)
			break;
		s->walks++;
		agree = have_last && hs_heap_same_figures(&last, &h);
		if (have_last && walk_clean(&last)) {
			if (have_clean)
				hs_heap_release(&clean);
			clean = last;
			have_clean = true;
		} else if (have_last) {
			hs_heap_release(&last);
		}
		last = h;
		have_last = true;
	}
	s->walk_us = now_us() - t0;
	thread_regs_free(&th);
	/* Only a walk's first read (mp_) fails with ESRCH: a target that
	 * exited during the last walk left it broken ("not readable"), not
	 * failed.  A broken last walk of a process whose memory is gone is
	 * the exit, not figures. */
	uint64_t probe;
	if (r == 0 && have_last && !walk_clean(&last)) {
		hs_mem_cache_drop(s->mem);
		if (hs_proc_gone(s->pid) || hs_mem_read(s->mem, s->libc.mp, &probe, sizeof(probe)) == -ESRCH)
			r = -ESRCH;
	}
	bool use_clean = r == 0 && !agree && have_clean && !walk_clean(&last);
	if (have_clean && !use_clean)
		hs_heap_release(&clean);
	if (r < 0) {
		if (have_last)
			hs_heap_release(&last);
		if (r == -ESRCH || (kill(s->pid, 0) < 0 && errno == ESRCH))
			return gone(s->pid, err);
		return r;
	}
	if (use_clean) {
		hs_heap_release(&last);
		last = clean;
	}
	s->heap = last;
	s->heap.running = true;
	s->approximate = !agree;
	hs_heap_late_checks(&s->heap);
	return 0;
}

static int take(pid_t pid, const struct hs_snapshot_opts *o, struct hs_snapshot *s, bool *looked,
		struct hs_err *err);

/* Walk the lists once while the target runs, recording which bytes the walk
 * read (its figures, maybe inconsistent, are thrown away): the stop then
 * reads those first, in a few calls, so that the pause depends on the free
 * lists, not on the heap's size; what changed in between is read on demand,
 * so the stopped walk is as exact as ever.  Not for walks that read the heap
 * from end to end (a hook, or more reading after the walk), nor when
 * HEAPSCOPE_READ_MODE asks for one way.  True when there is a plan. */
static bool preload_plan(struct hs_snapshot *s, const struct hs_snapshot_opts *o)
{
	const char *rm = getenv("HEAPSCOPE_READ_MODE");
	if (!(o->walk & HS_WALK_LISTS) || !o->freeze || o->stopped || o->arena_hook.arena || s->pagemap_fd < 0 ||
	    (rm && (!strcmp(rm, "bulk") || !strcmp(rm, "lists") || !strcmp(rm, "auto"))))
		return false;
	/* First with dense arenas planned whole; if that is more than a plan
	 * may hold, again with the lines of every list. */
	for (unsigned plan = HS_WALK_PLAN;; plan = 0) {
		if (hs_mem_cache_preload_record(s->mem) < 0)
			return false;
		struct hs_walk_limits lim = walk_limits(o);
		struct hs_heap h;
		int r = hs_heap_walk_limited(s->mem, &s->libc, NULL, o->walk | HS_WALK_LATE_CHECKS | plan, NULL, &lim,
					     &h, NULL);
		bool ok = r == 0 && h.initialized, whole = false;
		/* A dense arena's walk was left where it showed so: its heaps
		 * are read whole (a long run costs less than its many short
		 * ones). */
		for (size_t i = 0; ok && i < h.narenas; i++)
			for (size_t k = 0; h.arenas[i].plan_whole && k < h.arenas[i].nheaps; k++) {
				const struct hs_heapseg *g = &h.arenas[i].heaps[k];
				uint64_t len = h.arenas[i].main ? g->mprotect_size : g->size;
				whole = true;
				ok = hs_mem_cache_preload_range(s->mem, g->addr, len) == 0;
			}
		if (r == 0)
			hs_heap_release(&h);
		hs_mem_cache_drop(s->mem);
		if (ok && hs_mem_cache_preload_plan(s->mem) == 0)
			break;
		hs_mem_cache_preload_end(s->mem);
		if (!plan || !whole)
			return false;
	}
	hs_mem_cache_preload_stats(s->mem, &s->preload_stats);
	/* Test hook: between the two walks, create FILE.planned and wait (at
	 * most 30 s) for FILE, so that a test can change the heap there. */
	hs_test_wait("HEAPSCOPE_TEST_PRELOAD_WAIT", "planned");
	return true;
}

/* Is the program's ELF interpreter (PT_INTERP) glibc's loader: a dynamic
 * executable, whose C library its loader maps after the execve? */
static bool has_interp(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)hs_proc_mm_pid(pid));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	Elf64_Ehdr eh;
	bool interp = false;
	if (pread(fd, &eh, sizeof(eh), 0) == (ssize_t)sizeof(eh) && !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
	    eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr) && eh.e_phnum < 256)
		for (unsigned i = 0; i < eh.e_phnum && !interp; i++) {
			Elf64_Phdr ph;
			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != (ssize_t)sizeof(ph))
				break;
			char name[256] = "";
			if (ph.p_type == PT_INTERP && ph.p_filesz < sizeof(name) &&
			    pread(fd, name, ph.p_filesz, (off_t)ph.p_offset) == (ssize_t)ph.p_filesz)
				interp = strstr(name, "/ld-linux") != NULL;    /* glibc's loader, not musl's */
		}
	close(fd);
	return interp;
}

/* The C library is not mapped (yet): glibc's dynamic loader is, or the
 * program has one to come (read in the middle of its execve). */
static bool loader_only(pid_t pid, const struct hs_maps *maps)
{
	bool ld = false;
	for (size_t i = 0; i < maps->n; i++) {
		const char *b = strrchr(maps->v[i].path, '/');
		b = b ? b + 1 : maps->v[i].path;
		if (!strncmp(b, "libc.so", 7) || !strncmp(b, "libc-", 5))
			return false;
		ld |= !strncmp(b, "ld-linux", 8);
	}
	return ld || has_interp(pid);
}

/* Did the process exec since its image was pinned?  Inside an execve by a
 * thread other than the leader, the leader is a zombie and the image not
 * yet the new one: wait (at most 200 ms) for the execve to finish. */
static bool execd_since(pid_t pid)
{
	for (int i = 0; i < 20; i++) {
		if (hs_session_execd(pid))
			return true;
		struct hs_proc_status st;
		if (hs_proc_status_read(pid, &st, NULL) < 0 || (st.state != 'Z' && st.state != 'X'))
			return false;
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The mapping that held malloc's parameters is not where the look read
 * it (or holds another file): the process is another program now, even
 * when its image fields matched (read in the middle of the execve). */
static bool libc_moved(pid_t pid, const struct hs_snapshot *s)
{
	const struct hs_mapping *was = s->libc.mp ? hs_maps_find(&s->maps, s->libc.mp) : NULL;
	if (!was)
		return false;
	struct hs_maps now;
	if (hs_maps_read(pid, false, &now, NULL) < 0)
		return false;
	const struct hs_mapping *is = hs_maps_find(&now, s->libc.mp);
	bool moved = !is || is->start != was->start || is->inode != was->inode;
	hs_maps_release(&now);
	return moved;
}

int hs_snapshot_take(pid_t pid, const struct hs_snapshot_opts *o, struct hs_snapshot *s, struct hs_err *err)
{
	int r;
	bool looked = false;     /* it was there, a process we may look at */
	/* A process inside execve, or between it and its dynamic loader's
	 * mapping the C library (just started, or exec'd): give it a
	 * moment. */
	for (int tries = 0;; tries++) {
		r = take(pid, o, s, &looked, err);
		if (r != -EAGAIN || tries >= 20)
			break;
		hs_snapshot_release(s);
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	/* A process that exec'd during the look fails in many ways (its
	 * libc is gone from the maps, mp_ unreadable, ...): say why. */
	if (r < 0 && looked && hs_proc_exiting(pid))
		return gone(pid, err);     /* not the EIO or ESRCH of the read that met it */
	if (r < 0 && r != -ESTALE && (execd_since(pid) || libc_moved(pid, s)))
		r = hs_err_set(err, ESTALE, "pid %d exec'd (began a new program) during the look; run heapscope again",
			       (int)pid);
	return r;
}

static int take(pid_t pid, const struct hs_snapshot_opts *o, struct hs_snapshot *s, bool *looked,
		struct hs_err *err)
{
	memset(s, 0, sizeof(*s));
	s->pid = pid;
	s->pagemap_fd = -1;
	int r = hs_proc_check(pid, o->freeze, NULL, err);
	if (r < 0)
		return r;
	*looked = true;
	/* Before anything is read: a later stop checks the process has not
	 * exec'd since (the maps and the libc would be another program's). */
	r = hs_session_pin_image(pid);
	if (r == -EAGAIN)
		return hs_err_set(err, EAGAIN, "pid %d is starting: it is inside execve", (int)pid);
	if (r == -ESRCH)
		return gone(pid, err);
	/* Everything that needs no stop comes first. */
	r = hs_maps_read(pid, true, &s->maps, err);
	if (r == -ESRCH || r == -ENOENT)
		return gone(pid, err);
	if (r < 0)
		return r;
	unsigned debug = o->use_debuginfo ? HS_DEBUG_LOCAL | (o->use_debuginfod ? HS_DEBUG_DEBUGINFOD : 0) : 0;
	/* Its files through a live thread if the main one exited. */
	r = hs_libc_find(hs_proc_mm_pid(pid), &s->maps, debug, &s->libc, err);
	if (r < 0 && r != -ESRCH && loader_only(pid, &s->maps))
		return hs_err_set(err, EAGAIN, "pid %d is starting: its dynamic loader has not mapped the C library yet",
				  (int)pid);
	if (r < 0)
		return r;
	struct hs_mem *raw;
	if ((r = hs_mem_open_pid(pid, &raw, err)) < 0)
		return r;
	if ((r = hs_mem_open_cache(raw, &s->mem)) < 0) {
		hs_mem_close(raw);
		return hs_err_set(err, ENOMEM, "out of memory");
	}
	s->pagemap_fd = hs_proc_pagemap_open(pid, NULL);
	hs_mem_cache_set_pagemap(s->mem, s->pagemap_fd, &s->maps);
	/* What a walk in whole pages may read: the cache is faulted in up to
	 * the heaps' resident bytes (it caps that at its size) before any
	 * thread is stopped. */
	uint64_t heaps = 0;
	for (size_t i = 0; i < s->maps.n; i++) {
		const struct hs_mapping *m = &s->maps.v[i];
		if (hs_mapping_anon(m) || !strcmp(m->path, "[heap]"))
			heaps += m->rss;
	}
	/* (not for walks that read more while stopped) */
	bool running = o->running && !o->stopped && !o->arena_hook.arena;
	s->preload = !running && preload_plan(s, o);
	/* Without the lists the walk reads a few arena headers: no need;
	 * with a preload, the stopped walk reads its buffer, and the cache
	 * only what changed since. */
	if ((o->walk & HS_WALK_LISTS) && !s->preload)
		hs_mem_cache_prefault(s->mem, heaps);
	if (running)
		r = walk_running(s, o, err);
	for (; !running;) {
		int locked;
		s->attempts++;
		r = walk_stopped(s, o, &locked, err);
		s->locked_arenas = locked;
		if (r < 0 || !locked || s->attempts > o->lock_retries)
			break;
		/* A thread held an arena lock: let it finish and look again. */
		hs_heap_release(&s->heap);
		struct timespec ts = { 0, 2000000L * s->attempts };
		nanosleep(&ts, NULL);
	}
	if (r < 0)
		return r;
	if (o->residency && s->heap.initialized) {
		if (s->pagemap_fd < 0) {
			int fd = hs_proc_pagemap_open(pid, err);
			if (fd >= 0)
				close(fd);
			return fd < 0 ? fd : hs_err_set(err, EIO, "cannot read /proc/%d/pagemap", (int)pid);
		}
		r = hs_heap_residency(&s->heap, s->pagemap_fd, o->pad, err);
		if (r < 0)
			return r;
	}
	return 0;
}

void hs_snapshot_release(struct hs_snapshot *s)
{
	if (s->pagemap_fd >= 0)
		close(s->pagemap_fd);
	s->pagemap_fd = -1;
	hs_heap_release(&s->heap);
	hs_mem_close(s->mem);
	s->mem = NULL;
	hs_libc_release(&s->libc);
	hs_maps_release(&s->maps);
	hs_maps_release(&s->stopped_maps);
}
