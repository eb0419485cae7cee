/* lib/chunks.c's sums after the walk and the first-string scan: pure
 * functions over chunks and buffers made here. */
#include <stdint.h>
#include <string.h>

#include "chunks.h"
#include "tap.h"

static void test_first_string(void)
{
	char out[8];
	const unsigned char b[] = "\x01\x02" "ab\x03" "hello world\x00" "tail";
	OK(hs_first_string(b, sizeof(b) - 1, 4, out, sizeof(out)) == 7 && !strcmp(out, "hello w"),
	   "the first run of at least 4, cut to the buffer: '%s'", out);
	OK(hs_first_string(b, sizeof(b) - 1, 2, out, sizeof(out)) == 2 && !strcmp(out, "ab"), "min 2: the short run first");
	OK(hs_first_string(b, sizeof(b) - 1, 20, out, sizeof(out)) == 0, "none that long");
	const unsigned char t[] = "x\ty";
	OK(hs_first_string(t, 3, 3, out, sizeof(out)) == 3 && !strcmp(out, "x\ty"), "a tab is printable; a run ending the buffer counts");
}

static void test_hist(void)
{
	struct hs_chunks_hist a = { 0 }, b = { 0 };
	const struct hs_chunk v[] = {
		{ .addr = 0x1000, .size = 0x20, .state = HS_CHUNK_USED },
		{ .addr = 0x1020, .size = 0x30, .state = HS_CHUNK_USED },
		{ .addr = 0x1050, .size = 0x20, .state = HS_CHUNK_TCACHE },
		{ .addr = 0x1070, .size = 0x20f90, .state = HS_CHUNK_TOP },
		{ .addr = 0x7f0000000000, .size = 0x21000, .state = HS_CHUNK_MMAPPED },
	};
	for (size_t i = 0; i < 3; i++)
		hs_chunks_hist_add(&a, &v[i]);
	for (size_t i = 3; i < 5; i++)
		hs_chunks_hist_add(&b, &v[i]);
	OK(a.n[HS_CHUNK_USED] == 2 && a.bytes[HS_CHUNK_USED] == 0x50 && a.n[HS_CHUNK_TCACHE] == 1, "by state");
	OK(a.cls[2].n[0] == 1 && a.cls[2].n[1] == 1 && a.cls[3].n[0] == 1, "by class, in use and free apart");
	OK(b.n[HS_CHUNK_TOP] == 1 && b.cls[hs_bin_index(0x20f90)].n[0] == 0, "top by state only");
	OK(b.cls[128].n[0] == 1 && b.cls[128].lo[0] == 0x21000 && b.cls[128].hi[0] == 0x21000, "mmapped in class 128");
	struct hs_chunks_hist m = { 0 };
	hs_chunks_hist_add(&m, &(struct hs_chunk){ .size = 0x40, .state = HS_CHUNK_USED });
	hs_chunks_hist_add(&m, &(struct hs_chunk){ .size = 0x40, .state = HS_CHUNK_USED });
	struct hs_chunks_hist n = { 0 };
	hs_chunks_hist_add(&n, &(struct hs_chunk){ .size = 0x4f0, .state = HS_CHUNK_USED });
	hs_chunks_hist_add(&n, &(struct hs_chunk){ .size = 0x410, .state = HS_CHUNK_BIN });
	unsigned k = (unsigned)hs_bin_index(0x410);
	hs_chunks_hist_merge(&m, &n);
	hs_chunks_hist_merge(&m, &b);
	OK(m.n[HS_CHUNK_USED] == 3 && m.n[HS_CHUNK_BIN] == 1 && m.n[HS_CHUNK_MMAPPED] == 1, "merge: by state");
	OK(m.cls[4].n[0] == 2 && m.cls[k].n[1] == 1 && m.cls[k].lo[1] == 0x410 && m.cls[k].hi[1] == 0x410,
	   "merge: a class only one side has");
	OK(m.cls[128].lo[0] == 0x21000, "merge: the smallest size of an empty class is the other's");
}

int main(void)
{
	test_first_string();
	test_hist();
	return tap_done();
}
