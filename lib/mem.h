/* Memory sources: the one interface through which the walker reads the
 * target.  A source reads all of [addr, addr+len) or fails with -EFAULT
 * (unmapped), -EIO (PROT_NONE or similar), -ESRCH (process gone). */
#ifndef HS_MEM_H
#define HS_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct hs_mem {
	int (*read)(struct hs_mem *mem, uint64_t addr, void *buf, size_t len);
	void (*close)(struct hs_mem *mem);
	/* Optional: a hint that addr will be read soon (a cache starts the
	 * load, so that walks of several lists overlap their misses). */
	void (*prefetch)(struct hs_mem *mem, uint64_t addr);
	/* Optional: the len bytes at addr where the source holds them (a
	 * cache's page), valid until the next call on mem; NULL when they
	 * cross a page or cannot be read (then read them). */
	const void *(*peek)(struct hs_mem *mem, uint64_t addr, size_t len);
	/* Optional: read the first HS_MEM_LINE bytes at each of n addresses in
	 * as few calls as the source allows (one process_vm_readv with many
	 * iovecs), kept so that the reads that follow at those addresses cost
	 * no call; addresses that cannot be read so are left to the ordinary
	 * path.  Returns how many it read, or -errno.  While it is in use, a
	 * cache reads single pages, never a region whole; n 0 (addr NULL)
	 * ends that: the memory is dense (or about to be read from end to
	 * end), the first miss reads a whole region. */
	int (*gather)(struct hs_mem *mem, const uint64_t *addr, size_t n);
	/* Optional: like peek, for at least min bytes at addr (within its
	 * page), and *len set to how many bytes from addr are held contiguous
	 * there (to the end of the run of cached pages of its region): a
	 * linear walk reads them in place, and prefetches ahead. */
	const void *(*span)(struct hs_mem *mem, uint64_t addr, size_t min, size_t *len);
	uint64_t nreads;         /* calls that reached the underlying source */
	uint64_t nbytes;
};

/* A live process: process_vm_readv, falling back to /proc/PID/mem.
 * Reading needs ptrace-read access to pid; the target need not be stopped,
 * but then what is read may be changing. */
int hs_mem_open_pid(pid_t pid, struct hs_mem **mem, struct hs_err *err);

/* A heap image held in memory: nseg segments, each [addr, addr+len) with
 * its bytes.  The buffers are borrowed, not copied. */
struct hs_mem_segment {
	uint64_t addr;
	size_t len;
	const void *data;
};
int hs_mem_open_buffer(const struct hs_mem_segment *segs, size_t nseg, struct hs_mem **mem);

/* A page cache over another source (which it owns): reads of a few bytes,
 * as a list walk makes them, are served from pages, and a megabyte that
 * keeps missing is read whole, in one system call.  Call hs_mem_cache_drop() when the target may have changed. */
int hs_mem_open_cache(struct hs_mem *under, struct hs_mem **mem);
void hs_mem_cache_drop(struct hs_mem *cache);
/* Give the cache the target's pagemap (an open fd it borrows) and mappings:
 * pages of anonymous mappings that were never touched are then known to
 * hold zeros and are not read, so reading never maps a page into the
 * target.  pagemap_fd -1 turns this off. */
struct hs_maps;
void hs_mem_cache_set_pagemap(struct hs_mem *cache, int pagemap_fd, const struct hs_maps *maps);
/* Fault in the first bytes of the cache now, so that filling it later (while
 * the target is stopped) costs no page faults in heapscope. */
void hs_mem_cache_prefault(struct hs_mem *cache, size_t bytes);
/* Read [addr, addr+len) of a live process under the cache straight into
 * buf, as the cache would (pages the pagemap says were never touched are
 * zeros, not read), without using or changing the cache: it may be called
 * from another thread while the cache is in use.  -ENOSYS: not a cache
 * over a live process; -EFAULT: not all readable memory (read it through
 * the cache, which says why); -ESRCH: the process is gone. */
int hs_mem_cache_read_direct(struct hs_mem *cache, uint64_t addr, void *buf, size_t len);
/* How many bytes of the pages of [addr, addr+len) the cache holds now
 * (0 for another source): read them in place rather than again. */
uint64_t hs_mem_cache_held(struct hs_mem *cache, uint64_t addr, uint64_t len);

/* Preload, for a walk made twice: once while the target runs, recording
 * what it read (its values thrown away), then while it is stopped.
 * hs_mem_cache_preload_record() starts recording (reads are served as
 * before); hs_mem_cache_preload_plan() ends it and turns what was read into
 * runs of bytes, with a buffer for them faulted in (before the stop; needs
 * the pagemap and maps; -E2BIG when too much was read, -ENODATA when
 * nothing); hs_mem_cache_preload_read(), while stopped, reads every run
 * (pagemap checked again, pages the target dropped left out) in batched
 * process_vm_readv calls, on two threads where it can (the second one only
 * reads, all signals blocked, and is joined before it returns): the reads that fall in them are then served from
 * there, the others as before (what changed since is read on demand).
 * The preload survives hs_mem_cache_drop(); hs_mem_cache_preload_unload()
 * stops serving reads from it (the stop it was read in is over: the next
 * hs_mem_cache_preload_read() serves them again); hs_mem_cache_preload_end()
 * frees it. */
struct hs_mem_preload_stats {
	uint64_t runs, bytes, pages;     /* the plan */
	uint64_t read, calls;            /* the last hs_mem_cache_preload_read */
	uint64_t check_us, read_us;      /* its pagemap check, its reading */
	unsigned threads;                /* threads that read (1 or 2) */
	bool scanned;                    /* the check used PAGEMAP_SCAN */
};
int hs_mem_cache_preload_record(struct hs_mem *cache);
/* While recording: [addr, addr+len) is to be read whole (a dense arena's
 * heap, whose walk was left unfinished), its pages that may be read. */
int hs_mem_cache_preload_range(struct hs_mem *cache, uint64_t addr, uint64_t len);
int hs_mem_cache_preload_plan(struct hs_mem *cache);
int hs_mem_cache_preload_read(struct hs_mem *cache);
void hs_mem_cache_preload_stats(struct hs_mem *cache, struct hs_mem_preload_stats *st);
void hs_mem_cache_preload_unload(struct hs_mem *cache);
void hs_mem_cache_preload_end(struct hs_mem *cache);

static inline int hs_mem_read(struct hs_mem *mem, uint64_t addr, void *buf, size_t len)
{
	return mem->read(mem, addr, buf, len);
}

static inline int hs_mem_u64(struct hs_mem *mem, uint64_t addr, uint64_t *v)
{
	return mem->read(mem, addr, v, sizeof(*v));
}

static inline const void *hs_mem_peek(struct hs_mem *mem, uint64_t addr, size_t len)
{
	return mem->peek ? mem->peek(mem, addr, len) : NULL;
}

static inline const void *hs_mem_span(struct hs_mem *mem, uint64_t addr, size_t min, size_t *len)
{
	return mem->span ? mem->span(mem, addr, min, len) : NULL;
}

#define HS_MEM_LINE 48

static inline int hs_mem_gather(struct hs_mem *mem, const uint64_t *addr, size_t n)
{
	return mem->gather ? mem->gather(mem, addr, n) : 0;
}

static inline void hs_mem_prefetch(struct hs_mem *mem, uint64_t addr)
{
	if (mem->prefetch)
		mem->prefetch(mem, addr);
}

void hs_mem_close(struct hs_mem *mem);

#endif
