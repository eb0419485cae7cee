/* rawread PID START END [fresh]: the floor for heapscope dump, process_vm_readv
 * of [START, END) in 1 MiB blocks; prints the milliseconds and the bytes.
 * By default into one 1 MiB buffer, read again and again (cache-hot, no
 * page ever faulted: the copy alone); with "fresh", into a new buffer as
 * large as the range, whose pages the kernel zeroes on first touch, as any
 * reader that keeps a snapshot pays (the time includes that).  A benchmark
 * helper, not a test. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5)
		return 99;
	int pid = atoi(argv[1]);
	unsigned long a = strtoul(argv[2], NULL, 0), b = strtoul(argv[3], NULL, 0);
	int fresh = argc == 5 && !strcmp(argv[4], "fresh");
	static char hot[1 << 20];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *buf = hot;
	if (fresh && (buf = mmap(NULL, b - a, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		return 1;
	unsigned long done = 0;
	for (unsigned long p = a; p < b; p += sizeof(hot)) {
		size_t n = b - p < sizeof(hot) ? b - p : sizeof(hot);
		struct iovec l = { fresh ? buf + (p - a) : buf, n }, r = { (void *)p, n };
		if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)n)
			return 1;
		done += n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%.1f %lu\n", s * 1e3, done);
	return 0;
}
