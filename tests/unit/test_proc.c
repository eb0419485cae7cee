/* A real child's /proc image through its exit: while a killed process
 * lets its memory go (not a zombie yet, its /proc/PID/stat shows no
 * memory), hs_proc_image_read says it is gone, never that it is inside an
 * execve; hs_proc_exiting says so from then on.  And through an execve of
 * the same program without address randomisation, which lays out the same
 * addresses: the image pinned is still seen to be gone (its memory is). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "session.h"
#include "tap.h"

static char state_of(pid_t pid)
{
	return hs_proc_task_state(pid, pid);
}

/* exec-wait: say "R" on stdout, then execve this program again, the same
 * way, at each byte read from stdin. */
static int exec_wait(char *self)
{
	char b;
	if (write(STDOUT_FILENO, "R", 1) != 1 || read(STDIN_FILENO, &b, 1) != 1)
		return 0;
	execl("/proc/self/exe", self, "exec-wait", (char *)NULL);
	return 3;
}

/* The child of exec_wait's execve, without ASLR. */
static void exec_same(void)
{
	int in[2], out[2];
	if (pipe(in) < 0 || pipe(out) < 0)
		return;
	pid_t c = fork();
	if (c < 0)
		return;
	if (c == 0) {
		personality(ADDR_NO_RANDOMIZE);
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		execl("/proc/self/exe", "test_proc", "exec-wait", (char *)NULL);
		_exit(3);
	}
	close(in[0]);
	close(out[1]);
	char b;
	OK(read(out[0], &b, 1) == 1, "exec: the child (no ASLR) is ready");
	struct hs_proc_image before, after;
	OK(hs_session_pin_image(c) == 0 && hs_proc_image_read(c, &before) == 0, "exec: its image pinned");
	int fd = hs_proc_mem_bind(c);
	OK(fd >= 0 && !hs_proc_mem_released(fd, before.v[0]) && !hs_session_execd(c),
	   "exec: before it, the memory bound is in use and no execve is seen");
	OK(write(in[1], "x", 1) == 1 && read(out[0], &b, 1) == 1, "exec: it exec'd itself, and is ready again");
	OK(hs_proc_image_read(c, &after) == 0, "exec: the new image reads");
	printf("# the new image's addresses are %s the old ones'\n", hs_proc_image_same(&before, &after) ? "the same as" : "not");
	OK(hs_proc_mem_released(fd, before.v[0]), "exec: the memory bound before it has no user");
	OK(hs_session_execd(c), "exec: hs_session_execd sees it");
	close(fd);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	close(in[1]);
	close(out[0]);
}

/* A pin that fails (a zombie: -ESRCH) leaves nothing of that pid behind:
 * the image pinned before it is not then taken for exec'd (top and
 * --watch look at many pids in one run). */
static void pin_failed(void)
{
	pid_t a = fork();
	if (a == 0) {
		for (;;)
			pause();
	}
	pid_t b = fork();
	if (b == 0)
		_exit(0);
	while (state_of(b) != 'Z')
		usleep(1000);
	/* a may not have run yet: its image is laid out once it has */
	struct hs_proc_image img;
	for (int i = 0; i < 1000 && hs_proc_image_read(a, &img) != 0; i++)
		usleep(1000);
	OK(hs_session_pin_image(a) == 0, "pin a live process");
	OK(!hs_session_execd(a), "not exec'd since its pin");
	OK(hs_session_pin_image(b) == -ESRCH, "pin a zombie: -ESRCH");
	OK(!hs_session_execd(a), "the live process is still not taken for exec'd after the failed pin");
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "exec-wait"))
		return exec_wait(argv[0]);
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
	exec_same();
	pin_failed();
	return tap_done();
}
