/* heapscope top's first pass: every process's malloc heaps from
 * /proc/PID/smaps, which stops nothing (the kernel reads the mappings under
 * the mm's lock; no ptrace, no signal).  The 64 MiB-aligned anonymous
 * mappings of glibc's thread arenas and the [heap] of the main arena are
 * counted; their resident bytes bound what malloc holds free there. */
#ifndef HS_TOP_H
#define HS_TOP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct hs_top_entry {
	pid_t pid;
	char comm[64];
	uint64_t rss;            /* the whole process */
	uint64_t heap_rss;       /* resident in [heap] and arena heaps */
	uint64_t arena_heaps;    /* 64 MiB-aligned anonymous heaps seen */
	/* From the exact pass (a short stop), when exact. */
	bool exact;
	int exact_error;         /* -errno of a failed exact pass, 0 */
	char exact_msg[160];
	uint64_t narenas, resident, in_use, free_total, free_resident, trimmable;
};

/* The first pass over pids (or every process when pids is NULL), skipping
 * kernel threads, processes without glibc's libc mapped, and self.  Sorted
 * by heap_rss, largest first.  *out is malloc'd. */
int hs_top_scan(const pid_t *pids, size_t npids, struct hs_top_entry **out, size_t *n, struct hs_err *err);

/* The processes of a cgroup (v2: cgroup.procs of the directory and of every
 * one below it); path is absolute, or relative to /sys/fs/cgroup.  *pids
 * is malloc'd. */
int hs_top_cgroup_pids(const char *path, pid_t **pids, size_t *n, struct hs_err *err);

/* A comma-separated list of process ids; *pids is malloc'd (free it on
 * failure too).  -EINVAL when it is not such a list. */
int hs_top_parse_pids(const char *s, pid_t **pids, size_t *n);

struct hs_snapshot_opts;
/* The exact pass for one entry: its arenas snapshot (one short stop) and
 * the verdict's figures; on failure e->exact_error and e->exact_msg say
 * why.  *pause_us grows by the stop's length. */
void hs_top_exact(struct hs_top_entry *e, const struct hs_snapshot_opts *o, uint64_t *pause_us);

/* Exact entries first by free_resident, then the others by heap_rss. */
void hs_top_sort(struct hs_top_entry *v, size_t n);

/* One round of heapscope top: the first pass over pids (NULL: every
 * process), then the first nexact entries it ranks walked exactly (while
 * *stop is 0), then all ranked (hs_top_sort).  v is malloc'd (free it). */
struct hs_top_round {
	struct hs_top_entry *v;
	size_t n;
	size_t exact;            /* entries walked exactly */
	bool exact_failed;       /* an exact walk failed */
	uint64_t scan_us;        /* the first pass's wall time */
	uint64_t pause_us;       /* the exact walks' stops, summed */
};
int hs_top_round(const pid_t *pids, size_t npids, size_t nexact, const struct hs_snapshot_opts *o,
		 const volatile sig_atomic_t *stop, struct hs_top_round *r, struct hs_err *err);

#endif
