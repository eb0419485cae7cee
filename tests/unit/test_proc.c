/* A real child's /proc image through its exit: while a killed process
 * lets its memory go (not a zombie yet, its /proc/PID/stat shows no
 * memory), hs_proc_image_read says it is gone, never that it is inside an
 * execve; hs_proc_exiting says so from then on. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "tap.h"

/* The state letter of /proc/PID/stat, 0 when there is none. */
static char state_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
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

int main(void)
{
	/* enough written memory that its release takes a few ms */
	const size_t len = (size_t)512 << 20;
	int p[2];
	if (pipe(p) < 0)
		return 99;
	pid_t c = fork();
	if (c < 0)
		return 99;
	if (c == 0) {
		close(p[0]);
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			_exit(3);
		memset(m, 1, len);
		if (write(p[1], "R", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(p[1]);
	char b;
	OK(read(p[0], &b, 1) == 1, "the child is ready");

	struct hs_proc_image img;
	OK(hs_proc_image_read(c, &img) == 0, "a live process: its image reads");
	OK(!hs_proc_exiting(c) && !hs_proc_gone(c), "a live process is neither exiting nor gone");

	kill(c, SIGKILL);
	long polls = 0, eagain = 0, seen = 0, unsaid = 0;
	for (;;) {
		char st = state_of(c);
		if (!st || st == 'Z')
			break;
		int r = hs_proc_image_read(c, &img);
		polls++;
		eagain += r == -EAGAIN;
		/* gone while still not a zombie: the exit itself */
		if (r == -ESRCH && state_of(c) != 'Z') {
			seen++;
			unsaid += !hs_proc_exiting(c) && state_of(c) != 'Z';
		}
	}
	OK(eagain == 0, "while it exits, never taken for a process inside execve (%ld of %ld reads were)", eagain,
	   polls);
	if (seen) {
		OK(1, "the exit seen before the zombie (%ld of %ld reads)", seen, polls);
		OK(unsaid == 0, "hs_proc_exiting says so each time (not %ld times)", unsaid);
	} else {
		printf("ok %d - # SKIP the child was a zombie before a read saw it exiting\n", ++tap_n);
	}

	while (state_of(c) != 'Z')
		usleep(1000);
	OK(hs_proc_exiting(c) && hs_proc_gone(c), "a zombie: exiting and gone");
	OK(hs_proc_image_read(c, &img) == -ESRCH, "a zombie's image: -ESRCH");
	waitpid(c, NULL, 0);
	OK(hs_proc_image_read(c, &img) == -ESRCH && hs_proc_exiting(c), "reaped: -ESRCH, exiting");
	return tap_done();
}
