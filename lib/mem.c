#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mem.h"

/* ---- live process -------------------------------------------------- */

struct pid_mem {
	struct hs_mem mem;
	pid_t pid;
	int fd;                  /* /proc/PID/mem, opened on first fallback */
	int use_vm;              /* process_vm_readv works */
};

static int pid_exists(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) == 0;
}

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
			return pid_exists(pm->pid) ? -EIO : -ESRCH;
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
		if (n < 0 && (errno == ENOSYS || errno == EPERM))
			pm->use_vm = 0;     /* seccomp or an old kernel: use the file */
		else if (n >= 0 || errno == EFAULT) {
			/* Partly unmapped, or PROT_NONE: /proc/PID/mem tells which. */
			int r = pid_read_file(pm, addr, buf, len);
			return r == -EIO ? -EFAULT : r;
		}
	}
	return pid_read_file(pm, addr, buf, len);
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
	pm->pid = pid;
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
	bm->nseg = nseg;
	memcpy(bm->seg, segs, nseg * sizeof(segs[0]));
	*mem = &bm->mem;
	return 0;
}

/* ---- block cache ----------------------------------------------------- */

#define CACHE_BLOCK  (64 * 1024)
#define CACHE_SLOTS  1024        /* at most 64 MiB cached */

struct cache_slot {
	uint64_t base;           /* block address, or UINT64_MAX */
	int status;              /* 0 ok, or -errno for a block that cannot be read whole */
	unsigned char *data;
};

struct cache_mem {
	struct hs_mem mem;
	struct hs_mem *under;
	struct cache_slot slot[CACHE_SLOTS];
};

static struct cache_slot *cache_get(struct cache_mem *cm, uint64_t base)
{
	struct cache_slot *s = &cm->slot[(base / CACHE_BLOCK) % CACHE_SLOTS];
	if (s->base == base)
		return s;
	if (!s->data && !(s->data = malloc(CACHE_BLOCK)))
		return NULL;
	s->base = base;
	s->status = cm->under->read(cm->under, base, s->data, CACHE_BLOCK);
	return s;
}

static int cache_read(struct hs_mem *mem, uint64_t addr, void *buf, size_t len)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	if (addr + len < addr)
		return -EFAULT;
	/* Large reads go straight through: they are already one call. */
	if (len >= CACHE_BLOCK)
		return cm->under->read(cm->under, addr, buf, len);
	size_t done = 0;
	while (done < len) {
		uint64_t a = addr + done, base = a & ~(uint64_t)(CACHE_BLOCK - 1);
		size_t off = a - base, n = CACHE_BLOCK - off;
		if (n > len - done)
			n = len - done;
		struct cache_slot *s = cache_get(cm, base);
		if (!s)
			return -ENOMEM;
		if (s->status == -ESRCH)
			return -ESRCH;
		if (s->status < 0) {
			/* The block straddles a mapping edge: read the exact bytes. */
			int r = cm->under->read(cm->under, a, (char *)buf + done, n);
			if (r < 0)
				return r;
		} else {
			memcpy((char *)buf + done, s->data + off, n);
		}
		done += n;
	}
	return 0;
}

static void cache_close(struct hs_mem *mem)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		free(cm->slot[i].data);
	hs_mem_close(cm->under);
	free(cm);
}

void hs_mem_cache_drop(struct hs_mem *mem)
{
	struct cache_mem *cm = (struct cache_mem *)mem;
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		cm->slot[i].base = UINT64_MAX;
}

int hs_mem_open_cache(struct hs_mem *under, struct hs_mem **mem)
{
	struct cache_mem *cm = calloc(1, sizeof(*cm));
	if (!cm)
		return -ENOMEM;
	cm->mem.read = cache_read;
	cm->mem.close = cache_close;
	cm->under = under;
	hs_mem_cache_drop(&cm->mem);
	*mem = &cm->mem;
	return 0;
}

void hs_mem_close(struct hs_mem *mem)
{
	if (mem)
		mem->close(mem);
}
