/* libhsleak.so: a shared library that leaks, for tests/targets/leaky.c. */
#include <stdlib.h>

void *lib_leak(size_t n);

static void *volatile last;

__attribute__((noinline)) void *lib_leak(size_t n)
{
	void *p = malloc(n); /* LEAK lib_leak */
	last = p;
	return p;
}
