/* knownheap: a live target with a known glibc malloc state, for heapscope's
 * acceptance tests.
 *
 * Usage: knownheap OUTFILE [NTHREADS [main-exits]]   (NTHREADS 0..64, default 3)
 *
 * The main thread and NTHREADS threads (each normally on its own arena) build
 * the same kind of heap: full tcache bins, fastbins, small and large bins, an
 * unsorted bin, and mmapped chunks.  When every thread is done the main
 * thread writes malloc_info(0) XML and one MALLINFO2 line to OUTFILE, prints
 * "TCACHE count=N bytes=B" (what its frees put in the tcaches) and
 * "READY <pid>" on stdout and blocks without allocating, so an outside reader
 * sees exactly the state the file describes.
 *
 * SIGUSR1: check that mallinfo2() and the pattern in every live chunk are
 * unchanged (the reader wrote nothing), then exercise malloc/free across all
 * arenas (glibc aborts if a bin was damaged), print "CHECK OK" or
 * "CHECK FAILED: ..." and exit 0 or 1.  SIGTERM: default action, exits at once.
 *
 * main-exits: once the heap is built the main thread starts a finisher thread
 * and calls pthread_exit, so the process lives on with a zombie thread group
 * leader (whose /proc/PID/maps is empty).  The finisher joins it, waits until
 * the kernel shows it as a zombie, and only then writes OUTFILE and READY
 * (pthread_exit's unwinding mallocs: the file must describe the heap after
 * it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 64
#define NSPREAD 1200 /* 16..1500 bytes: ~13 per chunk size, so tcache overflows */
#define NLARGE 12    /* 3000..20000 bytes: large bins */
#define NUNSORTED 6  /* freed after the sorting malloc: stay in the unsorted bin */
#define NFAST30 24   /* malloc(40) = chunk 0x30: 7 to tcache, the rest fastbin */
#define NFAST70 12   /* malloc(100) = chunk 0x70 */

/* Everything a heap set keeps alive lives here, in .bss, not on the heap. */
struct heapset {
	void *spread_pin[NSPREAD];
	void *large_pin[NLARGE];
	void *unsorted_pin[NUNSORTED];
	void *sorter;	/* the malloc that sorted the unsorted bin */
	void *mmapped[2];
	size_t mmapped_len[2];
};

static struct heapset sets[MAX_THREADS + 1];
/* What the frees put in the tcaches: per chunk size up to 0x410, the first 7
 * frees (glibc's default tcache_count) of each thread; no malloc of such a
 * size comes after the first free, so none is taken back. */
#define TC_MAX_CHUNK 0x410
static unsigned tc_freed[MAX_THREADS + 1][TC_MAX_CHUNK / 16 + 1];

static void tc_note(int set, size_t n)
{
	size_t c = n + 8 + 15 < 32 ? 32 : (n + 8 + 15) & ~(size_t)15;

	if (c <= TC_MAX_CHUNK)
		tc_freed[set][c / 16]++;
}
static pthread_barrier_t barrier;
/* mallinfo2 is glibc 2.33+; built against an older glibc (the version
 * matrix), mallinfo's int fields hold the same small figures. */
#if !defined(__GLIBC__) || __GLIBC__ > 2 || __GLIBC_MINOR__ >= 33
#define MALLINFO2() mallinfo2()
#else
struct mallinfo2 {
	size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
static struct mallinfo2 mallinfo2_compat(void)
{
	struct mallinfo m = mallinfo();
	return (struct mallinfo2){ (size_t)m.arena, (size_t)m.ordblks, (size_t)m.smblks, (size_t)m.hblks,
				   (size_t)m.hblkhd, (size_t)m.usmblks, (size_t)m.fsmblks, (size_t)m.uordblks,
				   (size_t)m.fordblks, (size_t)m.keepcost };
}
#define MALLINFO2() mallinfo2_compat()
#endif
static struct mallinfo2 snap;

/* Output without stdio: stdout is a pipe or file, and its first printf would
 * malloc a buffer after the snapshot. */
__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (write(STDOUT_FILENO, buf, n) < 0)
		_exit(99);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		say("knownheap: malloc(%zu) failed\n", n);
		_exit(99);
	}
	return p;
}

static unsigned char pattern(int set, size_t i)
{
	return (unsigned char)(0x40 + set * 7 + i * 13);
}

/* Pins are malloc(16) (chunk 0x20) placed after every chunk we free, so no
 * two free chunks are adjacent and none touches top: nothing coalesces. */
static void *pin(int set, size_t i)
{
	void *p = xmalloc(16);

	memset(p, pattern(set, i), 16);
	return p;
}

static void build_heap(int set)
{
	struct heapset *h = &sets[set];
	void *spread[NSPREAD], *large[NLARGE], *unsorted[NUNSORTED];
	void *fast30[NFAST30], *fast70[NFAST70];
	size_t i;

	/* 1. allocate everything first, so no later malloc disturbs the bins */
	for (i = 0; i < NSPREAD; i++) {
		size_t n = 16 + (i * 37 + (size_t)set * 101) % 1485;

		spread[i] = xmalloc(n);
		memset(spread[i], 0x11, n);
		h->spread_pin[i] = pin(set, i);
	}
	for (i = 0; i < NLARGE; i++) {
		size_t n = 3000 + (i * 1571 + (size_t)set * 313) % 17001;

		large[i] = xmalloc(n);
		memset(large[i], 0x22, n);
		h->large_pin[i] = pin(set, NSPREAD + i);
	}
	for (i = 0; i < NUNSORTED; i++) {
		size_t n = 1100 + i * 150 + (size_t)set * 8; /* > tcache max (1032) */

		unsorted[i] = xmalloc(n);
		memset(unsorted[i], 0x33, n);
		h->unsorted_pin[i] = pin(set, NSPREAD + NLARGE + i);
	}
	for (i = 0; i < NFAST30; i++)
		fast30[i] = xmalloc(40);
	for (i = 0; i < NFAST70; i++)
		fast70[i] = xmalloc(100);
	/* above the 128 KiB mmap threshold: mmapped chunks, never freed, so the
	 * dynamic threshold does not move */
	h->mmapped_len[0] = 200000 + (size_t)set * 4096;
	h->mmapped_len[1] = 1 << 20;
	for (i = 0; i < 2; i++) {
		h->mmapped[i] = xmalloc(h->mmapped_len[i]);
		memset(h->mmapped[i], pattern(set, i), h->mmapped_len[i]);
	}

	/* 2. free the spread and the large chunks: per size the first 7 go to
	 * tcache, small overflow to fastbins, the rest to the unsorted bin */
	for (i = 0; i < NSPREAD; i++) {
		free(spread[i]);
		tc_note(set, 16 + (i * 37 + (size_t)set * 101) % 1485);
	}
	for (i = 0; i < NLARGE; i++)
		free(large[i]);

	/* 3. a large request no free chunk can serve: malloc_consolidate() moves
	 * the fastbins to the unsorted bin, then the unsorted bin is sorted
	 * into small and large bins and the chunk comes from top */
	h->sorter = xmalloc(30000);
	memset(h->sorter, pattern(set, 99), 30000);

	/* 4. these stay in the unsorted bin: nothing mallocs after this */
	for (i = 0; i < NUNSORTED; i++)
		free(unsorted[i]);

	/* 5. tcache 0x30/0x70 fill up (if not full already), the rest fastbins */
	for (i = 0; i < NFAST30; i++) {
		free(fast30[i]);
		tc_note(set, 40);
	}
	for (i = 0; i < NFAST70; i++) {
		free(fast70[i]);
		tc_note(set, 100);
	}
}

static const char *check_set(int set)
{
	struct heapset *h = &sets[set];
	unsigned char *p;
	size_t i, j;

	for (i = 0; i < NSPREAD + NLARGE + NUNSORTED; i++) {
		p = i < NSPREAD ? h->spread_pin[i]
		    : i < NSPREAD + NLARGE ? h->large_pin[i - NSPREAD]
		    : h->unsorted_pin[i - NSPREAD - NLARGE];
		for (j = 0; j < 16; j++)
			if (p[j] != pattern(set, i))
				return "pin contents changed";
	}
	p = h->sorter;
	for (j = 0; j < 30000; j++)
		if (p[j] != pattern(set, 99))
			return "sorter contents changed";
	for (i = 0; i < 2; i++) {
		p = h->mmapped[i];
		for (j = 0; j < h->mmapped_len[i]; j++)
			if (p[j] != pattern(set, i))
				return "mmapped chunk contents changed";
	}
	return NULL;
}

static void *thread_main(void *arg)
{
	build_heap((int)(intptr_t)arg);
	pthread_barrier_wait(&barrier);
	for (;;)
		pause(); /* SIGUSR1 is blocked here; SIGTERM kills */
	return NULL;
}

#define MI2_FIELDS(X) X(arena) X(ordblks) X(smblks) X(hblks) X(hblkhd) \
	X(usmblks) X(fsmblks) X(uordblks) X(fordblks) X(keepcost)

static int self_check(int nsets)
{
	struct mallinfo2 now = MALLINFO2();
	const char *why;
	void *v[300];
	int s, i, round;

	/* compare before any allocation: say() does not allocate */
#define CMP(f)                                                            \
	if (now.f != snap.f) {                                            \
		say("CHECK FAILED: mallinfo2 " #f " changed: %zu -> %zu\n", \
		    snap.f, now.f);                                       \
		return 1;                                                 \
	}
	MI2_FIELDS(CMP)
#undef CMP
	for (s = 0; s < nsets; s++) {
		why = check_set(s);
		if (why) {
			say("CHECK FAILED: heap set %d: %s\n", s, why);
			return 1;
		}
	}

	/* exercise every arena: free its chunks from here (free goes to the
	 * chunk's own arena and coalesces with the bins' chunks), then churn */
	for (s = 0; s < nsets; s++) {
		struct heapset *h = &sets[s];

		for (i = 0; i < NSPREAD; i += 2)
			free(h->spread_pin[i]);
		for (i = 0; i < NLARGE; i++)
			free(h->large_pin[i]);
		free(h->sorter);
		free(h->mmapped[0]);
	}
	for (round = 0; round < 4; round++) {
		for (i = 0; i < 300; i++) {
			size_t n = 1 + (size_t)(i * 97 + round * 31) % 5000;

			v[i] = xmalloc(n);
			memset(v[i], i, n);
		}
		for (i = 0; i < 300; i += 1 + round)
			v[i] = realloc(v[i], 64 + i * 3);
		for (i = 299; i >= 0; i--)
			free(v[i]);
	}
	malloc_trim(0); /* walks every bin of every arena */
	return 0;
}

static FILE *out;
static pthread_t main_thread;
static int nsets;

static void leader_is_zombie(void)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)getpid());
	for (i = 0; i < 1000; i++) {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			break;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		p = strrchr(buf, ')');
		if (p && (p[2] == 'Z' || p[2] == 'X'))
			return;
		usleep(10000);
	}
	say("knownheap: the main thread did not become a zombie\n");
	_exit(99);
}

/* The snapshot, READY, and the wait for SIGUSR1. */
static void *finish(void *arg)
{
	sigset_t set;
	int sig, rc;

	if (arg) {
		pthread_join(main_thread, NULL);
		leader_is_zombie();
	}
	malloc_info(0, out);
	snap = MALLINFO2();
	fprintf(out, "MALLINFO2 arena=%zu ordblks=%zu smblks=%zu hblks=%zu "
		"hblkhd=%zu usmblks=%zu fsmblks=%zu uordblks=%zu fordblks=%zu "
		"keepcost=%zu\n", snap.arena, snap.ordblks, snap.smblks,
		snap.hblks, snap.hblkhd, snap.usmblks, snap.fsmblks,
		snap.uordblks, snap.fordblks, snap.keepcost);
	{
		size_t tcount = 0, tbytes = 0, c;
		int i;

		for (i = 0; i < nsets; i++)
			for (c = 2; c <= TC_MAX_CHUNK / 16; c++) {
				size_t k = tc_freed[i][c] < 7 ? tc_freed[i][c] : 7;

				tcount += k;
				tbytes += k * c * 16;
			}
		say("TCACHE count=%zu bytes=%zu\n", tcount, tbytes);
	}
	/* no fclose: it would free the FILE after the snapshot */

	say("READY %d\n", (int)getpid());

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	do
		rc = sigwait(&set, &sig);
	while (rc != 0);

	rc = self_check(nsets);
	if (rc == 0)
		say("CHECK OK\n");
	_exit(rc);
}

int main(int argc, char **argv)
{
	pthread_t tids[MAX_THREADS];
	sigset_t set;
	long nthreads = 3;
	char *end;
	int i, rc, main_exits = 0;

	if (argc < 2 || argc > 4 ||
	    (argc == 4 && strcmp(argv[3], "main-exits") != 0)) {
		fprintf(stderr, "usage: knownheap OUTFILE [NTHREADS [main-exits]]\n");
		return 99;
	}
	main_exits = argc == 4;
	if (argc >= 3) {
		errno = 0;
		nthreads = strtol(argv[2], &end, 10);
		if (errno || *end || end == argv[2] || nthreads < 0 ||
		    nthreads > MAX_THREADS) {
			fprintf(stderr, "knownheap: NTHREADS must be 0..%d\n",
				MAX_THREADS);
			return 99;
		}
	}

	/* Before any heap activity: fopen mallocs the FILE now; unbuffered, so
	 * the fprintf calls below format into a stack buffer and never malloc */
	out = fopen(argv[1], "w");
	if (!out) {
		perror("knownheap: fopen");
		return 99;
	}
	setvbuf(out, NULL, _IONBF, 0);

	/* SIGUSR1 blocked in every thread (inherited), taken by sigwait */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGTERM, SIG_DFL);

	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		rc = pthread_create(&tids[i], NULL, thread_main,
				    (void *)(intptr_t)(i + 1));
		if (rc) {
			fprintf(stderr, "knownheap: pthread_create: %s\n",
				strerror(rc));
			return 99;
		}
	}
	build_heap(0);
	pthread_barrier_wait(&barrier);
	nsets = (int)nthreads + 1;
	if (main_exits) {
		pthread_t fin;

		main_thread = pthread_self();
		rc = pthread_create(&fin, NULL, finish, (void *)1);
		if (rc) {
			fprintf(stderr, "knownheap: pthread_create: %s\n",
				strerror(rc));
			return 99;
		}
		pthread_exit(NULL);
	}
	finish(NULL);
	return 0;
}
