#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "call.h"
#include "got.h"
#include "inject.h"
#include "proc.h"
#include "session.h"
#include "state.h"

/* RTLD_NOW | RTLD_NODELETE: never unloaded, even by a dlclose of the
 * program's (an interposer unloaded under running code crashes) */
#define DLOPEN_FLAGS 0x1002

int hs_inject_library(pid_t pid, const struct hs_libc *libc, char *path, size_t len)
{
	const char *slash = strrchr(libc->map_path, '/');
	if (!slash)
		return -ENOENT;
	snprintf(path, len, "%.*s/libc_malloc_debug.so.0", (int)(slash - libc->map_path), libc->map_path);
	char seen[PATH_MAX + 64];
	snprintf(seen, sizeof(seen), "/proc/%d/root%s", (int)pid, path);
	return access(seen, R_OK) == 0 ? 0 : -errno;
}

/* The file of a mapping, to be opened by heapscope: /proc/PID/map_files
 * (the very inode mapped), which needs CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE; else the path inside the process's root when it
 * is still the inode mapped (a user's heapscope on its own process). */
static void object_file(pid_t pid, const struct hs_mapping *m, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, m->start, m->end);
	if (access(buf, R_OK) == 0)
		return;
	char alt[PATH_MAX + 64];
	unsigned maj, min;
	struct stat st;
	snprintf(alt, sizeof(alt), "/proc/%d/root%s", (int)pid, m->path);
	if (!m->deleted && sscanf(m->dev, "%x:%x", &maj, &min) == 2 && stat(alt, &st) == 0 && st.st_ino == m->inode &&
	    st.st_dev == makedev(maj, min))
		snprintf(buf, len, "%s", alt);
}

/* The object mapped in maps whose file name starts with prefix, as a
 * struct hs_libc enough for hs_libc_lookup (its mapping at file offset 0
 * is its load base: a shared object's first PT_LOAD is at vaddr 0), and
 * its first executable mapping in [*xlo, *xhi).  -ENOENT if none. */
int hs_inject_mapped_object(pid_t pid, const struct hs_maps *maps, const char *prefix, struct hs_libc *obj,
			 uint64_t *xlo, uint64_t *xhi)
{
	const struct hs_mapping *first = NULL;
	*xlo = *xhi = 0;
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_mapping *m = &maps->v[i];
		const char *b = strrchr(m->path, '/');
		if (!b || strncmp(b + 1, prefix, strlen(prefix)))
			continue;
		if (m->offset == 0 && !first)
			first = m;
		if (m->perms[2] == 'x' && !*xlo) {
			*xlo = m->start;
			*xhi = m->end;
		}
	}
	if (!first)
		return -ENOENT;
	if (obj) {
		memset(obj, 0, sizeof(*obj));
		object_file(pid, first, obj->file, sizeof(obj->file));
		snprintf(obj->map_path, sizeof(obj->map_path), "%s", first->path);
		obj->base = first->start;
	}
	return 0;
}

#define mapped_object hs_inject_mapped_object

int hs_inject_tracer_lib(pid_t pid, const struct hs_maps *maps, struct hs_libc *dbg)
{
	uint64_t lo, hi;
	return mapped_object(pid, maps, "libc_malloc_debug.so", dbg, &lo, &hi);
}

size_t hs_inject_tracer_code(const struct hs_maps *maps, struct hs_code_range *r, size_t max)
{
	uint64_t lo, hi;
	if (!max || mapped_object(0, maps, "libc_malloc_debug.so", NULL, &lo, &hi) < 0 || !lo)
		return 0;
	/* muntrace() clears the stream a thread past the "tracing?" test
	 * is about to write to: no thread at all may be in there */
	*r = (struct hs_code_range){ lo, hi, "libc_malloc_debug.so (the tracer)", true, false, 0 };
	return 1;
}

int hs_inject_routed(pid_t pid, const struct hs_maps *maps, struct hs_mem *mem, bool *routed, struct hs_err *err)
{
	*routed = false;
	uint64_t lo, hi;
	if (mapped_object(pid, maps, "libc_malloc_debug.so", NULL, &lo, &hi) < 0)
		return 0;
	static const char *const names[] = { "malloc", "free" };
	static const char *const excl[] = { "libc_malloc_debug.so.0" };
	struct hs_got_opts go = { .names = names, .nnames = 2, .exclude = excl, .nexclude = 1,
				  .types = HS_GOT_JUMP_SLOT | HS_GOT_GLOB_DAT, .skip_unusable = true };
	struct hs_got got;
	int r = hs_got_find(pid, maps, mem, &go, &got, err);
	if (r < 0)
		return r;
	if ((r = hs_got_read(mem, &got, err)) == 0)
		for (size_t i = 0; i < got.n && !*routed; i++)
			*routed = got.v[i].value >= lo && got.v[i].value < hi;
	hs_got_release(&got);
	return r;
}

/* The dynamic loader: its three recursive locks (dlopen and dladdr hold
 * _dl_load_lock, dl_iterate_phdr _dl_load_write_lock, TLS set-up
 * _dl_load_tls_lock) must be free, and the calling thread must not be in
 * its code (a lazy binding half done).  The locks' offsets in
 * _rtld_global by version (docs/INJECT.md, section 5) are checked before
 * use: _dl_nns before them small, each mutex of the recursive kind.
 * Unknown, the loader's code is looked for in the caller's stack too, as
 * for malloc. */
size_t hs_inject_loader_code(pid_t pid, const struct hs_libc *libc, const struct hs_maps *maps, struct hs_mem *mem,
			  struct hs_code_range *r, size_t max)
{
	struct hs_libc ld;
	uint64_t lo, hi, g;
	if (!max || mapped_object(pid, maps, "ld-", &ld, &lo, &hi) < 0 || !lo)
		return 0;
	size_t n = 0;
	r[n++] = (struct hs_code_range){ lo, hi, "the dynamic loader", false, false, 0 };
	uint64_t off = 0;
	if (libc->major == 2 && libc->minor == 34)
		off = 2440;
	else if (libc->major == 2 && libc->minor >= 35 && libc->minor <= 41)
		off = 2568;
	else if (libc->major == 2 && libc->minor >= 42)
		off = 1800;
	if (!off || n + 4 > max)
		return n;
	uint64_t nns;
	uint32_t kind[3];
	if (hs_libc_lookup_object(&ld, "_rtld_global", &g) < 0 || hs_mem_u64(mem, g + off - 8, &nns) < 0 || nns < 1 ||
	    nns > 16)
		return n;
	for (int k = 0; k < 3; k++)
		if (hs_mem_read(mem, g + off + 40 * k + 16, &kind[k], 4) < 0 || kind[k] != 1)
			return n;
	static const char *const what[3] = { "the dynamic loader's lock (_dl_load_lock)",
					     "the dynamic loader's write lock (_dl_load_write_lock)",
					     "the dynamic loader's TLS lock (_dl_load_tls_lock)" };
	for (size_t i = 0; i < n; i++)
		r[i].pc_only = true;
	for (int k = 0; k < 3; k++)
		r[n++] = (struct hs_code_range){ 0, 0, what[k], false, false, g + off + 40 * k, false };
	/* The thread stacks' lock (GL(dl_stack_cache_lock), a plain int):
	 * the dlopen of a library with static TLS (libc_malloc_debug.so is
	 * one) takes it to set up every thread's TLS, and pthread_create and
	 * a thread's exit hold it, so a thread stopped there would freeze the
	 * dlopen.  The last member of _rtld_global since glibc 2.34 (x86_64:
	 * an int padded to 8; offset 4328 in 2.36, 2880 in 2.41, checked with
	 * libc6-dbg and libc's own "lock cmpxchg" on it). */
	uint64_t g2, size, lw = 0;
	if (hs_libc_lookup_object_size(&ld, "_rtld_global", &g2, &size) == 0 && g2 == g && size >= off + 128 &&
	    hs_mem_read(mem, g + size - 8, &lw, 8) == 0 && (uint32_t)lw <= 2 && !(lw >> 32))
		r[n++] = (struct hs_code_range){ 0, 0, "the thread stacks' lock (_dl_stack_cache_lock)", false, false,
						 g + size - 8, true };
	return n;
}

/* The lock word of the first "[lock] cmpxchg r32, disp32(%rip)" in the
 * first bytes of the function at fn, checked; 0 if none.  The lock prefix
 * is optional: glibc 2.31's lll_lock takes the lock with a plain cmpxchg
 * while the process has one thread, and its locked one comes later (past
 * these bytes in clearenv and __register_atfork). */
static uint64_t lock_in(const struct hs_maps *maps, struct hs_mem *mem, uint64_t fn)
{
	unsigned char c[96];
	if (!fn || hs_mem_read(mem, fn, c, sizeof(c)) < 0)
		return 0;
	for (size_t i = 0; i + 7 <= sizeof(c); i++) {
		if (c[i] != 0x0f || c[i + 1] != 0xb1 || (c[i + 2] & 0xc7) != 0x05)
			continue;
		int32_t disp;
		memcpy(&disp, c + i + 3, 4);
		uint64_t at = fn + i + 7 + (int64_t)disp;
		const struct hs_mapping *m = hs_maps_find(maps, at);
		uint32_t w;
		if (!m || m->perms[1] != 'w' || at + 4 > m->end || hs_mem_read(mem, at, &w, 4) < 0 || w > 2)
			return 0;
		return at;
	}
	return 0;
}

size_t hs_inject_libc_locks(const struct hs_libc *libc, const struct hs_maps *maps, struct hs_mem *mem, unsigned which,
			    struct hs_code_range *r, size_t max)
{
	static const struct {
		unsigned bit;
		const char *fn, *what;
	} locks[] = {
		{ HS_LIBC_LOCK_STDIO, "_IO_list_lock", "stdio's stream list lock (fopen, fclose, fflush(NULL))" },
		{ HS_LIBC_LOCK_ENV, "clearenv", "the environment's lock (setenv)" },
		{ HS_LIBC_LOCK_ATFORK, "__register_atfork", "pthread_atfork's lock (held by a fork())" },
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(locks) / sizeof(locks[0]) && n < max; i++) {
		uint64_t fn, at;
		if ((which & locks[i].bit) && hs_libc_lookup(libc, locks[i].fn, &fn) == 0 && (at = lock_in(maps, mem, fn)))
			r[n++] = (struct hs_code_range){ 0, 0, locks[i].what, false, false, at, true };
	}
	return n;
}

#define loader_code hs_inject_loader_code
#define slotrec hs_poke

size_t hs_inject_put_back(struct hs_session *ses, const struct hs_poke *v, size_t n)
{
	size_t left = 0;
	for (size_t i = 0; i < n; i++)
		if (hs_session_poke(ses, v[i].addr, v[i].new, v[i].old, NULL) < 0)
			left++;
	return left;
}

int hs_inject_route(struct hs_session *ses, struct hs_route *rt, int (*record)(void *ctx, struct hs_err *err), void *ctx,
		    struct hs_err *err)
{
	sigset_t hold;
	sigemptyset(&hold);
	sigaddset(&hold, SIGINT);
	sigaddset(&hold, SIGTERM);
	sigaddset(&hold, SIGHUP);
	sigaddset(&hold, SIGQUIT);
	sigprocmask(SIG_BLOCK, &hold, &rt->oldmask);
	rt->held = true;
	int r;
	if ((r = record(ctx, err)) < 0)
		return r;
	rt->recorded = true;
	hs_session_undo(ses, rt->plan, &rt->ndone);
	for (size_t i = 0; i < rt->n; i++) {
		rt->ndone = i + 1;     /* counted first: the emergency path compares before it writes */
		if ((r = hs_session_poke(ses, rt->plan[i].addr, rt->plan[i].old, rt->plan[i].new, err)) < 0)
			return r;
		rt->nwritten = i + 1;
	}
	return 0;
}

void hs_inject_route_end(struct hs_route *rt)
{
	if (rt->held)
		sigprocmask(SIG_SETMASK, &rt->oldmask, NULL);
	rt->held = false;
}

#define put_back hs_inject_put_back

static int call1(struct hs_session *ses, struct hs_inject_report *rep, uint64_t func, const uint64_t *args, int nargs,
		 const void *data, size_t dlen, int timeout_ms, uint64_t *ret, struct hs_err *err)
{
	uint64_t v = 0;
	int r = hs_session_call_data(ses, rep->call.tid, func, args, nargs, data, dlen, timeout_ms, &v, err);
	rep->call.done++;
	if (ret)
		*ret = v;
	return r;
}

int hs_inject_setenv_call(const struct hs_libc *libc, const char *log, char *data, size_t len, struct hs_call *c)
{
	memset(c, 0, sizeof(*c));
	int k = snprintf(data, len, "MALLOC_TRACE%c%s", 0, log);
	if (k <= 0 || (size_t)k >= len || hs_libc_lookup(libc, "setenv", &c->func) < 0)
		return -ENOENT;
	c->args[0] = HS_CALL_DATA(0);
	c->args[1] = HS_CALL_DATA(13);
	c->args[2] = 1;
	c->nargs = 3;
	c->data = data;
	c->dlen = (size_t)k + 1;
	return 0;
}

/* One start, its steps sharing what they found and what they changed. */
struct start {
	const struct hs_snapshot *s;
	const struct hs_inject_opts *o;
	struct hs_inject_report *rep;
	struct hs_got got;
	struct hs_session *ses;
	struct hs_maps maps;
	struct hs_mem *mem;
	uint64_t to[66];             /* the tracer's function per routed name, then mtrace, muntrace */
	struct slotrec *done;        /* the plan: every slot to route */
	struct hs_route rt;          /* its writing */
	bool tracing;
};

/* Before the first remote call: what the injection needs, checked. */
static int start_checks(struct start *st, struct hs_err *err)
{
	const struct hs_snapshot *s = st->s;
	struct hs_inject_report *rep = st->rep;
	pid_t pid = s->pid;
	if (st->o->log[0] != '/')
		return hs_err_set(err, EINVAL, "the trace file must be an absolute path: %s", st->o->log);
	if (s->libc.major == 2 && s->libc.minor < 34)
		return hs_err_set(err, ENOTSUP, "glibc %s traces with libc.so.6's own mtrace: no --inject needed",
				  s->libc.version);
	if (hs_inject_library(pid, &s->libc, rep->dbg_path, sizeof(rep->dbg_path)) < 0)
		return hs_err_set(err, ENOENT, "%s is not there for pid %d (inside its root): nothing done",
				  rep->dbg_path, (int)pid);
	uint64_t lo, hi, f;
	rep->loaded_before = mapped_object(pid, &s->maps, "libc_malloc_debug.so", NULL, &lo, &hi) == 0;
	if (hs_libc_lookup(&s->libc, "setenv", &f) < 0 || hs_libc_lookup(&s->libc, "dlopen", &f) < 0)
		return hs_err_set(err, ENOENT, "setenv or dlopen not found in %s", s->libc.map_path);
	/* A late-loaded libc_malloc_debug.so calls libc's old hook variables
	 * (its own are never set up): a program that still sets one would see
	 * it called (docs/INJECT.md). */
	static const char *const hooks[] = { "__malloc_hook", "__free_hook", "__realloc_hook", "__memalign_hook" };
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		uint64_t a, v = 0;
		if (hs_libc_lookup_object(&s->libc, hooks[i], &a) == 0 && hs_mem_u64(s->mem, a, &v) == 0 && v)
			return hs_err_set(err, ENOTSUP, "pid %d sets %s (0x%" PRIx64 "): the injected tracer would call it; "
					  "nothing done", (int)pid, hooks[i], v);
	}
	/* What the injection needs after its first remote call, checked
	 * before it: a trusted state directory for its record, the library's
	 * file readable by heapscope (as the target sees it). */
	struct hs_err e0 = { 0 };
	int r0;
	if ((r0 = hs_state_check(true, &e0)) < 0)
		return hs_err_set(err, -r0, "%s: nothing done", e0.msg);
	struct hs_libc probe = { 0 };
	snprintf(probe.file, sizeof(probe.file), "/proc/%d/root%s", (int)pid, rep->dbg_path);
	if (hs_libc_lookup(&probe, "mtrace", &f) < 0)
		return hs_err_set(err, EACCES, "cannot read mtrace's address in %s (as %s): nothing done", rep->dbg_path,
				  probe.file);
	/* The slots, from each object's file: no stop needed (the target
	 * only read); what they hold is read in the stop. */
	static const char *const excl[] = { "libc_malloc_debug.so.0" };
	struct hs_got_opts go = { .names = hs_got_malloc_names, .nnames = hs_got_malloc_nnames, .exclude = excl,
				  .nexclude = 1, .types = HS_GOT_ALL, .skip_unusable = true };
	int r = hs_got_find(pid, &s->maps, s->mem, &go, &st->got, err);
	if (r < 0)
		return r;
	if (st->got.ntargets > 64)
		return hs_err_set(err, E2BIG, "too many names to route");
	return 0;
}

/* 1. MALLOC_TRACE, then the library */
static int load_tracer(struct start *st, struct hs_err *err)
{
	const struct hs_inject_opts *o = st->o;
	struct hs_inject_report *rep = st->rep;
	char data[PATH_MAX + 32];
	struct hs_call c;
	uint64_t ret, f_dlopen;
	int r;
	if (hs_inject_setenv_call(&st->s->libc, o->log, data, sizeof(data), &c) < 0 ||
	    hs_libc_lookup(&st->s->libc, "dlopen", &f_dlopen) < 0)
		return hs_err_set(err, ENOENT, "cannot set up setenv in the target");
	if ((r = call1(st->ses, rep, c.func, c.args, c.nargs, c.data, c.dlen, o->timeout_ms, &ret, err)) < 0)
		return r;
	if (ret)
		return hs_err_set(err, EIO, "setenv failed in the target (returned %d)", (int)ret);
	uint64_t a_dlopen[2] = { HS_CALL_DATA(0), DLOPEN_FLAGS };
	if ((r = call1(st->ses, rep, f_dlopen, a_dlopen, 2, rep->dbg_path, strlen(rep->dbg_path) + 1, o->timeout_ms, &ret,
		       err)) < 0)
		return r;
	if (!ret)
		return hs_err_set(err, EIO, "dlopen(%s) failed in the target", rep->dbg_path);
	/* the slots are written with every thread stopped, or not at all */
	if (hs_session_released(st->ses))
		return hs_err_set(err, ETIMEDOUT, "the calls outlived %d ms and the other threads were let go: no slot "
				  "changed (%s stays loaded)", o->timeout_ms, rep->dbg_path);
	return 0;
}

/* 2. where it is, and the slots to route to it: the library's functions,
 * with one opening of its file: the routed names' (to[i] 0 where it has
 * none), then mtrace and muntrace */
static int find_tracer(struct start *st, struct hs_err *err)
{
	pid_t pid = st->s->pid;
	struct hs_got *got = &st->got;
	struct hs_libc dbg;
	int r;
	if ((r = hs_maps_read(pid, false, &st->maps, err)) < 0 || (r = hs_mem_open_pid(pid, &st->mem, err)) < 0)
		return r;
	const char *names[66];
	for (size_t i = 0; i < got->ntargets; i++)
		names[i] = got->targets[i].name;
	names[got->ntargets] = "mtrace";
	names[got->ntargets + 1] = "muntrace";
	if (hs_inject_tracer_lib(pid, &st->maps, &dbg) < 0 ||
	    hs_libc_lookup_many(&dbg, names, got->ntargets + 2, st->to) < 0 || !st->to[got->ntargets] ||
	    !st->to[got->ntargets + 1])
		return hs_err_set(err, ENOENT, "%s loaded, but its mtrace and muntrace were not found", st->rep->dbg_path);
	if ((r = hs_got_read(st->mem, got, err)) < 0)
		return r;
	if (!(st->done = calloc(got->n ? got->n : 1, sizeof(*st->done))))
		return hs_err_set(err, ENOMEM, "out of memory");
	return 0;
}

/* 3. the tracer on, then the slots: nothing allocates in between, every
 * thread is stopped */
static int tracer_on(struct start *st, struct hs_err *err)
{
	const struct hs_inject_opts *o = st->o;
	int r;
	if ((r = call1(st->ses, st->rep, st->to[st->got.ntargets], NULL, 0, NULL, 0, o->timeout_ms, NULL, err)) < 0)
		return r;
	st->tracing = true;
	if (hs_proc_has_open(st->s->pid, o->log) < 0)
		return hs_err_set(err, EIO, "mtrace() ran but opened no %s: tracing is not on (a setuid process ignores "
				  "MALLOC_TRACE)", o->log);
	if ((r = hs_state_trace_opened(st->s->pid, o->log, o->private_log, err)) < 0)
		return r;
	if (hs_session_released(st->ses))
		return hs_err_set(err, ETIMEDOUT, "mtrace() outlived %d ms and the other threads were let go: no slot "
				  "changed", o->timeout_ms);
	return 0;
}

size_t hs_inject_plan(const struct hs_got *got, const uint64_t *to, struct hs_poke *out, size_t *objects, size_t *left)
{
	size_t last_obj = (size_t)-1, n = 0;
	for (size_t i = 0; i < got->n; i++) {
		const struct hs_got_slot *sl = &got->v[i];
		size_t t = 0;
		while (t < got->ntargets && strcmp(got->targets[t].name, sl->symbol))
			t++;
		if (t >= got->ntargets || !to[t] || (sl->state != HS_GOT_LIBC && sl->state != HS_GOT_LAZY)) {
			*left += sl->state != HS_GOT_CANONICAL;   /* canonical ones go through a routed slot */
			continue;
		}
		uint64_t nv = to[t] + (sl->type == HS_GOT_ABS64 ? (uint64_t)sl->addend : 0);
		out[n++] = (struct hs_poke){ sl->addr, sl->value, nv };
		if (sl->object != last_obj) {
			(*objects)++;
			last_obj = sl->object;
		}
	}
	return n;
}

/* 4. the plan: every slot to route, its value now and the tracer's */
static void plan(struct start *st)
{
	st->rt.n = hs_inject_plan(&st->got, st->to, st->done, &st->rep->objects, &st->rep->left);
}

/* 5. the record a later stop works from, before any slot changes:
 * whatever kills heapscope during the writes (SIGKILL included), a stop
 * finds every slot that may hold the tracer's address; 6. the slots */
static int write_record(void *ctx, struct hs_err *err)
{
	const struct start *st = ctx;
	struct hs_trace_record rec = { .slots = st->done, .nslots = st->rt.n };
	snprintf(rec.file, sizeof(rec.file), "%s", st->o->log);
	snprintf(rec.dbg, sizeof(rec.dbg), "%s", st->rep->dbg_path);
	return hs_state_trace_record_write(st->s->pid, &rec, err);
}

static int route(struct start *st, struct hs_err *err)
{
	st->rt.plan = st->done;
	int r = hs_inject_route(st->ses, &st->rt, write_record, st, err);
	if (r == 0)
		st->rep->slots = st->rt.n;
	return r;
}

/* On failure: slots back, tracer off; the library stays. */
static void undo(struct start *st)
{
	size_t left = put_back(st->ses, st->done, st->rt.nwritten);
	int m = st->tracing ? call1(st->ses, st->rep, st->to[st->got.ntargets + 1], NULL, 0, NULL, 0, st->o->timeout_ms,
				    NULL, NULL) : 0;
	if (st->rt.recorded && !left && m == 0)
		hs_state_remove(st->s->pid, "mtrace");
	st->rep->slots = 0;
	st->rep->objects = 0;
}

int hs_inject_start(const struct hs_snapshot *s, const struct hs_inject_opts *o, struct hs_inject_report *rep,
		    struct hs_err *err)
{
	struct start st = { .s = s, .o = o, .rep = rep };
	memset(rep, 0, sizeof(*rep));
	snprintf(rep->log, sizeof(rep->log), "%s", o->log);
	int r = start_checks(&st, err);
	if (r == 0) {
		struct hs_code_range extra[12];
		size_t nextra = loader_code(s->pid, &s->libc, &s->maps, s->mem, extra, 8);
		/* setenv's lock, and stdio's for mtrace's fopen */
		nextra += hs_inject_libc_locks(&s->libc, &s->maps, s->mem, HS_LIBC_LOCK_STDIO | HS_LIBC_LOCK_ENV,
					       extra + nextra, 12 - nextra);
		r = hs_call_begin(s->pid, &s->libc, &s->maps, s->mem, extra, nextra, o->wait_ms, &st.ses, &rep->call, err);
	}
	if (r == 0 && (r = load_tracer(&st, err)) == 0 && (r = find_tracer(&st, err)) == 0 &&
	    (r = tracer_on(&st, err)) == 0) {
		plan(&st);
		r = route(&st, err);
	}
	if (r < 0 && rep->call.tid)
		undo(&st);
	if (st.ses) {
		hs_session_undo(st.ses, NULL, NULL);
		hs_call_end(st.ses, &rep->call);
	}
	hs_inject_route_end(&st.rt);
	free(st.done);
	hs_got_release(&st.got);
	if (st.mem)
		hs_mem_close(st.mem);
	hs_maps_release(&st.maps);
	return r;
}

/* A record is only text in a file: each of its slots must be one the
 * finder finds in the process now (a malloc-family slot of a loaded
 * object), recorded with the tracer's function of its name as the value
 * heapscope wrote and libc's (or the slot's unbound PLT stub) as the value
 * to put back.  Else nothing is written. */
static int check_record(pid_t pid, const struct hs_snapshot *s, const struct hs_libc *dbg, const struct slotrec *v,
			size_t n, struct hs_err *err)
{
	static const char *const excl[] = { "libc_malloc_debug.so.0" };
	struct hs_got_opts go = { .names = hs_got_malloc_names, .nnames = hs_got_malloc_nnames, .exclude = excl,
				  .nexclude = 1, .types = HS_GOT_ALL, .skip_unusable = true };
	struct hs_got got = { 0 };
	int r = hs_got_find(pid, &s->maps, s->mem, &go, &got, err);
	if (r < 0)
		return r;
	uint64_t to[64] = { 0 };
	if (got.ntargets > 64 || hs_libc_lookup_many(dbg, hs_got_malloc_names, got.ntargets, to) < 0) {
		hs_got_release(&got);
		return hs_err_set(err, ENOENT, "cannot read the tracer's functions in %s: nothing written", dbg->map_path);
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct hs_got_slot *sl = NULL;
		for (size_t k = 0; k < got.n && !sl; k++)
			if (got.v[k].addr == v[i].addr)
				sl = &got.v[k];
		if (!sl) {
			r = hs_err_set(err, EPERM, "the record names 0x%" PRIx64 ", which is no malloc-family slot of pid %d: "
				       "refused, nothing written", v[i].addr, (int)pid);
			break;
		}
		size_t t = 0;
		while (t < got.ntargets && strcmp(got.targets[t].name, sl->symbol))
			t++;
		uint64_t a = sl->type == HS_GOT_ABS64 ? (uint64_t)sl->addend : 0;
		if (t >= got.ntargets || !to[t] || v[i].new != to[t] + a)
			r = hs_err_set(err, EPERM, "the record says the %s slot at 0x%" PRIx64 " was given 0x%" PRIx64 ", not the "
				       "tracer's %s: refused, nothing written", sl->symbol, v[i].addr, v[i].new, sl->symbol);
		else if (!(got.targets[t].libc_addr && v[i].old == got.targets[t].libc_addr + a) &&
			 !(sl->type == HS_GOT_JUMP_SLOT && sl->lazy && v[i].old == sl->lazy))
			r = hs_err_set(err, EPERM, "the record would put 0x%" PRIx64 " in the %s slot at 0x%" PRIx64 ", neither "
				       "libc's %s nor its PLT stub: refused, nothing written", v[i].old, sl->symbol, v[i].addr,
				       sl->symbol);
	}
	hs_got_release(&got);
	return r;
}

int hs_inject_recorded(pid_t pid, struct hs_inject_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	struct hs_trace_record rec;
	int r = hs_state_trace_record_read(pid, &rec, NULL) == 0 && rec.dbg[0];
	if (r) {
		snprintf(rep->log, sizeof(rep->log), "%s", rec.file);
		snprintf(rep->dbg_path, sizeof(rep->dbg_path), "%s", rec.dbg);
		rep->slots = rec.nslots;
	}
	hs_state_trace_record_release(&rec);
	return r;
}

int hs_inject_stop(const struct hs_snapshot *s, const struct hs_inject_opts *o, struct hs_inject_report *rep,
		   struct hs_err *err)
{
	pid_t pid = s->pid;
	memset(rep, 0, sizeof(*rep));
	struct hs_trace_record rec;
	int r;
	if ((r = hs_state_trace_record_read(pid, &rec, err)) < 0 && r != -ENOENT && r != -EINVAL)
		goto out;
	if (r < 0 || !rec.dbg[0]) {
		r = hs_err_set(err, ENOENT, "no record of an injected tracer in pid %d", (int)pid);
		goto out;
	}
	const struct slotrec *v = rec.slots;
	size_t n = rec.nslots;
	const char *dbgpath = rec.dbg;
	snprintf(rep->log, sizeof(rep->log), "%s", rec.file);
	snprintf(rep->dbg_path, sizeof(rep->dbg_path), "%s", rec.dbg);
	struct hs_libc dbg;
	uint64_t f_muntrace;
	if (hs_inject_tracer_lib(pid, &s->maps, &dbg) < 0 || hs_libc_lookup(&dbg, "muntrace", &f_muntrace) < 0) {
		r = hs_err_set(err, ENOENT, "%s is no longer loaded in pid %d: nothing to undo", dbgpath, (int)pid);
		hs_state_remove(pid, "mtrace");
		goto out;
	}
	/* 1. the slots back, every thread stopped: no call enters the tracer
	 * any more, and the threads inside it leave it; but only slots that
	 * are the process's own, put back to libc's */
	if (n && (r = check_record(pid, s, &dbg, v, n, err)) < 0)
		goto out;
	if (n) {
		struct hs_session *ses;
		if ((r = hs_call_attach(pid, hs_call_deadline(o->wait_ms), &ses, &rep->call, err)) < 0)
			goto out;
		rep->left = put_back(ses, v, n);
		rep->slots = n - rep->left;
		hs_session_detach(ses, NULL);
		rep->call.pause_us += hs_session_last_pause_us();
		struct hs_trace_record back = { 0 };
		snprintf(back.file, sizeof(back.file), "%s", rep->log);
		snprintf(back.dbg, sizeof(back.dbg), "%s", rep->dbg_path);
		if ((r = hs_state_trace_record_write(pid, &back, err)) < 0)
			goto out;
	}
	/* 2. muntrace() once no thread is inside the tracer: a thread past
	 * its "tracing?" test would write to the stream muntrace clears */
	struct hs_code_range extra[12];
	size_t nextra = hs_inject_tracer_code(&s->maps, extra, 1);
	nextra += loader_code(pid, &s->libc, &s->maps, s->mem, extra + nextra, 8);
	/* muntrace's fclose takes stdio's list lock */
	nextra += hs_inject_libc_locks(&s->libc, &s->maps, s->mem, HS_LIBC_LOCK_STDIO, extra + nextra, 12 - nextra);
	struct hs_session *ses;
	if ((r = hs_call_begin(pid, &s->libc, &s->maps, s->mem, extra, nextra, o->wait_ms, &ses, &rep->call, err)) < 0)
		goto out;
	r = call1(ses, rep, f_muntrace, NULL, 0, NULL, 0, o->timeout_ms, NULL, err);
	hs_call_end(ses, &rep->call);
	if (r == 0 && hs_proc_has_open(pid, rep->log) == 0)
		r = hs_err_set(err, EIO, "muntrace() ran but %s is still open: tracing is still on", rep->log);
	if (r == 0)
		hs_state_remove(pid, "mtrace");
out:
	hs_state_trace_record_release(&rec);
	return r;
}
