/* The profiled target's shared library: one call chain's middle and
 * innermost functions live here. */
#include <stdlib.h>

void *lib_beta_mid(size_t n);

__attribute__((noinline, noipa)) static void *lib_beta_leaf(size_t n)
{
	void *p = malloc(n);
	__asm__ volatile("" : : "r"(p) : "memory");    /* no tail call */
	return p;
}

__attribute__((noinline, noipa)) void *lib_beta_mid(size_t n)
{
	void *p = lib_beta_leaf(n);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}
