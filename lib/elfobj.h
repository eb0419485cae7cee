/* ELF files as every module opens them (libelf only, no libdw): an fd to
 * an Elf handle with the checks all share, and the GNU build-id note.
 * Below debuginfo, libc, got and symbols, which all read ELF files. */
#ifndef HS_ELFOBJ_H
#define HS_ELFOBJ_H

#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>

/* An Elf handle on fd (read through libelf's mapping): NULL unless it is
 * an ELF object (not an archive) whose header reads, then into *eh (eh
 * may be NULL).  fd stays the caller's; elf_end the handle before closing
 * it. */
Elf *hs_elf_begin(int fd, GElf_Ehdr *eh);

/* elf_end *elf and close *fd where they are open, then mark both closed
 * (NULL, -1): the end of a handle from hs_elf_begin and its fd. */
void hs_elf_close(Elf **elf, int *fd);

/* The GNU build-id in a run of notes (a PT_NOTE segment or an SHT_NOTE
 * section's bytes, align its alignment): true and the descriptor's offset
 * in notes and length, at most 40 bytes. */
bool hs_elf_note_build_id(const unsigned char *notes, size_t len, size_t align, size_t *off, size_t *n);

/* The GNU build-id of an ELF image (its SHT_NOTE sections: a separate
 * debug file keeps them, not always its program headers), in hex; "" when
 * it has none. */
void hs_elf_build_id(Elf *elf, char *out, size_t outsz);

/* bytes in lowercase hex into out (always terminated; as many whole bytes
 * as fit). */
void hs_elf_hex(const unsigned char *bytes, size_t n, char *out, size_t outsz);

#endif
