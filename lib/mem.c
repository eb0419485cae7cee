#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "maps.h"
#include "mem.h"
#include "proc.h"

/* ---- live process -------------------------------------------------- */

struct pid_mem {
	struct hs_mem mem;
	pid_t pid;
	int fd;                  /* /proc/PID/mem, opened on first fallback */
	int use_vm;              /* process_vm_readv works */
};

static int pid_read_file(struct pid_mem *pm, uint64_t addr, void *buf, size_t len)
{
	if (pm->fd < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)pm->pid);
		pm->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (pm->fd < 0)
			return errno == ENOENT ? -ESRCH : -errno;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(pm->fd, (char *)buf + done, len - done, (off_t)(addr + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return hs_proc_alive(pm->pid) ? -EIO : -ESRCH;
		done += n;
	}
	return 0;
}

static int pid_read(struct hs_mem *mem, uint64_t addr, void *buf, size_t len)
{
	struct pid_mem *pm = (struct pid_mem *)mem;
	mem->nreads++;
	mem->nbytes += len;
	if (len == 0)
		return 0;
	if ((int64_t)addr < 0 || addr + len < addr)
		return -EFAULT;
	if (pm->use_vm) {
		struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
		ssize_t n = process_vm_readv(pm->pid, &local, 1, &remote, 1, 0);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == ESRCH)
			return -ESRCH;
		if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
			pm->use_vm = 0;     /* seccomp or an old kernel: use the file */
		} else {
			/* Partly unmapped, or PROT_NONE.  Never retry through
			 * /proc/PID/mem: it reads with FOLL_FORCE, which would fault
			 * PROT_NONE pages into the target. */
			return n < 0 && errno != EFAULT ? -errno : -EFAULT;
		}
	}
	/* /proc/PID/mem reads PROT_NONE memory too: callers that may pass such
	 * ranges check them against the mappings first (the cache does). */
	return pid_read_file(pm, addr, buf, len);
}

/* Many small reads in one call: process_vm_readv stops at the first
 * remote iovec it cannot read; *done says how many were read whole.
 * 0, or -errno (-ENOSYS: not this source). */
static int pid_readv(struct hs_mem *mem, struct iovec *local, struct iovec *remote, size_t n, size_t *done)
{
	struct pid_mem *pm = (struct pid_mem *)mem;
	*done = 0;
	if (!pm->use_vm)
		return -ENOSYS;
	mem->nreads++;
	ssize_t got = process_vm_readv(pm->pid, local, n, remote, n, 0);
	if (got < 0)
		return errno == ESRCH ? -ESRCH : errno == EFAULT ? 0 : -errno;
	mem->nbytes += (size_t)got;
	for (size_t i = 0; i < n && (size_t)got >= remote[i].iov_len; i++) {
		got -= remote[i].iov_len;
		++*done;
	}
	return 0;
}

static void pid_close(struct hs_mem *mem)
{
	struct pid_mem *pm = (struct pid_mem *)mem;
	if (pm->fd >= 0)
		close(pm->fd);
	free(pm);
}

int hs_mem_open_pid(pid_t pid, struct hs_mem **mem, struct hs_err *err)
{
	struct pid_mem *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return hs_err_set(err, ENOMEM, "out of memory");
	pm->mem.read = pid_read;
	pm->mem.close = pid_close;
	pm->pid = hs_proc_mm_pid(pid);    /* a live thread if the main one exited */
	pm->fd = -1;
	pm->use_vm = 1;
	*mem = &pm->mem;
	return 0;
}

/* ---- buffer image -------------------------------------------------- */

struct buf_mem {
	struct hs_mem mem;
	size_t nseg;
	struct hs_mem_segment seg[];
};

static int buf_read(struct hs_mem *mem, uint64_t addr, void *buf, size_t len)
{
	struct buf_mem *bm = (struct buf_mem *)mem;
	mem->nreads++;
	size_t done = 0;
	while (done < len) {
		uint64_t a = addr + done;
		if (a < addr)
			return -EFAULT;
		const struct hs_mem_segment *s = NULL;
		for (size_t i = 0; i < bm->nseg; i++)
			if (a >= bm->seg[i].addr && a - bm->seg[i].addr < bm->seg[i].len) {
				s = &bm->seg[i];
				break;
			}
		if (!s)
			return -EFAULT;
		size_t off = a - s->addr, n = s->len - off;
		if (n > len - done)
			n = len - done;
		memcpy((char *)buf + done, (const char *)s->data + off, n);
		done += n;
	}
	mem->nbytes += len;
	return 0;
}

static const void *buf_span(struct hs_mem *mem, uint64_t addr, size_t min, size_t *len)
{
	struct buf_mem *bm = (struct buf_mem *)mem;
	for (size_t i = 0; i < bm->nseg; i++)
		if (addr >= bm->seg[i].addr && addr - bm->seg[i].addr < bm->seg[i].len) {
			*len = bm->seg[i].len - (addr - bm->seg[i].addr);
			return *len >= min ? (const char *)bm->seg[i].data + (addr - bm->seg[i].addr) : NULL;
		}
	return NULL;
}

static void buf_close(struct hs_mem *mem)
{
	free(mem);
}

int hs_mem_open_buffer(const struct hs_mem_segment *segs, size_t nseg, struct hs_mem **mem)
{
	struct buf_mem *bm = calloc(1, sizeof(*bm) + nseg * sizeof(segs[0]));
	if (!bm)
		return -ENOMEM;
	bm->mem.read = buf_read;
	bm->mem.close = buf_close;
	bm->mem.span = buf_span;
	bm->nseg = nseg;
	memcpy(bm->seg, segs, nseg * sizeof(segs[0]));
	*mem = &bm->mem;
	return 0;
}

/* ---- page cache ---------------------------------------------------------- */

/* Free chunks are either sparse (a few per megabyte, in any order) or dense
 * (a list that touches every page).  Pages are cached one by one, so sparse
 * lists cost one small read per chunk; once a megabyte has missed a few
 * times, the whole megabyte is read in one call, so dense lists cost the
 * memory bandwidth and few system calls.  Each region the cache holds
 * pages of is given a frame of the lazily touched data (REGION_PAGES
 * slots), taken in turn, so that its pages are contiguous there and fill
 * with a single read, and the heaps of an arena (64 MiB apart, which a
 * cache placed by address would fold onto each other) do not evict each
 * other below CACHE_SLOTS pages.
 *
 * Reading a page the target never touched would make the kernel map the
 * zero page into it: a change to the target, and a page that pagemap then
 * reports resident.  With a pagemap, such pages of anonymous mappings are
 * never read: they hold zeros, and the cache says so. */
#define PAGE_SZ       4096u
#define CACHE_SLOTS   32768u         /* 128 MiB of address space, touched lazily */
#define REGION_PAGES  256u           /* 1 MiB */
#define REGION_SLOTS  4096u
#define NFRAMES       (CACHE_SLOTS / REGION_PAGES)
#define LINE_SLOTS    8192u
#define REGION_MISSES 32             /* break-even: 32 page reads cost about one 1 MiB read */

struct cache_mem {
	struct hs_mem mem;
	struct hs_mem *under;
	unsigned char *data;             /* CACHE_SLOTS pages */
	uint64_t tag[CACHE_SLOTS];       /* page address + 1 (0: empty) */
	unsigned frame_owner[NFRAMES];   /* region slot + 1 holding it (0: free) */
	unsigned hand;                   /* the frame taken next */
	struct {
		uint64_t base;
		unsigned misses;
		unsigned frame;              /* frame + 1 (0: none) */
		bool known;                  /* absent[] read from pagemap */
		bool no_region;              /* a whole read failed: pages only */
		uint64_t absent[REGION_PAGES / 64];  /* never touched: zeros */
	} region[REGION_SLOTS];
	uint64_t dense, sparse;          /* regions read whole / left after a few misses */
	/* Gathered lines: HS_MEM_LINE bytes at an exact address, direct-mapped
	 * by address (a collision only costs the later read a page). */
	struct line { uint64_t tag; unsigned char b[HS_MEM_LINE]; } *lines;
	size_t nlines;                   /* lines held since the last drop */
	uint64_t gathered, gather_calls, bulk_bytes;
	bool lists;                      /* gathering: misses never read a region whole */
	bool whole;                      /* told the memory is dense: the first miss reads its region */
	int pagemap_fd;                  /* -1: read every page */
	const struct hs_maps *maps;
	struct preload *pre;             /* recorded lines and their plan (NULL: none) */
};

static const unsigned char *pre_find(struct cache_mem *cm, uint64_t addr, size_t len);
static void pre_record(struct cache_mem *cm, uint64_t addr, size_t len);
static bool pre_loaded(const struct cache_mem *cm);
static bool pre_has_ranges(const struct cache_mem *cm);
static const unsigned char *pre_find_ahead(const struct preload *p, uint64_t addr);

static unsigned region_slot(uint64_t rbase)
{
	return (unsigned)((rbase / (REGION_PAGES * PAGE_SZ)) % REGION_SLOTS);
}

/* Give up region slot ri's frame (its pages are no longer cached). */
static void frame_release(struct cache_mem *cm, unsigned ri)
{
	unsigned f = cm->region[ri].frame;
	if (!f)
		return;
	memset(&cm->tag[(size_t)(f - 1) * REGION_PAGES], 0, REGION_PAGES * sizeof(cm->tag[0]));
	cm->frame_owner[f - 1] = 0;
	cm->region[ri].frame = 0;
}

/* The slot index of page, or -1 when its region holds no frame (then no
 * page of it is cached). */
static long slot_index(const struct cache_mem *cm, uint64_t page)
{
	uint64_t rbase = page & ~(uint64_t)(REGION_PAGES * PAGE_SZ - 1);
	unsigned ri = region_slot(rbase);
	if (cm->region[ri].base != rbase || !cm->region[ri].known || !cm->region[ri].frame)
		return -1;
	return (long)(cm->region[ri].frame - 1) * REGION_PAGES + (long)((page - rbase) / PAGE_SZ);
}

static bool page_cached(const struct cache_mem *cm, uint64_t page)
{
	long i = slot_index(cm, page);
	return i >= 0 && cm->tag[i] == page + 1;
}

static unsigned char *slot_data(struct cache_mem *cm, long idx)
{
	return cm->data + (size_t)idx * PAGE_SZ;
}

static void region_absent(struct cache_mem *cm, unsigned ri);

/* Region slot ri now describes the region at rbase (its pagemap read),
 * and holds a frame when want_frame; returns ri. */
static unsigned region_enter(struct cache_mem *cm, uint64_t rbase, bool want_frame)
{
	unsigned ri = region_slot(rbase);
	if (cm->region[ri].base != rbase || !cm->region[ri].known) {
		if (cm->region[ri].known && cm->region[ri].misses)
			cm->sparse++;
		frame_release(cm, ri);
		cm->region[ri].base = rbase;
		cm->region[ri].misses = 0;
		region_absent(cm, ri);
	}
	if (want_frame && !cm->region[ri].frame) {
		unsigned f = cm->hand++ % NFRAMES;
		if (cm->frame_owner[f])
			frame_release(cm, cm->frame_owner[f] - 1);
		memset(&cm->tag[(size_t)f * REGION_PAGES], 0, REGION_PAGES * sizeof(cm->tag[0]));
		cm->frame_owner[f] = ri + 1;
		cm->region[ri].frame = f + 1;
	}
	return ri;
}

/* Which pages of a region the target never touched (pagemap entry 0:
 * neither present nor swapped) inside an anonymous mapping it has. */
static void region_absent(struct cache_mem *cm, unsigned ri)
{
	uint64_t rbase = cm->region[ri].base, pm[REGION_PAGES];
	memset(cm->region[ri].absent, 0, sizeof(cm->region[ri].absent));
	cm->region[ri].known = true;
	cm->region[ri].no_region = false;
	if (!cm->maps)
		return;
	/* A region that is not all readable memory (the PROT_NONE reserve of
	 * a heap, a gap) is read page by page, and only where readable. */
	if (!hs_maps_readable(cm->maps, rbase, REGION_PAGES * PAGE_SZ))
		cm->region[ri].no_region = true;
	if (cm->pagemap_fd < 0)
		return;
	ssize_t n = pread(cm->pagemap_fd, pm, sizeof(pm), (off_t)(rbase / PAGE_SZ * 8));
	for (ssize_t i = 0; i < n / 8; i++) {
		/* Neither present (bit 63) nor swapped (62); bit 55, soft-dirty,
		 * is set on untouched pages of new mappings on many kernels. */
		if (pm[i] >> 62)
			continue;
		const struct hs_mapping *m = hs_maps_find(cm->maps, rbase + (uint64_t)i * PAGE_SZ);
		if (m && m->perms[0] == 'r' && (hs_mapping_anon(m) || !strcmp(m->path, "[heap]")))
			cm->region[ri].absent[i / 64] |= 1ull << (i % 64);
	}
}

static bool page_absent(struct cache_mem *cm, unsigned ri, uint64_t page)
{
	unsigned i = (unsigned)((page - cm->region[ri].base) / PAGE_SZ);
	return cm->region[ri].absent[i / 64] >> (i % 64) & 1;
}

/* Read a whole region, skipping its absent pages: one call, one iovec per
 * run of pages that are there. */
static int region_read(struct cache_mem *cm, unsigned ri)
{
	uint64_t rbase = cm->region[ri].base;
	size_t first = (size_t)(cm->region[ri].frame - 1) * REGION_PAGES;
	unsigned char *dst = slot_data(cm, (long)first);
	/* The region's slots are overwritten: whatever they held is gone. */
	memset(&cm->tag[first], 0, REGION_PAGES * sizeof(cm->tag[0]));
	for (unsigned i = 0; i < REGION_PAGES;) {
		unsigned j = i;
		bool absent = page_absent(cm, ri, rbase + (uint64_t)i * PAGE_SZ);
		while (j < REGION_PAGES && page_absent(cm, ri, rbase + (uint64_t)j * PAGE_SZ) == absent)
			j++;
		size_t off = (size_t)i * PAGE_SZ, len = (size_t)(j - i) * PAGE_SZ;
		if (absent)
			memset(dst + off, 0, len);
		else if (cm->under->read(cm->under, rbase + off, dst + off, len) < 0) {
			cm->region[ri].no_region = true;
			return -EFAULT;
		} else
			cm->bulk_bytes += len;
		i = j;
	}
	return 0;
}

/* Bring one page in (or its whole region); 0 or -errno. */
static int cache_fill(struct cache_mem *cm, uint64_t page)
{
	cm->mem.nreads++;
	uint64_t rbase = page & ~(uint64_t)(REGION_PAGES * PAGE_SZ - 1);
	unsigned ri = region_enter(cm, rbase, true);
	/* Once most regions have turned out dense, read the next ones whole
	 * sooner: in a heap whose lists touch every page, the first misses of
	 * each megabyte are wasted system calls. */
	unsigned want = cm->whole ? 1 : cm->dense > 8 && cm->dense > 4 * cm->sparse ? REGION_MISSES / 8 : REGION_MISSES;
	if (++cm->region[ri].misses >= want && !cm->lists && !cm->region[ri].no_region && region_read(cm, ri) == 0) {
		cm->region[ri].misses = 0;
		cm->dense++;
		size_t first = (size_t)(cm->region[ri].frame - 1) * REGION_PAGES;
		for (unsigned i = 0; i < REGION_PAGES; i++)
			cm->tag[first + i] = rbase + (uint64_t)i * PAGE_SZ + 1;
		return 0;
	}
	long idx = slot_index(cm, page);
	cm->tag[idx] = 0;
	int r = 0;
	const struct hs_mapping *m = cm->maps ? hs_maps_find(cm->maps, page) : NULL;
	if (page_absent(cm, ri, page))
		memset(slot_data(cm, idx), 0, PAGE_SZ);
	else if (m && m->perms[0] != 'r')
		r = -EFAULT;        /* PROT_NONE: never read, never faulted in */
	else if ((r = cm->under->read(cm->under, page, slot_data(cm, idx), PAGE_SZ)) == 0)
		cm->bulk_bytes += PAGE_SZ;
	if (r == 0)
		cm->tag[idx] = page + 1;
	return r;
}

#define CLAIMED UINT64_MAX

static struct line *line_of(struct cache_mem *cm, uint64_t addr)
{
	return &cm->lines[(addr >> 4) % LINE_SLOTS];
}

/* Where a gathered line holds [addr, addr+len), else NULL. */
static const unsigned char *line_find(struct cache_mem *cm, uint64_t addr, size_t len)
{
	if (!cm->nlines)
		return NULL;
	for (uint64_t base = addr & ~(uint64_t)15, k = 0; k < 3 && base + HS_MEM_LINE >= addr + len; k++, base -= 16) {
		struct line *ln = line_of(cm, base);
		if (ln->tag == base + 1 && addr >= base)
			return ln->b + (addr - base);
	}
	return NULL;
}

/* Is addr's page one that may be read without touching the target: known
 * present (or swapped), inside readable memory?  Sets up its region's
 * pagemap bits as a page read would. */
static bool line_page_ok(struct cache_mem *cm, uint64_t page);

static bool line_readable(struct cache_mem *cm, uint64_t addr)
{
	if (addr + HS_MEM_LINE < addr || (int64_t)addr < 0)
		return false;
	if ((addr & (PAGE_SZ - 1)) + HS_MEM_LINE > PAGE_SZ &&
	    !line_page_ok(cm, (addr + HS_MEM_LINE - 1) & ~(uint64_t)(PAGE_SZ - 1)))
		return false;       /* crosses into a page that must not be read */
	return line_page_ok(cm, addr & ~(uint64_t)(PAGE_SZ - 1));
}

static bool line_page_ok(struct cache_mem *cm, uint64_t page)
{
	uint64_t rbase = page & ~(uint64_t)(REGION_PAGES * PAGE_SZ - 1);
	unsigned ri = region_enter(cm, rbase, false);
	return cm->maps && !cm->region[ri].no_region && !page_absent(cm, ri, page);
}

static int cache_gather(struct hs_mem *mem, const uint64_t *addr, size_t n)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	cm->lists = n > 0;
	cm->whole = !n;
	if (!n || pre_loaded(cm))
		return 0;       /* preloaded: the reads it would spare are few */
	enum { BATCH = 1024 };       /* UIO_MAXIOV */
	struct iovec local[BATCH], remote[BATCH];
	uint64_t want[BATCH];
	int got = 0;
	if (!cm->lines) {
		cm->lines = mmap(NULL, LINE_SLOTS * sizeof(*cm->lines), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (cm->lines == MAP_FAILED) {
			cm->lines = NULL;
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < n;) {
		size_t k = 0;
		for (; i < n && k < BATCH; i++) {
			uint64_t a = addr[i];
			struct line *ln = line_of(cm, a);
			if ((a & 15) || ln->tag == a + 1 || !line_readable(cm, a))
				continue;
			/* already in a cached page: nothing to gather */
			uint64_t page = a & ~(uint64_t)(PAGE_SZ - 1), last = (a + HS_MEM_LINE - 1) & ~(uint64_t)(PAGE_SZ - 1);
			if (page_cached(cm, page) && page_cached(cm, last))
				continue;
			if (ln->tag == CLAIMED)
				continue;       /* its slot is taken in this batch */
			ln->tag = CLAIMED;
			want[k] = a;
			local[k] = (struct iovec){ ln->b, HS_MEM_LINE };
			remote[k] = (struct iovec){ (void *)(uintptr_t)a, HS_MEM_LINE };
			k++;
		}
		for (size_t from = 0; from < k;) {
			size_t done = 0;
			int r = cm->under->read == pid_read
				? pid_readv(cm->under, local + from, remote + from, k - from, &done) : -ENOSYS;
			if (r == -ENOSYS) {     /* another source: one read each */
				for (; from < k; from++)
					if (cm->under->read(cm->under, want[from], local[from].iov_base, HS_MEM_LINE) == 0) {
						line_of(cm, want[from])->tag = want[from] + 1;
						got++;
					} else
						line_of(cm, want[from])->tag = 0;
				break;
			}
			if (r < 0) {
				for (size_t j = from; j < k; j++)
					line_of(cm, want[j])->tag = 0;
				return r;
			}
			cm->gather_calls++;
			for (size_t j = from; j < from + done; j++)
				line_of(cm, want[j])->tag = want[j] + 1;
			got += (int)done;
			if (from + done < k)    /* the one it could not read: the ordinary path says why */
				line_of(cm, want[from + done])->tag = 0;
			from += done + 1;
		}
	}
	cm->nlines += (size_t)got;
	cm->gathered += (uint64_t)got;
	return got;
}

static int cache_read(struct hs_mem *mem, uint64_t addr, void *buf, size_t len)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	mem->nbytes += len;
	if (addr + len < addr)
		return -EFAULT;
	if (cm->pre) {
		pre_record(cm, addr, len);
		const unsigned char *pb = pre_find(cm, addr, len);
		if (pb) {
			memcpy(buf, pb, len);
			return 0;
		}
	}
	uint64_t page0 = addr & ~(uint64_t)(PAGE_SZ - 1);
	const unsigned char *lb = !page_cached(cm, page0) ? line_find(cm, addr, len) : NULL;
	if (lb) {
		memcpy(buf, lb, len);
		return 0;
	}
	/* Large reads go straight through, they are already one call; but
	 * not with a pagemap, whose never-touched pages must not be read. */
	if (len >= 8 * PAGE_SZ && cm->pagemap_fd < 0)
		return cm->under->read(cm->under, addr, buf, len);
	size_t done = 0;
	while (done < len) {
		uint64_t a = addr + done, page = a & ~(uint64_t)(PAGE_SZ - 1);
		size_t off = a - page, n = PAGE_SZ - off;
		if (n > len - done)
			n = len - done;
		long idx = slot_index(cm, page);
		if (idx < 0 || cm->tag[idx] != page + 1) {
			int r = cache_fill(cm, page);
			if (r < 0)
				return r;
			idx = slot_index(cm, page);
		}
		memcpy((char *)buf + done, slot_data(cm, idx) + off, n);
		done += n;
	}
	return 0;
}

static const void *cache_peek(struct hs_mem *mem, uint64_t addr, size_t len)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	uint64_t page = addr & ~(uint64_t)(PAGE_SZ - 1);
	if (cm->pre) {
		pre_record(cm, addr, len);
		const unsigned char *pb = pre_find(cm, addr, len);
		if (pb) {
			mem->nbytes += len;
			return pb;
		}
	}
	if (addr - page + len > PAGE_SZ)
		return NULL;
	long idx = slot_index(cm, page);
	if (idx < 0 || cm->tag[idx] != page + 1) {
		const unsigned char *lb = line_find(cm, addr, len);
		if (lb)
			return lb;
		if (cache_fill(cm, page) < 0)
			return NULL;
		idx = slot_index(cm, page);
	}
	mem->nbytes += len;
	return slot_data(cm, idx) + (addr - page);
}

static const void *cache_span(struct hs_mem *mem, uint64_t addr, size_t min, size_t *len)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	uint64_t page = addr & ~(uint64_t)(PAGE_SZ - 1);
	if (addr - page + min > PAGE_SZ)
		return NULL;
	long idx = slot_index(cm, page);
	if (idx < 0 || cm->tag[idx] != page + 1) {
		if (cache_fill(cm, page) < 0)
			return NULL;
		idx = slot_index(cm, page);
	}
	/* the pages after it in its region's frame, while they are cached */
	long last = idx, frame_end = (idx / REGION_PAGES + 1) * REGION_PAGES;
	while (last + 1 < frame_end && cm->tag[last + 1] == cm->tag[last] + PAGE_SZ)
		last++;
	*len = (size_t)(last - idx + 1) * PAGE_SZ - (addr - page);
	mem->nbytes += *len;
	return slot_data(cm, idx) + (addr - page);
}

static void cache_prefetch(struct hs_mem *mem, uint64_t addr)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	uint64_t page = addr & ~(uint64_t)(PAGE_SZ - 1);
	if (pre_loaded(cm)) {
		/* Only an arena planned whole was read in no recorded order:
		 * the other reads prefetch themselves (pre_find), and a
		 * lookup per hint costs more than it saves there. */
		if (!pre_has_ranges(cm))
			return;
		const unsigned char *pb = pre_find_ahead(cm->pre, addr);
		if (pb) {
			__builtin_prefetch(pb);
			return;
		}
	}
	long idx = slot_index(cm, page);
	if (idx >= 0 && cm->tag[idx] == page + 1)
		__builtin_prefetch(slot_data(cm, idx) + (addr - page));
}

static void cache_close(struct hs_mem *mem)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	munmap(cm->data, (size_t)CACHE_SLOTS * PAGE_SZ);
	hs_mem_cache_preload_end(mem);
	if (cm->lines)
		munmap(cm->lines, LINE_SLOTS * sizeof(*cm->lines));
	hs_mem_close(cm->under);
	free(cm);
}

/* ---- preload: what a walk of the running target read, read again while
 * it is stopped ------------------------------------------------------------ */

/* The recorded reads, in lines of PRE_LINE bytes; then the plan: runs of
 * lines (close ones joined, the bytes between read too: a gap costs less
 * than another iovec) that one process_vm_readv call per PRE_BATCH of them
 * copies into buf, found again by a hash from page to the first run on it. */
#define PRE_LINE_SHIFT 6
#define PRE_GAP        1536u          /* an iovec costs about what copying 1.5 KiB does */
#define PRE_MAX_LINES  (64u << 20)    /* recorded lines kept (512 MiB of them) */
#define PRE_MAX_BYTES  ((size_t)768 << 20)
#define PRE_BATCH      1024           /* UIO_MAXIOV */

struct pre_line { uint64_t addr; };   /* a line number (address >> PRE_LINE_SHIFT) */
struct pre_run { uint64_t addr; size_t len, off; bool ok; };
/* A read of the first walk, in its order: the second walk, which reads the
 * same unless the lists changed, finds each read here (no hash) and loads
 * the ones PRE_AHEAD reads on, so that following a long list does not wait
 * for memory at each chunk. */
struct pre_seq { uint64_t addr, off; uint32_t len, avail; uint32_t run; };
#define PRE_AHEAD 12

struct preload {
	bool recording, overflow, loaded;
	struct pre_seq *seq;
	size_t nseq, capseq, cur;
	struct pre_run *run;
	size_t nrun, last;                /* last: the run that served the last lookup */
	struct pre_run *range;            /* hs_mem_cache_preload_range's (addr, len) */
	size_t nrange, caprange;
	unsigned char *buf;
	size_t bytes;
	uint64_t *hkey;                   /* page + 1 (0: empty) */
	uint32_t *hval;                   /* its first run */
	size_t hmask;
	struct hs_mem_preload_stats st;
};

#include "radix.h"
#include "thread.h"
HS_RADIX_SORT_BY_ADDR(sort_lines, struct pre_line)

static void pre_record(struct cache_mem *cm, uint64_t addr, size_t len)
{
	struct preload *p = cm->pre;
	if (!p->recording || !len || p->overflow || len > UINT32_MAX)
		return;
	if (p->nseq && p->seq[p->nseq - 1].addr == addr && p->seq[p->nseq - 1].len >= len)
		return;
	if (p->nseq == p->capseq) {
		size_t cap = p->capseq ? 2 * p->capseq : 65536;
		struct pre_seq *v = cap <= PRE_MAX_LINES ? realloc(p->seq, cap * sizeof(*v)) : NULL;
		if (!v) {
			p->overflow = true;
			return;
		}
		p->seq = v;
		p->capseq = cap;
	}
	p->seq[p->nseq++] = (struct pre_seq){ addr, 0, (uint32_t)len, 0, 0 };
}

/* Some of the plan is whole ranges (hs_mem_cache_preload_range). */
static bool pre_has_ranges(const struct cache_mem *cm)
{
	return cm->pre && cm->pre->nrange;
}

static bool pre_loaded(const struct cache_mem *cm)
{
	return cm->pre && cm->pre->loaded;
}

/* The next reads of the first walk: addr among them, its bytes preloaded. */
static const unsigned char *pre_next(struct preload *p, uint64_t addr, size_t len)
{
	for (size_t k = p->cur; k < p->nseq && k < p->cur + 8; k++) {
		if (p->seq[k].addr != addr)
			continue;
		p->cur = k + 1;
		if (k + PRE_AHEAD < p->nseq && p->seq[k + PRE_AHEAD].avail)
			__builtin_prefetch(p->buf + p->seq[k + PRE_AHEAD].off);
		return len <= p->seq[k].avail ? p->buf + p->seq[k].off : NULL;
	}
	return NULL;
}

static size_t pre_hash(uint64_t page, size_t mask)
{
	return (size_t)((page * 0x9e3779b97f4a7c15ull) >> 20) & mask;
}

/* The run that holds [addr, addr+len) whole, or -1. */
static long pre_lookup(const struct preload *p, uint64_t addr, size_t len)
{
	/* a dense arena's reads fall in one long run, as a rule */
	const struct pre_run *lr = p->last < p->nrun ? &p->run[p->last] : NULL;
	if (lr && addr - lr->addr < lr->len && addr + len - lr->addr <= lr->len && addr + len > addr)
		return (long)p->last;
	uint64_t page = addr / PAGE_SZ;
	for (size_t h = pre_hash(page, p->hmask);; h = (h + 1) & p->hmask) {
		if (!p->hkey[h])
			return -1;
		if (p->hkey[h] != page + 1)
			continue;
		for (size_t i = p->hval[h]; i < p->nrun && p->run[i].addr <= addr; i++) {
			const struct pre_run *r = &p->run[i];
			if (addr - r->addr < r->len)
				return addr + len <= r->addr + r->len && addr + len > addr ? (long)i : -1;
		}
		return -1;
	}
}

static const unsigned char *pre_find(struct cache_mem *cm, uint64_t addr, size_t len)
{
	struct preload *p = cm->pre;
	if (!p->loaded || !len)
		return NULL;
	const unsigned char *b = pre_next(p, addr, len);
	if (b)
		return b;
	long i = pre_lookup(p, addr, len);
	if (i < 0 || !p->run[i].ok)
		return NULL;
	p->last = (size_t)i;
	return p->buf + p->run[i].off + (addr - p->run[i].addr);
}

/* Where addr's byte is preloaded (to prefetch), without moving the
 * sequence on, else NULL. */
static const unsigned char *pre_find_ahead(const struct preload *p, uint64_t addr)
{
	long i = pre_lookup(p, addr, 1);
	return i >= 0 && p->run[i].ok ? p->buf + p->run[i].off + (addr - p->run[i].addr) : NULL;
}

int hs_mem_cache_preload_range(struct hs_mem *mem, uint64_t addr, uint64_t len)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	struct preload *p = cm->pre;
	if (!p || !p->recording)
		return -EINVAL;
	if (!len || addr + len < addr)
		return 0;
	if (len > PRE_MAX_BYTES) {
		p->overflow = true;
		return -E2BIG;
	}
	if (p->nrange == p->caprange) {
		size_t c = p->caprange ? 2 * p->caprange : 16;
		struct pre_run *v = realloc(p->range, c * sizeof(*v));
		if (!v) {
			p->overflow = true;
			return -ENOMEM;
		}
		p->range = v;
		p->caprange = c;
	}
	p->range[p->nrange++] = (struct pre_run){ addr, (size_t)len, 0, false };
	return 0;
}

static bool pre_page_ok(struct cache_mem *cm, uint64_t page);

static int cmp_run(const void *x, const void *y)
{
	const struct pre_run *a = x, *b = y;
	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

/* The runs of ranges (their pages that may be read) merged into p->run
 * (sorted, disjoint), overlapping or touching runs joined; *bytes and
 * *npages recounted.  0 or -errno. */
static int pre_merge_ranges(struct cache_mem *cm, struct preload *p, size_t *bytes, size_t *npages)
{
	if (!p->nrange)
		return 0;
	qsort(p->range, p->nrange, sizeof(*p->range), cmp_run);
	struct pre_run *rr = NULL;
	size_t nr = 0, cap = 0;
	for (size_t i = 0; i < p->nrange; i++) {
		uint64_t lo = p->range[i].addr & ~(uint64_t)(PAGE_SZ - 1), hi = p->range[i].addr + p->range[i].len;
		for (uint64_t pg = lo; pg < hi; pg += PAGE_SZ) {
			if (!pre_page_ok(cm, pg))
				continue;
			uint64_t a = pg < p->range[i].addr ? p->range[i].addr : pg, e = pg + PAGE_SZ < hi ? pg + PAGE_SZ : hi;
			if (nr && rr[nr - 1].addr + rr[nr - 1].len >= a) {
				if (e > rr[nr - 1].addr + rr[nr - 1].len)
					rr[nr - 1].len = e - rr[nr - 1].addr;
				continue;
			}
			if (nr == cap) {
				size_t c = cap ? 2 * cap : 256;
				struct pre_run *v = realloc(rr, c * sizeof(*v));
				if (!v) {
					free(rr);
					return -ENOMEM;
				}
				rr = v;
				cap = c;
			}
			rr[nr++] = (struct pre_run){ a, e - a, 0, false };
		}
	}
	struct pre_run *m = malloc((p->nrun + nr + 1) * sizeof(*m));
	if (!m) {
		free(rr);
		return -ENOMEM;
	}
	size_t n = 0, i = 0, j = 0;
	*bytes = *npages = 0;
	while (i < p->nrun || j < nr) {
		const struct pre_run *r = j >= nr || (i < p->nrun && p->run[i].addr < rr[j].addr) ? &p->run[i++] : &rr[j++];
		if (n && m[n - 1].addr + m[n - 1].len >= r->addr) {
			if (r->addr + r->len > m[n - 1].addr + m[n - 1].len)
				m[n - 1].len = r->addr + r->len - m[n - 1].addr;
		} else
			m[n++] = *r;
	}
	for (size_t k = 0; k < n; k++) {
		*bytes += m[k].len;
		*npages += (m[k].addr + m[k].len - 1) / PAGE_SZ - m[k].addr / PAGE_SZ + 1;
	}
	free(rr);
	free(p->run);
	p->run = m;
	p->nrun = n;
	return *bytes > PRE_MAX_BYTES ? -E2BIG : 0;
}

int hs_mem_cache_preload_record(struct hs_mem *mem)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	hs_mem_cache_preload_end(mem);
	if (!(cm->pre = calloc(1, sizeof(*cm->pre))))
		return -ENOMEM;
	cm->pre->recording = true;
	return 0;
}

/* May page (read before the stop, from pagemap) be read without touching
 * the target, within a readable mapping? */
static bool pre_page_ok(struct cache_mem *cm, uint64_t page)
{
	uint64_t rbase = page & ~(uint64_t)(REGION_PAGES * PAGE_SZ - 1);
	unsigned ri = region_enter(cm, rbase, false);
	if (page_absent(cm, ri, page))
		return false;
	const struct hs_mapping *m = hs_maps_find(cm->maps, page);
	return m && m->perms[0] == 'r' && m->end >= page + PAGE_SZ;
}

int hs_mem_cache_preload_plan(struct hs_mem *mem)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	struct preload *p = cm->pre;
	if (!p)
		return -EINVAL;
	p->recording = false;
	if (p->overflow || !cm->maps)
		return -E2BIG;
	size_t nrec = 0;
	for (size_t i = 0; i < p->nseq; i++)
		nrec += ((p->seq[i].addr + p->seq[i].len - 1) >> PRE_LINE_SHIFT) - (p->seq[i].addr >> PRE_LINE_SHIFT) + 1;
	struct pre_line *rec = malloc((nrec + 1) * sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	nrec = 0;
	for (size_t i = 0; i < p->nseq; i++)
		for (uint64_t l = p->seq[i].addr >> PRE_LINE_SHIFT; l <= (p->seq[i].addr + p->seq[i].len - 1) >> PRE_LINE_SHIFT; l++)
			rec[nrec++].addr = l;
	if (sort_lines(rec, nrec) < 0) {
		free(rec);
		return -ENOMEM;
	}
	int ret = 0;
	/* Runs of lines on pages that may be read, PRE_GAP apart at most. */
	size_t n = 0, cap = 0, bytes = 0, npages = 0;
	uint64_t okpage = 0, badpage = 0;
	for (size_t i = 0; i < nrec; i++) {
		uint64_t a = rec[i].addr << PRE_LINE_SHIFT, page = a & ~(uint64_t)(PAGE_SZ - 1);
		if (i && rec[i - 1].addr == rec[i].addr)
			continue;
		if (page + 1 == badpage)
			continue;
		if (page + 1 != okpage) {
			if (!pre_page_ok(cm, page)) {
				badpage = page + 1;
				continue;
			}
			okpage = page + 1;
			npages++;
		}
		uint64_t e = a + (1u << PRE_LINE_SHIFT);
		if (n && a <= p->run[n - 1].addr + p->run[n - 1].len + PRE_GAP &&
		    ((p->run[n - 1].addr + p->run[n - 1].len - 1) & ~(uint64_t)(PAGE_SZ - 1)) + PAGE_SZ >= page) {
			/* the gap lies on this page and the run's last: both readable */
			bytes += e - (p->run[n - 1].addr + p->run[n - 1].len);
			p->run[n - 1].len = e - p->run[n - 1].addr;
		} else {
			if (n == cap) {
				size_t c = cap ? 2 * cap : 4096;
				struct pre_run *v = realloc(p->run, c * sizeof(*v));
				if (!v) {
					ret = -ENOMEM;
					break;
				}
				p->run = v;
				cap = c;
			}
			p->run[n++] = (struct pre_run){ a, e - a, 0, false };
			bytes += e - a;
		}
		if (bytes > PRE_MAX_BYTES) {
			ret = -E2BIG;
			break;
		}
	}
	free(rec);
	p->nrun = n;
	if (ret == 0)
		ret = pre_merge_ranges(cm, p, &bytes, &npages);
	n = p->nrun;
	if (ret < 0)
		return ret;
	if (!n)
		return -ENODATA;
	/* The hash from each page to its first run. */
	size_t hsz = 1024;
	while (hsz < 2 * (npages + n))
		hsz *= 2;
	p->hmask = hsz - 1;
	p->hkey = calloc(hsz, sizeof(*p->hkey));
	p->hval = malloc(hsz * sizeof(*p->hval));
	p->bytes = bytes;
	p->buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!p->hkey || !p->hval || p->buf == MAP_FAILED) {
		p->buf = p->buf == MAP_FAILED ? NULL : p->buf;
		return -ENOMEM;
	}
	/* Faulted in now, so that filling it while stopped costs no faults. */
	madvise(p->buf, bytes, MADV_HUGEPAGE);
	madvise(p->buf, bytes, MADV_POPULATE_WRITE);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		struct pre_run *r = &p->run[i];
		r->off = off;
		off += r->len;
		for (uint64_t pg = r->addr / PAGE_SZ; pg <= (r->addr + r->len - 1) / PAGE_SZ; pg++) {
			size_t h = pre_hash(pg, p->hmask);
			while (p->hkey[h] && p->hkey[h] != pg + 1)
				h = (h + 1) & p->hmask;
			if (!p->hkey[h]) {
				p->hkey[h] = pg + 1;
				p->hval[h] = (uint32_t)i;
			}
		}
	}
	for (size_t i = 0; i < p->nseq; i++) {
		struct pre_seq *q = &p->seq[i];
		long ri = pre_lookup(p, q->addr, q->len);
		if (ri >= 0) {
			q->run = (uint32_t)ri;
			q->off = p->run[ri].off + (q->addr - p->run[ri].addr);
			uint64_t avail = p->run[ri].addr + p->run[ri].len - q->addr;
			q->avail = avail > UINT32_MAX ? UINT32_MAX : (uint32_t)avail;
		}
	}
	p->st.runs = n;
	p->st.bytes = bytes;
	p->st.pages = npages;
	return 0;
}

/* PAGEMAP_SCAN (Linux 6.7; <linux/fs.h> may predate it): the ranges of
 * [start, end) whose pages are present or swapped, in one call that costs
 * what the page tables hold, not a pagemap entry per page. */
#ifndef PAGEMAP_SCAN
struct page_region { uint64_t start, end, categories; };
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN    _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#endif
#define SCAN_VEC  512
#define SCAN_SPAN ((uint64_t)256 << 20)   /* address space scanned at once */

/* The present or swapped ranges of [start, end): how many (filled in v),
 * *walk_end where the scan stopped (v full); -errno (ENOTTY, EINVAL: an
 * older kernel). */
static int pm_scan(int fd, uint64_t start, uint64_t end, struct page_region *v, size_t n, uint64_t *walk_end)
{
	struct pm_scan_arg a = { .size = sizeof(a), .start = start, .end = end, .vec = (uint64_t)(uintptr_t)v,
				 .vec_len = n, .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
				 .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
	int r = ioctl(fd, PAGEMAP_SCAN, &a);
	if (r < 0)
		return -errno;
	*walk_end = a.walk_end;
	return r;
}

/* Pagemap again, now that the target is stopped: a page it dropped since
 * the plan (MADV_DONTNEED) must not be read back in (process_vm_readv of
 * a page of an anonymous mapping that is neither present nor swapped maps
 * the zero page into the target).  Sets each run's ok. */
static void pre_check(struct cache_mem *cm, struct preload *p)
{
	struct page_region v[SCAN_VEC];
	size_t nv = 0, vi = 0;
	uint64_t lo = 1, hi = 0;          /* the scanned window [lo, hi): v holds its ranges */
	/* HEAPSCOPE_NO_PAGEMAP_SCAN: read pagemap, as before Linux 6.7 (tests) */
	bool scan = cm->pagemap_fd >= 0 && !getenv("HEAPSCOPE_NO_PAGEMAP_SCAN");
	const struct hs_mapping *m = NULL;
	uint64_t okpage = 0, badpage = 0;
	p->st.scanned = scan;
	for (size_t i = 0; i < p->nrun; i++) {
		struct pre_run *r = &p->run[i];
		r->ok = true;
		for (uint64_t pg = r->addr & ~(uint64_t)(PAGE_SZ - 1); r->ok && pg < r->addr + r->len; pg += PAGE_SZ) {
			if (pg + 1 == okpage)
				continue;
			bool ok = pg + 1 != badpage;
			if (ok && scan) {
				if (!m || pg < m->start || pg >= m->end)
					m = hs_maps_find(cm->maps, pg);
				if (!m || m->perms[0] != 'r')
					ok = false;
				else if (hs_mapping_anon(m) || !strcmp(m->path, "[heap]")) {
					/* never touched (as region_absent): not to be read */
					if (pg < lo || pg >= hi) {
						uint64_t end = m->end - pg > SCAN_SPAN ? pg + SCAN_SPAN : m->end, we = 0;
						int n = pm_scan(cm->pagemap_fd, pg, end, v, SCAN_VEC, &we);
						if (n < 0 || we <= pg) {
							scan = false;
							p->st.scanned = false;
						} else {
							lo = pg;
							hi = we;
							nv = (size_t)n;
							vi = 0;
						}
					}
					if (scan) {
						while (vi < nv && v[vi].end <= pg)
							vi++;
						ok = vi < nv && v[vi].start <= pg;
					}
				}
			}
			if (ok && !scan)
				ok = pre_page_ok(cm, pg);
			if (ok)
				okpage = pg + 1;
			else {
				badpage = pg + 1;
				r->ok = false;
			}
		}
	}
}

/* The stopped read, in batches that the tracing thread and the helper take
 * in turn (so that a helper kept off the CPU costs nothing: the tracing
 * thread takes its batches), each batch one process_vm_readv of at most
 * PRE_BATCH pieces and about PRE_BATCH_BYTES, straight (no source, no
 * cache: it may run beside the tracing thread).  A run longer than
 * PRE_PIECE is read in pieces. */
#define PRE_PIECE       ((size_t)4 << 20)
#define PRE_BATCH_BYTES ((uint64_t)8 << 20)

struct pre_piece { uint64_t addr; size_t off, len; size_t run; bool failed; };
struct pre_work {
	struct pre_piece *pc;
	size_t *batch;                   /* batch i: pieces [batch[i], batch[i + 1]) */
	size_t nbatch;
	pid_t pid;
	atomic_size_t next;              /* the next batch to take */
	atomic_bool cancel;              /* a thread met a vanished process */
};
struct pre_part {
	struct pre_work *w;
	int err;
	uint64_t read, calls;
};

static void *pre_part_read(void *arg)
{
	struct pre_part *pp = arg;
	struct pre_work *w = pp->w;
	struct iovec local[PRE_BATCH], remote[PRE_BATCH];
	for (;;) {
		size_t b = atomic_fetch_add(&w->next, 1);
		if (b >= w->nbatch || atomic_load(&w->cancel))
			return NULL;
		struct pre_piece *pc = w->pc + w->batch[b];
		size_t k = w->batch[b + 1] - w->batch[b];
		for (size_t j = 0; j < k; j++) {
			local[j] = (struct iovec){ (void *)(uintptr_t)pc[j].off, pc[j].len };
			remote[j] = (struct iovec){ (void *)(uintptr_t)pc[j].addr, pc[j].len };
		}
		for (size_t from = 0; from < k;) {
			ssize_t got = process_vm_readv(w->pid, local + from, k - from, remote + from, k - from, 0);
			if (got < 0 && errno != EFAULT) {
				pp->err = errno == ESRCH ? -ESRCH : -errno;
				atomic_store(&w->cancel, true);
				return NULL;
			}
			pp->calls++;
			size_t done = 0;
			for (; got > 0 && from + done < k && (size_t)got >= local[from + done].iov_len; done++) {
				got -= (ssize_t)local[from + done].iov_len;
				pp->read += local[from + done].iov_len;
			}
			if (from + done < k)    /* unreadable now: left to the ordinary path */
				pc[from + done].failed = true;
			from += done + 1;
		}
	}
}

/* Two threads, where the CPUs allow it and the read is worth one
 * (HEAPSCOPE_PRELOAD_THREADS=1: one, to compare; =2: two whatever the
 * read, for tests). */
static bool pre_two_threads(uint64_t cost)
{
	const char *t = getenv("HEAPSCOPE_PRELOAD_THREADS");
	if ((t && !strcmp(t, "1")) || (cost < ((uint64_t)1 << 20) && !(t && !strcmp(t, "2"))))
		return false;
	return hs_cpus() >= 2;
}

static uint64_t pre_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

/* Read the runs that are ok; a run not read whole is no longer ok.  0 or
 * -errno (-ESRCH: the process is gone). */
static int pre_fill(struct preload *p, pid_t pid)
{
	size_t npc = 0;
	uint64_t cost = 0;
	for (size_t i = 0; i < p->nrun; i++)
		if (p->run[i].ok) {
			npc += (p->run[i].len + PRE_PIECE - 1) / PRE_PIECE;
			cost += p->run[i].len + PRE_GAP;
		}
	struct pre_work w = { .pid = pid };
	w.pc = malloc((npc + 1) * sizeof(*w.pc));
	w.batch = malloc((npc + 2) * sizeof(*w.batch));
	if (!w.pc || !w.batch) {
		free(w.pc);
		free(w.batch);
		return -ENOMEM;
	}
	size_t n = 0;
	uint64_t bcost = 0;
	for (size_t i = 0; i < p->nrun; i++) {
		const struct pre_run *r = &p->run[i];
		for (size_t o = 0; r->ok && o < r->len; o += PRE_PIECE) {
			size_t len = r->len - o < PRE_PIECE ? r->len - o : PRE_PIECE;
			if (!w.nbatch || n - w.batch[w.nbatch - 1] >= PRE_BATCH || bcost >= PRE_BATCH_BYTES) {
				w.batch[w.nbatch++] = n;
				bcost = 0;
			}
			w.pc[n++] = (struct pre_piece){ r->addr + o, (size_t)(uintptr_t)(p->buf + r->off + o), len, i, false };
			bcost += len + PRE_GAP;
		}
	}
	w.batch[w.nbatch] = n;
	atomic_init(&w.next, 0);
	atomic_init(&w.cancel, false);
	struct pre_part part[2] = { { &w, 0, 0, 0 }, { &w, 0, 0, 0 } };
	pthread_t th;
	bool helper = false;
	if (w.nbatch > 1 && pre_two_threads(cost)) {
		helper = hs_thread_start(&th, pre_part_read, &part[1]);
	}
	pre_part_read(&part[0]);
	if (helper)
		pthread_join(th, NULL);
	p->st.threads = helper ? 2 : 1;
	for (int j = 0; j < 2; j++) {
		p->st.read += part[j].read;
		p->st.calls += part[j].calls;
	}
	for (size_t j = 0; j < n; j++)
		if (w.pc[j].failed)
			p->run[w.pc[j].run].ok = false;
	free(w.pc);
	free(w.batch);
	return part[0].err ? part[0].err : part[1].err;
}

int hs_mem_cache_preload_read(struct hs_mem *mem)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	struct preload *p = cm->pre;
	if (!p || !p->buf)
		return -EINVAL;
	p->loaded = false;
	p->st.read = p->st.calls = 0;
	p->st.threads = 1;
	uint64_t t0 = pre_now_us();
	pre_check(cm, p);
	uint64_t t1 = pre_now_us();
	p->st.check_us = t1 - t0;
	if (cm->under->read == pid_read && ((struct pid_mem *)cm->under)->use_vm) {
		int e = pre_fill(p, ((struct pid_mem *)cm->under)->pid);
		mem->nreads += p->st.calls;
		cm->under->nreads += p->st.calls;
		cm->under->nbytes += p->st.read;
		p->st.read_us = pre_now_us() - t1;
		if (e < 0) {
			for (size_t i = 0; i < p->nrun; i++)
				p->run[i].ok = false;
			return e;
		}
	} else {
		/* another source: one read each */
		for (size_t i = 0; i < p->nrun; i++)
			if (p->run[i].ok)
				p->run[i].ok = cm->under->read(cm->under, p->run[i].addr, p->buf + p->run[i].off,
							     p->run[i].len) == 0;
		p->st.read_us = pre_now_us() - t1;
	}
	bool bad = false;
	for (size_t i = 0; i < p->nrun && !bad; i++)
		bad = !p->run[i].ok;
	for (size_t i = 0; bad && i < p->nseq; i++)
		if (p->seq[i].avail && !p->run[p->seq[i].run].ok)
			p->seq[i].avail = 0;
	p->cur = 0;
	p->loaded = true;
	return 0;
}

void hs_mem_cache_preload_stats(struct hs_mem *mem, struct hs_mem_preload_stats *st)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	memset(st, 0, sizeof(*st));
	if (cm->pre)
		*st = cm->pre->st;
}

void hs_mem_cache_preload_unload(struct hs_mem *mem)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	if (cm->pre)
		cm->pre->loaded = false;
}

void hs_mem_cache_preload_end(struct hs_mem *mem)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	struct preload *p = cm->pre;
	if (!p)
		return;
	free(p->seq);
	free(p->run);
	free(p->range);
	free(p->hkey);
	free(p->hval);
	if (p->buf)
		munmap(p->buf, p->bytes);
	free(p);
	cm->pre = NULL;
}

void hs_mem_cache_prefault(struct hs_mem *mem, size_t bytes)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	if (bytes > (size_t)CACHE_SLOTS * PAGE_SZ)
		bytes = (size_t)CACHE_SLOTS * PAGE_SZ;
	madvise(cm->data, bytes, MADV_POPULATE_WRITE);
}

int hs_mem_cache_read_direct(struct hs_mem *mem, uint64_t addr, void *buf, size_t len)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	if (mem->read != cache_read || cm->under->read != pid_read || !((struct pid_mem *)cm->under)->use_vm)
		return -ENOSYS;
	if ((addr | len) & (PAGE_SZ - 1) || !cm->maps || !hs_maps_readable(cm->maps, addr, len))
		return -EFAULT;
	enum { BATCH = 256 };
	uint64_t pm[BATCH];
	struct iovec local[BATCH], remote[BATCH];
	pid_t pid = ((struct pid_mem *)cm->under)->pid;
	for (size_t done = 0; done < len;) {
		size_t npages = (len - done) / PAGE_SZ < BATCH ? (len - done) / PAGE_SZ : BATCH;
		uint64_t a = addr + done;
		/* pages neither present nor swapped in an anonymous mapping (or
		 * the brk heap): never touched, zeros (as region_absent) */
		ssize_t got = cm->pagemap_fd >= 0 ? pread(cm->pagemap_fd, pm, npages * 8, (off_t)(a / PAGE_SZ * 8)) : -1;
		size_t k = 0, want = 0;
		for (size_t i = 0; i < npages; i++) {
			uint64_t pa = a + i * PAGE_SZ;
			unsigned char *dst = (unsigned char *)buf + done + i * PAGE_SZ;
			if (got == (ssize_t)(npages * 8) && !(pm[i] >> 62)) {
				const struct hs_mapping *m = hs_maps_find(cm->maps, pa);
				if (m && (hs_mapping_anon(m) || !strcmp(m->path, "[heap]"))) {
					memset(dst, 0, PAGE_SZ);
					continue;
				}
			}
			if (k && (char *)local[k - 1].iov_base + local[k - 1].iov_len == (char *)dst &&
			    (uint64_t)(uintptr_t)remote[k - 1].iov_base + remote[k - 1].iov_len == pa) {
				local[k - 1].iov_len += PAGE_SZ;
				remote[k - 1].iov_len += PAGE_SZ;
			} else {
				local[k] = (struct iovec){ dst, PAGE_SZ };
				remote[k] = (struct iovec){ (void *)(uintptr_t)pa, PAGE_SZ };
				k++;
			}
			want += PAGE_SZ;
		}
		if (k) {
			ssize_t n = process_vm_readv(pid, local, k, remote, k, 0);
			if (n < 0)
				return errno == ESRCH ? -ESRCH : errno == EFAULT ? -EFAULT : -errno;
			if ((size_t)n != want)
				return -EFAULT;
		}
		done += npages * PAGE_SZ;
	}
	return 0;
}

uint64_t hs_mem_cache_held(struct hs_mem *mem, uint64_t addr, uint64_t len)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	if (mem->read != cache_read || addr + len < addr)
		return 0;
	uint64_t held = 0;
	for (uint64_t page = addr & ~(uint64_t)(PAGE_SZ - 1); page < addr + len; page += PAGE_SZ)
		held += page_cached(cm, page) ? PAGE_SZ : 0;
	return held;
}

void hs_mem_cache_set_pagemap(struct hs_mem *mem, int pagemap_fd, const struct hs_maps *maps)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	cm->pagemap_fd = pagemap_fd;
	cm->maps = maps;
	hs_mem_cache_drop(mem);
}

void hs_mem_cache_drop(struct hs_mem *mem)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	memset(cm->tag, 0, sizeof(cm->tag));
	memset(cm->region, 0, sizeof(cm->region));
	memset(cm->frame_owner, 0, sizeof(cm->frame_owner));
	cm->hand = 0;
	cm->dense = cm->sparse = 0;
	if (cm->lines && cm->nlines)
		memset(cm->lines, 0, LINE_SLOTS * sizeof(*cm->lines));
	cm->nlines = 0;
	cm->lists = cm->whole = false;
	cm->gathered = cm->gather_calls = cm->bulk_bytes = 0;
}

int hs_mem_open_cache(struct hs_mem *under, struct hs_mem **mem)
{
	struct cache_mem *cm = calloc(1, sizeof(*cm));
	if (!cm)
		return -ENOMEM;
	cm->data = mmap(NULL, (size_t)CACHE_SLOTS * PAGE_SZ, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (cm->data == MAP_FAILED) {
		free(cm);
		return -ENOMEM;
	}
	/* Huge pages spare heapscope a page fault per 4 KiB it fills. */
	madvise(cm->data, (size_t)CACHE_SLOTS * PAGE_SZ, MADV_HUGEPAGE);
	cm->pagemap_fd = -1;
	cm->mem.read = cache_read;
	cm->mem.prefetch = cache_prefetch;
	cm->mem.peek = cache_peek;
	cm->mem.span = cache_span;
	cm->mem.gather = cache_gather;
	cm->mem.close = cache_close;
	cm->under = under;
	*mem = &cm->mem;
	return 0;
}

void hs_mem_close(struct hs_mem *mem)
{
	if (mem)
		mem->close(mem);
}
