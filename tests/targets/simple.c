/* simple: small targets for heapscope's error-case tests.
 *
 * Usage: simple MODE
 *   nomalloc               never calls malloc (no stdio either), then blocks
 *   single                 one thread, some malloc/free, then blocks
 *   corrupt-fastbin-cycle  a fastbin list B -> A -> B -> ... (safe-linked)
 *   corrupt-size           a small-bin chunk whose size field is garbage
 *   corrupt-two-lists      a fastbin cycle, and a small-bin chunk whose fd is
 *                          0xdeadbeef: two corrupt lists in one arena
 *   botcake                house of botcake (how2heap, glibc 2.36): a chunk
 *                          freed into tcache while it lies inside a free
 *                          chunk of the unsorted bin
 *   hostile-arenas         main_arena.next made to lead through 30000 fake,
 *                          plausible arenas (empty bins) and back
 *   regs, regs-nocue       spins checking its registers (see regs())
 *   vfork                  single's heap, then blocked in vfork() for good:
 *                          a process no ptrace stop reaches
 *   bigmap                 a 320 MiB read-only mapping, every page present (the
 *                          zero page): more than heapscope dump reads in one stop
 *   in-malloc              its one thread blocked inside malloc_info, for good
 *   stats-lock             single's heap; on SIGUSR1 a thread blocks inside
 *                          malloc_stats() holding main_arena's lock, until
 *                          SIGUSR2 lets it finish
 *   stdio-lock             single's heap; a thread blocks inside fflush(NULL)
 *                          (writing a stream's buffer to a full pipe) holding
 *                          stdio's list lock, until SIGUSR2 drains the pipe;
 *                          SIGUSR1 blocks it there again
 *   in-dlopen LIB          a thread inside dlopen(LIB) for good (LIB's
 *                          constructor never returns)
 *   mmap-merge             mmapped chunks the kernel merged with their
 *                          neighbours: adjacent chunks, and chunks below
 *                          which a plain anonymous mmap was placed (the
 *                          chunk is not at its mapping's start); prints
 *                          "MMAPPED hblks=N hblkhd=B" from mallinfo2
 *   dlopen-heap LIB        dlopen(LIB, RTLD_LOCAL) (another allocator, loaded
 *                          but not bound: malloc stays glibc's), then 64 MB of
 *                          glibc heap, half freed; prints a MALLINFO2 line
 *
 * Every mode writes "READY <pid>\n" with write(2) and waits in pause() until
 * SIGTERM.  Nothing here uses stdio after the heap is built: the first printf
 * to a pipe would malloc its buffer, and with a corrupt heap that malloc could
 * abort (or loop) before we are READY.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void put(const char *s)
{
	size_t n = strlen(s);

	if (write(STDOUT_FILENO, s, n) != (ssize_t)n)
		_exit(99);
}

/* no snprintf: keep "nomalloc" free of anything that might allocate */
static void ready(unsigned pid)
{
	char buf[32], *p = buf + sizeof(buf);

	*--p = '\0';
	*--p = '\n';
	do
		*--p = (char)('0' + pid % 10);
	while ((pid /= 10) != 0);
	put("READY ");
	put(p);
}

static void ready_and_block(void)
{
	ready((unsigned)getpid());
	for (;;)
		pause();
}

/* The heap of single, then vfork: the parent waits in the kernel (state D,
 * killable only) for a child that never execs, so no ptrace stop reaches
 * it; the child says READY for its parent and dies with it. */
static void vforked(void)
{
	if (vfork() == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		ready((unsigned)getppid());
		for (;;)
			pause();
	}
	_exit(0);
}

/* Live chunks are published here: the compiler may delete a malloc whose
 * result is never used. */
static void *volatile sink[32];
static unsigned nsink;

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		_exit(99);
	memset(p, 0x61, n);
	sink[nsink++ % 32] = p;
	return p;
}

static void single(void)
{
	void *v[100];
	int i;

	for (i = 0; i < 100; i++)
		v[i] = xmalloc(16 + i * 24);
	for (i = 0; i < 100; i += 3)
		free(v[i]);
	xmalloc(300000); /* one mmapped chunk */
}

/* We write to freed chunks on purpose; hide the address from the compiler's
 * use-after-free analysis (and from any optimisation of the dead store). */
static uintptr_t launder(uintptr_t v)
{
	__asm__ volatile("" : "+r"(v));
	return v;
}

/* glibc >= 2.32 safe-linking: a fastbin/tcache "next" pointer is stored as
 * (address of the field >> 12) ^ target (malloc.c PROTECT_PTR) */
static uintptr_t protect(uintptr_t field, uintptr_t target)
{
	return (field >> 12) ^ target;
}

static void fastbin_cycle(void)
{
	void *v[9];
	uintptr_t a, b;
	int i;

	for (i = 0; i < 9; i++)
		v[i] = xmalloc(40); /* chunk size 0x30: a fastbin size */
	for (i = 0; i < 7; i++)
		free(v[i]); /* tcache bin 0x30 is now full */
	a = (uintptr_t)v[7];
	b = (uintptr_t)v[8];
	free(v[7]); /* fastbin: A -> end */
	free(v[8]); /* fastbin: B -> A -> end */
	/* A's fd (at the user pointer) now points back to B's chunk header
	 * (chunk = user pointer - 16): B -> A -> B -> A ... */
	*(volatile uintptr_t *)launder(a) = protect(a, b - 16);
}

static void corrupt_size(void)
{
	void *v[8];
	uintptr_t x;
	int i;

	for (i = 0; i < 8; i++) {
		v[i] = xmalloc(256); /* chunk 0x110: tcache, then small bin */
		xmalloc(16); /* pin: keeps the chunks apart */
	}
	for (i = 0; i < 7; i++)
		free(v[i]); /* tcache 0x110 full */
	x = (uintptr_t)v[7];
	free(v[7]);          /* unsorted bin */
	xmalloc(5000);       /* large request: sorts x into small bin 0x110 */
	/* the size field sits 8 bytes below the user pointer; keep PREV_INUSE */
	*(volatile size_t *)launder(x - 8) = 0x4141414141414140ull | 1;
}

/* Two corrupt lists in the main arena: fastbin 0x30 cycles, and small bin
 * 0x110's chunk has fd 0xdeadbeef.  The small bin is set up first, with no
 * fastbin chunk about: the large request that sorts it would consolidate
 * the fastbins, and loop on the cycle. */
static void corrupt_two_lists(void)
{
	void *f[9], *v[8];
	uintptr_t a, b, x;
	int i;

	for (i = 0; i < 9; i++)
		f[i] = xmalloc(40);
	for (i = 0; i < 8; i++) {
		v[i] = xmalloc(256);
		xmalloc(16);
	}
	for (i = 0; i < 7; i++)
		free(v[i]);
	x = (uintptr_t)v[7];
	free(v[7]);
	xmalloc(5000);          /* x into small bin 0x110 */
	for (i = 0; i < 7; i++)
		free(f[i]);
	a = (uintptr_t)f[7];
	b = (uintptr_t)f[8];
	free(f[7]);
	free(f[8]);
	*(volatile uintptr_t *)launder(a) = protect(a, b - 16);
	*(volatile uintptr_t *)launder(x) = 0xdeadbeef;   /* fd: small bins are not safe-linked */
}

/* how2heap house_of_botcake.c (glibc 2.36): victim a is consolidated into
 * prev in the unsorted bin, then freed again into tcache, which checks a
 * double free only against the tcache. */
static void botcake(void)
{
	void *x[7], *prev, *a;
	int i;

	for (i = 0; i < 7; i++)
		x[i] = xmalloc(0x100);
	prev = xmalloc(0x100);
	a = xmalloc(0x100);
	xmalloc(0x10);          /* keeps a from top */
	for (i = 0; i < 7; i++)
		free(x[i]);
	free((void *)launder((uintptr_t)a));      /* unsorted */
	free(prev);             /* consolidates with a: one 0x220 chunk at prev */
	xmalloc(0x100);         /* one tcache slot free again */
	free((void *)launder((uintptr_t)a));      /* a, inside the unsorted chunk, into tcache */
}

/* main_arena found without symbols: a freed 0x510 chunk (past tcache) in
 * the unsorted bin has fd = bin_at(main_arena, 1); main_arena lies a few
 * words below it and, while it is the only arena, holds one word equal to
 * its own address: next. */
static void hostile_arenas(void)
{
	enum { N = 30000, STRIDE = 0x900 };
	uintptr_t up = launder((uintptr_t)xmalloc(0x500));
	uintptr_t u, main_arena = 0;
	size_t next_off = 0, d, k;
	char *fake;
	int i;

	xmalloc(0x20);
	free((void *)up);
	u = *(volatile uintptr_t *)launder(up);
	/* bin_at(1) is main_arena + 0x60 (2.26 and later) or + 0x58; next
	 * lies past the 127 bins and the binmap */
	for (d = 0x60; d >= 0x58 && !main_arena; d -= 8) {
		uintptr_t cand = u - d;
		for (k = d + 16 + 127 * 16; k < STRIDE && !main_arena; k += 8)
			if (*(uintptr_t *)(cand + k) == cand) {
				main_arena = cand;
				next_off = k;
			}
	}
	if (!main_arena)
		_exit(98);
	fake = mmap(NULL, (size_t)N * STRIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fake == MAP_FAILED)
		_exit(99);
	for (i = 0; i < N; i++) {
		char *fa = fake + (size_t)i * STRIDE;
		uintptr_t base = (uintptr_t)fa, *w = (uintptr_t *)fa;
		memcpy(fa, (void *)main_arena, STRIDE);
		w[0] = 0;                                       /* mutex, flags */
		for (k = 1; k < (u - main_arena) / 8; k++)
			w[k] = 0;                               /* fastbins, top */
		w[(u - main_arena) / 8] = base + (u - main_arena);  /* top: the initial top */
		w[(u - main_arena) / 8 + 1] = 0;                /* last_remainder */
		for (k = 0; k < 127 * 2; k++)                   /* every bin empty */
			w[(u - main_arena) / 8 + 2 + k] = base + (u - main_arena) + 16 * (k / 2);
		*(uintptr_t *)(fa + next_off) = i + 1 < N ? base + STRIDE : main_arena;
	}
	*(volatile uintptr_t *)(main_arena + next_off) = (uintptr_t)fake;
}

/* Free chunks whose insides were never touched: 12 KB chunks, never
 * written, every other one freed, so the bins hold ~40 per megabyte and
 * most of their pages were never faulted in.  A reader that faults them in
 * changes the target (the readonly test counts present pages). */
static void *sparse_keep[2][4000];

static void *sparse_fill(void *arg)
{
	void **keep = arg;
	for (int i = 0; i < 4000; i++)
		if (!(keep[i] = malloc(12000)))
			_exit(99);
	for (int i = 0; i < 4000; i += 2) {
		free(keep[i]);
		keep[i] = NULL;
	}
	return NULL;
}

/* Once in the main arena, once in a thread arena, whose heap ends inside
 * a megabyte, followed by its PROT_NONE reserve. */
static void sparse(void)
{
	pthread_t t;
	sparse_fill(sparse_keep[0]);
	if (pthread_create(&t, NULL, sparse_fill, sparse_keep[1]) != 0 || pthread_join(t, NULL) != 0)
		_exit(99);
}

/* A tcache list that runs into unmapped memory: B -> A, then A's next is
 * made to point at a page nobody maps. */
static void corrupt_tcache(void)
{
	void *a = xmalloc(56), *b = xmalloc(56);   /* chunk size 0x40 */
	uintptr_t ua = launder((uintptr_t)a);
	free(a);
	free(b);
	*(volatile uintptr_t *)ua = protect(ua, 0x10000);
}

/* heapscope bins must list exactly what was freed: chunks of three sizes,
 * pinned apart, freed in a known order; their chunk addresses are printed
 * ("FREED 0x.. 0x.."), with write(2) so that nothing else allocates. */
static void *freed_keep[64];

static void freed(void)
{
	static const size_t sizes[] = { 24, 24, 24, 24, 24, 24, 24, 24, 24, 0x100, 0x100, 0x500, 0x500, 0x500 };
	void *p[14];
	for (int i = 0; i < 14; i++) {
		p[i] = xmalloc(sizes[i]);
		freed_keep[i] = xmalloc(24);        /* pins: no two freed chunks touch */
	}
	char line[1024] = "FREED";
	size_t n = 5;
	for (int i = 0; i < 14; i++) {
		n += (size_t)snprintf(line + n, sizeof(line) - n, " %#lx", (unsigned long)((uintptr_t)p[i] - 16));
		free(p[i]);
	}
	line[n++] = '\n';
	if (write(STDOUT_FILENO, line, n) != (ssize_t)n)
		_exit(99);
}

/* Strings for heapscope dump: UTF-16LE text as Java and Windows keep it,
 * and ASCII strings in known numbers for --top. */
static void *text_keep[200];

static void bigmap(void)
{
	if (mmap(NULL, (size_t)320 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0) == MAP_FAILED)
		_exit(99);
}

static void utf16(void)
{
	static const char marker[] = "heapscope-utf16-marker";
	size_t n = sizeof(marker) - 1;
	unsigned char *p = malloc(2 * n + 2);
	if (!p)
		_exit(99);
	for (size_t i = 0; i < n; i++) {
		p[2 * i] = (unsigned char)marker[i];
		p[2 * i + 1] = 0;
	}
	p[2 * n] = p[2 * n + 1] = 0;
	text_keep[0] = p;
	text_keep[1] = strdup("heapscope-ascii-marker");
}

static void counted_strings(void)
{
	int k = 0;
	for (int i = 0; i < 100; i++)
		text_keep[k++] = strdup("alpha-marker-string");
	for (int i = 0; i < 50; i++)
		text_keep[k++] = strdup("beta-marker-string-b");
	text_keep[k++] = strdup("gamma-marker-string");
	for (int i = 0; i < k; i++)
		if (!text_keep[i])
			_exit(99);
}

/* A process with its own SIGSEGV handler (as a JVM has): a remote call
 * must not reset it. */
static void on_segv(int sig)
{
	(void)sig;
	_exit(42);
}

static void segv_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_segv;
	sigaction(SIGSEGV, &sa, NULL);
	single();
}

/* regs, regs-nocue: the main thread spins with known values in
 * caller-saved registers (a remote call clobbers those) and in ymm0/xmm15,
 * and checks them after every spin; SIGUSR1 makes it print "REGS OK n" and
 * exit 0, a changed register "REGS BAD ..." and exit 3.  regs-nocue also
 * catches SIGURG, SIGWINCH and SIGCHLD, so a call has no signal to cue its
 * end with and runs under PTRACE_SYSCALL. */
static volatile sig_atomic_t regs_done;
static void on_usr1(int sig)
{
	(void)sig;
	regs_done = 1;
}
static void on_other(int sig)
{
	(void)sig;
}

/* The AVX-512 spin: zmm16 (which glibc's EVEX string functions use, so a
 * call clobbers it) with a 64-byte pattern, besides the others. */
__attribute__((target("avx512f"))) static void spin512(const uint64_t *pat, uint64_t *g, uint64_t *x, uint64_t *y, uint64_t *z)
{
	__asm__ volatile("movdqu (%[p]), %%xmm15\n\t"
			 "vmovdqu64 (%[p]), %%zmm16\n\t"
			 "vmovdqu (%[p]), %%ymm0\n\t"
			 "mov $0x1111111111111111, %%rdx\n\t"
			 "mov $0x2222222222222222, %%r8\n\t"
			 "mov $0x3333333333333333, %%r9\n\t"
			 "mov $0x4444444444444444, %%r10\n\t"
			 "mov $0x5555555555555555, %%rsi\n\t"
			 "mov $20000000, %%rcx\n\t"
			 "1: dec %%rcx\n\t"
			 "jnz 1b\n\t"
			 "movdqu %%xmm15, (%[x])\n\t"
			 "vmovdqu64 %%zmm16, (%[z])\n\t"
			 "vmovdqu %%ymm0, (%[y])\n\t"
			 "vzeroupper\n\t"
			 "mov %%rdx, 0(%[g])\n\t"
			 "mov %%r8, 8(%[g])\n\t"
			 "mov %%r9, 16(%[g])\n\t"
			 "mov %%r10, 24(%[g])\n\t"
			 "mov %%rsi, 32(%[g])\n\t"
			 "mov %%rcx, 40(%[g])\n\t"
			 :
			 : [p] "r"(pat), [x] "r"(x), [g] "r"(g), [y] "r"(y), [z] "r"(z)
			 : "rcx", "rdx", "rsi", "r8", "r9", "r10", "xmm0", "xmm15", "xmm16", "memory", "cc");
}

static uint64_t raw_sigmask(void)
{
	uint64_t m = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}

static void regs(int nocue)
{
	static const uint64_t pat[8] = { 0x0123456789abcdefull, 0xfedcba9876543210ull, 0x0f1e2d3c4b5a6978ull,
					 0x8796a5b4c3d2e1f0ull, 0x1122334455667788ull, 0x99aabbccddeeff00ull,
					 0x0102030405060708ull, 0x090a0b0c0d0e0f10ull };
	int avx = __builtin_cpu_supports("avx"), avx512 = __builtin_cpu_supports("avx512f");
	/* a signal mask of its own, checked like the registers: a call
	 * must give it back exactly */
	sigset_t own;
	sigemptyset(&own);
	sigaddset(&own, SIGUSR2);
	sigaddset(&own, SIGTTIN);
	sigprocmask(SIG_BLOCK, &own, NULL);
	uint64_t want_mask = raw_sigmask();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_other;
	if (nocue) {
		sigaction(SIGURG, &sa, NULL);
		sigaction(SIGWINCH, &sa, NULL);
		sigaction(SIGCHLD, &sa, NULL);
	}
	char buf[32], *p = buf + sizeof(buf);
	unsigned pid = (unsigned)getpid();
	*--p = '\0';
	*--p = '\n';
	do
		*--p = (char)('0' + pid % 10);
	while (pid /= 10);
	put("READY ");
	put(p);
	unsigned long n = 0;
	while (!regs_done) {
		uint64_t g[6], v[6];
		uint64_t y[4] = { 0 }, x[2] = { 0 }, z[8] = { 0 };
		/* the spin runs with every checked register live at once */
#define REGS_SPIN(load, save, clob)                                                                        \
	__asm__ volatile("movdqu (%[p]), %%xmm15\n\t" load "mov $0x1111111111111111, %%rdx\n\t"              \
			 "mov $0x2222222222222222, %%r8\n\t"                                                \
			 "mov $0x3333333333333333, %%r9\n\t"                                                \
			 "mov $0x4444444444444444, %%r10\n\t"                                               \
			 "mov $0x5555555555555555, %%rsi\n\t"                                               \
			 "mov $20000000, %%rcx\n\t"                                                         \
			 "1: dec %%rcx\n\t"                                                                 \
			 "jnz 1b\n\t"                                                                       \
			 "movdqu %%xmm15, (%[x])\n\t" save "mov %%rdx, 0(%[g])\n\t"                         \
			 "mov %%r8, 8(%[g])\n\t"                                                            \
			 "mov %%r9, 16(%[g])\n\t"                                                           \
			 "mov %%r10, 24(%[g])\n\t"                                                          \
			 "mov %%rsi, 32(%[g])\n\t"                                                          \
			 "mov %%rcx, 40(%[g])\n\t"                                                          \
			 :                                                                                  \
			 : [p] "r"(pat), [x] "r"(x), [g] "r"(g), [y] "r"(y)                                 \
			 : "rcx", "rdx", "rsi", "r8", "r9", "r10", "xmm15", clob, "memory", "cc")
		if (avx512)
			spin512(pat, g, x, y, z);
		else if (avx)
			REGS_SPIN("vmovdqu (%[p]), %%ymm0\n\t", "vmovdqu %%ymm0, (%[y])\n\tvzeroupper\n\t", "xmm0");
		else
			REGS_SPIN("", "", "rax");
		v[0] = 0x1111111111111111ull, v[1] = 0x2222222222222222ull, v[2] = 0x3333333333333333ull;
		v[3] = 0x4444444444444444ull, v[4] = 0x5555555555555555ull, v[5] = 0;
		uint64_t mask = raw_sigmask();
		if (avx512 && memcmp(z, pat, sizeof(z))) {
			printf("REGS BAD: zmm16 %llx %llx %llx %llx %llx %llx %llx %llx\n", (unsigned long long)z[0],
			       (unsigned long long)z[1], (unsigned long long)z[2], (unsigned long long)z[3],
			       (unsigned long long)z[4], (unsigned long long)z[5], (unsigned long long)z[6],
			       (unsigned long long)z[7]);
			fflush(stdout);
			_exit(3);
		}
		if (mask != want_mask) {
			printf("REGS BAD: signal mask %llx, not %llx\n", (unsigned long long)mask, (unsigned long long)want_mask);
			fflush(stdout);
			_exit(3);
		}
		if (memcmp(g, v, sizeof(v)) || memcmp(x, pat, sizeof(x)) || (avx && memcmp(y, pat, sizeof(y)))) {
			printf("REGS BAD: rdx r8 r9 r10 rsi rcx %llx %llx %llx %llx %llx %llx; xmm15 %llx %llx; ymm0 %llx %llx %llx %llx\n",
			       (unsigned long long)g[0], (unsigned long long)g[1], (unsigned long long)g[2],
			       (unsigned long long)g[3], (unsigned long long)g[4], (unsigned long long)g[5],
			       (unsigned long long)x[0], (unsigned long long)x[1], (unsigned long long)y[0],
			       (unsigned long long)y[1], (unsigned long long)y[2], (unsigned long long)y[3]);
			fflush(stdout);
			_exit(3);
		}
		n++;
	}
	printf("REGS OK %lu%s\n", n, avx512 ? " (with ymm0, zmm16)" : avx ? " (with ymm0)" : "");
	fflush(stdout);
	_exit(0);
}

/* Fill the pipe whose write end is fd to its last byte: the next write to
 * it blocks (fd is left blocking). */
static void fill_pipe(int fd)
{
	fcntl(fd, F_SETFL, O_NONBLOCK);
	char fill[4096];
	memset(fill, 'x', sizeof(fill));
	while (write(fd, fill, sizeof(fill)) > 0)
		;
	while (write(fd, fill, 1) > 0)
		;
	fcntl(fd, F_SETFL, 0);
}

/* SIGUSR1 and SIGUSR2 blocked in every thread (taken by sigwait), then two
 * threads started: a(aa) and b(bb). */
static void two_waiters(void *(*a)(void *), void *aa, void *(*b)(void *), void *bb)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, a, aa) != 0 || pthread_create(&t, NULL, b, bb) != 0)
		_exit(98);
}

/* in-malloc: the process's one thread says READY, then stays inside
 * malloc_info, blocked writing to a full pipe: a call into malloc is never
 * safe (single-threaded, glibc takes no lock: only the thread's own stack
 * tells). */
static void in_malloc(void)
{
	int p[2];
	if (pipe(p) < 0)
		_exit(98);
	fill_pipe(p[1]);
	FILE *f = fdopen(p[1], "w");
	if (!f)
		_exit(98);
	setvbuf(f, NULL, _IONBF, 0);
	free(malloc(100));
	char buf[32], *q = buf + sizeof(buf);
	unsigned pid = (unsigned)getpid();
	*--q = '\0';
	*--q = '\n';
	do
		*--q = (char)('0' + pid % 10);
	while (pid /= 10);
	put("READY ");
	put(q);
	malloc_info(0, f);
	_exit(97);
}

/* stats-lock: single's heap; on SIGUSR1 a thread calls malloc_stats()
 * with stderr a full pipe, so it blocks in write(2) holding main_arena's
 * lock (glibc prints each arena's lines under its lock) until SIGUSR2
 * drains the pipe.  Both signals are blocked in every thread and taken by
 * sigwait. */
static int stats_pipe[2];

static void *stats_waiter(void *arg)
{
	sigset_t s;
	int sig;
	sigemptyset(&s);
	sigaddset(&s, arg ? SIGUSR2 : SIGUSR1);
	sigwait(&s, &sig);
	if (!arg) {
		malloc_stats();
		return NULL;
	}
	char b[4096];
	while (read(stats_pipe[0], b, sizeof(b)) > 0)
		;
	return NULL;
}

static void stats_lock(void)
{
	single();
	if (pipe(stats_pipe) < 0)
		_exit(98);
	fill_pipe(stats_pipe[1]);
	if (dup2(stats_pipe[1], STDERR_FILENO) < 0)
		_exit(98);
	two_waiters(stats_waiter, NULL, stats_waiter, stats_pipe);
}

/* stdio-lock: a stream with buffered data on a full pipe; a thread
 * flushes every stream (fflush(NULL), which holds stdio's list lock
 * throughout) and blocks in write(2) until SIGUSR2 drains the pipe; SIGUSR1
 * does it again.  fopen and fclose wait for that lock meanwhile.  Both
 * signals are blocked in every thread and taken by sigwait. */
static int lock_pipe[2];
static FILE *lock_stream;

static void *stdio_flusher(void *arg)
{
	(void)arg;
	sigset_t s;
	int sig;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	for (;;) {
		fill_pipe(lock_pipe[1]);
		fputs("buffered", lock_stream);
		fflush(NULL);
		sigwait(&s, &sig);
	}
	return NULL;
}

static void *lock_drainer(void *arg)
{
	(void)arg;
	sigset_t s;
	int sig;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	for (;;) {
		sigwait(&s, &sig);
		char b[4096];
		fcntl(lock_pipe[0], F_SETFL, O_NONBLOCK);
		while (read(lock_pipe[0], b, sizeof(b)) > 0)
			;
	}
	return NULL;
}

static void stdio_lock(void)
{
	single();
	if (pipe(lock_pipe) < 0 || !(lock_stream = fdopen(lock_pipe[1], "w")))
		_exit(98);
	two_waiters(lock_drainer, NULL, stdio_flusher, NULL);
}

/* in-dlopen LIB: a thread dlopens LIB, whose constructor never returns:
 * the dynamic loader's lock stays held (an injected dlopen must wait). */
static const char *dlopen_path;
static void *opener(void *arg)
{
	(void)arg;
	dlopen(dlopen_path, RTLD_NOW);
	return NULL;
}

static void in_dlopen(void)
{
	pthread_t t;
	pthread_create(&t, NULL, opener, NULL);
	usleep(300000);
}

/* 64 MB of 1 KiB blocks, every other one freed (no two free blocks touch,
 * so the bins hold 32 MB) and a few mmapped chunks. */
static void *dlheap_keep[65536 + 4];

static void dlopen_heap(const char *lib)
{
	if (!dlopen(lib, RTLD_NOW | RTLD_LOCAL)) {
		/* jemalloc's initial-exec TLS needs room in the static TLS
		 * block: GLIBC_TUNABLES=glibc.rtld.optional_static_tls=... */
		put("simple: dlopen: ");
		put(dlerror());
		put("\n");
		_exit(99);
	}
	for (int i = 0; i < 65536; i++) {
		dlheap_keep[i] = xmalloc(1000);
		memset(dlheap_keep[i], i, 1000);
	}
	for (int i = 0; i < 4; i++)
		dlheap_keep[65536 + i] = xmalloc(300000);
	for (int i = 0; i < 65536; i += 2) {
		free(dlheap_keep[i]);
		dlheap_keep[i] = NULL;
	}
	struct mallinfo2 m = mallinfo2();
	char line[512];
	int n = snprintf(line, sizeof(line),
			 "MALLINFO2 arena=%zu ordblks=%zu smblks=%zu hblks=%zu hblkhd=%zu usmblks=%zu fsmblks=%zu "
			 "uordblks=%zu fordblks=%zu keepcost=%zu\n",
			 m.arena, m.ordblks, m.smblks, m.hblks, m.hblkhd, m.usmblks, m.fsmblks, m.uordblks,
			 m.fordblks, m.keepcost);
	if (n <= 0 || write(STDOUT_FILENO, line, (size_t)n) != n)
		_exit(99);
}

static void *merge_keep[8];

static void mmap_merge(void)
{
	/* top-down: each mapping lands right below the previous one, and
	 * anonymous rw-p neighbours become one VMA */
	for (int i = 0; i < 4; i++) {
		merge_keep[2 * i] = xmalloc(200000 + 4096 * (size_t)i);
		memset(merge_keep[2 * i], 0x5a, 1000);
		char *plain = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (plain == MAP_FAILED)
			_exit(99);
		memset(plain, 0x11 * (i + 1), 65536);
		merge_keep[2 * i + 1] = plain;
	}
	struct mallinfo2 m = mallinfo2();
	char line[128];
	int n = snprintf(line, sizeof(line), "MMAPPED hblks=%zu hblkhd=%zu\n", m.hblks, m.hblkhd);
	if (n <= 0 || write(STDOUT_FILENO, line, (size_t)n) != n)
		_exit(99);
}

int main(int argc, char **argv)
{
	signal(SIGTERM, SIG_DFL);
	if (argc == 3 && strcmp(argv[1], "dlopen-heap") == 0) {
		dlopen_heap(argv[2]);
		ready_and_block();
	}
	if (argc == 3 && strcmp(argv[1], "in-dlopen") == 0) {
		dlopen_path = argv[2];
		in_dlopen();
		ready_and_block();
	}
	if (argc != 2)
		goto usage;
	if (strcmp(argv[1], "nomalloc") == 0)
		;
	else if (strcmp(argv[1], "single") == 0)
		single();
	else if (strcmp(argv[1], "corrupt-fastbin-cycle") == 0)
		fastbin_cycle();
	else if (strcmp(argv[1], "corrupt-size") == 0)
		corrupt_size();
	else if (strcmp(argv[1], "corrupt-two-lists") == 0)
		corrupt_two_lists();
	else if (strcmp(argv[1], "botcake") == 0)
		botcake();
	else if (strcmp(argv[1], "hostile-arenas") == 0)
		hostile_arenas();
	else if (strcmp(argv[1], "sparse") == 0)
		sparse();
	else if (strcmp(argv[1], "bigmap") == 0)
		bigmap();
	else if (strcmp(argv[1], "utf16") == 0)
		utf16();
	else if (strcmp(argv[1], "corrupt-tcache") == 0)
		corrupt_tcache();
	else if (strcmp(argv[1], "freed") == 0)
		freed();
	else if (strcmp(argv[1], "mmap-merge") == 0)
		mmap_merge();
	else if (strcmp(argv[1], "segv-handler") == 0)
		segv_handler();
	else if (strcmp(argv[1], "strings") == 0)
		counted_strings();
	else if (strcmp(argv[1], "in-malloc") == 0)
		in_malloc();
	else if (strcmp(argv[1], "stats-lock") == 0)
		stats_lock();
	else if (strcmp(argv[1], "stdio-lock") == 0)
		stdio_lock();
	else if (strcmp(argv[1], "regs") == 0)
		regs(0);
	else if (strcmp(argv[1], "regs-nocue") == 0)
		regs(1);
	else if (strcmp(argv[1], "vfork") == 0) {
		single();
		vforked();
	}
	else
		goto usage;
	ready_and_block();
usage:
	put("usage: simple nomalloc|single|corrupt-fastbin-cycle|corrupt-size|corrupt-two-lists|botcake|hostile-arenas|sparse|utf16|strings|corrupt-tcache|freed|segv-handler|regs|regs-nocue|vfork|mmap-merge|bigmap|in-malloc|stats-lock|stdio-lock|in-dlopen LIB|dlopen-heap LIB\n");
	return 99;
}
