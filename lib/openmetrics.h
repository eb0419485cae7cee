/* Per-process malloc figures as a metrics file for node_exporter's textfile
 * collector (Prometheus text exposition format, which OpenMetrics parsers
 * read too), written atomically: a temporary file in the same directory,
 * then rename(2), so the collector never reads half a file. */
#ifndef HS_OPENMETRICS_H
#define HS_OPENMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct hs_om_figures {
	uint64_t resident, in_use, free, trimmable, system;
};

struct hs_om_arena {
	int index;
	bool main;
	struct hs_om_figures f;
};

struct hs_om_process {
	pid_t pid;
	const char *comm;            /* its name (/proc/PID/comm) */
	struct hs_om_figures f;      /* over all arenas */
	uint64_t narenas;
	const struct hs_om_arena *arenas;  /* narenas of them, or NULL (no per-arena series) */
};

/* Write the figures of n processes to path (mode 0644); 0 or -errno. */
int hs_openmetrics_write(const char *path, const struct hs_om_process *p, size_t n, struct hs_err *err);

struct hs_heap;
/* The figures of a walked heap (comm read into comm_buf); p->arenas is
 * malloc'd (free it). */
int hs_om_process_of(pid_t pid, const struct hs_heap *h, char *comm_buf, size_t n, struct hs_om_process *p);

#endif
