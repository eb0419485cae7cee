/* heapscope top's first pass, from smaps alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "maps.h"
#include "proc.h"
#include "snapshot.h"
#include "top.h"
#include "verdict.h"

/* glibc's HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX; a thread
 * arena's heap is mmapped at this alignment, read-write in front and
 * PROT_NONE behind. */
#define ARENA_HEAP (64ull << 20)

/* 0 and *e filled; -ENOENT when pid is gone, a kernel thread (no
 * mappings) or has no glibc. */
static int scan_one(pid_t pid, struct hs_top_entry *e)
{
	struct hs_maps m;
	memset(e, 0, sizeof(*e));
	if (hs_maps_read(pid, true, &m, NULL) < 0)
		return -ENOENT;
	bool libc = false;
	for (size_t i = 0; i < m.n; i++) {
		const struct hs_mapping *v = &m.v[i];
		e->rss += v->rss;
		if (v->path[0] && hs_path_is_libc(hs_path_basename(v->path)))
			libc = true;
		if (!strcmp(v->path, "[heap]")) {
			e->heap_rss += v->rss;
			continue;
		}
		/* A thread arena's heap: anonymous, read-write, starting on a
		 * 64 MiB boundary, within 64 MiB, its reserve (---p) behind it
		 * or the whole 64 MiB writable. */
		if (!hs_mapping_anon(v) || strcmp(v->perms, "rw-p") || v->start % ARENA_HEAP ||
		    v->end - v->start > ARENA_HEAP)
			continue;
		bool whole = v->end - v->start == ARENA_HEAP;
		bool reserve = i + 1 < m.n && m.v[i + 1].start == v->end && hs_mapping_anon(&m.v[i + 1]) &&
			       !strcmp(m.v[i + 1].perms, "---p") && m.v[i + 1].end <= v->start + ARENA_HEAP;
		if (whole || reserve) {
			e->arena_heaps++;
			e->heap_rss += v->rss;
		}
	}
	bool empty = m.n == 0;
	hs_maps_release(&m);
	if (!libc || empty)
		return -ENOENT;
	e->pid = pid;
	hs_proc_comm(pid, pid, e->comm, sizeof(e->comm));
	return 0;
}

static int by_heap_rss(const void *a, const void *b)
{
	const struct hs_top_entry *x = a, *y = b;
	if (x->heap_rss != y->heap_rss)
		return x->heap_rss < y->heap_rss ? 1 : -1;
	return x->pid - y->pid;
}

int hs_top_scan(const pid_t *pids, size_t npids, struct hs_top_entry **out, size_t *n, struct hs_err *err)
{
	pid_t *all = NULL;
	size_t nall = 0, cap = 0;
	if (!pids) {
		DIR *d = opendir("/proc");
		if (!d)
			return hs_err_sys(err, errno, "open /proc");
		struct dirent *de;
		while ((de = readdir(d))) {
			char *end;
			long p = strtol(de->d_name, &end, 10);
			if (*end || p <= 0)
				continue;
			if (nall == cap) {
				cap = cap ? 2 * cap : 256;
				pid_t *t = realloc(all, cap * sizeof(*all));
				if (!t) {
					closedir(d);
					free(all);
					return hs_err_sys(err, ENOMEM, "list /proc");
				}
				all = t;
			}
			all[nall++] = (pid_t)p;
		}
		closedir(d);
		pids = all;
		npids = nall;
	}
	struct hs_top_entry *v = calloc(npids ? npids : 1, sizeof(*v));
	if (!v) {
		free(all);
		return hs_err_sys(err, ENOMEM, "scan processes");
	}
	size_t k = 0;
	pid_t self = getpid();
	for (size_t i = 0; i < npids; i++)
		if (pids[i] != self && scan_one(pids[i], &v[k]) == 0)
			k++;
	free(all);
	qsort(v, k, sizeof(*v), by_heap_rss);
	*out = v;
	*n = k;
	return 0;
}

static int add_procs(const char *dir, pid_t **pids, size_t *n, size_t *cap, int depth)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	long p;
	while (fscanf(f, "%ld", &p) == 1) {
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			pid_t *t = realloc(*pids, *cap * sizeof(**pids));
			if (!t) {
				fclose(f);
				return -ENOMEM;
			}
			*pids = t;
		}
		(*pids)[(*n)++] = (pid_t)p;
	}
	fclose(f);
	if (depth > 32)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			add_procs(path, pids, n, cap, depth + 1);
		}
	closedir(d);
	return 0;
}

int hs_top_cgroup_pids(const char *path, pid_t **pids, size_t *n, struct hs_err *err)
{
	char dir[4096];
	if (path[0] == '/' && strncmp(path, "/sys/fs/cgroup", 14) && access(path, F_OK) != 0)
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup%s", path);
	else if (path[0] == '/')
		snprintf(dir, sizeof(dir), "%s", path);
	else
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s", path);
	size_t cap = 0;
	*pids = NULL;
	*n = 0;
	int r = add_procs(dir, pids, n, &cap, 0);
	if (r < 0) {
		free(*pids);
		*pids = NULL;
		return hs_err_sys(err, -r, "read %s/cgroup.procs", dir);
	}
	return 0;
}

int hs_top_parse_pids(const char *s, pid_t **pids, size_t *n)
{
	size_t cap = 1;
	for (const char *p = s; *p; p++)
		cap += *p == ',';
	*pids = calloc(cap, sizeof(**pids));
	*n = 0;
	if (!*pids)
		return -ENOMEM;
	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0 || (*end && *end != ','))
			return -EINVAL;
		(*pids)[(*n)++] = (pid_t)v;
		s = *end ? end + 1 : end;
	}
	return *n ? 0 : -EINVAL;
}

void hs_top_exact(struct hs_top_entry *e, const struct hs_snapshot_opts *o, uint64_t *pause_us)
{
	struct hs_snapshot s;
	struct hs_err err = { 0 };
	int r = hs_snapshot_take(e->pid, o, &s, &err);
	if (r < 0) {
		e->exact_error = r;
		snprintf(e->exact_msg, sizeof(e->exact_msg), "%s", err.msg[0] ? err.msg : strerror(-r));
		hs_snapshot_release(&s);
		return;
	}
	struct hs_procenv env;
	struct hs_verdict v;
	hs_procenv_read(e->pid, NULL, false, &env, NULL);
	hs_verdict_build(e->pid, &s.heap, &env, &v);
	e->exact = true;
	e->narenas = s.heap.narenas;
	e->resident = v.resident;
	e->in_use = v.in_use;
	e->free_total = v.free_total;
	e->free_resident = v.free_resident;
	e->trimmable = v.trimmable;
	*pause_us += s.pause_us;
	hs_snapshot_release(&s);
}

static int rank(const void *a, const void *b)
{
	const struct hs_top_entry *x = a, *y = b;
	if (x->exact != y->exact)
		return x->exact ? -1 : 1;
	uint64_t kx = x->exact ? x->free_resident : x->heap_rss, ky = y->exact ? y->free_resident : y->heap_rss;
	if (kx != ky)
		return kx < ky ? 1 : -1;
	return x->pid - y->pid;
}

void hs_top_sort(struct hs_top_entry *v, size_t n)
{
	qsort(v, n, sizeof(*v), rank);
}

static uint64_t now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

int hs_top_round(const pid_t *pids, size_t npids, size_t nexact, const struct hs_snapshot_opts *o,
		 const volatile sig_atomic_t *stop, struct hs_top_round *r, struct hs_err *err)
{
	memset(r, 0, sizeof(*r));
	uint64_t t0 = now_us();
	int rc = hs_top_scan(pids, npids, &r->v, &r->n, err);
	r->scan_us = now_us() - t0;
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < r->n && i < nexact && !*stop; i++) {
		hs_top_exact(&r->v[i], o, &r->pause_us);
		r->exact += r->v[i].exact;
		r->exact_failed |= r->v[i].exact_error != 0;
	}
	hs_top_sort(r->v, r->n);
	return 0;
}
