/* profsafety: the target of tests/live/profile_safety.sh, a process the
 * sampler must not harm.  Every thread allocates and frees in a loop
 * (sleeping a little between rounds), so that a sampler routed to samples
 * them.  Modes (argv[1]):
 *   fork           each SIGUSR1: fork a child that allocates BURST bytes
 *                  at once (a full sampler ring's worth at any small
 *                  rate), then prints "CHILD <pid> taken <n>": n is how
 *                  many samples the sampler loaded in it (if any) took or
 *                  dropped meanwhile, read from its control block; and
 *                  waits to be killed;
 *   seccomp-kill   a worker thread installs (for itself only) a seccomp
 *                  filter that kills the process on process_vm_readv,
 *                  then allocates as the others do;
 *   seccomp-errno  the same filter failing process_vm_readv with EPERM
 *                  instead (harmless: a sampler may run there).
 * "READY <pid>" once the threads run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/sampler_abi.h"

#define BURST (64u << 20)

static volatile sig_atomic_t fork_requested;
static const char *mode = "";
static volatile int filtered;   /* the worker's filter is in */

static void on_usr1(int sig)
{
	(void)sig;
	fork_requested = 1;
}

static void churn_round(void)
{
	void *keep[64];
	for (int i = 0; i < 64; i++) {
		keep[i] = malloc(1000 + (size_t)i * 97);
		if (!keep[i])
			abort();
		memset(keep[i], i, 16);
	}
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	nanosleep(&ts, NULL);
}

static int install_filter(unsigned action)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, action),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	/* this thread only (no TSYNC): the other threads are unfiltered */
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0 ? -errno : 0;
}

static void *worker(void *arg)
{
	(void)arg;
	if (!strcmp(mode, "seccomp-kill") || !strcmp(mode, "seccomp-errno")) {
		unsigned action = !strcmp(mode, "seccomp-kill") ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ERRNO | EPERM;
		int r = install_filter(action);
		if (r < 0) {
			printf("NOSECCOMP %s\n", strerror(-r));
			fflush(stdout);
		}
		filtered = 1;
	}
	for (;;)
		churn_round();
	return NULL;
}

/* samples taken and dropped so far by the sampler loaded here, if any */
static uint64_t taken(void)
{
	void *h = dlopen("libheapscope-sampler.so", RTLD_LAZY | RTLD_NOLOAD);
	const struct hs_sampler_ctl *c = h ? dlsym(h, "hs_sampler_ctl") : NULL;
	return c ? c->sampled + c->dropped : 0;
}

static void child(void)
{
	uint64_t before = taken();
	/* the burst in blocks of 64 KiB, each freed at once */
	for (size_t done = 0; done < BURST; done += 65536) {
		void *p = malloc(65536);
		if (!p)
			abort();
		memset(p, 1, 64);
		free(p);
	}
	printf("CHILD %d taken %llu\n", (int)getpid(), (unsigned long long)(taken() - before));
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc > 1)
		mode = argv[1];
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL))
		return 2;
	while (!filtered && strcmp(mode, "fork"))
		churn_round();
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		churn_round();
		if (fork_requested) {
			fork_requested = 0;
			pid_t c = fork();
			if (c == 0)
				child();
			if (c < 0)
				abort();
		}
	}
}
