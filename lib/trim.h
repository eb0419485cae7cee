/* malloc_trim inside a live process, called only when no thread is inside
 * malloc (hs_call_safely, call.h), with what it gave back measured by a
 * snapshot before and after. */
#ifndef HS_TRIM_H
#define HS_TRIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "libc.h"
#include "snapshot.h"

struct hs_trim_opts {
	uint64_t pad;            /* malloc_trim's argument */
	int wait_ms;             /* how long to keep retrying while unsafe */
	int call_timeout_ms;     /* how long the call may run */
	bool dry_run;            /* the prediction only */
	bool use_debuginfo, use_debuginfod;
	const char *function;    /* "malloc_trim"; tests call others */
};

struct hs_trim {
	struct hs_snapshot before, after;
	bool called;             /* made, and returned */
	bool have_after;         /* the look after the call (else unsafe says why) */
	size_t calls_made;       /* calls started (1 even if it failed) */
	uint64_t ret;            /* the function's return value */
	pid_t tid;               /* the thread that ran it */
	int attempts;            /* stops made before it was safe */
	uint64_t pause_us;       /* all stops of the call phase */
	uint64_t call_us;        /* the function alone */
	bool released;           /* it outlived the timeout: the other threads
	                            were let go while it ran */
	char unsafe[256];        /* why the last attempt was not safe */
	bool java;               /* the target's executable is named java (a JVM) */
	/* Over the arenas of before: resident bytes, what a trim would give
	 * back; with have_after, what of those arenas is resident after. */
	uint64_t resident_before, trimmable, resident_after;
};

void hs_trim_opts_default(struct hs_trim_opts *o);
/* 0: done (t->called) or dry run; -EAGAIN: never safe within wait_ms
 * (t->unsafe says why); other -errno: failed, target restored. */
int hs_trim_run(pid_t pid, const struct hs_trim_opts *o, struct hs_trim *t, struct hs_err *err);
void hs_trim_release(struct hs_trim *t);

#endif
