/* dump --strings's writer (lib/dump_out.c): the strings written from the
 * bytes scanned (newlines put in place, writev of the spans, two threads)
 * against a byte-at-a-time strings(1), on synthetic buffers, each feed
 * followed by a page that faults when touched. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dump_out.h"
#include "tap.h"

#define BASE 0x7f0000001000ull

/* The scan under way, for the fault's message. */
static char current[160];

static void on_fault(int sig)
{
	(void)sig;
	static const char m[] = "not ok - a scanner touched a byte outside its feed: ";
	if (write(1, m, sizeof(m) - 1) < 0 || write(1, current, strlen(current)) < 0 || write(1, "\n", 1) < 0)
		_exit(1);
	_exit(1);
}

static bool graphic(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c <= 0x7e);
}

/* What strings -n min (with -t x and the base added, if address) prints
 * for b[0..n), as one stream. */
static char *reference(const unsigned char *b, size_t n, unsigned min, bool address, size_t *outlen)
{
	char *o = malloc(12 * n + 64), *p = o;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && graphic(b[j]))
			j++;
		if (j - i >= min) {
			if (address)
				p += sprintf(p, "%llx ", (unsigned long long)(BASE + i));
			memcpy(p, b + i, j - i);
			p += j - i;
			*p++ = '\n';
		}
		i = j + 1;
	}
	*outlen = (size_t)(p - o);
	return o;
}

/* b scanned in feeds of the given sizes (0-terminated list; the last one
 * repeats), with the writer's two threads from split_min bytes (0: one).
 * Each feed is scanned where it ends at a page whose next one (and the
 * one before the room) is PROT_NONE: a scanner that reads or writes a byte
 * past its feed faults.  (The bytes after a feed are another thread's: the
 * next slot of dump --no-freeze's ring, which its reader fills, or the
 * second half of a split scan; a whole-block store there, even of the
 * bytes it read, can undo that thread's newlines.) */
static char *written(const unsigned char *src, size_t n, unsigned min, bool address, enum hs_scan_impl impl,
		     const size_t *feeds, size_t split_min, size_t *outlen)
{
	int fd = memfd_create("out", 0);
	size_t page = (size_t)sysconf(_SC_PAGESIZE), most = 0;
	for (size_t k = 0; feeds[k]; k++)
		most = feeds[k] > most ? feeds[k] : most;
	most = most < n ? most : n;
	size_t room = (most + page - 1) / page * page;
	unsigned char *map = mmap(NULL, room + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED || mprotect(map + page, room, PROT_READ | PROT_WRITE) < 0) {
		*outlen = (size_t)-1;
		return malloc(1);
	}
	unsigned char *end = map + page + room;
	struct hs_strout o;
	struct hs_strings sc;
	hs_strout_init(&o, fd, address);
	o.split_min = split_min;
	hs_strings_init(&sc, HS_ENC_ASCII, min, hs_strout_string, &o);
	hs_strings_set_impl(&sc, impl);
	for (size_t off = 0, k = 0; off < n; k += feeds[k + 1] != 0) {
		size_t len = feeds[k] < n - off ? feeds[k] : n - off;
		memcpy(end - len, src + off, len);
		hs_strout_scan(&o, &sc, BASE + off, end - len, len);
		off += len;
	}
	hs_strings_end(&sc);
	int r = hs_strout_flush(&o);
	hs_strings_release(&sc);
	hs_strout_release(&o);
	munmap(map, room + 2 * page);
	off_t size = lseek(fd, 0, SEEK_END);
	char *out = malloc((size_t)size + 1);
	*outlen = r == 0 && pread(fd, out, (size_t)size, 0) == size ? (size_t)size : (size_t)-1;
	close(fd);
	return out;
}

static int check(const char *what, const unsigned char *b, size_t n, unsigned min, bool address, size_t split_min,
		 const size_t *feeds)
{
	size_t rn, wn;
	char *ref = reference(b, n, min, address, &rn);
	int bad = 0;
	for (enum hs_scan_impl impl = HS_SCAN_SCALAR; impl <= HS_SCAN_AVX512; impl++) {
		if (!hs_strings_impl_supported(impl))
			continue;
		snprintf(current, sizeof(current), "%s, %s, min %u%s%s, feeds of %zu", what, hs_strings_impl_name(impl),
			 min, address ? ", addresses" : "", split_min ? ", two threads" : "", feeds[0]);
		char *w = written(b, n, min, address, impl, feeds, split_min, &wn);
		if (wn != rn || memcmp(w, ref, rn)) {
			printf("# %s, %s, min %u%s: %zu bytes written, %zu expected\n", what, hs_strings_impl_name(impl), min,
			       address ? ", addresses" : "", wn, rn);
			bad++;
		}
		free(w);
	}
	free(ref);
	return bad;
}

static const size_t whole[] = { (size_t)1 << 30, 0 };
static const size_t small[] = { 1000, 37, 4096, 0 };

static void cases(const char *what, const unsigned char *b, size_t n)
{
	int bad = 0;
	unsigned mins[] = { 1, 2, 3, 4, 10, 63, 64, 65, 129, 200, 300 };
	for (size_t m = 0; m < sizeof(mins) / sizeof(mins[0]); m++)
		for (int a = 0; a < 2; a++) {
			bad += check(what, b, n, mins[m], a, 0, whole);
			bad += check(what, b, n, mins[m], a, 0, small);
			bad += check(what, b, n, mins[m], a, 64, whole);    /* two threads */
			bad += check(what, b, n, mins[m], a, 64, small);
		}
	OK(!bad, "%s: as strings(1), whole or in feeds, one thread or two, every scanner", what);
}

int main(void)
{
	size_t n = 200000;
	unsigned char *b = malloc(n);
	srand(42);
	signal(SIGSEGV, on_fault);
	setvbuf(stdout, NULL, _IOLBF, 0);     /* the lines before a fault kept */

	/* strings a byte apart, many bytes apart, tabs, and one that ends
	 * with the buffer */
	for (size_t i = 0; i < n; i++) {
		unsigned r = (unsigned)rand();
		b[i] = r % 23 == 0 ? 0 : r % 29 == 0 ? '\t' : (unsigned char)(' ' + r % 95);
	}
	for (size_t i = 5000; i < 9000; i++)
		b[i] = (unsigned char)(i % 7 ? 0 : 0x80);
	b[n - 1] = 'z';
	cases("mixed runs, last one reaching the end", b, n);

	/* runs of exactly min - 1, min and min + 1 around every minimum */
	size_t k = 0;
	for (unsigned len = 1; k + len + 1 < n; len = len % 70 + 1) {
		memset(b + k, 'a' + len % 26, len);
		b[k + len] = len % 3 ? '\0' : '\n';
		k += len + 1;
	}
	memset(b + k, 0, n - k);
	cases("runs of every length up to 70, one byte apart", b, n);

	/* in each block, short runs, then a run longer than two blocks: a
	 * scanner that looks for long runs within one block and the next
	 * must still find it when the minimum is over 64 */
	for (size_t i = 0; i < n; i++) {
		size_t p = i % 400;
		b[i] = p < 15 ? (p % 3 == 2 ? 0 : 'a') : p < 15 + 350 ? 'x' : 0;
	}
	cases("short runs, then a run of 350 in the same block", b, n);

	/* binary: few strings, far apart */
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(rand() % 7 ? 0x80 + rand() % 128 : ' ' + rand() % 95);
	cases("binary", b, n);

	/* one string the size of the buffer, and one longer than a piece */
	memset(b, 'q', n);
	cases("one string, the whole buffer", b, n);
	free(b);
	n = HS_STRING_MAX * 2 + 1000;
	b = malloc(n);
	memset(b, 'w', n);
	b[10] = 0;
	b[n - 100] = 0;
	int bad = check("huge", b, n, 4, false, 0, whole) + check("huge", b, n, 4, true, 1 << 20, whole) +
		  check("huge", b, n, 4, false, 1 << 20, whole);
	OK(!bad, "a string of two pieces and more (HS_STRING_MAX): as strings(1)");
	free(b);
	return tap_done();
}
