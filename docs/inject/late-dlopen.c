/* The experiment behind docs/INJECT.md, section 2: libc_malloc_debug.so.0
 * dlopen()ed late (not preloaded), tracing on, and libc's blocks handed to
 * its functions and back.  Not built by meson:
 *
 *   gcc -O1 -o late-dlopen late-dlopen.c && ./late-dlopen [MODE] [LOG]
 *
 * MODE: plain (default): every check, exit 0 when the blocks are
 *       interchangeable; mcheck-first / mcheck-after: call the library's
 *       mcheck() before / after its first malloc: both return 0 and the
 *       next free of a libc block aborts ("memory clobbered before
 *       allocated block").  Run plain also under MALLOC_CHECK_=3 or
 *       GLIBC_TUNABLES=glibc.malloc.check=3: still exit 0 (ignored). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*dmalloc)(size_t), *(*drealloc)(void *, size_t), *(*dcalloc)(size_t, size_t);
static void *(*dmemalign)(size_t, size_t), *(*daligned)(size_t, size_t), *(*dvalloc)(size_t), *(*dpvalloc)(size_t);
static void (*dfree)(void *), (*dmtrace)(void), (*dmuntrace)(void);
static int (*dposix)(void **, size_t, size_t), (*dmcheck)(void (*)(int));
static size_t (*dusable)(void *);

#define SYM(var, name, ver) do { *(void **)&var = dlvsym(h, name, ver); \
	if (!var) { printf("no %s@%s\n", name, ver); return 2; } } while (0)

/* Threads mixing both sides while tracing is on. */
static void *worker(void *arg)
{
	void *keep[64] = { 0 };
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		dfree(keep[i % 64]);
		keep[i % 64] = (i & 1) ? dmalloc(16 + i % 900) : malloc(16 + i % 900);
	}
	for (int k = 0; k < 64; k++)
		(k & 1 ? free : dfree)(keep[k]);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "plain";
	setvbuf(stdout, NULL, _IONBF, 0);
	/* Blocks from libc's malloc before the library exists. */
	char *small = malloc(24), *mid = malloc(3000), *big = malloc(1 << 20), *al = memalign(256, 100);
	char *cz = calloc(10, 10), *more[16];
	for (int i = 0; i < 16; i++)
		more[i] = malloc(32 * (i + 1));
	strcpy(mid, "pre-existing");

	void *h = dlopen("libc_malloc_debug.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h) {
		printf("dlopen: %s\n", dlerror());
		return 2;
	}
	Dl_info di;
	dladdr(dlsym(h, "malloc"), &di);
	printf("dlsym(h, \"malloc\") -> %s\n", di.dli_fname);
	SYM(dmalloc, "malloc", "GLIBC_2.2.5"); SYM(dfree, "free", "GLIBC_2.2.5");
	SYM(drealloc, "realloc", "GLIBC_2.2.5"); SYM(dcalloc, "calloc", "GLIBC_2.2.5");
	SYM(dmemalign, "memalign", "GLIBC_2.2.5"); SYM(daligned, "aligned_alloc", "GLIBC_2.16");
	SYM(dposix, "posix_memalign", "GLIBC_2.2.5"); SYM(dvalloc, "valloc", "GLIBC_2.2.5");
	SYM(dpvalloc, "pvalloc", "GLIBC_2.2.5"); SYM(dusable, "malloc_usable_size", "GLIBC_2.2.5");
	SYM(dmtrace, "mtrace", "GLIBC_2.2.5"); SYM(dmuntrace, "muntrace", "GLIBC_2.2.5");
	SYM(dmcheck, "mcheck", "GLIBC_2.2.5");
	dladdr((void *)dmalloc, &di);
	printf("dlvsym(h, \"malloc\", \"GLIBC_2.2.5\") -> %s\n", di.dli_fname);

	if (!strcmp(mode, "mcheck-first") || !strcmp(mode, "mcheck-after")) {
		if (!strcmp(mode, "mcheck-after"))
			dfree(dmalloc(0));
		printf("the library's mcheck() -> %d\n", dmcheck(NULL));
		dfree(small);           /* a libc block, without mcheck's header */
		printf("survived\n");
		return 0;
	}

	dfree(dmalloc(0));
	setenv("MALLOC_TRACE", argc > 2 ? argv[2] : "/tmp/late-dlopen.log", 1);
	dmtrace();
	int bad = 0;
	bad += dusable(mid) != malloc_usable_size(mid);
	bad += dusable(big) != malloc_usable_size(big);
	bad += dusable(al) != malloc_usable_size(al);
	dfree(small);
	mid = drealloc(mid, 100000);
	bad += strcmp(mid, "pre-existing") != 0;
	big = drealloc(big, 2 << 20);
	dfree(al);
	dfree(cz);
	for (int i = 0; i < 16; i++)
		more[i] = drealloc(more[i], i % 2 ? 8 : 4000);
	void *p[8];
	p[0] = dmalloc(40); p[1] = dcalloc(3, 50); p[2] = dmemalign(64, 70); p[3] = daligned(4096, 8192);
	dposix(&p[4], 128, 300); p[5] = dvalloc(10); p[6] = dpvalloc(10); p[7] = drealloc(NULL, 77);
	for (int i = 0; i < 8; i++) {
		bad += dusable(p[i]) != malloc_usable_size(p[i]);
		free(p[i]);             /* the library's blocks to libc's free */
	}
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	dmuntrace();
	free(mid);
	free(big);
	for (int i = 0; i < 16; i++)
		free(more[i]);
	malloc_trim(0);

	/* Where the library's hook variables are: its own (preloaded), or
	 * libc's compat ones (dlopen()ed late). */
	void **own = dlvsym(h, "__malloc_hook", "GLIBC_2.2.5");
	void **lc = dlvsym(RTLD_DEFAULT, "__malloc_hook", "GLIBC_2.2.5");
	printf("the library's own __malloc_hook = %p (never read); libc's = %p\n", *own, lc ? *lc : NULL);
	printf("mismatches: %d\n", bad);
	return bad != 0;
}
