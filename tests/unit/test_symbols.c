/* The symboliser on this very program (built with -g) and on libc: a return
 * address named by function + offset and file:line, through the process's
 * mappings, through dladdr's object + offset (mtrace's form), from the file
 * alone, and without debug info; demangling. */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "symbols.h"
#include "tap.h"

void hs_test_caller(void);

static void *ret;
static int call_line;

__attribute__((noinline)) static void callee(void)
{
	ret = __builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void hs_test_caller(void)
{
	call_line = __LINE__ + 1;
	callee();
	__asm__ volatile("" ::: "memory");   /* no tail call */
}

static int ends_with(const char *s, const char *tail)
{
	size_t n = s ? strlen(s) : 0, k = strlen(tail);
	return s && n >= k && !strcmp(s + n - k, tail);
}

static void check_caller(const struct hs_symbol *y, const char *how, int with_lines)
{
	uint64_t off = (uint64_t)((uintptr_t)ret - (uintptr_t)hs_test_caller);
	OK(y->function && !strcmp(y->function, "hs_test_caller") && y->offset == off,
	   "%s: hs_test_caller+0x%llx (got %s+0x%llx)", how, (unsigned long long)off,
	   y->function ? y->function : "(none)", (unsigned long long)y->offset);
	if (with_lines)
		OK(ends_with(y->file, "test_symbols.c") && y->line == call_line, "%s: test_symbols.c:%d (got %s:%d)",
		   how, call_line, y->file ? y->file : "(none)", y->line);
	else
		OK(!y->file && !y->line, "%s: no file:line without debug info", how);
}

int main(void)
{
	hs_test_caller();
	struct hs_err err = { 0 };
	struct hs_symbols *s = NULL;
	struct hs_symbol y;
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';

	OK(hs_symbols_new(getpid(), HS_DEBUG_LOCAL, &s, &err) == 0, "symboliser for this process: %s", err.msg);
	int r = hs_symbols_address(s, (uintptr_t)ret, HS_SYM_RETURN, &y, &err);
	OK(r == 0 && y.mapped && y.object && !strcmp(y.object, exe) && y.address == (uintptr_t)ret,
	   "return address found in %s (%d %s)", exe, r, err.msg);
	check_caller(&y, "runtime address", 1);
	uint64_t elf_address = y.elf_address;

	Dl_info info;
	OK(dladdr(ret, &info) != 0, "dladdr knows the return address");
	uint64_t off = (uint64_t)((uintptr_t)ret - (uintptr_t)info.dli_fbase);
	r = hs_symbols_object(s, info.dli_fname, off, HS_SYM_RETURN, &y, &err);
	OK(r == 0 && y.mapped && y.address == (uintptr_t)ret && y.elf_address == elf_address,
	   "dladdr's object + offset (%s:[0x%llx]) through the mappings", info.dli_fname, (unsigned long long)off);
	check_caller(&y, "object + offset, mapped", 1);

	/* libc, most likely stripped: a name from its dynamic symbols, or its
	 * debug file's, whichever is there */
	uintptr_t gp = (uintptr_t)&getppid;
	r = hs_symbols_address(s, gp + 1, 0, &y, &err);
	OK(r == 0 && y.function && strstr(y.function, "getppid") && y.offset == 1,
	   "getppid+0x1 in %s (got %s+0x%llx)", y.object ? y.object : "?", y.function ? y.function : "(none)",
	   (unsigned long long)y.offset);

	void *heap = malloc(16);
	OK(hs_symbols_address(s, (uintptr_t)heap, 0, &y, &err) == -ENOENT, "heap memory is no object: %s", err.msg);
	free(heap);
	hs_symbols_free(s);

	/* no process: the file named */
	OK(hs_symbols_new(0, HS_DEBUG_LOCAL, &s, &err) == 0, "symboliser for files");
	r = hs_symbols_object(s, exe, off, HS_SYM_RETURN, &y, &err);
	OK(r == 0 && !y.mapped && !y.address && y.elf_address == elf_address, "object + offset from the file alone");
	check_caller(&y, "object + offset, file", 1);
	OK(hs_symbols_address(s, (uintptr_t)ret, 0, &y, &err) == -EINVAL, "a runtime address needs a process");
	OK(hs_symbols_object(s, "/nonexistent/libnone.so", 0x1000, 0, &y, &err) == -ENOENT && y.object &&
	   !strcmp(y.object, "/nonexistent/libnone.so"), "a missing object: -ENOENT, named: %s", err.msg);
	hs_symbols_free(s);

	/* no debug info: names from the symbol table, no file:line */
	OK(hs_symbols_new(getpid(), 0, &s, &err) == 0, "symboliser without debug info");
	r = hs_symbols_address(s, (uintptr_t)ret, HS_SYM_RETURN, &y, &err);
	OK(r == 0, "found without debug info");
	check_caller(&y, "no debug info", 0);
	hs_symbols_free(s);

	char *d = hs_symbols_demangle("_ZN6hsleak4PoolINS_4NodeEE4growEm");
#if HS_HAVE_BFD
	OK(d && !strcmp(d, "hsleak::Pool<hsleak::Node>::grow(unsigned long)") && !strcmp(hs_symbols_demangler(), "libbfd"),
	   "demangled with libbfd: %s", d ? d : "(null)");
#else
	OK(!d && !hs_symbols_demangler(), "no demangler built in: names stay mangled");
#endif
	free(d);
	OK(!hs_symbols_demangle("main") && !hs_symbols_demangle("_start"), "C names are left alone");
	return tap_done();
}
