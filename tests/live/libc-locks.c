/* libc-locks: print the C library lock words hs_inject_libc_locks finds
 * in a live process, one "lock ADDRESS VALUE WHAT" line each, for
 * tests/live/libc_locks.sh.  Not installed; not a subcommand.
 *
 * Usage: libc-locks PID.  Exit status 0, or 2 with a message on stderr. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "call.h"
#include "inject.h"
#include "libc.h"
#include "maps.h"
#include "mem.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: libc-locks PID\n");
		return 2;
	}
	pid_t pid = (pid_t)atoi(argv[1]);
	struct hs_err err = { 0 };
	struct hs_maps maps;
	struct hs_libc libc;
	struct hs_mem *mem;
	if (hs_maps_read(pid, false, &maps, &err) < 0 || hs_libc_find(pid, &maps, 0, &libc, &err) < 0 ||
	    hs_mem_open_pid(pid, &mem, &err) < 0) {
		fprintf(stderr, "libc-locks: %s\n", err.msg);
		return 2;
	}
	struct hs_code_range r[8];
	size_t n = hs_inject_libc_locks(&libc, &maps, mem, HS_LIBC_LOCK_STDIO | HS_LIBC_LOCK_ENV | HS_LIBC_LOCK_ATFORK, r, 8);
	for (size_t i = 0; i < n; i++) {
		uint32_t w = 0;
		hs_mem_read(mem, r[i].lock, &w, 4);
		printf("lock 0x%" PRIx64 " %u %s\n", r[i].lock, w, r[i].what);
	}
	hs_mem_close(mem);
	hs_libc_release(&libc);
	hs_maps_release(&maps);
	return 0;
}
