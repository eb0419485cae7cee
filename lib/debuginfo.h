/* Where an object's separate debug info lives: by build-id under
 * HEAPSCOPE_DEBUG_DIRS and /usr/lib/debug, by .gnu_debuglink beside it, and
 * through debuginfod when nothing local has it.  Shared by the C library
 * lookup (libc.c) and the symboliser (symbols.c).  A candidate's build-id
 * is read with libelf (elfobj.h). */
#ifndef HS_DEBUGINFO_H
#define HS_DEBUGINFO_H

#include <stddef.h>
#include <sys/types.h>

/* Where debug info may come from: HS_DEBUG_LOCAL (/usr/lib/debug by
 * build-id, HEAPSCOPE_DEBUG_DIRS, .gnu_debuglink, an unstripped .symtab),
 * HS_DEBUG_DEBUGINFOD (libdebuginfod with DEBUGINFOD_URLS, when built with
 * it, and only when nothing local was found). */
enum { HS_DEBUG_LOCAL = 1, HS_DEBUG_DEBUGINFOD = 2 };

struct hs_debuginfo_query {
	pid_t pid;               /* > 0: also look under /proc/PID/root (containers) */
	const char *build_id;    /* hex; "" or NULL when the object has none */
	const char *map_path;    /* the object's path as the target maps it */
	const char *file;        /* the file opened for the object: never its own debug file */
	const char *debuglink;   /* its .gnu_debuglink name; NULL when none */
	unsigned sources;        /* HS_DEBUG_* */
};

/* Find an object's separate debug file: HEAPSCOPE_DEBUG_DIRS (colon-separated
 * directories of .build-id trees), then /usr/lib/debug/.build-id (here, then
 * under /proc/PID/root), then .gnu_debuglink's places (DIR/NAME,
 * DIR/.debug/NAME, /usr/lib/debug/DIR/NAME), then debuginfod.  A file found
 * locally must carry the object's build-id when it has one.  On success the
 * file's path is in path and *from says how it was found ("build-id",
 * "debuglink", "debuginfod"); -ENOENT when nothing has it. */
int hs_debuginfo_find(const struct hs_debuginfo_query *q, char *path, size_t pathsz, const char **from);

/* 0 if path is an ELF file whose build-id is build_id (any ELF file when
 * build_id is "" or NULL), else -ENOENT. */
int hs_debuginfo_check(const char *path, const char *build_id);

#endif
