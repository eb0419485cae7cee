/* The metrics file: one family per figure, HELP and TYPE first, a series
 * per process (pid, comm) and per arena (pid, comm, arena, kind). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heap.h"
#include "openmetrics.h"
#include "proc.h"
#include "verdict.h"

/* A label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f), fputc(*s, f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static const struct {
	const char *name, *help;
	size_t off;
} figs[] = {
	{ "resident_bytes", "bytes of the glibc malloc arenas resident in memory", offsetof(struct hs_om_figures, resident) },
	{ "in_use_bytes", "bytes of the arenas in chunks the program holds", offsetof(struct hs_om_figures, in_use) },
	{ "free_bytes", "bytes free inside malloc (bins, fastbins, tcache, top)", offsetof(struct hs_om_figures, free) },
	{ "trimmable_bytes", "bytes malloc_trim(0) would return to the system now", offsetof(struct hs_om_figures, trimmable) },
	{ "system_bytes", "bytes the arenas got from the system (system_mem)", offsetof(struct hs_om_figures, system) },
};

static uint64_t fig(const struct hs_om_figures *f, size_t off)
{
	return *(const uint64_t *)((const char *)f + off);
}

static void series(FILE *f, const char *name, const struct hs_om_process *p, const struct hs_om_arena *a, uint64_t v)
{
	fprintf(f, "%s{pid=\"%d\",comm=\"", name, (int)p->pid);
	label(f, p->comm ? p->comm : "");
	fputc('"', f);
	if (a)
		fprintf(f, ",arena=\"%d\",kind=\"%s\"", a->index, a->main ? "main" : "thread");
	fprintf(f, "} %" PRIu64 "\n", v);
}

int hs_openmetrics_write(const char *path, const struct hs_om_process *p, size_t n, struct hs_err *err)
{
	size_t len = strlen(path);
	char *tmp = malloc(len + 16);
	if (!tmp)
		return hs_err_sys(err, ENOMEM, "write %s", path);
	snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		int e = errno;
		free(tmp);
		return hs_err_sys(err, e, "create a temporary file next to %s", path);
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int e = errno;
		close(fd);
		unlink(tmp);
		free(tmp);
		return hs_err_sys(err, e, "write %s", path);
	}
	fputs("# HELP heapscope_malloc_arenas glibc malloc arenas of the process\n"
	      "# TYPE heapscope_malloc_arenas gauge\n", f);
	for (size_t i = 0; i < n; i++)
		series(f, "heapscope_malloc_arenas", &p[i], NULL, p[i].narenas);
	for (size_t k = 0; k < sizeof(figs) / sizeof(figs[0]); k++) {
		char name[96];
		snprintf(name, sizeof(name), "heapscope_malloc_%s", figs[k].name);
		fprintf(f, "# HELP %s %s, per process\n# TYPE %s gauge\n", name, figs[k].help, name);
		for (size_t i = 0; i < n; i++)
			series(f, name, &p[i], NULL, fig(&p[i].f, figs[k].off));
		snprintf(name, sizeof(name), "heapscope_malloc_arena_%s", figs[k].name);
		fprintf(f, "# HELP %s %s, per arena\n# TYPE %s gauge\n", name, figs[k].help, name);
		for (size_t i = 0; i < n; i++)
			for (size_t a = 0; p[i].arenas && a < p[i].narenas; a++)
				series(f, name, &p[i], &p[i].arenas[a], fig(&p[i].arenas[a].f, figs[k].off));
	}
	int r = 0;
	if (fflush(f) != 0 || ferror(f) || fchmod(fd, 0644) < 0 || fsync(fd) < 0)
		r = -errno;
	if (fclose(f) != 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r) {
		unlink(tmp);
		hs_err_sys(err, -r, "write %s", path);
	}
	free(tmp);
	return r;
}

static void om_figures(const struct hs_arena *a, struct hs_om_figures *f)
{
	f->resident = a->resident;
	f->free = hs_arena_free(a);
	f->in_use = hs_arena_in_use(a);
	f->trimmable = a->trimmable;
	f->system = a->system_mem;
}

int hs_om_process_of(pid_t pid, const struct hs_heap *h, char *comm_buf, size_t n, struct hs_om_process *p)
{
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	hs_proc_comm(pid, pid, comm_buf, n);
	p->comm = comm_buf;
	p->narenas = h->narenas;
	struct hs_om_arena *v = calloc(h->narenas ? h->narenas : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_arena *a = &h->arenas[i];
		v[i].index = a->index;
		v[i].main = a->main;
		om_figures(a, &v[i].f);
		p->f.resident += v[i].f.resident;
		p->f.free += v[i].f.free;
		p->f.in_use += v[i].f.in_use;
		p->f.trimmable += v[i].f.trimmable;
		p->f.system += v[i].f.system;
	}
	p->arenas = v;
	return 0;
}
