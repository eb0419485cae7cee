#include <elf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "elfobj.h"

Elf *hs_elf_begin(int fd, GElf_Ehdr *eh)
{
	GElf_Ehdr tmp;
	elf_version(EV_CURRENT);
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF && gelf_getehdr(elf, eh ? eh : &tmp))
		return elf;
	if (elf)
		elf_end(elf);
	return NULL;
}

bool hs_elf_note_build_id(const unsigned char *notes, size_t len, size_t align, size_t *off, size_t *n)
{
	uint64_t pos = 0, a = align > 4 ? 8 : 4;
	while (pos + sizeof(Elf64_Nhdr) <= len) {
		Elf64_Nhdr nh;
		memcpy(&nh, notes + pos, sizeof(nh));
		uint64_t name = pos + sizeof(nh);
		uint64_t desc = (name + nh.n_namesz + a - 1) & ~(a - 1);
		uint64_t next = (desc + nh.n_descsz + a - 1) & ~(a - 1);
		if (desc + nh.n_descsz > len || next <= pos)
			break;
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && !memcmp(notes + name, "GNU", 4) &&
		    nh.n_descsz > 0 && nh.n_descsz <= 40) {
			*off = desc;
			*n = nh.n_descsz;
			return true;
		}
		pos = next;
	}
	return false;
}

void hs_elf_hex(const unsigned char *bytes, size_t n, char *out, size_t outsz)
{
	size_t k = 0;
	if (outsz)
		out[0] = '\0';
	for (size_t i = 0; i < n && k + 3 <= outsz; i++)
		k += snprintf(out + k, outsz - k, "%02x", bytes[i]);
}

void hs_elf_build_id(Elf *elf, char *out, size_t outsz)
{
	out[0] = '\0';
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t off, n;
		if (d && d->d_buf && hs_elf_note_build_id(d->d_buf, d->d_size, sh.sh_addralign, &off, &n)) {
			hs_elf_hex((const unsigned char *)d->d_buf + off, n, out, outsz);
			return;
		}
	}
}

void hs_elf_close(Elf **elf, int *fd)
{
	if (*elf)
		elf_end(*elf);
	if (*fd >= 0)
		close(*fd);
	*elf = NULL;
	*fd = -1;
}
