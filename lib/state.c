#include <errno.h>
#include <fcntl.h>
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

static int record_path(pid_t pid, const char *kind, char *buf, size_t len)
{
	unsigned long long t;
	int r = start_time(pid, &t);
	if (r < 0)
		return r;
	snprintf(buf, len, "%s/%s.%d.%llu", state_dir(), kind, (int)pid, t);
	return 0;
}

int hs_state_write(pid_t pid, const char *kind, const char *text, struct hs_err *err)
{
	char path[512], tmp[530];
	int r = record_path(pid, kind, path, sizeof(path));
	if (r < 0)
		return hs_err_sys(err, -r, "cannot read the start time of pid %d", (int)pid);
	if (mkdir(state_dir(), 0700) < 0 && errno != EEXIST)
		return hs_err_sys(err, errno, "cannot create %s", state_dir());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return hs_err_sys(err, errno, "cannot create %s", tmp);
	size_t n = strlen(text);
	if (write(fd, text, n) != (ssize_t)n || fsync(fd) < 0) {
		int e = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		return hs_err_sys(err, e, "cannot write %s", tmp);
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return hs_err_sys(err, e, "cannot create %s", path);
	}
	return 0;
}

int hs_state_read(pid_t pid, const char *kind, char *buf, size_t len)
{
	char path[512];
	int r = record_path(pid, kind, path, sizeof(path));
	if (r < 0)
		return r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return 0;
}

int hs_state_remove(pid_t pid, const char *kind)
{
	char path[512];
	int r = record_path(pid, kind, path, sizeof(path));
	if (r < 0)
		return r;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}
