#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "proc.h"

int hs_proc_slurp(const char *path, char **text, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += r;
	}
	close(fd);
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

bool hs_proc_alive(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) == 0;
}

int hs_proc_status_read(pid_t pid, struct hs_proc_status *st, struct hs_err *err)
{
	char path[64], *text;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int r = hs_proc_slurp(path, &text, &len);
	if (r == -ENOENT)
		return hs_err_set(err, ESRCH, "no process with pid %d", (int)pid);
	if (r < 0)
		return hs_err_sys(err, -r, "cannot read %s", path);
	memset(st, 0, sizeof(*st));
	for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
		if (!strncmp(l, "Name:\t", 6))
			snprintf(st->name, sizeof(st->name), "%s", l + 6);
		else if (!strncmp(l, "State:\t", 7))
			st->state = l[7];
		else if (!strncmp(l, "Tgid:\t", 6))
			st->tgid = atoi(l + 6);
		else if (!strncmp(l, "TracerPid:\t", 11))
			st->tracer = atoi(l + 11);
		else if (!strncmp(l, "Uid:\t", 5))
			st->uid = (uid_t)strtoul(l + 5, NULL, 10);
		else if (!strncmp(l, "Threads:\t", 9))
			st->threads = atoi(l + 9);
		else if (!strncmp(l, "SigBlk:\t", 8))
			st->sig_blk = strtoull(l + 8, NULL, 16);
		else if (!strncmp(l, "SigIgn:\t", 8))
			st->sig_ign = strtoull(l + 8, NULL, 16);
		else if (!strncmp(l, "SigCgt:\t", 8))
			st->sig_cgt = strtoull(l + 8, NULL, 16);
		else if (!strncmp(l, "Seccomp:\t", 9))
			st->seccomp = atoi(l + 9);
	}
	free(text);
	/* Kernel threads have PF_KTHREAD (0x00200000) in stat's flags field. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (hs_proc_slurp(path, &text, &len) == 0) {
		char *p = strrchr(text, ')');
		unsigned long flags = 0;
		/* fields after comm: state ppid pgrp session tty tpgid flags */
		if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1)
			st->kernel_thread = (flags & 0x00200000) != 0;
		free(text);
	}
	return 0;
}

/* The four ids of a "Uid:" or "Gid:" line of a status file. */
static bool status_ids(const char *path, const char *key, unsigned long ids[4])
{
	char *text;
	size_t len;
	if (hs_proc_slurp(path, &text, &len) < 0)
		return false;
	const char *l = strstr(text, key);
	bool ok = l && sscanf(l + strlen(key), "%lu %lu %lu %lu", &ids[0], &ids[1], &ids[2], &ids[3]) == 4;
	free(text);
	return ok;
}

static bool have_cap_sys_ptrace(void)
{
	char *text;
	size_t len;
	if (hs_proc_slurp("/proc/self/status", &text, &len) < 0)
		return false;
	const char *l = strstr(text, "\nCapEff:");
	unsigned long long caps = l ? strtoull(l + 9, NULL, 16) : 0;
	free(text);
	return (caps >> 19) & 1;     /* CAP_SYS_PTRACE */
}

static int yama_scope(void)
{
	char *text;
	size_t len;
	if (hs_proc_slurp("/proc/sys/kernel/yama/ptrace_scope", &text, &len) < 0)
		return -1;
	int v = atoi(text);
	free(text);
	return v;
}

void hs_proc_perm_hint(pid_t pid, char *buf, size_t len)
{
	int yama = yama_scope();
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (yama == 3) {
		snprintf(buf, len, "kernel.yama.ptrace_scope is 3: no process may be traced, not even with "
			 "CAP_SYS_PTRACE");
		return;
	}
	if (have_cap_sys_ptrace()) {
		/* Root's (or a capable process's) refusal is never about uids. */
		char y[64] = "";
		if (yama >= 0)
			snprintf(y, sizeof(y), " (kernel.yama.ptrace_scope is %d)", yama);
		snprintf(buf, len, "heapscope has CAP_SYS_PTRACE%s, so the refusal came from a security module "
			 "(AppArmor, SELinux), seccomp, or a user namespace pid %d is outside of", y, (int)pid);
		return;
	}
	unsigned long tu[4], tg[4];
	uid_t me = geteuid();
	gid_t mg = getegid();
	if (status_ids(path, "\nUid:", tu) && (tu[0] != me || tu[1] != me || tu[2] != me)) {
		snprintf(buf, len, "pid %d runs as uid %lu, heapscope as uid %lu: run heapscope as that user, or "
			 "with CAP_SYS_PTRACE", (int)pid, tu[1] != me ? tu[1] : tu[0] != me ? tu[0] : tu[2],
			 (unsigned long)me);
		return;
	}
	if (status_ids(path, "\nGid:", tg) && (tg[0] != mg || tg[1] != mg || tg[2] != mg)) {
		snprintf(buf, len, "pid %d runs as gid %lu, heapscope as gid %lu: run heapscope with its gid, or "
			 "with CAP_SYS_PTRACE", (int)pid, tg[1] != mg ? tg[1] : tg[0] != mg ? tg[0] : tg[2],
			 (unsigned long)mg);
		return;
	}
	if (yama == 1)
		snprintf(buf, len, "kernel.yama.ptrace_scope is 1: only an ancestor of pid %d may trace it; run "
			 "heapscope with CAP_SYS_PTRACE (as root)", (int)pid);
	else if (yama == 2)
		snprintf(buf, len, "kernel.yama.ptrace_scope is 2: only a process with CAP_SYS_PTRACE may trace");
	else
		snprintf(buf, len, "same uid and gid: pid %d is not dumpable (a setuid or setgid program, or "
			 "prctl PR_SET_DUMPABLE 0), or a security module refused; only CAP_SYS_PTRACE may trace it",
			 (int)pid);
}

static int exe_class(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)hs_proc_mm_pid(pid));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unsigned char id[EI_NIDENT + 12];
	ssize_t n = pread(fd, id, sizeof(id), 0);
	close(fd);
	if (n < (ssize_t)sizeof(id) || memcmp(id, ELFMAG, SELFMAG))
		return -ENOEXEC;
	uint16_t machine;
	memcpy(&machine, id + 18, 2);
	if (id[EI_CLASS] != ELFCLASS64 || machine != EM_X86_64)
		return -EPROTONOSUPPORT;
	return 0;
}

bool hs_proc_wait_untraced(pid_t tid, int ms)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct hs_proc_status st, ts;
		if (hs_proc_status_read(tid, &st, NULL) < 0 || !st.tracer || st.tracer == getpid())
			return true;
		/* ms of the clock, not ms naps: each nap costs more than 1 ms */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t waited = (int64_t)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (waited >= ms)
			return false;
		/* only another heapscope's hold is known to be short; a tracer
		 * that is gone has just let go (read tid again) */
		if (hs_proc_status_read(st.tracer, &ts, NULL) == 0 && strcmp(ts.name, "heapscope"))
			return false;
		struct timespec t = { 0, 1000000 };
		nanosleep(&t, NULL);
	}
}

int hs_proc_check(pid_t pid, bool want_ptrace, struct hs_proc_status *st, struct hs_err *err)
{
	struct hs_proc_status local;
	if (!st)
		st = &local;
	if (pid <= 0)
		return hs_err_set(err, EINVAL, "invalid pid %d", (int)pid);
	int r = hs_proc_status_read(pid, st, err);
	if (r < 0)
		return r;
	if (st->tgid != pid)
		return hs_err_set(err, EINVAL, "%d is a thread of process %d; give the process id", (int)pid,
				  (int)st->tgid);
	if (st->kernel_thread)
		return hs_err_set(err, EINVAL, "pid %d (%s) is a kernel thread: it has no user memory", (int)pid,
				  st->name);
	/* A zombie main thread with live threads (it called pthread_exit) is a
	 * live process. */
	if ((st->state == 'Z' || st->state == 'X') && st->threads <= 1) {
		if (!hs_proc_gone_settled(pid))
			return hs_err_set(err, EAGAIN, "pid %d is starting: it is inside execve", (int)pid);
		return hs_err_set(err, ESRCH, "pid %d (%s) is a zombie: its memory is gone", (int)pid, st->name);
	}
	r = exe_class(pid);
	if (r == -EPROTONOSUPPORT)
		return hs_err_set(err, EPROTONOSUPPORT, "pid %d (%s) is not an x86_64 process (32-bit or foreign)",
				  (int)pid, st->name);
	if (r == -EACCES || r == -EPERM) {
		char hint[256];
		hs_proc_perm_hint(pid, hint, sizeof(hint));
		return hs_err_set(err, EPERM, "cannot inspect pid %d (%s): Operation not permitted (%s)", (int)pid,
				  st->name, hint);
	}
	/* another heapscope's hold: over in milliseconds */
	if (want_ptrace && st->tracer && st->tracer != getpid() && hs_proc_wait_untraced(pid, 2000))
		hs_proc_status_read(pid, st, NULL);
	if (want_ptrace && st->tracer && st->tracer != getpid()) {
		char tname[64] = "?";
		struct hs_proc_status ts;
		if (hs_proc_status_read(st->tracer, &ts, NULL) == 0)
			snprintf(tname, sizeof(tname), "%s", ts.name);
		return hs_err_set(err, EBUSY, "pid %d (%s) is already traced by pid %d (%s); detach it first",
				  (int)pid, st->name, (int)st->tracer, tname);
	}
	return 0;
}

#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

/* pfd is an O_PATH fd (whose open opened nothing: no FIFO waits for a
 * writer, no device acts, inotify sees no IN_OPEN).  If it is a regular
 * file, open it for reading through /proc/self/fd, which is that very
 * inode; else -EINVAL.  Closes pfd. */
static int reopen_regular(int pfd)
{
	struct stat st;
	int fd = -EINVAL;
	if (fstat(pfd, &st) < 0) {
		fd = -errno;
	} else if (S_ISREG(st.st_mode)) {
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		fd = open(self, OPEN_FLAGS);
		if (fd < 0)
			fd = -errno;
	}
	close(pfd);
	return fd;
}

int hs_proc_open_in_root(pid_t pid, const char *path)
{
	char root[64];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	while (*path == '/')
		path++;
	if (!*path)
		return -EINVAL;
	int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int pfd = (int)syscall(SYS_openat2, dfd, path, &how, sizeof(how));
	int e = pfd < 0 ? errno : 0;
	if (pfd < 0 && (e == ENOSYS || e == EPERM)) {
		/* No openat2 (before Linux 5.6, or a seccomp filter that
		 * refuses it): safe only when the target's root is ours, where
		 * symlinks resolve the same for both. */
		struct stat a, b;
		if (fstat(dfd, &a) == 0 && stat("/", &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			pfd = openat(dfd, path, O_PATH | O_CLOEXEC);
			e = pfd < 0 ? errno : 0;
		} else {
			e = ENOSYS;
		}
	}
	close(dfd);
	return pfd < 0 ? -e : reopen_regular(pfd);
}

int hs_proc_open_file(const char *path)
{
	if (!strncmp(path, "/proc/", 6)) {
		char *end;
		long pid = strtol(path + 6, &end, 10);
		if (end != path + 6 && pid > 0 && !strncmp(end, "/root/", 6))
			return hs_proc_open_in_root((pid_t)pid, end + 5);
	}
	int pfd = open(path, O_PATH | O_CLOEXEC);
	return pfd < 0 ? -errno : reopen_regular(pfd);
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* fn for each open fd of pid, with its /proc path and the path it links
 * to, until fn returns non-zero (returned).  -errno if the fds cannot be
 * listed, else 0 or fn's value. */
static int each_fd(pid_t pid, int (*fn)(long fd, const char *proc_path, const char *link, void *ctx), void *ctx)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int r = 0;
	struct dirent *e;
	while (!r && (e = readdir(d))) {
		char *end, p[96], l[4096];
		long fd = strtol(e->d_name, &end, 10);
		if (*end || fd < 0)
			continue;
		snprintf(p, sizeof(p), "%s/%ld", dir, fd);
		ssize_t n = readlink(p, l, sizeof(l) - 1);
		if (n <= 0)
			continue;
		l[n] = '\0';
		r = fn(fd, p, l, ctx);
	}
	closedir(d);
	return r;
}

struct file_with {
	const char *prefix;
	long found;              /* lowest fd so far, -1 none */
	char *path;
	size_t len;
};

static int starts_with(long fd, const char *proc_path, const char *link, void *ctx)
{
	struct file_with *w = ctx;
	size_t plen = strlen(w->prefix);
	char head[64];
	if ((w->found >= 0 && fd >= w->found) || plen >= sizeof(head))
		return 0;
	/* Reopened through /proc: our own file description, read-only, and
	 * only if it is a regular file: never a device or a FIFO of the
	 * target's, whose open could block or act. */
	int f = hs_proc_open_file(proc_path);
	if (f < 0)
		return 0;
	ssize_t n = pread(f, head, plen, 0);
	close(f);
	if (n == (ssize_t)plen && !memcmp(head, w->prefix, plen)) {
		snprintf(w->path, w->len, "%s", link);
		w->found = fd;
	}
	return 0;
}

int hs_proc_open_file_with(pid_t pid, const char *prefix, char *path, size_t len)
{
	struct file_with w = { prefix, -1, path, len };
	int r = each_fd(pid, starts_with, &w);
	return r < 0 ? r : w.found >= 0 ? 0 : -ENOENT;
}

static int same_path(long fd, const char *proc_path, const char *link, void *ctx)
{
	(void)fd;
	(void)proc_path;
	return !strcmp(link, ctx);
}

int hs_proc_has_open(pid_t pid, const char *path)
{
	int r = each_fd(pid, same_path, (void *)path);
	return r < 0 ? r : r ? 0 : -ENOENT;
}

int hs_proc_threads(pid_t pid, pid_t **tids, size_t *n, struct hs_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? hs_err_set(err, ESRCH, "pid %d exited", (int)pid)
				       : hs_err_sys(err, errno, "cannot list %s", path);
	size_t cap = 16, cnt = 0;
	pid_t *v = malloc(cap * sizeof(*v));
	struct dirent *de;
	while (v && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (cnt == cap) {
			pid_t *nv = realloc(v, 2 * cap * sizeof(*v));
			if (!nv) {
				free(v);
				v = NULL;
				break;
			}
			v = nv;
			cap *= 2;
		}
		v[cnt++] = atoi(de->d_name);
	}
	closedir(d);
	if (!v)
		return hs_err_set(err, ENOMEM, "out of memory");
	qsort(v, cnt, sizeof(*v), cmp_pid);
	*tids = v;
	*n = cnt;
	return 0;
}

/* One letter of /proc/PID/task/TID/stat: the state. */
char hs_proc_task_state(pid_t pid, pid_t tid)
{
	char path[80], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

pid_t hs_proc_mm_pid(pid_t pid)
{
	char st = hs_proc_task_state(pid, pid);
	if (st != 'Z' && st != 'X')
		return pid;
	pid_t *tids, found = pid;
	size_t n;
	if (hs_proc_threads(pid, &tids, &n, NULL) < 0)
		return pid;
	for (size_t i = 0; i < n && found == pid; i++) {
		st = hs_proc_task_state(pid, tids[i]);
		if (tids[i] != pid && st && st != 'Z' && st != 'X')
			found = tids[i];
	}
	free(tids);
	return found;
}

/* The image fields of thread tid of pid, and its vsize (0: the thread
 * has no memory, it is exiting). */
static int task_image(pid_t pid, pid_t tid, struct hs_proc_image *img, uint64_t *vsize)
{
	char path[80], *text;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	int r = hs_proc_slurp(path, &text, &len);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	/* field 23 (vsize), 26-28 (startcode endcode startstack) and 45-51
	 * (start_data end_data start_brk arg_start arg_end env_start
	 * env_end); the text after the ')' of comm starts with field 3 */
	static const int want[10] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };
	memset(img, 0, sizeof(*img));
	*vsize = 0;
	char *p = strrchr(text, ')');
	int field = 3, k = 0;
	for (char *tok = p ? strtok(p + 1, " \n") : NULL; tok && k < 10; tok = strtok(NULL, " \n"), field++) {
		if (field == 23)
			*vsize = strtoull(tok, NULL, 10);
		else if (field == want[k])
			img->v[k++] = strtoull(tok, NULL, 10);
	}
	free(text);
	return 0;
}

int hs_proc_image_read(pid_t pid, struct hs_proc_image *img)
{
	uint64_t vsize;
	int r = task_image(pid, hs_proc_mm_pid(pid), img, &vsize);
	if (r < 0)
		return r;
	if (hs_proc_gone(pid))
		return -ESRCH;       /* a zombie shows no memory */
	if (!vsize) {
		/* The thread has let its memory go: it is exiting.  So is the
		 * process, unless another thread still has memory (inside
		 * execve, about to take the pid over). */
		pid_t *tids;
		size_t n;
		bool other = false;
		if (hs_proc_threads(pid, &tids, &n, NULL) < 0)
			return -ESRCH;
		for (size_t i = 0; i < n && !other; i++)
			other = task_image(pid, tids[i], img, &vsize) == 0 && vsize;
		free(tids);
		if (!other)
			return -ESRCH;
	}
	/* A new image's arguments are placed last in execve (the fields are
	 * 0 only without ptrace access, which heapscope needs anyway). */
	return img->v[6] ? 0 : -EAGAIN;
}

/* Gone: no such process, or a zombie leader with no live thread.  A
 * leader that is a zombie while another thread runs is not: that thread
 * may be in execve, about to take the pid over (de_thread). */
bool hs_proc_gone(pid_t pid)
{
	struct hs_proc_status st;
	if (hs_proc_status_read(pid, &st, NULL) < 0)
		return true;
	if (st.state != 'Z' && st.state != 'X')
		return false;
	return hs_proc_mm_pid(pid) == pid;
}

int hs_proc_mem_bind(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)hs_proc_mm_pid(pid));
	return open(path, O_RDONLY | O_CLOEXEC);
}

bool hs_proc_mem_released(int fd, uint64_t addr)
{
	/* A read of memory nobody uses any more returns 0 bytes; of live
	 * memory, 1 (or -1 for an address it has not mapped). */
	unsigned char b;
	ssize_t n;
	while ((n = pread(fd, &b, 1, (off_t)addr)) < 0 && errno == EINTR)
		;
	return n == 0;
}

bool hs_proc_exiting(pid_t pid)
{
	struct hs_proc_image img;
	return hs_proc_image_read(pid, &img) == -ESRCH;
}

bool hs_proc_gone_settled(pid_t pid)
{
	for (int i = 0; i < 20; i++) {
		if (!hs_proc_gone(pid)) {
			struct hs_proc_status st;
			/* a live leader, or one that left a live thread: there */
			if (hs_proc_status_read(pid, &st, NULL) == 0 && st.state != 'Z' && st.state != 'X')
				return false;
		} else if (i >= 2) {
			return true;
		}
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	return hs_proc_gone(pid);
}

bool hs_proc_image_same(const struct hs_proc_image *a, const struct hs_proc_image *b)
{
	return !memcmp(a, b, sizeof(*a));
}

int hs_proc_thread_sp(pid_t pid, pid_t tid, uint64_t *sp)
{
	char path[80], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* "nr a1 a2 a3 a4 a5 a6 sp pc", "-1 sp pc" when blocked outside a
	 * syscall, or "running". */
	char *tok[10];
	int k = 0;
	for (char *t = strtok(buf, " \n"); t && k < 10; t = strtok(NULL, " \n"))
		tok[k++] = t;
	if (k == 9)
		*sp = strtoull(tok[7], NULL, 16);
	else if (k == 3)
		*sp = strtoull(tok[1], NULL, 16);
	else
		return -ENOENT;
	return 0;
}

int hs_proc_pagemap_open(pid_t pid, struct hs_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)hs_proc_mm_pid(pid));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hs_err_sys(err, errno, "cannot open %s", path);
	return fd;
}

int hs_proc_resident(int fd, uint64_t start, uint64_t end, uint64_t *bytes)
{
	const uint64_t ps = 4096;
	uint64_t first = start / ps, last = (end + ps - 1) / ps;
	uint64_t buf[4096], count = 0;
	*bytes = 0;
	for (uint64_t pg = first; pg < last;) {
		uint64_t want = last - pg;
		if (want > sizeof(buf) / 8)
			want = sizeof(buf) / 8;
		ssize_t n = pread(fd, buf, want * 8, (off_t)(pg * 8));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		for (ssize_t i = 0; i < n / 8; i++)
			count += buf[i] >> 63;   /* bit 63: page present */
		pg += n / 8;
	}
	*bytes = count * ps;
	return 0;
}

void hs_proc_comm(pid_t pid, pid_t tid, char *buf, size_t n)
{
	char path[64];
	if (tid == pid)
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	buf[0] = '\0';
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)n, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

void hs_test_wait(const char *var, const char *suffix)
{
	const char *wait = getenv(var);
	if (!wait)
		return;
	char made[4096];
	snprintf(made, sizeof(made), "%s.%s", wait, suffix);
	int fd = open(made, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 3000 && access(wait, F_OK) < 0; i++) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
}
