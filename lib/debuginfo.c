#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "debuginfo.h"
#include "elfobj.h"
#include "proc.h"
#if HS_HAVE_DEBUGINFOD
#include <dlfcn.h>
#include <elfutils/debuginfod.h>
#include <pthread.h>

/* libdebuginfod is not linked: it pulls in some 30 libraries (libcurl,
 * gnutls, krb5...) that every command would load at start-up.  It is
 * loaded the first time debuginfod is actually asked. */
struct debuginfod_api {
	debuginfod_client *(*begin)(void);
	int (*find_debuginfo)(debuginfod_client *, const unsigned char *, int, char **);
	void (*end)(debuginfod_client *);
};
static struct debuginfod_api dfd_api;
static bool dfd_loaded;
static pthread_once_t dfd_once = PTHREAD_ONCE_INIT;

static void dfd_load(void)
{
	void *h = dlopen(HS_DEBUGINFOD_SONAME, RTLD_LAZY | RTLD_LOCAL);
	if (!h)
		return;
	*(void **)&dfd_api.begin = dlsym(h, "debuginfod_begin");
	*(void **)&dfd_api.find_debuginfo = dlsym(h, "debuginfod_find_debuginfo");
	*(void **)&dfd_api.end = dlsym(h, "debuginfod_end");
	dfd_loaded = dfd_api.begin && dfd_api.find_debuginfo && dfd_api.end;
}

static const struct debuginfod_api *debuginfod_load(void)
{
	pthread_once(&dfd_once, dfd_load);
	return dfd_loaded ? &dfd_api : NULL;
}
#endif

int hs_debuginfo_check(const char *path, const char *build_id)
{
	int fd = hs_proc_open_file(path);
	if (fd < 0)
		return -ENOENT;
	Elf *elf = hs_elf_begin(fd, NULL);
	int r = -ENOENT;
	if (elf) {
		char id[81];
		hs_elf_build_id(elf, id, sizeof(id));
		if (!build_id || !build_id[0] || !strcmp(id, build_id))
			r = 0;
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return r;
}

/* The file's identity, opened as every file of the target is. */
static bool file_id(const char *path, struct stat *st)
{
	int fd = hs_proc_open_file(path);
	bool ok = fd >= 0 && fstat(fd, st) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* The object's own file under another name (a debuglink naming itself). */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	if (!b || !b[0])
		return false;
	if (!strcmp(a, b))
		return true;
	return file_id(a, &sa) && file_id(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int found(const char *cand, char *path, size_t pathsz, const char **from, const char *how)
{
	snprintf(path, pathsz, "%s", cand);
	*from = how;
	return 0;
}

int hs_debuginfo_find(const struct hs_debuginfo_query *q, char *path, size_t pathsz, const char **from)
{
	char cand[PATH_MAX + 64];
	const char *id = q->build_id ? q->build_id : "";
	const char *roots[2] = { "", NULL };
	char rootbuf[64];
	int nroots = 1;
	if (q->pid > 0) {
		snprintf(rootbuf, sizeof(rootbuf), "/proc/%d/root", (int)q->pid);
		roots[nroots++] = rootbuf;
	}
	if ((q->sources & HS_DEBUG_LOCAL) && id[0]) {
		/* HEAPSCOPE_DEBUG_DIRS: more directories holding .build-id/
		 * trees (colon-separated), searched first, as elfutils'
		 * --debuginfo-path. */
		const char *extra = getenv("HEAPSCOPE_DEBUG_DIRS");
		while (extra && *extra) {
			size_t n = strcspn(extra, ":");
			snprintf(cand, sizeof(cand), "%.*s/.build-id/%.2s/%s.debug", (int)n, extra, id, id + 2);
			if (n && hs_debuginfo_check(cand, id) == 0)
				return found(cand, path, pathsz, from, "build-id");
			extra += n + (extra[n] == ':');
		}
		for (int r = 0; r < nroots; r++) {
			snprintf(cand, sizeof(cand), "%s/usr/lib/debug/.build-id/%.2s/%s.debug", roots[r], id, id + 2);
			if (hs_debuginfo_check(cand, id) == 0)
				return found(cand, path, pathsz, from, "build-id");
		}
	}
	if ((q->sources & HS_DEBUG_LOCAL) && q->debuglink && q->debuglink[0] && q->map_path && q->map_path[0] == '/') {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", q->map_path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		/* dir/NAME, dir/.debug/NAME, /usr/lib/debug/dir/NAME */
		const char *mid[] = { "", "/.debug", NULL };
		for (int r = 0; r < nroots; r++)
			for (int k = 0; k < 3; k++) {
				if (mid[k])
					snprintf(cand, sizeof(cand), "%s%s%s/%s", roots[r], dir, mid[k], q->debuglink);
				else
					snprintf(cand, sizeof(cand), "%s/usr/lib/debug%s/%s", roots[r], dir, q->debuglink);
				if (hs_debuginfo_check(cand, id) == 0 && !same_file(cand, q->file))
					return found(cand, path, pathsz, from, "debuglink");
			}
	}
#if HS_HAVE_DEBUGINFOD
	/* Last, debuginfod (DEBUGINFOD_URLS), unless told not to.  It may
	 * download: only when the local places have nothing. */
	const char *urls = getenv("DEBUGINFOD_URLS");
	if ((q->sources & HS_DEBUG_DEBUGINFOD) && id[0] && urls && *urls) {
		unsigned char bin[40];
		size_t n = 0;
		for (const char *p = id; p[0] && p[1] && n < sizeof(bin); p += 2) {
			unsigned v;
			if (sscanf(p, "%2x", &v) != 1)
				break;
			bin[n++] = (unsigned char)v;
		}
		const struct debuginfod_api *api = debuginfod_load();
		debuginfod_client *c = api ? api->begin() : NULL;
		char *dpath = NULL;
		int fd = c ? api->find_debuginfo(c, bin, (int)n, &dpath) : -1;
		int r = -ENOENT;
		if (fd >= 0) {
			close(fd);
			if (hs_debuginfo_check(dpath, id) == 0)
				r = found(dpath, path, pathsz, from, "debuginfod");
		}
		free(dpath);
		if (c)
			api->end(c);
		if (r == 0)
			return 0;
	}
#endif
	return -ENOENT;
}
