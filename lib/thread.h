/* A helper thread of heapscope: it may run while the target is stopped
 * (process_vm_readv, copying, scanning; never ptrace, which stays on the
 * tracing thread), so it blocks every signal: heapscope's handlers, which
 * release the target, and the attach's timer (SIGALRM, which may jump out
 * of a blocked PTRACE_SEIZE on the tracing thread's stack) must run on the
 * thread that traces.  A small utility any layer may use. */
#ifndef HS_THREAD_H
#define HS_THREAD_H

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>

/* Start fn(arg) on a new thread with every signal blocked: true if it
 * started (then *t is to be joined). */
static inline bool hs_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	bool started = pthread_create(t, NULL, fn, arg) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return started;
}

/* The CPUs heapscope may run on (its affinity), 1 when that cannot be told:
 * a helper thread is worth starting from 2. */
static inline int hs_cpus(void)
{
	cpu_set_t set;
	return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

#endif
