/* Code addresses to names: function + offset from the objects' symbol
 * tables, source file:line from DWARF (the object's own or its separate
 * debug file, found as debuginfo.c finds it), C++ names demangled when
 * heapscope is built with libbfd.  libdwfl (elfutils) reads the files; one
 * handle per object, kept for the symboliser's life.
 *
 * Addresses come in two forms:
 *  - an object and an offset from its load base, as glibc's dladdr() gives
 *    them (dli_fbase is the start of the object's first mapping, so the
 *    offset is from ALIGN_DOWN(first PT_LOAD's p_vaddr, page size)), which
 *    is what mtrace logs write as "OBJECT:[0xOFFSET]";
 *  - a runtime address in a live process, found in its /proc/PID/maps.
 * With a pid, an object named by path is found among the process's
 * mappings (by path, by inode, or as its executable when the path is
 * argv[0]) and read through /proc/PID/map_files, so a file deleted or
 * replaced since the process started is still the one it runs. */
#ifndef HS_SYMBOLS_H
#define HS_SYMBOLS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "debuginfo.h"
#include "err.h"

struct hs_symbols;

/* addr is a return address (a caller as mtrace or a backtrace records it):
 * the call is the instruction before it, so the function and the line are
 * those of addr - 1; the offset is still counted to addr itself. */
#define HS_SYM_RETURN 1u

/* What is known of one address.  Strings belong to the symboliser and live
 * until hs_symbols_free; NULL when unknown. */
struct hs_symbol {
	const char *object;      /* the object's path, as the process maps it (or as given) */
	bool mapped;             /* found in the process's mappings (a pid was given) */
	uint64_t address;        /* runtime address; 0 without a pid */
	uint64_t elf_address;    /* the address in the object's ELF file (what addr2line takes) */
	const char *symbol;      /* the symbol holding it, as the object names it */
	const char *function;    /* symbol, demangled when it is a C++ (or Rust) name and we can */
	uint64_t offset;         /* from the symbol's start */
	const char *file;        /* source file, from the line table */
	int line;                /* 0 when none */
	const char *debuginfo;   /* separate debug file read, NULL when none was needed or found */
	const char *debuginfo_from;  /* "build-id", "debuglink", "debuginfod" */
};

/* A symboliser.  pid > 0: addresses and objects are those of that live
 * process (its mappings are read once, now; the process is not stopped or
 * traced); pid 0: objects are the files named.  debug: HS_DEBUG_* sources
 * of separate debug info; without HS_DEBUG_LOCAL no DWARF is read at all
 * (names from symbol tables only, no file:line). */
int hs_symbols_new(pid_t pid, unsigned debug, struct hs_symbols **out, struct hs_err *err);
void hs_symbols_free(struct hs_symbols *s);

/* object + offset from its load base (dladdr's dli_fbase).  0 with out
 * filled as far as known, -ENOENT when the object cannot be found or
 * opened (out->object is still set). */
int hs_symbols_object(struct hs_symbols *s, const char *object, uint64_t offset, unsigned flags,
		      struct hs_symbol *out, struct hs_err *err);
/* A runtime address of the process (needs a pid: -EINVAL without).
 * -ENOENT when no file mapping holds it (anonymous memory, JIT code). */
int hs_symbols_address(struct hs_symbols *s, uint64_t addr, unsigned flags, struct hs_symbol *out,
		       struct hs_err *err);

/* name demangled (malloc'd), or NULL when it is not a mangled name or
 * heapscope has no demangler. */
char *hs_symbols_demangle(const char *name);
/* "libbfd", or NULL when built without a demangler. */
const char *hs_symbols_demangler(void);

#endif
