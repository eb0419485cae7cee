/* gotuse: a target for the GOT slot finder (tests/live/got.sh).
 *
 * Usage: gotuse [debuglib]
 *
 * Calls every function of the malloc family once (so that their PLT slots
 * are bound), keeps data pointers to malloc and free (R_X86_64_64
 * relocations) and takes their addresses in code (GLOB_DAT slots in a PIE,
 * canonical PLT entries in a non-PIE build), compresses a buffer with zlib
 * (whose own malloc/free slots are then bound), and maps two traps that are
 * no loaded object: libz.so.1's file again, read-only as data, and a memfd
 * holding text.  It also copies an ELF magic into an anonymous page, whose
 * address it prints ("ELFLIKE 0x..."): the test gives that page a file name
 * in a doctored maps file, an object that cannot be opened.  With
 * "debuglib", it dlopen()s libc_malloc_debug.so.0 last, as `mtrace start
 * --inject` will (not preloaded: its hook variables bind to libc's).  Then
 * "READY <pid>" and pause() until SIGTERM.
 *
 * Built three ways: PIE with lazy binding, -no-pie, and -z now (BIND_NOW,
 * the GOT read-only after start). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Data pointers to libc functions: relocated words, not GOT entries. */
void *(*volatile malloc_ptr)(size_t) = malloc;
void (*volatile free_ptr)(void *) = free;

static void *volatile sink[16];
/* Set in code: a non-PIE build takes the address as an immediate, which
 * gives malloc and free canonical PLT entries in the executable. */
static void *volatile fn_addr[2];
static volatile size_t usable;

static void fail(const char *what)
{
	fprintf(stderr, "gotuse: %s\n", what);
	exit(99);
}

static void compress_something(void)
{
	static unsigned char in[1 << 16], out[1 << 17];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7 + i / 300);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));   /* zalloc NULL: zlib's own calls to malloc */
	if (deflateInit(&zs, 6) != Z_OK)
		fail("deflateInit");
	zs.next_in = in;
	zs.avail_in = sizeof(in);
	zs.next_out = out;
	zs.avail_out = sizeof(out);
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		fail("deflate");
	deflateEnd(&zs);
}

/* The file behind libz as data: the whole file, PROT_READ, at offset 0. */
static void map_libz_as_data(void)
{
	Dl_info di;
	if (!dladdr((void *)zlibVersion, &di) || !di.dli_fname)
		fail("dladdr(zlibVersion)");
	int fd = open(di.dli_fname, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		fail("open libz");
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		fail("mmap libz");
	((volatile char *)p)[0];
	close(fd);
}

static void map_memfd_text(void)
{
	int fd = memfd_create("gotuse-data", MFD_CLOEXEC);
	static const char text[] = "not an ELF file, only text mapped at offset 0\n";
	if (fd < 0 || write(fd, text, sizeof(text)) != (ssize_t)sizeof(text))
		fail("memfd");
	void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		fail("mmap memfd");
	((volatile char *)p)[0];
}

int main(int argc, char **argv)
{
	void *p = NULL;
	sink[0] = malloc(10);
	sink[1] = calloc(2, 8);
	sink[2] = realloc(NULL, 100);
	sink[2] = realloc(sink[2], 200);
	if (posix_memalign(&p, 64, 100) != 0)
		fail("posix_memalign");
	sink[3] = p;
	sink[4] = aligned_alloc(64, 128);
	sink[5] = memalign(32, 40);
	sink[6] = valloc(10);
	sink[7] = pvalloc(10);
	usable = malloc_usable_size(sink[0]);
	fn_addr[0] = (void *)malloc;
	fn_addr[1] = (void *)free;
	sink[8] = malloc_ptr(5);
	free_ptr(sink[8]);
	free(sink[1]);
	compress_something();
	map_libz_as_data();
	map_memfd_text();
	char *elflike = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (elflike == MAP_FAILED)
		fail("mmap anon");
	memcpy(elflike, "\177ELF", 4);
	if (argc > 1 && !strcmp(argv[1], "debuglib") && !dlopen("libc_malloc_debug.so.0", RTLD_NOW | RTLD_LOCAL))
		fail(dlerror());
	printf("ELFLIKE %p\nREADY %d\n", (void *)elflike, (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}
