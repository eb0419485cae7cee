/* heapscope profile: who allocates, by whole call stack.  Two halves:
 * collection (lib/profile.c: the sampler library loaded into the target
 * and its malloc family routed to it, the ring drained from outside,
 * routing put back at the stop) fills a struct hs_profile_data; analysis
 * (lib/profile_report.c: each sample unwound offline with libdwfl from
 * its saved registers and stack copy, symbolised, grouped by stack, by
 * thread and by arena) turns it into a struct hs_profile_report, which
 * the writers render (text, JSON, pprof, folded and SVG, to a stream the
 * caller gives, or to files by name). */
#ifndef HS_PROFILE_H
#define HS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"
#include "sampler_abi.h"

/* One drained sample: the header as the sampler wrote it and its own
 * copy of the stack bytes (h.stack_len of them; NULL for a free). */
struct hs_profile_sample {
	struct hs_sample_hdr h;
	unsigned char *stack;
};

/* What a collection produced.  The process must still be alive for the
 * analysis (its mappings and code are read, not its stacks). */
struct hs_profile_data {
	pid_t pid;
	uint64_t rate;                  /* mean bytes between samples */
	uint64_t t_start_ns, t_end_ns;  /* CLOCK_MONOTONIC, the sampling window */
	size_t n, cap;
	struct hs_profile_sample *v;    /* in ticket order */
	uint64_t dropped, live_lost;    /* from the control block at the end */
};

void hs_profile_data_release(struct hs_profile_data *d);

/* ---- analysis ---- */

/* A frame of a stack: its pc, and its name once symbolised. */
struct hs_profile_frame {
	uint64_t pc;
	const char *name;       /* "func+0x1a", "[unknown, JIT?]", or a perf map's name; interned */
	const char *file;       /* source file:line, or NULL; interned */
	const char *object;     /* the mapping's path (basename in text), or NULL */
};

/* One distinct stack (innermost frame first, the allocator's own frames
 * and the sampler's dropped) and what it allocated, scaled by the rate:
 * alloc_* over the whole window, inuse_* still live at its end. */
struct hs_profile_stack {
	size_t nframes;
	struct hs_profile_frame *frames;
	double alloc_bytes, alloc_objects, inuse_bytes, inuse_objects;
	size_t samples;                 /* raw samples behind it */
	bool truncated;                 /* unwinding stopped early (no CFI, JIT code, stack copy end) */
};

struct hs_profile_thread {
	pid_t tid;
	char name[32];                  /* /proc/PID/task/TID/comm at the end */
	double alloc_bytes, inuse_bytes;
	size_t *stacks, nstacks;        /* indexes into the report's stacks */
};

struct hs_profile_arena {
	int index;                      /* as heapscope arenas numbers them; -1 mmapped */
	uint64_t addr;
	double inuse_bytes;
	size_t *stacks, nstacks;        /* which stacks hold its live sampled blocks */
};

struct hs_profile_report {
	pid_t pid;
	uint64_t rate;
	double seconds;
	size_t nsamples, nfrees, dropped;
	uint64_t live_lost;                 /* sampled blocks not followed to their free */
	size_t nstacks;
	struct hs_profile_stack *stacks;    /* most allocated bytes first */
	size_t nthreads;
	struct hs_profile_thread *threads;
	size_t narenas;
	struct hs_profile_arena *arenas;
	void *priv;                         /* interned strings, the Dwfl */
};

struct hs_profile_opts {
	bool use_debuginfo, use_debuginfod;
	int max_frames;                     /* 0: 128 */
};

int hs_profile_analyze(const struct hs_profile_data *d, const struct hs_profile_opts *o,
		       struct hs_profile_report *out, struct hs_err *err);
void hs_profile_report_release(struct hs_profile_report *r);

/* The report for people: a summary line (with the pauses of the start
 * and the stop), the top stacks (all if top <= 0), threads and arenas.
 * A write error shows in ferror(fp). */
void hs_profile_write_text(FILE *fp, const struct hs_profile_report *r, int top, uint64_t start_us, uint64_t stop_us);
/* Writers: 0 or -errno (a write error). */
int hs_profile_write_json(FILE *fp, const struct hs_profile_report *r, int top);
int hs_profile_write_pprof(FILE *fp, const struct hs_profile_report *r);   /* gzipped profile.proto */
int hs_profile_write_folded(FILE *fp, const struct hs_profile_report *r, bool inuse);
int hs_profile_write_svg(FILE *fp, const struct hs_profile_report *r, bool inuse);
/* The drained samples themselves, one line each (debugging). */
int hs_profile_write_raw(FILE *fp, const struct hs_profile_data *d);
/* The same into files by name (created or truncated): raw samples; the
 * pprof profile and the SVG flame graph, each when named.  0, or -errno
 * with "cannot write PATH: ..." in err. */
int hs_profile_save_raw(const struct hs_profile_data *d, const char *path, struct hs_err *err);
int hs_profile_save(const struct hs_profile_report *r, const char *pprof, const char *svg, bool inuse,
		    struct hs_err *err);

#endif
