/* glibc's allocation tracer loaded into a live process that did not
 * preload it (glibc 2.34 and later keep it in libc_malloc_debug.so):
 * dlopen it inside the target, call its mtrace(), and route the malloc
 * family to it by rewriting the GOT slots of every loaded object, all
 * threads stopped and none inside malloc or the dynamic loader.  The
 * slots changed are recorded (lib/state.h) so that a later heapscope can
 * put them back and call muntrace().  The library stays loaded: blocks it
 * handed out are libc's own, and code may still be running in it. */
#ifndef HS_INJECT_H
#define HS_INJECT_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "call.h"
#include "snapshot.h"

struct hs_inject_opts {
	const char *log;             /* MALLOC_TRACE for the target (absolute) */
	bool private_log;            /* log is hs_state_trace_dir's: checked as the target's own */
	int wait_ms, timeout_ms;
};

struct hs_inject_report {
	struct hs_call_report call;
	char dbg_path[PATH_MAX];     /* libc_malloc_debug.so as the target sees it */
	char log[PATH_MAX];
	size_t slots, objects;       /* start: rewritten, in so many objects; stop: restored */
	size_t left;                 /* start: slots not holding libc's function (left alone);
	                                stop: slots the process changed since (left alone) */
	bool loaded_before;          /* start: the library was already mapped */
};

/* Shared with `heapscope profile`, which routes the same slots to its
 * own library (lib/profile.c): one routing code path.  */

/* The object mapped in maps whose file name starts with prefix, as a
 * struct hs_libc enough for hs_libc_lookup (obj may be NULL), and its
 * first executable mapping in [*xlo, *xhi).  -ENOENT if none. */
int hs_inject_mapped_object(pid_t pid, const struct hs_maps *maps, const char *prefix, struct hs_libc *obj,
			    uint64_t *xlo, uint64_t *xhi);
/* The dynamic loader's code and locks (and the thread stacks' lock),
 * which must be free for a remote dlopen: up to max ranges into r for
 * hs_call_begin. */
size_t hs_inject_loader_code(pid_t pid, const struct hs_libc *libc, const struct hs_maps *maps, struct hs_mem *mem,
			     struct hs_code_range *r, size_t max);
struct hs_got;
/* The slots to route (hs_got_read done, the target stopped): every slot
 * holding libc's function (or its unbound PLT stub) of a name that has a
 * destination to[t] (t: index in got->targets; 0: none), as pokes into
 * out (got->n of room); *objects counts the objects touched, *left the
 * slots left alone.  Returns how many. */
size_t hs_inject_plan(const struct hs_got *got, const uint64_t *to, struct hs_poke *out, size_t *objects, size_t *left);
/* Put slots back (old) where they still hold new; how many did not. */
size_t hs_inject_put_back(struct hs_session *ses, const struct hs_poke *v, size_t n);

/* Routing the planned slots (every thread stopped): SIGINT, SIGTERM,
 * SIGHUP and SIGQUIT held until hs_inject_route_end, the caller's record
 * written first (record(ctx)), then each slot compared and written, the
 * session's emergency path told how far the writes went so that a fatal
 * signal meanwhile puts them back.  Whatever kills heapscope during the
 * writes (SIGKILL included), a later stop finds every slot in the record.
 * The session's detach clears what its emergency path was told. */
struct hs_route {
	const struct hs_poke *plan;
	size_t n;
	volatile size_t ndone;   /* counted before each write: what the emergency path puts back */
	size_t nwritten;
	bool held, recorded;
	sigset_t oldmask;
};
int hs_inject_route(struct hs_session *ses, struct hs_route *rt, int (*record)(void *ctx, struct hs_err *err), void *ctx,
		    struct hs_err *err);
/* After the session's detach (which also makes the emergency path forget
 * the writes): the held signals let through. */
void hs_inject_route_end(struct hs_route *rt);

/* libc's own locks a remote call may take, each found from the first
 * cmpxchg (locked or not) on a RIP-relative word in an exported function that
 * takes it, and checked (a word inside a writable mapping, 0, 1 or 2):
 * HS_LIBC_LOCK_STDIO, stdio's stream list lock (fopen, fclose; fflush(NULL)
 * holds it while it writes every stream); HS_LIBC_LOCK_ENV, the
 * environment's (setenv); HS_LIBC_LOCK_ATFORK, pthread_atfork's (a library
 * constructor's; fork() holds it through its prepare handlers).  Up to max
 * ranges into r for hs_call_begin; one not found is left out. */
#define HS_LIBC_LOCK_STDIO 1u
#define HS_LIBC_LOCK_ENV 2u
#define HS_LIBC_LOCK_ATFORK 4u
size_t hs_inject_libc_locks(const struct hs_libc *libc, const struct hs_maps *maps, struct hs_mem *mem, unsigned which,
			    struct hs_code_range *r, size_t max);

/* The library's path for this libc, as the target sees it, if it exists. */
int hs_inject_library(pid_t pid, const struct hs_libc *libc, char *path, size_t len);

/* The loaded libc_malloc_debug.so as a struct hs_libc for hs_libc_lookup
 * (file through /proc/PID/map_files, load base).  -ENOENT: not loaded. */
int hs_inject_tracer_lib(pid_t pid, const struct hs_maps *maps, struct hs_libc *dbg);

/* The tracer's code, which no thread may be in when muntrace() is
 * called: 1 range into r (if the library is mapped), or 0. */
size_t hs_inject_tracer_code(const struct hs_maps *maps, struct hs_code_range *r, size_t max);

/* Do the process's objects call libc_malloc_debug.so's malloc (it was
 * preloaded, or injected)?  *routed false when they call libc's. */
int hs_inject_routed(pid_t pid, const struct hs_maps *maps, struct hs_mem *mem, bool *routed, struct hs_err *err);

/* setenv("MALLOC_TRACE", log, 1) as a remote call into libc: both
 * strings placed in data (len bytes), which must outlive the call.
 * -ENOENT: no setenv in libc, or log too long. */
int hs_inject_setenv_call(const struct hs_libc *libc, const char *log, char *data, size_t len, struct hs_call *c);

/* -EAGAIN: never safe within wait_ms, nothing done (rep->call.unsafe).
 * Other errors leave the target as it was (the slots written so far put
 * back, muntrace called) except a loaded library. */
int hs_inject_start(const struct hs_snapshot *s, const struct hs_inject_opts *o, struct hs_inject_report *rep,
		    struct hs_err *err);
/* Put back the slots recorded at start (one stop), then, once no thread
 * is inside the tracer, muntrace() (another).  -ENOENT: no record of an
 * injection for this process; -EAGAIN: the slots are back (rep->slots)
 * but muntrace() was never safe within wait_ms; a new stop finishes. */
int hs_inject_stop(const struct hs_snapshot *s, const struct hs_inject_opts *o, struct hs_inject_report *rep,
		   struct hs_err *err);
/* 1 if an injection is recorded for pid (rep: library, log, slots), 0 if not. */
int hs_inject_recorded(pid_t pid, struct hs_inject_report *rep);

#endif
