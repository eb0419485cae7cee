/* What heapscope changed in a process, kept across heapscope runs: a small
 * text record per process and kind, under /run/heapscope (or
 * $HEAPSCOPE_STATE_DIR), named by pid and the process's start time so that
 * a record never applies to a later process with the same pid. */
#ifndef HS_STATE_H
#define HS_STATE_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* Write text as the record `kind` of pid (atomically: a rename). */
int hs_state_write(pid_t pid, const char *kind, const char *text, struct hs_err *err);
/* Read it into buf (NUL-terminated); -ENOENT when there is none. */
int hs_state_read(pid_t pid, const char *kind, char *buf, size_t len);
int hs_state_remove(pid_t pid, const char *kind);

#endif
