/* The slots through which a process's loaded objects call (or point to) a
 * libc function: GOT entries and data words with a dynamic relocation
 * naming malloc, free and the like.  A later `mtrace start --inject`
 * rewrites these slots, all threads stopped, to route the malloc family to
 * libc_malloc_debug.so; see docs/INJECT.md.  This module only finds them:
 * relocation tables come from each object's file (libelf), never from the
 * target's memory; the target is only read (the build-id check, the slots'
 * current values).  x86_64 only. */
#ifndef HS_GOT_H
#define HS_GOT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "maps.h"
#include "mem.h"

/* Relocation kinds, for hs_got_opts.types. */
enum {
	HS_GOT_JUMP_SLOT = 1,    /* R_X86_64_JUMP_SLOT: a PLT's GOT entry (.got.plt) */
	HS_GOT_GLOB_DAT = 2,     /* R_X86_64_GLOB_DAT: an address in .got (-fno-plt calls, &malloc) */
	HS_GOT_ABS64 = 4,        /* R_X86_64_64: a pointer in data (void *(*f)(size_t) = malloc) */
	HS_GOT_ALL = 7,
};

/* What a slot holds now (hs_got_read). */
enum hs_got_state {
	HS_GOT_UNREAD = 0,
	HS_GOT_LIBC,             /* libc's definition of the name (+ addend) */
	HS_GOT_LAZY,             /* a JUMP_SLOT not bound yet: its PLT stub */
	HS_GOT_CANONICAL,        /* the executable's canonical PLT entry for the name */
	HS_GOT_OTHER,            /* anything else: interposed, rewritten, changed by the program */
};

/* The malloc family as libc.so.6 exports it (the names routed to
 * libc_malloc_debug.so; free_sized and free_aligned_sized exist from 2.43
 * only and are simply not found before). */
extern const char *const hs_got_malloc_names[];
extern const size_t hs_got_malloc_nnames;

struct hs_got_opts {
	const char *const *names;    /* symbol names to look for */
	size_t nnames;
	const char *const *exclude;  /* objects to skip: a DT_SONAME ("libc_malloc_debug.so.0"), a
	                                basename or a full path as the maps show it */
	size_t nexclude;
	unsigned types;              /* HS_GOT_* mask; 0 means HS_GOT_ALL */
	bool skip_unusable;          /* an object that cannot be opened or checked is listed with
	                                its reason and skipped, instead of failing the whole call */
	bool any_version;            /* take references of any version, and libc's compat (hidden)
	                                definition of a name that has no default one: the
	                                __malloc_hook variables a late-loaded libc_malloc_debug.so
	                                binds to (docs/INJECT.md) */
};

/* One name as libc.so.6 defines it. */
struct hs_got_target {
	const char *name;            /* from opts->names (borrowed) */
	bool defined;                /* libc.so.6 exports it (free_sized: 2.43 and later) */
	bool compat;                 /* only as a compat (hidden) symbol: any_version */
	char version[32];            /* libc's default version ("GLIBC_2.2.5"), "" if not defined */
	uint64_t libc_addr;          /* runtime address of libc's definition, 0 if none */
	uint64_t canonical;          /* the executable's canonical PLT entry, 0 if none: then
	                                GLOB_DAT and R_X86_64_64 slots everywhere hold this */
};

struct hs_got_object {
	char path[PATH_MAX];         /* as the target's maps show it */
	char file[PATH_MAX];         /* as heapscope opened it */
	char soname[128];            /* DT_SONAME, "" when none (an executable) */
	uint64_t base;               /* load bias: 0 for a non-PIE executable */
	uint64_t start;              /* the mapping at file offset 0 */
	char build_id[81];           /* hex, "" when the file has none */
	bool is_libc;
	bool bind_now;               /* DF_BIND_NOW / DF_1_NOW: every JUMP_SLOT bound at start */
	uint64_t relro_lo, relro_hi; /* [lo, hi): made read-only after relocation, 0 0 when none */
	size_t nslots;
	const char *defines;         /* one of the names this object (not libc) defines, hidden
	                                versions included: an interposer if it is in the global
	                                scope; NULL when none (points into opts->names) */
	const char *skipped;         /* why the object was skipped, NULL when used */
};

struct hs_got_slot {
	size_t object;               /* index into hs_got.obj */
	const char *symbol;          /* points into opts->names */
	unsigned type;               /* HS_GOT_JUMP_SLOT, HS_GOT_GLOB_DAT or HS_GOT_ABS64 */
	unsigned rtype;              /* R_X86_64_* as in the file */
	uint64_t addr;               /* runtime address of the 8-byte slot */
	int64_t addend;              /* what ld.so adds to the symbol's address: R_X86_64_64's
	                                r_addend; 0 for JUMP_SLOT and GLOB_DAT, whatever their
	                                r_addend (-z mark-plt puts the PLT entry's offset there) */
	char version[32];            /* the reference's version, "" when unversioned */
	bool relro;                  /* inside the object's RELRO pages: read-only after start
	                                (written through /proc/PID/mem, which forces) */
	uint64_t lazy;               /* JUMP_SLOT: the value before binding (its PLT stub), else 0 */
	uint64_t value;              /* hs_got_read(): the value now */
	enum hs_got_state state;
};

struct hs_got {
	struct hs_got_target *targets;   /* one per opts->names, same order */
	size_t ntargets;
	struct hs_got_object *obj;       /* every ELF object mapped, in address order */
	size_t nobj;
	struct hs_got_slot *v;           /* sorted by object, then address */
	size_t n;
	size_t libc;                     /* index of libc.so.6 in obj */
};

/* Find every slot in pid's loaded ELF objects (the executable, its shared
 * libraries, libc.so.6 and ld.so themselves; not the vdso, not files
 * mapped as data) whose JUMP_SLOT, GLOB_DAT or R_X86_64_64 relocation names
 * one of opts->names with libc's default version for it (or no version).
 * Each object's file is opened through /proc/PID/map_files (else
 * /proc/PID/root), and checked against the mapping: same inode, or the
 * build-id the target has in memory.  mem reads the target (may be NULL:
 * one is opened for the call).  Needs no stop.
 * Errors: -ESRCH (pid gone), -ENOTSUP (no libc.so.6: a static binary, or
 * libc loaded twice by dlmopen), -ENOENT/-EACCES/-ENOEXEC for an object
 * that cannot be opened or does not match its mapping (unless
 * opts->skip_unusable).  On error nothing is left to release. */
int hs_got_find(pid_t pid, const struct hs_maps *maps, struct hs_mem *mem, const struct hs_got_opts *opts,
		struct hs_got *got, struct hs_err *err);

/* Read each slot's current value from the target and classify it.  Should
 * run with the target stopped when the values are to be trusted (a lazy
 * slot may be bound meanwhile).  Errors: those of hs_mem_read. */
int hs_got_read(struct hs_mem *mem, struct hs_got *got, struct hs_err *err);

void hs_got_release(struct hs_got *got);

/* "JUMP_SLOT", "GLOB_DAT", "64"; "libc", "lazy", "canonical", "other". */
const char *hs_got_type_name(unsigned type);
const char *hs_got_state_name(enum hs_got_state state);

#endif
