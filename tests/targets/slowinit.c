/* A library whose constructor never returns: a thread that dlopens it holds
 * the dynamic loader's lock for good (tests/targets/simple.c in-dlopen). */
#include <unistd.h>

__attribute__((constructor)) static void slow(void)
{
	for (;;)
		pause();
}
