/* A process one of whose threads holds glibc's thread stacks' lock
 * (GL(dl_stack_cache_lock)), as a thread stopped inside pthread_create or
 * a thread's exit does: mtrace start --inject must see it held and wait
 * or refuse, not freeze in the dlopen that needs it.  The lock is the word
 * 8 bytes before the end of _rtld_global (glibc 2.34+); before use it is
 * proved to be the lock: held by us, a pthread_create in another thread
 * must wait on it in futex().  Prints "NOTLOCK" and exits 3 otherwise.
 *
 *   stacklock      READY <pid>; a thread holds the lock until SIGUSR1, then lets
 *                  it go, creates threads, and at the next SIGUSR1 prints
 *                  "DONE <n>" and exits 0 */
#include <stdbool.h>
#include <dlfcn.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int *lockw;
static volatile pid_t creator_tid;
static volatile int created, go, held, release;

static void lock(void)
{
	int zero = 0;
	while (!__atomic_compare_exchange_n(lockw, &zero, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		zero = 0, usleep(1000);
}

static void unlock(void)
{
	if (__atomic_exchange_n(lockw, 0, __ATOMIC_RELEASE) > 1)
		syscall(SYS_futex, lockw, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *noop(void *a)
{
	return a;
}

static void *creator(void *a)
{
	while (!go)
		usleep(1000);
	creator_tid = (pid_t)syscall(SYS_gettid);
	pthread_t t;
	if (pthread_create(&t, NULL, noop, NULL) == 0)
		pthread_join(t, NULL);
	created = 1;
	return a;
}

/* Holds the lock from start to SIGUSR1, as a thread stopped half-way
 * through pthread_create would. */
static void *holder(void *a)
{
	lock();
	held = 1;
	while (!release)
		usleep(1000);
	unlock();
	return a;
}

/* Is thread tid waiting in futex() on the word at w? */
static int waits_on(pid_t tid, const void *w)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	unsigned long nr = 0, a0 = 0;
	int ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%lu %lx", &nr, &a0) == 2;
	fclose(f);
	return ok && nr == SYS_futex && a0 == (unsigned long)w;
}

int main(void)
{
	void *g = dlvsym(RTLD_DEFAULT, "_rtld_global", "GLIBC_PRIVATE");
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!g || !dladdr1(g, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || sym->st_size < 64) {
		puts("NOTLOCK no _rtld_global");
		return 3;
	}
	lockw = (int *)((char *)g + sym->st_size - 8);
	/* the proof: held by us, another thread's pthread_create waits on it */
	pthread_t c;
	pthread_create(&c, NULL, creator, NULL);
	lock();
	go = 1;
	int seen = 0;
	for (int i = 0; i < 5000 && !seen && !created; i++) {
		seen = creator_tid && waits_on(creator_tid, lockw);
		usleep(1000);
	}
	unlock();
	pthread_join(c, NULL);
	if (!seen) {
		printf("NOTLOCK pthread_create did not wait on %p\n", (void *)lockw);
		return 3;
	}
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	/* a thread at rest, besides: a process with threads */
	void *p = malloc(100);
	pthread_t h;
	pthread_create(&h, NULL, holder, NULL);
	while (!held)
		usleep(1000);
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	int sig;
	sigwait(&usr1, &sig);
	release = 1;
	pthread_join(h, NULL);
	int n = 0;
	for (; n < 100; n++) {
		pthread_t t;
		if (pthread_create(&t, NULL, noop, NULL) || pthread_join(t, NULL))
			break;
	}
	printf("RELEASED %d\n", n);
	fflush(stdout);
	sigwait(&usr1, &sig);
	free(p);
	printf("DONE %d\n", n);
	return 0;
}
