/* maps/smaps parsing, over text held in memory. */
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "maps.h"
#include "format.h"
#include "tap.h"

static const char smaps[] =
	"55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n"
	"Size:                132 kB\n"
	"Rss:                 128 kB\n"
	"Pss:                  64 kB\n"
	"Private_Dirty:       120 kB\n"
	"Anonymous:           124 kB\n"
	"Swap:                  4 kB\n"
	"VmFlags: rd wr mr mw me ac sd\n"
	"7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
	"Rss:                   8 kB\n"
	"7f0000021000-7f0004000000 ---p 00000000 00:00 0 \n"
	"7f1a629da000-7f1a62a00000 r--p 00000000 fe:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f1a62b00000-7f1a62b01000 rw-p 00000000 fe:01 99     /tmp/gone file (deleted)\n";

/* Largest Rss first, then largest size, then lowest address. */
static void test_by_rss(void)
{
	struct hs_mapping v[4];
	memset(v, 0, sizeof(v));
	v[0] = (struct hs_mapping){ .start = 0x1000, .end = 0x2000, .rss = 4096 };
	v[1] = (struct hs_mapping){ .start = 0x3000, .end = 0x9000, .rss = 8192 };
	v[2] = (struct hs_mapping){ .start = 0xa000, .end = 0xc000, .rss = 4096 };
	v[3] = (struct hs_mapping){ .start = 0x0000, .end = 0x1000, .rss = 4096 };
	struct hs_maps m = { .n = 4, .v = v };
	size_t *o = hs_maps_by_rss(&m);
	OK(o && o[0] == 1 && o[1] == 2 && o[2] == 3 && o[3] == 0, "by rss, size, address: %zu %zu %zu %zu",
	   o ? o[0] : 9, o ? o[1] : 9, o ? o[2] : 9, o ? o[3] : 9);
	free(o);
}

int main(void)
{
	test_by_rss();
	struct hs_maps m;
	struct hs_err err = { 0 };
	OK(hs_maps_parse(smaps, strlen(smaps), &m, &err) == 0, "smaps text parses");
	OK(m.n == 5, "five mappings (got %zu)", m.n);
	OK(m.v[0].start == 0x55d0c0a00000 && m.v[0].end == 0x55d0c0a21000, "heap range");
	OK(!strcmp(m.v[0].path, "[heap]") && !strcmp(m.v[0].perms, "rw-p"), "heap path and perms");
	OK(m.v[0].rss == 128 * 1024 && m.v[0].pss == 64 * 1024 && m.v[0].private_dirty == 120 * 1024 &&
	   m.v[0].anonymous == 124 * 1024 && m.v[0].swap == 4096, "smaps fields in bytes");
	OK(m.v[1].rss == 8192 && hs_mapping_anon(&m.v[1]), "anonymous mapping with trailing space");
	OK(!strcmp(m.v[3].path, "/usr/lib/x86_64-linux-gnu/libc.so.6") && m.v[3].inode == 1234, "file mapping");
	OK(m.v[4].deleted && !strcmp(m.v[4].path, "/tmp/gone file"), "deleted file, path with a space");
	OK(hs_maps_find(&m, 0x7f0000020fff) == &m.v[1], "find inside");
	OK(hs_maps_find(&m, 0x7f0004000000) == NULL, "find in a gap");
	OK(hs_maps_readable(&m, 0x7f0000000000, 0x21000), "readable rw part");
	OK(!hs_maps_readable(&m, 0x7f0000020000, 0x2000), "PROT_NONE reserve is not readable");
	OK(!hs_maps_readable(&m, UINT64_MAX - 4, 16), "overflowing range is not readable");
	hs_maps_release(&m);

	OK(hs_maps_parse("garbage line without dash\n", 26, &m, &err) == 0 && m.n == 0, "a line that is no mapping is skipped");
	hs_maps_release(&m);
	OK(hs_maps_parse("zz-yy rw-p\n", 11, &m, &err) < 0 && err.msg[0], "malformed header is an error: %s", err.msg);

	char b[HS_SIZE_BUF];
	OK(!strcmp(hs_fmt_size(0, b), "0"), "size 0");
	OK(!strcmp(hs_fmt_size(1023, b), "1023"), "size 1023");
	OK(!strcmp(hs_fmt_size(64u << 20, b), "64.0M"), "size 64M");
	OK(!strcmp(hs_fmt_size(1536, b), "1.5K"), "size 1.5K");
	OK(!strcmp(hs_fmt_us(850, b), "850us") && !strcmp(hs_fmt_us(12345, b), "12.3ms"), "durations");
	return tap_done();
}
