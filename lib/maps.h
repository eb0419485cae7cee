/* /proc/PID/maps and /proc/PID/smaps. */
#ifndef HS_MAPS_H
#define HS_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct hs_mapping {
	uint64_t start, end;     /* [start, end) */
	uint64_t offset;         /* file offset */
	uint64_t inode;
	char perms[5];           /* "rw-p" */
	char dev[12];
	char *path;              /* "" for anonymous; "[heap]", "[stack]"... */
	bool deleted;            /* path ended in " (deleted)" (suffix removed) */
	/* From smaps, in bytes; all 0 when read without smaps. */
	uint64_t rss, pss, private_dirty, anonymous, swap;
};

struct hs_maps {
	size_t n;
	struct hs_mapping *v;    /* sorted by start, as the kernel lists them */
};

/* Read /proc/PID/maps, or /proc/PID/smaps when with_smaps. */
int hs_maps_read(pid_t pid, bool with_smaps, struct hs_maps *maps, struct hs_err *err);
/* Parse a maps/smaps text already in memory (unit tests, fuzzing). */
int hs_maps_parse(const char *text, size_t len, struct hs_maps *maps, struct hs_err *err);
void hs_maps_release(struct hs_maps *maps);

/* The mapping holding addr, or NULL. */
const struct hs_mapping *hs_maps_find(const struct hs_maps *maps, uint64_t addr);
/* True if [addr, addr+len) lies in readable mappings (adjacent ones may be joined). */
bool hs_maps_readable(const struct hs_maps *maps, uint64_t addr, uint64_t len);

/* The last part of a mapped file's path. */
const char *hs_path_basename(const char *path);
/* Is path glibc's C library by name: libc.so.6, or libc-2.NN.so before
 * 2.34 (not libc-client.so...)? */
bool hs_path_is_libc(const char *path);

static inline bool hs_mapping_anon(const struct hs_mapping *m)
{
	return m->path[0] == '\0';
}

#endif
