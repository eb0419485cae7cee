#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"
#include "state.h"

static const char *state_dir(void)
{
	const char *d = getenv("HEAPSCOPE_STATE_DIR");
	return d && *d ? d : "/run/heapscope";
}

/* The process's start time in clock ticks since boot: field 22 of stat. */
static int start_time(pid_t pid, unsigned long long *t)
{
	char path[64], *text;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int r = hs_proc_slurp(path, &text, &len);
	if (r < 0)
		return r;
	/* after the command name, which may hold spaces and parentheses */
	char *p = strrchr(text, ')');
	r = p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", t) == 1
		    ? 0
		    : -EINVAL;
	free(text);
	return r;
}

/* The record's name inside the directory. */
static int record_name(pid_t pid, const char *kind, char *buf, size_t len)
{
	unsigned long long t;
	int r = start_time(pid, &t);
	if (r < 0)
		return r;
	snprintf(buf, len, "%s.%d.%llu", kind, (int)pid, t);
	return 0;
}

/* The directory, opened, once it can be trusted: a record's slots are
 * written into a process's GOT, so whoever may write a record there may
 * make heapscope write anything anywhere.  It must be a real directory
 * (not a symlink), owned by heapscope's effective uid (root's when run as
 * root) and writable by no one else.  -ENOENT (err untouched) when it does
 * not exist and create is false. */
static int dir_open(bool create, struct hs_err *err)
{
	const char *d = state_dir();
	if (create && mkdir(d, 0700) < 0 && errno != EEXIST)
		return hs_err_sys(err, errno, "cannot create the state directory %s", d);
	int fd = open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && !create)
		return -ENOENT;
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		return hs_err_set(err, EPERM, "the state directory %s is a symlink or not a directory: refused", d);
	if (fd < 0)
		return hs_err_sys(err, errno, "cannot open the state directory %s", d);
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = hs_err_sys(err, errno, "cannot stat the state directory %s", d);
	else if (st.st_uid != geteuid())
		r = hs_err_set(err, EPERM, "the state directory %s is owned by uid %u, not %u: refused", d,
			       (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		r = hs_err_set(err, EPERM, "the state directory %s is group- or other-writable (mode %03o): refused", d,
			       (unsigned)(st.st_mode & 0777));
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int hs_state_check(bool create, struct hs_err *err)
{
	int fd = dir_open(create, err);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int hs_state_write(pid_t pid, const char *kind, const char *text, struct hs_err *err)
{
	char name[256], tmp[300];
	int r = record_name(pid, kind, name, sizeof(name));
	if (r < 0)
		return hs_err_sys(err, -r, "cannot read the start time of pid %d", (int)pid);
	int dfd = dir_open(true, err);
	if (dfd < 0)
		return dfd;
	/* a name of our own, created here (never an existing file or link),
	 * then renamed over the record */
	snprintf(tmp, sizeof(tmp), ".%s.tmp.%d", name, (int)getpid());
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && unlinkat(dfd, tmp, 0) == 0)   /* left by a killed heapscope of our pid */
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = hs_err_sys(err, errno, "cannot create %s/%s", state_dir(), tmp);
		close(dfd);
		return r;
	}
	size_t n = strlen(text);
	errno = 0;
	if (write(fd, text, n) != (ssize_t)n || fsync(fd) < 0) {
		int e = errno ? errno : EIO;
		close(fd);
		unlinkat(dfd, tmp, 0);
		close(dfd);
		return hs_err_sys(err, e, "cannot write %s/%s", state_dir(), tmp);
	}
	close(fd);
	if (renameat(dfd, tmp, dfd, name) < 0) {
		int e = errno;
		unlinkat(dfd, tmp, 0);
		close(dfd);
		return hs_err_sys(err, e, "cannot create %s/%s", state_dir(), name);
	}
	close(dfd);
	return 0;
}

int hs_state_read(pid_t pid, const char *kind, char *buf, size_t len, struct hs_err *err)
{
	char name[256];
	int r = record_name(pid, kind, name, sizeof(name));
	if (r < 0)
		return r;
	int dfd = dir_open(false, err);
	if (dfd < 0)
		return dfd;
	/* no link followed, no FIFO waited on, only a regular file of ours */
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int e = errno;
	close(dfd);
	if (fd < 0 && e == ELOOP)
		return hs_err_set(err, EPERM, "the record %s/%s is a symlink: refused", state_dir(), name);
	if (fd < 0)
		return -e;
	struct stat st;
	if (fstat(fd, &st) < 0)
		r = hs_err_sys(err, errno, "cannot stat %s/%s", state_dir(), name);
	else if (!S_ISREG(st.st_mode))
		r = hs_err_set(err, EPERM, "the record %s/%s is not a regular file: refused", state_dir(), name);
	else if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
		r = hs_err_set(err, EPERM, "the record %s/%s is owned by uid %u or writable by others: refused",
			       state_dir(), name, (unsigned)st.st_uid);
	size_t at = 0;
	while (r == 0 && at < len - 1) {
		ssize_t n = read(fd, buf + at, len - 1 - at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = hs_err_sys(err, errno, "cannot read %s/%s", state_dir(), name);
		if (n <= 0)
			break;
		at += (size_t)n;
	}
	close(fd);
	buf[at] = '\0';
	return r;
}

int hs_state_remove(pid_t pid, const char *kind)
{
	char name[256];
	int r = record_name(pid, kind, name, sizeof(name));
	if (r < 0)
		return r;
	int dfd = dir_open(false, NULL);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	r = unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	close(dfd);
	return r;
}

/* The file-system uid and gid of pid (the fourth field of Uid: and Gid:):
 * who its open() creates files as. */
static int fs_ids(pid_t pid, uid_t *uid, gid_t *gid)
{
	char path[64], *text;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int r = hs_proc_slurp(path, &text, &len);
	if (r < 0)
		return r;
	char *u = strstr(text, "\nUid:"), *g = strstr(text, "\nGid:");
	unsigned long a, b;
	r = u && g && sscanf(u + 5, "%*u %*u %*u %lu", &a) == 1 && sscanf(g + 5, "%*u %*u %*u %lu", &b) == 1 ? 0
														: -EINVAL;
	free(text);
	*uid = (uid_t)a;
	*gid = (gid_t)b;
	return r;
}

int hs_state_trace_dir(pid_t pid, char *log, size_t len, struct hs_err *err)
{
	uid_t uid;
	gid_t gid;
	if (fs_ids(pid, &uid, &gid) < 0)
		return hs_err_set(err, ESRCH, "cannot read the uid of pid %d", (int)pid);
	/* under /tmp as the process sees it (its mount namespace): a name no
	 * one could plant, made with mkdir's O_EXCL semantics */
	char root[64], dir[PATH_MAX];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	int k = snprintf(dir, sizeof(dir), "%s/tmp/heapscope-mtrace.XXXXXX", root);
	if (k <= 0 || (size_t)k >= sizeof(dir) || !mkdtemp(dir))
		return hs_err_sys(err, errno ? errno : ENAMETOOLONG, "cannot create a directory under /tmp of pid %d",
				  (int)pid);
	/* the process must create its log there, and only it */
	int r = 0;
	struct stat st;
	if ((uid != geteuid() || gid != getegid()) && lchown(dir, uid, gid) < 0)
		r = hs_err_sys(err, errno, "cannot give %s to uid %u of pid %d", dir + strlen(root), (unsigned)uid,
			       (int)pid);
	else if (lstat(dir, &st) < 0)
		r = hs_err_sys(err, errno, "cannot stat %s", dir + strlen(root));
	else if (!S_ISDIR(st.st_mode) || (st.st_mode & 0777) != 0700 || st.st_uid != uid)
		r = hs_err_set(err, EPERM, "%s is not a private directory of uid %u (mode %03o, uid %u): refused",
			       dir + strlen(root), (unsigned)uid, (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid);
	if (r < 0) {
		rmdir(dir);
		return r;
	}
	snprintf(log, len, "%s/mtrace.%d.log", dir + strlen(root), (int)pid);
	return 0;
}

int hs_state_trace_check_path(pid_t pid, const char *log, struct hs_err *err)
{
	char seen[PATH_MAX + 64];
	struct stat st;
	snprintf(seen, sizeof(seen), "/proc/%d/root%s", (int)pid, log);
	if (log[0] != '/' || lstat(seen, &st) < 0)
		return 0;   /* a new file (or a relative path, the target's own) */
	if (S_ISLNK(st.st_mode))
		return hs_err_set(err, EPERM, "%s is a symlink: the target would write where it points; refused", log);
	if (S_ISFIFO(st.st_mode))
		return hs_err_set(err, EPERM, "%s is a FIFO: the target would wait on it, stopped; refused", log);
	if (!S_ISREG(st.st_mode))
		return hs_err_set(err, EPERM, "%s exists and is not a regular file: refused", log);
	return 0;
}

int hs_state_trace_opened(pid_t pid, const char *log, bool private, struct hs_err *err)
{
	char seen[PATH_MAX + 64];
	struct stat st;
	uid_t uid;
	gid_t gid;
	snprintf(seen, sizeof(seen), "/proc/%d/root%s", (int)pid, log);
	if (lstat(seen, &st) < 0)
		return hs_err_sys(err, errno, "cannot stat %s", log);
	if (!S_ISREG(st.st_mode))
		return hs_err_set(err, EPERM, "%s is not a regular file after the target opened it", log);
	if (private && (fs_ids(pid, &uid, &gid) < 0 || st.st_uid != uid || st.st_nlink != 1))
		return hs_err_set(err, EPERM, "%s is not the target's own new file (uid %u, %u links)", log,
				  (unsigned)st.st_uid, (unsigned)st.st_nlink);
	return 0;
}

#define RECORD_MAX (4u << 20)

int hs_state_trace_record_write(pid_t pid, const struct hs_trace_record *rec, struct hs_err *err)
{
	char *text = malloc(RECORD_MAX);
	if (!text)
		return hs_err_set(err, ENOMEM, "out of memory");
	size_t at = (size_t)snprintf(text, RECORD_MAX, "file %s\n", rec->file);
	if (rec->dbg[0])
		at += (size_t)snprintf(text + at, RECORD_MAX - at, "inject %s\n", rec->dbg);
	for (size_t i = 0; i < rec->nslots && at < RECORD_MAX - 64; i++)
		at += (size_t)snprintf(text + at, RECORD_MAX - at, "slot 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 "\n",
				       rec->slots[i].addr, rec->slots[i].old, rec->slots[i].new);
	int r = at >= RECORD_MAX - 64 ? hs_err_set(err, E2BIG, "too many slots to record (%zu)", rec->nslots)
				      : hs_state_write(pid, "mtrace", text, err);
	free(text);
	return r;
}

static int parse_slot(struct hs_trace_record *rec, const char *l, size_t *cap)
{
	struct hs_poke p;
	if (sscanf(l, "%" SCNx64 " %" SCNx64 " %" SCNx64, &p.addr, &p.old, &p.new) != 3)
		return -EINVAL;
	if (rec->nslots == *cap) {
		size_t nc = *cap ? 2 * *cap : 256;
		struct hs_poke *v = realloc(rec->slots, nc * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rec->slots = v;
		*cap = nc;
	}
	rec->slots[rec->nslots++] = p;
	return 0;
}

int hs_state_trace_record_read(pid_t pid, struct hs_trace_record *rec, struct hs_err *err)
{
	memset(rec, 0, sizeof(*rec));
	char *text = malloc(RECORD_MAX);
	if (!text)
		return hs_err_set(err, ENOMEM, "out of memory");
	int r = hs_state_read(pid, "mtrace", text, RECORD_MAX, err);
	size_t cap = 0;
	char *save;
	for (char *l = r == 0 ? strtok_r(text, "\n", &save) : NULL; l && r == 0; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "file ", 5))
			snprintf(rec->file, sizeof(rec->file), "%s", l + 5);
		else if (!strncmp(l, "inject ", 7))
			snprintf(rec->dbg, sizeof(rec->dbg), "%s", l + 7);
		else if (!strncmp(l, "slot ", 5))
			r = parse_slot(rec, l + 5, &cap);
	}
	free(text);
	if (r == 0 && !rec->file[0])
		r = -EINVAL;
	if (r < 0)
		hs_state_trace_record_release(rec);
	return r;
}

void hs_state_trace_record_release(struct hs_trace_record *rec)
{
	free(rec->slots);
	rec->slots = NULL;
	rec->nslots = 0;
}
