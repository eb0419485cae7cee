// The profiled target's C++ chain: a member function of a class template
// in a namespace allocates, so its name is demangled in the profile.
#include <cstdlib>

namespace hsprof {
template <typename T> struct Builder {
	__attribute__((noinline, noipa)) static void *make(std::size_t n)
	{
		void *p = std::malloc(n);
		__asm__ volatile("" : : "r"(p) : "memory");
		return p;
	}
};
}

extern "C" void *gamma_cxx(std::size_t n);

extern "C" __attribute__((noinline, noipa)) void *gamma_cxx(std::size_t n)
{
	void *p = hsprof::Builder<long>::make(n);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}
