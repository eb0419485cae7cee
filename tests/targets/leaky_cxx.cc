// leaky-cxx: leaks from a member of a class template and from a function
// template in a namespace under glibc's mtrace, for heapscope mtrace
// report's demangling.  Usage and protocol as leaky.c: leaky-cxx exit|wait.
// Leaks 6 blocks of 48 bytes from hsleak::Pool<hsleak::Node>::grow, 4 of
// 64 from hsleak::make<int>, and 2 through operator new (whose malloc call
// is inside libstdc++).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mcheck.h>
#include <unistd.h>

namespace hsleak {

// volatile: the compiler may drop a malloc whose result is never read
void *volatile kept[64];
int nkept;

struct Node {
	long a, b, c;
};

template <typename T> struct Pool {
	__attribute__((noinline)) static void grow(std::size_t n)
	{
		kept[nkept] = std::malloc(n * sizeof(T)); // LEAK hsleak::Pool<hsleak::Node>::grow
		nkept++;
	}
};

template <typename T> __attribute__((noinline)) T *make(int n)
{
	T *p = static_cast<T *>(std::malloc(64)); // LEAK hsleak::make<int>
	kept[nkept++] = p;
	*p = static_cast<T>(n);
	return p;
}

} // namespace hsleak

int main(int argc, char **argv)
{
	if (argc != 2 || (std::strcmp(argv[1], "exit") && std::strcmp(argv[1], "wait"))) {
		std::fprintf(stderr, "usage: leaky-cxx exit|wait\n");
		return 64;
	}
	mtrace();
	for (int i = 0; i < 6; i++)
		hsleak::Pool<hsleak::Node>::grow(2);
	for (int i = 0; i < 4; i++)
		hsleak::make<int>(i);
	for (int i = 0; i < 2; i++)
		hsleak::kept[hsleak::nkept++] = new hsleak::Node();
	for (int i = 0; i < 8; i++) {
		void *volatile p = std::malloc(32);
		std::free(p);
	}
	muntrace();
	if (!std::strcmp(argv[1], "wait")) {
		std::printf("READY %d\n", (int)getpid());
		std::fflush(stdout);
		for (;;)
			pause();
	}
	return 0;
}
