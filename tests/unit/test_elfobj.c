/* The shared ELF helpers on synthetic bytes: the build-id note parser (as
 * a PT_NOTE segment or an SHT_NOTE section holds notes, 4- and 8-byte
 * aligned), the hex of an id, and libc's name as mapped. */
#include <elf.h>
#include <string.h>

#include "elfobj.h"
#include "maps.h"
#include "tap.h"

/* One note at off in buf: name, then desc, each padded to align. */
static size_t put_note(unsigned char *buf, size_t off, uint32_t type, const char *name, const unsigned char *desc,
		       uint32_t dlen, size_t align)
{
	Elf64_Nhdr nh = { (uint32_t)strlen(name) + 1, dlen, type };
	memcpy(buf + off, &nh, sizeof(nh));
	off += sizeof(nh);
	memcpy(buf + off, name, nh.n_namesz);
	off = (off + nh.n_namesz + align - 1) & ~(align - 1);
	memcpy(buf + off, desc, dlen);
	return (off + dlen + align - 1) & ~(align - 1);
}

int main(void)
{
	static const unsigned char id[20] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	static const unsigned char abi[16] = { 0 };
	for (size_t align = 4; align <= 8; align += 4) {
		unsigned char buf[256] = { 0 };
		size_t len = put_note(buf, 0, NT_GNU_ABI_TAG, "GNU", abi, sizeof(abi), align);
		size_t at = len;
		len = put_note(buf, len, NT_GNU_BUILD_ID, "GNU", id, sizeof(id), align);
		size_t off = 0, n = 0;
		OK(hs_elf_note_build_id(buf, len, align, &off, &n) && n == sizeof(id) && !memcmp(buf + off, id, n) &&
			   off > at,
		   "build-id found after another note, %zu-byte aligned", align);
		OK(!hs_elf_note_build_id(buf, len - 8, align, &off, &n), "a note cut short is not read (%zu-byte aligned)",
		   align);
		unsigned char other[256] = { 0 };
		size_t olen = put_note(other, 0, NT_GNU_BUILD_ID, "XYZ", id, sizeof(id), align);
		OK(!hs_elf_note_build_id(other, olen, align, &off, &n), "a build-id type under another name is not GNU's");
	}
	/* a descriptor longer than any build-id: refused */
	unsigned char big[256] = { 0 }, longid[64] = { 1 };
	size_t blen = put_note(big, 0, NT_GNU_BUILD_ID, "GNU", longid, sizeof(longid), 4);
	size_t off, n;
	OK(!hs_elf_note_build_id(big, blen, 4, &off, &n), "a 64-byte build-id is refused");

	char hex[81];
	hs_elf_hex(id, 4, hex, sizeof(hex));
	OK(!strcmp(hex, "deadbeef"), "hex: %s", hex);
	char small[6];
	hs_elf_hex(id, 4, small, sizeof(small));
	OK(!strcmp(small, "dead"), "hex cut to whole bytes: %s", small);

	OK(!strcmp(hs_path_basename("/usr/lib/libc.so.6"), "libc.so.6") && !strcmp(hs_path_basename("x"), "x"),
	   "basename");
	OK(hs_path_is_libc("/lib/x86_64-linux-gnu/libc.so.6") && hs_path_is_libc("/lib/libc-2.31.so") &&
		   !hs_path_is_libc("/usr/lib/libc-client.so.2007e") && !hs_path_is_libc("/lib/libc-2.31.so.bak"),
	   "libc by name");
	return tap_done();
}
