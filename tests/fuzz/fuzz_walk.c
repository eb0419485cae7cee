/* libFuzzer harness for the walker: the input is a memory image (a few
 * segments at given addresses, the addresses of main_arena, mp_ and a
 * thread's TLS), walked exactly as a live process would be: arenas, lists
 * with the deep checks, tcache, the linear chunk walk, malloc_info.
 *
 *   input  := header segment* bytes
 *   header := u64 main_arena, u64 mp, u64 fs_base, u64 tpoff_slot[2],
 *             u32 nseg (at most 8)
 *   segment:= u64 addr, u32 len (at most 4 MiB in all); the segments' bytes
 *             follow in order, zero-filled where the input ends.
 *
 * Layout: glibc 2.36's table row.  Seeds come from real processes
 * (capture.py) and from the unit tests' synthetic heap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunks.h"
#include "heap.h"
#include "info.h"

#define MAXSEG 8
#define MAXBYTES (4u << 20)

static int count_chunk(void *ctx, const struct hs_chunk *c)
{
	(*(uint64_t *)ctx) += c->size;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct {
		uint64_t main_arena, mp, fs_base, slot[2];
		uint32_t nseg;
	} __attribute__((packed)) hdr;
	if (size < sizeof(hdr))
		return 0;
	memcpy(&hdr, data, sizeof(hdr));
	size_t off = sizeof(hdr);
	if (hdr.nseg == 0 || hdr.nseg > MAXSEG || size < off + hdr.nseg * 12)
		return 0;
	struct hs_mem_segment segs[MAXSEG];
	/* one static pool for the segments: no allocation per input */
	static unsigned char pool[MAXBYTES];
	size_t total = 0;
	for (uint32_t i = 0; i < hdr.nseg; i++) {
		uint32_t len;
		memcpy(&segs[i].addr, data + off, 8);
		memcpy(&len, data + off + 8, 4);
		off += 12;
		if (len > MAXBYTES - total)
			len = MAXBYTES - total;
		total += len;
		segs[i].len = len;
	}
	for (uint32_t i = 0, at = 0; i < hdr.nseg; at += segs[i].len, i++) {
		size_t n = off < size ? size - off : 0;
		if (n > segs[i].len)
			n = segs[i].len;
		memcpy(pool + at, data + off, n);
		memset(pool + at + n, 0, segs[i].len - n);
		off += n;
		segs[i].data = pool + at;
	}
	static struct hs_libc lc;
	static struct hs_tpoff slots[2];
	const struct hs_layout *l = hs_layout_for_version(2, 36);
	memset(&lc, 0, sizeof(lc));
	lc.layout = *l;
	lc.have_layout = true;
	lc.major = 2;
	lc.minor = 36;
	strcpy(lc.version, "2.36");
	lc.main_arena = hdr.main_arena;
	lc.mp = hdr.mp;
	lc.tls_tcache = lc.tls_thread_arena = -1;
	slots[0] = (struct hs_tpoff){ hdr.slot[0], 0x48 };
	slots[1] = (struct hs_tpoff){ hdr.slot[1], 0x58 };
	lc.tpoff = slots;
	lc.ntpoff = 2;

	struct hs_mem *mem;
	if (hs_mem_open_buffer(segs, hdr.nseg, &mem) < 0)
		return 0;
	pid_t tid = 1;
	struct hs_heap_threads th = { 1, &tid, &hdr.fs_base };
	struct hs_heap h;
	if (hs_heap_walk(mem, &lc, &th, HS_WALK_LISTS | HS_WALK_DEEP, NULL, &h, NULL) == 0) {
		uint64_t bytes = 0;
		for (size_t i = 0; i < h.narenas; i++)
			hs_chunks_walk(&h, mem, &h.arenas[i], 0, count_chunk, &bytes);
		static FILE *null;
		if (!null)
			null = fopen("/dev/null", "w");
		if (null)
			hs_info_malloc_info(&h, null);
		struct hs_mallinfo2 mi;
		hs_heap_mallinfo2(&h, &mi);
		hs_heap_release(&h);
	}
	hs_mem_close(mem);
	return 0;
}
