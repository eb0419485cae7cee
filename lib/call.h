/* Calls into a live process, made only when it is safe: every thread
 * stopped, no arena locked, the calling thread outside malloc (and outside
 * any other code or lock the caller names), with what the stop cost
 * reported.  The mechanism of one call is hs_session_call_data's. */
#ifndef HS_CALL_H
#define HS_CALL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "libc.h"
#include "maps.h"
#include "mem.h"
#include "session.h"

/* One function to call: address, integer arguments (HS_CALL_DATA(off)
 * for a pointer into data), data to place on the stack. */
struct hs_call {
	uint64_t func;
	uint64_t args[6];
	int nargs;
	const void *data;
	size_t dlen;
};
struct hs_call_report {
	uint64_t ret[8];
	size_t done;             /* calls made */
	pid_t tid;
	int attempts;
	uint64_t pause_us, call_us;
	uint64_t t0_us;          /* when the safe stop began */
	bool released;           /* a call outlived its timeout: the other
	                            threads were let go (it waited on one) */
	char unsafe[256];
};

/* Code no thread may be in (or called from) for a call to be safe. */
struct hs_code_range {
	uint64_t lo, hi;
	const char *what;        /* "malloc", "the dynamic loader" */
	bool all;                /* no thread at all may be in it, not only the caller */
	bool pc_only;            /* only the program counter is checked, not the stack */
	uint64_t lock;           /* instead of code: a pthread mutex that must be free
	                            (its __lock word 0; __owner, the holder's TID, at +8) */
	bool lll;                /* lock is a plain low-level lock (an int, 0 when free)
	                            with no owner recorded */
};

/* hs_session_attach, again while the threads do not stop in time (a
 * loaded machine), until deadline_us (CLOCK_MONOTONIC, from
 * hs_call_deadline(wait_ms)): then -EAGAIN, rep->unsafe saying why; the
 * pauses of the attempts are added to rep->pause_us. */
int hs_call_attach(pid_t pid, uint64_t deadline_us, struct hs_session **ses, struct hs_call_report *rep,
		   struct hs_err *err);
uint64_t hs_call_deadline(int wait_ms);
/* Before another attempt: -EAGAIN once deadline_us has passed, else 0
 * after a short sleep (20 ms). */
int hs_call_retry_wait(uint64_t deadline_us);

/* Stop pid once no thread is inside malloc (or the extra code) and every
 * thread stopped in time, retrying up to wait_ms: *ses the session,
 * rep->tid the thread to call in.  -EAGAIN: never safe, nothing done
 * (rep->unsafe says why).  hs_call_end detaches and counts the pause. */
int hs_call_begin(pid_t pid, const struct hs_libc *libc, const struct hs_maps *maps, struct hs_mem *mem,
		  const struct hs_code_range *extra, size_t nextra, int wait_ms, struct hs_session **ses,
		  struct hs_call_report *rep, struct hs_err *err);
void hs_call_end(struct hs_session *ses, struct hs_call_report *rep);

/* hs_call_begin, the calls in rep->tid, hs_call_end.  -EAGAIN: never
 * safe, nothing called (rep->unsafe says why). */
int hs_call_safely(pid_t pid, const struct hs_libc *libc, const struct hs_maps *maps, struct hs_mem *mem,
		   const struct hs_code_range *extra, size_t nextra, const struct hs_call *calls, size_t n, int wait_ms,
		   int timeout_ms, struct hs_call_report *rep, struct hs_err *err);

#endif
