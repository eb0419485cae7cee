/* glibc's allocation tracer switched on and off in a live process: setenv
 * MALLOC_TRACE and mtrace() (start), muntrace() (stop), called in the
 * target when no thread is inside malloc; libc's own tracer before glibc
 * 2.34, libc_malloc_debug.so's after (preloaded, or injected by
 * lib/inject.c with --inject).  What was started is recorded
 * (hs_state_trace_record_*), so that status and stop know of a trace
 * whose log is still empty.  The callers of a trace log named. */
#ifndef HS_MTRACE_H
#define HS_MTRACE_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "inject.h"
#include "mtrace_log.h"
#include "snapshot.h"
#include "symbols.h"
#include "call.h"

struct hs_mtrace_opts {
	const char *file;            /* start: the log as the target sees it; NULL: a new private one */
	bool inject;                 /* start: inject the tracer when it is not loaded (2.34+) */
	int wait_ms, timeout_ms;
	struct hs_snapshot_opts snap;   /* the look taken first (residency and walk are turned off) */
};

struct hs_mtrace_report {
	bool injected;               /* went through lib/inject.c: inj has the figures */
	struct hs_inject_report inj;
	struct hs_call_report call;  /* the plain calls (not injected) */
	char file[PATH_MAX];         /* the log */
	char tracer[PATH_MAX];       /* the object whose mtrace/muntrace was called */
	char warning[512];           /* done, but: the record could not be written */
};

struct hs_mtrace_status {
	bool tracing, injected;
	char file[PATH_MAX];         /* the open log */
	struct hs_inject_report inj; /* when injected: library and slots */
};

/* Is pid tracing (heapscope's record, or a log open whose first line is
 * glibc's "= Start")?  Never stops it. */
int hs_mtrace_status(pid_t pid, struct hs_mtrace_status *st, struct hs_err *err);
/* Start or stop tracing.  -EAGAIN: never safe within wait_ms (err says
 * why; for an injected stop, the slots may be back: rep->inj.slots);
 * other errors leave the target as it was, except a library injected.
 * Starting while tracing, or stopping while not, is refused (-EEXIST,
 * -ENOENT) with nothing done. */
int hs_mtrace_start(pid_t pid, const struct hs_mtrace_opts *o, struct hs_mtrace_report *rep, struct hs_err *err);
int hs_mtrace_stop(pid_t pid, const struct hs_mtrace_opts *o, struct hs_mtrace_report *rep, struct hs_err *err);

/* A caller of a trace log (tr_where()'s text) named: from pid's mappings
 * when pid > 0 (else the files the log names).  unmapped: the log names
 * an object pid does not map (set to it, "" otherwise); the name, if any,
 * is then from the file on disk.  function is malloc'd (dladdr's name
 * from the log, demangled) when the symbols had none: free it. */
struct hs_mtrace_named {
	struct hs_symbol y;
	bool known;                  /* an object was found for it */
	char *function;
	char unmapped[PATH_MAX];
	bool unmapped_first;         /* the first caller named from that unmapped object */
};
void hs_mtrace_name(struct hs_symbols *sym, pid_t pid, const char *text, struct hs_mtrace_named *nm);
static inline const char *hs_mtrace_named_function(const struct hs_mtrace_named *nm)
{
	return nm->y.function ? nm->y.function : nm->function;
}

/* A trace log summarised (lib/mtrace_log.h), its first top callers named
 * (hs_mtrace_name) with symbols as debug says (HS_DEBUG_*), their blocks
 * listed when blocks.  pid > 0: from pid's mappings (never stopped), and
 * -ESRCH when there is no such process.  err says what failed. */
struct hs_mtrace_summary_opts {
	size_t top;
	bool blocks;
	pid_t pid;
	unsigned debug;
};
struct hs_mtrace_summary {
	struct hs_mtrace_log log;
	size_t shown;                    /* callers named: the first top */
	struct hs_mtrace_named *named;   /* shown of them (their strings are sym's) */
	struct hs_symbols *sym;
};
int hs_mtrace_summarise(const char *file, const struct hs_mtrace_summary_opts *o, struct hs_mtrace_summary *sm,
			struct hs_err *err);
void hs_mtrace_summary_release(struct hs_mtrace_summary *sm);

#endif
