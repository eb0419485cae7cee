/* The verdict on a process's arenas: causes and remedies, in words, from
 * the figures of a walk and facts read from /proc without a stop. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "proc.h"
#include "verdict.h"

#define MiB (1ull << 20)

/* "0-3,8,10-11" -> 7 */
static long count_cpu_list(const char *s)
{
	long n = 0;
	while (*s && *s != '\n') {
		char *end;
		long a = strtol(s, &end, 10), b = a;
		if (end == s)
			break;
		s = end;
		if (*s == '-') {
			b = strtol(s + 1, &end, 10);
			s = end;
		}
		if (b >= a)
			n += b - a + 1;
		if (*s == ',')
			s++;
	}
	return n;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (end == s || errno)
		return false;
	*v = x;
	return true;
}

static void parse_tunables(struct hs_procenv *e)
{
	char buf[sizeof(e->tunables)];
	snprintf(buf, sizeof(buf), "%s", e->tunables);
	char *save = NULL;
	for (char *t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		if (!strncmp(t, "glibc.malloc.arena_max=", 23))
			e->has_arena_max_tunable = parse_u64(t + 23, &e->arena_max_tunable);
		else if (!strncmp(t, "glibc.malloc.trim_threshold=", 28))
			e->has_trim_threshold_tunable = parse_u64(t + 28, &e->trim_threshold_tunable);
	}
}

/* Run argv with stdout and stderr into out (NUL-terminated, cut to n),
 * for at most timeout_ms; returns the exit status, or -errno. */
static int run_capture(char *const argv[], char *out, size_t n, int timeout_ms)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t c = fork();
	if (c < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (c == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	size_t len = 0;
	bool timed_out = false;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long left = timeout_ms - ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			timed_out = true;
			break;
		}
		char tmp[4096];
		ssize_t k = read(p[0], tmp, sizeof(tmp));
		if (k <= 0)
			break;
		if (n && len < n - 1) {
			size_t take = (size_t)k < n - 1 - len ? (size_t)k : n - 1 - len;
			memcpy(out + len, tmp, take);
			len += take;
		}
	}
	close(p[0]);
	if (n)
		out[len] = '\0';
	/* The end of its output comes a moment before its exit status. */
	int st = 0;
	if (timed_out)
		kill(c, SIGKILL);
	while (waitpid(c, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (timed_out)
		return -ETIMEDOUT;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -EINTR;
}

static bool is_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The JDK around libjvm.so: its home is where "release" lies, two or three
 * levels up (lib/server/libjvm.so, or jre/lib/amd64/server/libjvm.so). */
static void probe_jvm(pid_t pid, const char *libjvm, struct hs_procenv *e)
{
	char root[64];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	char same[PATH_MAX] = "";
	/* Run the JDK's tools by the host's path only when the target's root
	 * is ours; else through /proc/PID/root. */
	ssize_t k = readlink(root, same, sizeof(same) - 1);
	const char *pre = (k == 1 && same[0] == '/') ? "" : root;
	char home[PATH_MAX];
	snprintf(home, sizeof(home), "%s", libjvm);
	e->jcmd_trim = e->trim_interval_flag = -1;
	for (int up = 0; up < 5; up++) {
		char *s = strrchr(home, '/');
		if (!s || s == home)
			return;
		*s = '\0';
		if (up < 2)
			continue;
		char rel[PATH_MAX + 80];
		snprintf(rel, sizeof(rel), "%s%s/release", pre, home);
		if (is_file(rel)) {
			char *text = NULL;
			size_t len;
			if (hs_proc_slurp(rel, &text, &len) == 0) {
				char *v = strstr(text, "JAVA_VERSION=\"");
				if (v) {
					v += 14;
					size_t m = strcspn(v, "\"\n");
					snprintf(e->java_version, sizeof(e->java_version), "%.*s", (int)m, v);
				}
				free(text);
			}
			break;
		}
		/* jre/ of a JDK 8: its bin/java is here too */
		char jv[PATH_MAX + 80];
		snprintf(jv, sizeof(jv), "%s%s/bin/java", pre, home);
		if (up >= 3 && is_file(jv))
			break;
	}
	snprintf(e->java_home, sizeof(e->java_home), "%s", home);
	static char out[1 << 16];
	char java[PATH_MAX + 80], pidstr[16];
	snprintf(e->jcmd, sizeof(e->jcmd), "%s%s/bin/jcmd", pre, home);
	snprintf(java, sizeof(java), "%s%s/bin/java", pre, home);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	if (is_file(e->jcmd)) {
		char *av[] = { e->jcmd, pidstr, "help", NULL };
		if (run_capture(av, out, sizeof(out), 15000) == 0)
			e->jcmd_trim = strstr(out, "System.trim_native_heap") != NULL;
	} else {
		e->jcmd[0] = '\0';
	}
	if (is_file(java)) {
		char *av[] = { java, "-XX:+UnlockExperimentalVMOptions", "-XX:+PrintFlagsFinal", "-version", NULL };
		if (run_capture(av, out, sizeof(out), 20000) == 0)
		{
			char *f = strstr(out, " TrimNativeHeapInterval ");
			e->trim_interval_flag = f != NULL;
			if (f) {
				size_t m = strcspn(f, "\n");
				e->trim_interval_experimental = memmem(f, m, "{experimental}", 14) != NULL;
			}
		}
	}
}

int hs_procenv_read(pid_t pid, const struct hs_maps *maps, bool want_jvm, struct hs_procenv *e, struct hs_err *err)
{
	memset(e, 0, sizeof(*e));
	e->jcmd_trim = e->trim_interval_flag = -1;
	e->ncpus_online = sysconf(_SC_NPROCESSORS_ONLN);
	if (e->ncpus_online < 1)
		e->ncpus_online = 1;
	e->ncpus = e->ncpus_online;
	char path[64], *text = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int r = hs_proc_slurp(path, &text, &len);
	if (r < 0)
		return hs_err_sys(err, -r, "read %s", path);
	char *c = strstr(text, "\nCpus_allowed_list:");
	if (c) {
		long n = count_cpu_list(c + 19 + strspn(c + 19, " \t"));
		if (n > 0 && n < e->ncpus)
			e->ncpus = n;
	}
	free(text);
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	if (hs_proc_slurp(path, &text, &len) == 0) {
		for (size_t i = 0; i < len; i += strlen(text + i) + 1) {
			const char *v = text + i;
			if (!strncmp(v, "MALLOC_ARENA_MAX=", 17))
				e->has_arena_max_env = parse_u64(v + 17, &e->arena_max_env);
			else if (!strncmp(v, "GLIBC_TUNABLES=", 15))
				snprintf(e->tunables, sizeof(e->tunables), "%s", v + 15);
		}
		free(text);
		parse_tunables(e);
	}
	if (maps)
		for (size_t i = 0; i < maps->n; i++) {
			const char *p = maps->v[i].path;
			size_t l = strlen(p);
			if (l >= 10 && !strcmp(p + l - 10, "/libjvm.so")) {
				e->jvm = true;
				if (want_jvm)
					probe_jvm(pid, p, e);
				break;
			}
		}
	return 0;
}

static struct hs_verdict_line *add_line(struct hs_verdict_line *v, size_t *n, const char *id, uint64_t bytes,
					const char *command, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static struct hs_verdict_line *add_line(struct hs_verdict_line *v, size_t *n, const char *id, uint64_t bytes,
					const char *command, const char *fmt, ...)
{
	if (*n >= HS_VERDICT_MAX)
		return NULL;
	struct hs_verdict_line *l = &v[(*n)++];
	memset(l, 0, sizeof(*l));
	snprintf(l->id, sizeof(l->id), "%s", id);
	snprintf(l->command, sizeof(l->command), "%s", command ? command : "");
	l->bytes = bytes;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
	return l;
}

uint64_t hs_arena_free(const struct hs_arena *a)
{
	return a->bin_bytes + a->fast_bytes + a->tcache_bytes + a->top_size;
}

uint64_t hs_arena_in_use(const struct hs_arena *a)
{
	uint64_t f = hs_arena_free(a);
	return a->system_mem > f ? a->system_mem - f : 0;
}

void hs_arena_figures(const struct hs_arena *a, struct hs_arena_figures *f)
{
	memset(f, 0, sizeof(*f));
	for (size_t k = 0; k < a->nheaps; k++) {
		f->reserved += a->heaps[k].reserved;
		f->committed += a->heaps[k].mprotect_size;
	}
	f->nheaps = a->nheaps;
	f->system = a->system_mem;
	f->resident = a->resident;
	f->in_use = hs_arena_in_use(a);
	f->free = hs_arena_free(a);
	f->trimmable = a->trimmable;
	f->bins = a->bin_bytes;
	f->fast = a->fast_bytes;
	f->tcache = a->tcache_bytes;
	f->top = a->top_size;
	f->bin_chunks = a->bin_count;
}

void hs_heap_figures(const struct hs_heap *h, struct hs_arena_figures *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < h->narenas; i++) {
		struct hs_arena_figures f;
		hs_arena_figures(&h->arenas[i], &f);
		uint64_t *d = (uint64_t *)t;
		const uint64_t *s = (const uint64_t *)&f;
		for (size_t k = 0; k < sizeof(f) / sizeof(uint64_t); k++)
			d[k] += s[k];
	}
}

void hs_heap_summary(const struct hs_heap *h, const struct hs_arena_figures *t, char *buf, size_t sz)
{
	size_t nthread = h->narenas ? h->narenas - 1 : 0;
	char a[HS_SIZE_BUF], b[HS_SIZE_BUF], c[HS_SIZE_BUF], d[HS_SIZE_BUF], hm[HS_SIZE_BUF];
	snprintf(buf, sz, "%zu arena%s (%zu thread arena%s with %s heaps): %s reserved, %s resident, "
		 "%s free inside malloc, ~%s trimmable", h->narenas, h->narenas == 1 ? "" : "s", nthread,
		 nthread == 1 ? "" : "s", hs_fmt_size(h->heap_max, hm), hs_fmt_size(t->reserved, a),
		 hs_fmt_size(t->resident, b), hs_fmt_size(t->free, c), hs_fmt_size(t->trimmable, d));
}

void hs_heap_summary_write(FILE *fp, pid_t pid, const char *glibc_version, const struct hs_heap *h)
{
	struct hs_mallinfo2 mi;
	struct hs_arena_figures t;
	hs_heap_mallinfo2(h, &mi);
	hs_heap_figures(h, &t);
	char f[8][HS_SIZE_BUF];
	fprintf(fp, "pid %d, glibc %s: %zu arena%s\n", (int)pid, glibc_version, h->narenas, h->narenas == 1 ? "" : "s");
	fprintf(fp, "  from the system  %8s in arenas, %s in %" PRIu64 " mmapped chunks\n", hs_fmt_size(mi.arena, f[0]),
		hs_fmt_size(mi.hblkhd, f[1]), mi.hblks);
	fprintf(fp, "  in use           %8s (tcache counts as in use, as glibc counts it)\n",
		hs_fmt_size(mi.uordblks, f[2]));
	fprintf(fp, "  free             %8s: %s in %" PRIu64 " fastbin chunks, %s in %" PRIu64
		" bin chunks, %s in top chunks\n", hs_fmt_size(mi.fordblks, f[3]), hs_fmt_size(mi.fsmblks, f[4]),
		mi.smblks, hs_fmt_size(t.bins, f[5]), t.bin_chunks, hs_fmt_size(t.top, f[6]));
	fprintf(fp, "  main arena top   %8s (keepcost)\n", hs_fmt_size(mi.keepcost, f[7]));
}

static int by_in_use_desc(const void *x, const void *y)
{
	uint64_t a = hs_arena_in_use(*(const struct hs_arena *const *)x);
	uint64_t b = hs_arena_in_use(*(const struct hs_arena *const *)y);
	return a < b ? 1 : a > b ? -1 : 0;
}

static unsigned pct(uint64_t a, uint64_t b)
{
	return b ? (unsigned)((a * 100 + b / 2) / b) : 0;
}

/* glibc's cap on the arena count and where it comes from. */
static void verdict_cap(const struct hs_heap *h, const struct hs_procenv *e, struct hs_verdict *v)
{
	/* glibc's cap (arena.c arena_get2): mp_.arena_max when set (from
	 * MALLOC_ARENA_MAX, the tunable or mallopt), else 8 per CPU glibc
	 * counted at its first arena overflow. */
	if (h->arena_max) {
		v->arena_max_set = true;
		v->arena_cap = h->arena_max;
		if (e->has_arena_max_env)
			snprintf(v->cap_source, sizeof(v->cap_source), "MALLOC_ARENA_MAX=%" PRIu64, e->arena_max_env);
		else if (e->has_arena_max_tunable)
			snprintf(v->cap_source, sizeof(v->cap_source), "glibc.malloc.arena_max=%" PRIu64,
				 e->arena_max_tunable);
		else
			snprintf(v->cap_source, sizeof(v->cap_source), "mallopt(M_ARENA_MAX, %" PRIu64 ")", h->arena_max);
	} else {
		v->arena_cap = 8 * (uint64_t)e->ncpus_online;
		snprintf(v->cap_source, sizeof(v->cap_source), "8 x %ld CPUs", e->ncpus_online);
	}
}

/* The figures summed over the arenas, and whether the heap is wasteful. */
static void verdict_figures(const struct hs_heap *h, struct hs_verdict *v)
{
	for (size_t i = 0; i < h->narenas; i++) {
		const struct hs_arena *a = &h->arenas[i];
		v->resident += a->resident;
		v->in_use += hs_arena_in_use(a);
		v->free_total += hs_arena_free(a);
		v->trimmable += a->trimmable;
		v->tcache += a->tcache_bytes;
		v->top += a->top_size;
		v->free_chunks += a->bin_count + a->fast_count + a->tcache_count;
		uint64_t in_use = hs_arena_in_use(a);
		/* Resident pages of in-use chunks are at most in_use bytes: the
		 * rest of what is resident is free. */
		if (a->resident > in_use)
			v->free_resident += a->resident - in_use < hs_arena_free(a) ? a->resident - in_use : hs_arena_free(a);
		v->threads_with_arena += a->nthreads;
		if (a->nthreads)
			v->arenas_with_threads++;
		if (a->nthreads > v->max_threads_per_arena)
			v->max_threads_per_arena = a->nthreads;
		uint64_t below = a->bin_bytes + a->fast_bytes;
		if (below >= MiB && a->top_size < (h->trim_threshold ? h->trim_threshold : 128 << 10)) {
			v->pinned_arenas++;
			v->pinned_free += below;
		}
	}
	v->wasteful = v->free_resident >= 8 * MiB && v->free_resident * 10 >= v->resident;
	v->fragmented = v->wasteful && v->trimmable * 2 < v->free_resident;
}

static void verdict_causes(const struct hs_heap *h, const struct hs_procenv *e, struct hs_verdict *v)
{
	char s1[HS_SIZE_BUF], s2[HS_SIZE_BUF], s3[HS_SIZE_BUF];
	if (!v->wasteful) {
		snprintf(v->headline, sizeof(v->headline),
			 "healthy: %s of %s resident in the arenas is free inside malloc (%u%%); nothing to do",
			 hs_fmt_size(v->free_resident, s1), hs_fmt_size(v->resident, s2), pct(v->free_resident, v->resident));
	} else {
		snprintf(v->headline, sizeof(v->headline),
			 "%s of the %s resident in %" PRIu64 " arena%s is free inside malloc (%u%%): memory held, not used",
			 hs_fmt_size(v->free_resident, s1), hs_fmt_size(v->resident, s2), v->narenas,
			 v->narenas == 1 ? "" : "s", pct(v->free_resident, v->resident));
	}
	add_line(v->causes, &v->ncauses, "free_resident", v->free_resident, NULL,
		 "at least %s resident but free inside malloc, %u%% of the %s resident in the arenas (%s in use)",
		 hs_fmt_size(v->free_resident, s1), pct(v->free_resident, v->resident), hs_fmt_size(v->resident, s2),
		 hs_fmt_size(v->in_use, s3));
	if (v->narenas >= v->arena_cap)
		add_line(v->causes, &v->ncauses, "arena_count", v->narenas, NULL,
			 "%" PRIu64 " arenas: at glibc's cap (%" PRIu64 ", %s); more threads now share arenas",
			 v->narenas, v->arena_cap, v->cap_source);
	else
		add_line(v->causes, &v->ncauses, "arena_count", v->narenas, NULL,
			 "%" PRIu64 " arenas for %" PRIu64 " thread%s that use malloc, %ld CPU%s; glibc's cap is %" PRIu64
			 " (%s), each thread arena reserves %s of address space",
			 v->narenas, v->threads_with_arena, v->threads_with_arena == 1 ? "" : "s", e->ncpus,
			 e->ncpus == 1 ? "" : "s", v->arena_cap, v->cap_source, hs_fmt_size(h->heap_max, s1));
	add_line(v->causes, &v->ncauses, "trimmable", v->trimmable, NULL,
		 "a trim would return %s of it now (whole free pages and the tops)", hs_fmt_size(v->trimmable, s1));
	if (v->pinned_arenas)
		add_line(v->causes, &v->ncauses, "top_pinned", v->pinned_free, NULL,
			 "in %" PRIu64 " arena%s the top chunk is small and a live block sits above %s of free chunks: "
			 "free() cannot shrink those heaps, only a trim can return their pages",
			 v->pinned_arenas, v->pinned_arenas == 1 ? "" : "s", hs_fmt_size(v->pinned_free, s1));
	if (v->tcache >= MiB || (v->free_total && v->tcache * 10 >= v->free_total && v->tcache >= 256 << 10))
		add_line(v->causes, &v->ncauses, "tcache", v->tcache, NULL,
			 "%s sits in the threads' tcaches (%u%% of the free memory), which a trim does not touch",
			 hs_fmt_size(v->tcache, s1), pct(v->tcache, v->free_total));
	if (v->wasteful)
		add_line(v->causes, &v->ncauses, v->fragmented ? "fragmented" : "idle", v->free_chunks, NULL,
			 v->fragmented ? "fragmented: %" PRIu64 " free chunks lie between live blocks; only %s of %s free "
					 "is in whole pages a trim can return"
				       : "idle: %" PRIu64 " free chunks, mostly in whole pages (%s of %s free can be returned)",
			 v->free_chunks, hs_fmt_size(v->trimmable, s1), hs_fmt_size(v->free_resident, s2));
}

/* MALLOC_ARENA_MAX, when it is not set and fewer arenas would do. */
static void remedy_arena_max(const struct hs_heap *h, const struct hs_procenv *e, struct hs_verdict *v)
{
	char s1[HS_SIZE_BUF], cmd[256];
	if (v->arena_max_set || e->has_arena_max_env || e->has_arena_max_tunable || v->narenas <= 2)
		return;
	/* Only ncpus threads run at once: ncpus arenas give as little
	 * lock contention, and the threads per arena say how far the
	 * count can come down; never below 2. */
	uint64_t n = (uint64_t)e->ncpus;
	if (v->arenas_with_threads && v->arenas_with_threads < n)
		n = v->arenas_with_threads;
	if (n < 2)
		n = 2;
	if (n >= v->narenas)
		return;
	v->suggest_arena_max = (unsigned)n;
	/* What the arenas past the n busiest hold free now. */
	const struct hs_arena **ord = malloc(h->narenas * sizeof(*ord));
	uint64_t stranded = 0;
	if (ord) {
		for (size_t i = 0; i < h->narenas; i++)
			ord[i] = &h->arenas[i];
		qsort(ord, h->narenas, sizeof(*ord), by_in_use_desc);
		for (size_t i = n; i < h->narenas; i++)
			stranded += hs_arena_free(ord[i]);
		free(ord);
	}
	snprintf(cmd, sizeof(cmd), "MALLOC_ARENA_MAX=%" PRIu64, n);
	add_line(v->remedies, &v->nremedies, "arena_max", stranded, cmd,
		 "lasting: restart with MALLOC_ARENA_MAX=%" PRIu64 " (or GLIBC_TUNABLES=glibc.malloc.arena_max=%" PRIu64
		 "): %" PRIu64 " arenas serve %" PRIu64 " threads (at most %" PRIu64 " per arena) on %ld CPU%s; "
		 "%" PRIu64 " arenas contend no more, and %s now free in the other %" PRIu64 " would be shared",
		 n, n, v->narenas, v->threads_with_arena, v->max_threads_per_arena, e->ncpus,
		 e->ncpus == 1 ? "" : "s", n, hs_fmt_size(stranded, s1), v->narenas - n);
}

/* Remedies, most effective first: what returns memory now, then what
 * keeps it from coming back, then what changes the allocator. */
static void verdict_remedies(pid_t pid, const struct hs_heap *h, const struct hs_procenv *e, struct hs_verdict *v)
{
	char s1[HS_SIZE_BUF], s2[HS_SIZE_BUF], cmd[256];
	bool java_trim = e->jvm && e->jcmd_trim == 1;
	if (v->trimmable >= MiB) {
		snprintf(cmd, sizeof(cmd), "heapscope trim %d", (int)pid);
		add_line(v->remedies, &v->nremedies, "trim_now", v->trimmable, cmd,
			 "now: `heapscope trim %d` returns %s to the system (malloc_trim(0) run safely inside the process)",
			 (int)pid, hs_fmt_size(v->trimmable, s1));
		if (java_trim) {
			snprintf(cmd, sizeof(cmd), "jcmd %d System.trim_native_heap", (int)pid);
			add_line(v->remedies, &v->nremedies, "jcmd_trim", v->trimmable, cmd,
				 "or the JDK's own (%s): `jcmd %d System.trim_native_heap`, the same malloc_trim",
				 e->java_version[0] ? e->java_version : "this JDK", (int)pid);
		}
	}
	if (e->jvm && e->trim_interval_flag == 1)
		add_line(v->remedies, &v->nremedies, "jvm_trim_interval", v->trimmable, "-XX:TrimNativeHeapInterval=60000",
			 "lasting, on this JDK (%s): start the JVM with %s-XX:TrimNativeHeapInterval=60000 (it then "
			 "trims its native heap every minute)",
			 e->java_version[0] ? e->java_version : "?",
			 e->trim_interval_experimental ? "-XX:+UnlockExperimentalVMOptions " : "");
	remedy_arena_max(h, e, v);
	if (!e->has_trim_threshold_tunable && h->trim_threshold > (128 << 10) && v->top > h->trim_threshold) {
		add_line(v->remedies, &v->nremedies, "trim_threshold", v->top, "GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072",
			 "lasting: glibc raised its trim threshold to %s with the mmap threshold, and %s lies in the tops; "
			 "GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072 keeps free() returning tops past 128K",
			 hs_fmt_size(h->trim_threshold, s1), hs_fmt_size(v->top, s2));
	}
	if (v->fragmented)
		add_line(v->remedies, &v->nremedies, "jemalloc", v->free_resident - v->trimmable, "LD_PRELOAD=libjemalloc.so.2",
			 "the allocator: the heap is fragmented, not idle (%s free between live blocks that no trim "
			 "returns); jemalloc (LD_PRELOAD=libjemalloc.so.2) returns free pages on its own and packs "
			 "small blocks by size", hs_fmt_size(v->free_resident - v->trimmable, s1));
}

void hs_verdict_build(pid_t pid, const struct hs_heap *h, const struct hs_procenv *e, struct hs_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->narenas = h->narenas;
	v->ncpus = e->ncpus;
	verdict_cap(h, e, v);
	verdict_figures(h, v);
	verdict_causes(h, e, v);
	if (v->wasteful)
		verdict_remedies(pid, h, e, v);
}
