/* rawread PID START END: the floor for heapscope dump, process_vm_readv of
 * [START, END) in 1 MiB blocks into one buffer; prints MiB/s.  A benchmark
 * helper, not a test. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc != 4)
		return 99;
	int pid = atoi(argv[1]);
	unsigned long a = strtoul(argv[2], NULL, 0), b = strtoul(argv[3], NULL, 0);
	static char buf[1 << 20];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned long done = 0;
	for (unsigned long p = a; p < b; p += sizeof(buf)) {
		size_t n = b - p < sizeof(buf) ? b - p : sizeof(buf);
		struct iovec l = { buf, n }, r = { (void *)p, n };
		if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)n)
			return 1;
		done += n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%.1f %lu\n", s * 1e3, done);
	return 0;
}
