/* heapscope profile, collection: libheapscope-sampler.so loaded into a
 * live process (a remote dlopen at a safe moment: no thread in malloc or
 * the dynamic loader, its locks free), the malloc family's GOT slots of
 * every loaded object routed to its wrappers (the slots recorded first,
 * under kind "profile" of lib/state.h, so a later `profile --stop` or the
 * emergency path puts them back, heapscope SIGKILLed included), its ring
 * drained from outside with process_vm_readv while the target runs
 * (only the ring's tail is written back), and at the stop the slots put
 * back and the sampler switched off.  The library stays loaded, inert.
 * The samples go into a struct hs_profile_data (lib/profile.h). */
#ifndef HS_PROFILE_COLLECT_H
#define HS_PROFILE_COLLECT_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "call.h"
#include "err.h"
#include "profile.h"

struct hs_profile_start_opts {
	uint64_t rate;               /* mean bytes between samples; 0: HS_SAMPLER_DEFAULT_RATE */
	const char *sampler;         /* the library as heapscope sees it (absolute); NULL: hs_profile_find_sampler's */
	int wait_ms, timeout_ms;
};

/* A running collection: where the ring is, how far it is drained. */
struct hs_profile_session {
	pid_t pid;
	uint64_t ctl;                /* &hs_sampler_ctl in the target */
	uint64_t tail;               /* first ticket not drained */
	unsigned char *buf;          /* a batch of slots */
};

struct hs_profile_report_start {
	struct hs_call_report call;
	char sampler[PATH_MAX];      /* the library as the target sees it */
	bool copied;                 /* copied into the target's root (another mount namespace) */
	bool loaded_before;
	bool seccomp;                /* start refused (-EPERM): a thread's seccomp filter would kill or hold
	                              * it on a system call the sampler makes, or cannot be read */
	size_t slots, objects, left; /* start: routed, objects, left alone; stop: put back, -, left */
};

/* The sampler library for heapscope itself: $HEAPSCOPE_SAMPLER, else
 * beside the executable (a build tree: ../lib/sampler too), else the
 * install directory.  -ENOENT when none. */
int hs_profile_find_sampler(char *path, size_t len);

/* Load the sampler if needed, route, enable.  -EBUSY: a profile is
 * already recorded for pid; -EAGAIN: never safe within wait_ms, nothing
 * done; -EPERM with rep->seccomp: a thread's seccomp filter would kill
 * (or hold) it on a system call the sampler makes, nothing done.  Other errors leave the slots as they were (a loaded library
 * stays, inert).  ps is ready for hs_profile_drain. */
int hs_profile_start(pid_t pid, const struct hs_profile_start_opts *o, struct hs_profile_session *ps,
		     struct hs_profile_report_start *rep, struct hs_err *err);

/* Copy the completed samples from tail on into d (appended, in ticket
 * order), advance the target's tail; d->dropped and d->live_lost from
 * the control block.  Needs no stop.  -ESRCH: the process is gone. */
int hs_profile_drain(struct hs_profile_session *ps, struct hs_profile_data *d, struct hs_err *err);

/* A session for the control block at ctl in pid (its tail read from
 * it): for a drain without a start (tests), or after a stop. */
int hs_profile_session_open(pid_t pid, uint64_t ctl, struct hs_profile_session *ps, struct hs_err *err);
void hs_profile_session_close(struct hs_profile_session *ps);

/* Put back the slots recorded for pid, switch the sampler off (one
 * stop, no safe moment needed: threads inside a wrapper finish in it),
 * remove the record.  ps (may be NULL) is where a final drain reads.
 * -ENOENT: no profile recorded for pid. */
int hs_profile_stop(pid_t pid, int wait_ms, struct hs_profile_session *ps, struct hs_profile_report_start *rep,
		    struct hs_err *err);

struct hs_profile_collect_opts {
	double duration;             /* seconds; 0: until *stop */
	volatile sig_atomic_t *stop; /* set (by a signal handler) to end the sampling; may be NULL */
	int wait_ms;                 /* for the stop: at least 10 s */
};

struct hs_profile_collect_report {
	struct hs_err drain_err;     /* msg[0]: a drain failed, the sampling ended early */
	int stop_r;                  /* hs_profile_stop's result: < 0 the routing is still in place */
	struct hs_err stop_err;
	struct hs_profile_report_start stop;
	bool partial;                /* either of those, or the last drain failed */
};

/* Drain ps every 20 ms until o->duration or *o->stop, then stop the
 * profile (hs_profile_stop), drain what the threads wrote before the
 * sampler went off, and close ps.  d's window is the sampling's.
 * Errors on the way are in rep (a partial result).  -ESRCH: the process
 * exited (ps closed; d is the caller's to release). */
int hs_profile_collect(struct hs_profile_session *ps, const struct hs_profile_collect_opts *o,
		       struct hs_profile_data *d, struct hs_profile_collect_report *rep, struct hs_err *err);

struct hs_profile_status {
	bool recorded;               /* a record of a profile */
	bool loaded;                 /* the sampler library is mapped */
	char sampler[PATH_MAX];
	size_t slots;
	struct hs_sampler_ctl ctl;   /* when loaded */
	uint64_t ctl_addr;
};
int hs_profile_status(pid_t pid, struct hs_profile_status *st, struct hs_err *err);

#endif
