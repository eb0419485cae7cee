/* The target's C library: which file, which version, where malloc's state
 * lives.  Reads the file image with libelf (opened through elfobj.h) and
 * struct layouts from its debug info with libdw.  libelf is also read by
 * elfobj, debuginfo, got and symbols, libdw by symbols (libdwfl); nothing
 * above this layer touches either (docs/DESIGN.md). */
#ifndef HS_LIBC_H
#define HS_LIBC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "debuginfo.h"
#include "err.h"
#include "layout.h"
#include "maps.h"
#include "session.h"

struct hs_tpoff {
	uint64_t slot;           /* runtime address of a TPOFF64 GOT slot */
	int64_t addend;          /* offset inside libc's TLS block */
};

struct hs_libc {
	char map_path[PATH_MAX]; /* as the target's maps show it */
	char file[PATH_MAX];     /* as heapscope opened it */
	uint64_t base;           /* load bias */
	bool is_static;          /* malloc lives in the executable */
	int major, minor;        /* 2, 36; 0, 0 when unknown */
	char version[32];
	char build_id[81];       /* hex, "" when none */

	/* Runtime addresses; 0 when not found. */
	uint64_t main_arena, mp, global_max_fast;
	/* TLS: offsets inside libc's TLS block, -1 when unknown. */
	int64_t tls_tcache, tls_thread_arena;
	struct hs_tpoff *tpoff;  /* libc's local TPOFF64 slots (dynamic libc) */
	size_t ntpoff;
	int64_t static_tls_tpoff;  /* static binary: TP offset of the TLS block, 0 unknown */

	char debuginfo[PATH_MAX];  /* debug file used, "" when none */
	const char *debuginfo_from;  /* "build-id", "debuglink", "debuginfod" */
	bool use_debuginfod;
	const char *symbols_from;  /* "debuginfo", "symtab" or "signature" */
	struct hs_layout layout;
	const char *layout_from;   /* "table", "dwarf" */
	bool have_layout;
};

/* Find and read the C library of pid, with debug info from the sources in
 * debug (HS_DEBUG_*; 0 ignores any: --no-debuginfo).  Errors: -ENOTSUP for another
 * allocator or libc (the message names it), -ENOENT for no libc at all.
 * Needs no stop. */
int hs_libc_find(pid_t pid, const struct hs_maps *maps, unsigned debug, struct hs_libc *libc, struct hs_err *err);
void hs_libc_release(struct hs_libc *libc);

/* The runtime address of an exported function of the library. */
int hs_libc_lookup(const struct hs_libc *libc, const char *name, uint64_t *addr);
/* Several functions with one opening of the file: addrs[i] 0 where
 * names[i] is not found.  -ENOENT if the file cannot be read. */
int hs_libc_lookup_many(const struct hs_libc *libc, const char *const *names, size_t n, uint64_t *addrs);
/* The same for a variable (STT_OBJECT), compat versions included. */
int hs_libc_lookup_object(const struct hs_libc *libc, const char *name, uint64_t *addr);
/* ... and its size (st_size). */
int hs_libc_lookup_object_size(const struct hs_libc *libc, const char *name, uint64_t *addr, uint64_t *size);
/* [lo, hi): the code of malloc.c (its exported functions' span). */
int hs_libc_malloc_code(const struct hs_libc *libc, uint64_t *lo, uint64_t *hi);
/* The code a remote call returns through (see hs_session_set_return),
 * found in the library's executable segments.  -ENOENT if absent. */
int hs_libc_call_return(const struct hs_libc *libc, struct hs_call_return *cr);

#endif
