/* What heapscope changed in a process, kept across heapscope runs: a small
 * text record per process and kind, under /run/heapscope (or
 * $HEAPSCOPE_STATE_DIR), named by pid and the process's start time so that
 * a record never applies to a later process with the same pid. */
#ifndef HS_STATE_H
#define HS_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"
#include "session.h"

/* Records are trusted only in a directory that is no symlink, owned by
 * heapscope's effective uid and writable by no one else; each record a
 * regular file of that uid, opened without following a link.  Is the
 * directory so (0 too when it does not exist; create: make it, 0700)?
 * -EPERM with the reason in err when it is not. */
int hs_state_check(bool create, struct hs_err *err);
/* Write text as the record `kind` of pid (atomically: a file of its own,
 * O_EXCL, renamed over the record). */
int hs_state_write(pid_t pid, const char *kind, const char *text, struct hs_err *err);
/* Read it into buf (NUL-terminated); -ENOENT (err untouched) when there
 * is none, -EPERM when the directory or the record cannot be trusted. */
int hs_state_read(pid_t pid, const char *kind, char *buf, size_t len, struct hs_err *err);
int hs_state_remove(pid_t pid, const char *kind);

/* The default trace log of pid: in a new private directory under the
 * process's /tmp (as its mount namespace sees it: mkdtemp, 0700, owned by
 * the process's fs uid and gid, checked after), log its path as the
 * process sees it.  A predictable name would let anyone plant a symlink
 * or a FIFO there. */
int hs_state_trace_dir(pid_t pid, char *log, size_t len, struct hs_err *err);
/* A log path given by the user (absolute, as pid sees it): -EPERM when it
 * exists and is a symlink, a FIFO or anything but a regular file. */
int hs_state_trace_check_path(pid_t pid, const char *log, struct hs_err *err);
/* After the process opened its log: a regular file, and when private
 * (hs_state_trace_dir's) its own new file (its fs uid, one link). */
int hs_state_trace_opened(pid_t pid, const char *log, bool private, struct hs_err *err);

/* The record of a trace heapscope started (kind "mtrace"), one format for
 * mtrace's plain start and inject's: "file LOG", then for an injection
 * "inject LIBRARY" and a "slot 0xADDR 0xOLD 0xNEW" per slot it may have
 * written (the record is written before the slots are). */
struct hs_trace_record {
	char file[PATH_MAX];
	char dbg[PATH_MAX];          /* "" unless injected */
	struct hs_poke *slots;       /* malloc'd, nslots of them */
	size_t nslots;
};
/* -E2BIG: too many slots for one record. */
int hs_state_trace_record_write(pid_t pid, const struct hs_trace_record *rec, struct hs_err *err);
/* -ENOENT (err untouched): no record; -EINVAL: not a record this reader
 * can read (no file line, a bad slot line); -EPERM: not trusted. */
int hs_state_trace_record_read(pid_t pid, struct hs_trace_record *rec, struct hs_err *err);
void hs_state_trace_record_release(struct hs_trace_record *rec);

#endif
