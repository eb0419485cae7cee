#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <elf.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "session.h"

struct hs_thread {
	pid_t tid;
	int stopped;             /* its interrupt stop was seen */
	int gone;                /* exited while we held it */
	int pending_sig;         /* signal to deliver at detach */
};

struct hs_session {
	pid_t pid;
	size_t n, cap;
	struct hs_thread *t;
	uint64_t t0_ns;          /* first interrupt */
};

/* A remote call in progress: what it changed, to be put back on every
 * path, the signal handler's included (hence static, and plain data). */
static struct {
	volatile int active;         /* registers or stack changed */
	volatile int running;        /* the thread runs the call now */
	pid_t tid;
	struct user_regs_struct regs;
	unsigned char xstate[65536];
	size_t xlen;
	struct user_fpregs_struct fpregs;   /* when there is no XSAVE regset */
	int have_fpregs;
	uint64_t sigmask;
	uint64_t stack_addr;         /* the words the call wrote on the stack */
	size_t stack_words;
	uint64_t stack_save[1 + 4096 / 8];
} call;

/* Put the calling thread back as it was: registers, extended state,
 * signal mask, the stack word the return address took.  Only system calls:
 * also run from the signal handler. */
static void call_restore(void)
{
	if (!call.active)
		return;
	if (call.running) {
		/* bounded: a thread that never stops (its process died) must not
		 * hold heapscope forever */
		int st;
		ptrace(PTRACE_INTERRUPT, call.tid, NULL, NULL);
		for (int i = 0; i < 2000; i++) {
			pid_t w = waitpid(call.tid, &st, WNOHANG | __WALL);
			if (w != 0)
				break;
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		call.running = 0;
	}
	struct iovec iov = { call.xstate, call.xlen };
	if (call.xlen)
		ptrace(PTRACE_SETREGSET, call.tid, (void *)NT_X86_XSTATE, &iov);
	else if (call.have_fpregs)
		ptrace(PTRACE_SETFPREGS, call.tid, NULL, &call.fpregs);
	ptrace(PTRACE_SETREGS, call.tid, NULL, &call.regs);
	ptrace(PTRACE_SETSIGMASK, call.tid, (void *)sizeof(call.sigmask), &call.sigmask);
	for (size_t i = 0; i < call.stack_words; i++)
		ptrace(PTRACE_POKEDATA, call.tid, (void *)(call.stack_addr + 8 * i), (void *)call.stack_save[i]);
	call.active = 0;
}

/* The session a signal handler must release.  Only one at a time. */
static struct hs_session *volatile active;
static uint64_t last_pause_us;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static const int caught[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE,
			      SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
static struct sigaction saved[sizeof(caught) / sizeof(caught[0])];

/* Async-signal-safe: only system calls. */
static bool installed[sizeof(caught) / sizeof(caught[0])];
static sigset_t saved_mask;

/* Async-signal-safe: only system calls.  Threads whose stop was reaped are
 * detached with the signal they hold; any other is left to the kernel,
 * which detaches it, signal kept, when heapscope exits. */
static void emergency_release(int sig)
{
	struct hs_session *s = active;
	call_restore();
	if (s) {
		for (size_t i = 0; i < s->n; i++)
			if (s->t[i].stopped && !s->t[i].gone)
				ptrace(PTRACE_DETACH, s->t[i].tid, NULL, (void *)(long)s->t[i].pending_sig);
		active = NULL;
	}
	/* Die as the signal would have killed us (it is blocked here, and
	 * delivered with the disposition heapscope had when we return). */
	for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]); i++)
		if (caught[i] == sig)
			sigaction(sig, &saved[i], NULL);
	raise(sig);
}

static void install_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = emergency_release;
	sigfillset(&sa.sa_mask);
	sa.sa_flags = SA_RESETHAND;
	for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]); i++) {
		/* An ignored signal (nohup's SIGHUP) stays ignored. */
		installed[i] = sigaction(caught[i], NULL, &saved[i]) == 0 && saved[i].sa_handler != SIG_IGN;
		if (installed[i])
			sigaction(caught[i], &sa, NULL);
	}
	/* Ctrl-Z must not stop heapscope while it holds the target stopped:
	 * the stop signals wait until every thread is released. */
	sigset_t stops;
	sigemptyset(&stops);
	sigaddset(&stops, SIGTSTP);
	sigaddset(&stops, SIGTTIN);
	sigaddset(&stops, SIGTTOU);
	sigprocmask(SIG_BLOCK, &stops, &saved_mask);
}

static void restore_handlers(void)
{
	for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]); i++)
		if (installed[i])
			sigaction(caught[i], &saved[i], NULL);
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);
}

static struct hs_thread *find(struct hs_session *s, pid_t tid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->t[i].tid == tid)
			return &s->t[i];
	return NULL;
}

static int add(struct hs_session *s, pid_t tid)
{
	if (s->n == s->cap) {
		/* The signal handler walks s->t: keep it out while it moves. */
		sigset_t all, old;
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, &old);
		size_t ncap = s->cap ? 2 * s->cap : 64;
		struct hs_thread *nt = realloc(s->t, ncap * sizeof(*nt));
		if (nt) {
			s->t = nt;
			s->cap = ncap;
		}
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (!nt)
			return -ENOMEM;
	}
	/* Publish the entry only once it is complete. */
	s->t[s->n] = (struct hs_thread){ .tid = tid };
	__atomic_store_n(&s->n, s->n + 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* A thread that is gone or a zombie (exiting, or a main thread that
 * called pthread_exit while others run). */
static bool thread_dead(pid_t pid, pid_t tid)
{
	char path[80];
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
	struct hs_proc_status st;
	return hs_proc_status_read(tid, &st, NULL) < 0 || access(path, F_OK) < 0 || st.state == 'Z' ||
	       st.state == 'X';
}

static int seize_new(struct hs_session *s, int *added, struct hs_err *err)
{
	pid_t *tids;
	size_t n;
	int r = hs_proc_threads(s->pid, &tids, &n, err);
	if (r < 0)
		return r;
	*added = 0;
	for (size_t i = 0; i < n; i++) {
		if (find(s, tids[i]))
			continue;
		if (ptrace(PTRACE_SEIZE, tids[i], NULL, NULL) < 0) {
			int e = errno;
			if (e == ESRCH || thread_dead(s->pid, tids[i]))
				continue;       /* it exited, or is exiting (EPERM then) */
			free(tids);
			if (e == EPERM)
				return hs_err_set(err, EPERM,
						  "cannot attach to pid %d: Operation not permitted (need the same "
						  "uid or CAP_SYS_PTRACE; see kernel.yama.ptrace_scope)", (int)s->pid);
			return hs_err_sys(err, e, "cannot attach to thread %d of pid %d", (int)tids[i],
					  (int)s->pid);
		}
		if (add(s, tids[i]) < 0) {
			ptrace(PTRACE_DETACH, tids[i], NULL, NULL);
			free(tids);
			return hs_err_set(err, ENOMEM, "out of memory");
		}
		if (!s->t0_ns)
			s->t0_ns = now_ns();
		if (ptrace(PTRACE_INTERRUPT, tids[i], NULL, NULL) < 0 && errno == ESRCH)
			s->t[s->n - 1].gone = 1;
		(*added)++;
	}
	free(tids);
	return 0;
}

/* A stop reaped from a seized thread.  Without ptrace options, event 0 is
 * always a signal-delivery-stop, SIGTRAP included: hold the signal and
 * deliver it at detach.  PTRACE_EVENT_STOP is our interrupt, or a group
 * stop (the process was stopped already; it stays so). */
static void record_stop(struct hs_thread *t, int st)
{
	if (((unsigned)st >> 16) == 0)
		t->pending_sig = WSTOPSIG(st);
	t->stopped = 1;
}

/* Wait until every seized thread has reported a stop. */
static int wait_stops(struct hs_session *s, uint64_t deadline_ns, struct hs_err *err)
{
	for (;;) {
		size_t waiting = 0;
		for (size_t i = 0; i < s->n; i++) {
			struct hs_thread *t = &s->t[i];
			if (t->stopped || t->gone)
				continue;
			int st;
			pid_t w = waitpid(t->tid, &st, WNOHANG | __WALL);
			if (w == 0) {
				waiting++;
				continue;
			}
			if (w < 0) {
				if (errno == EINTR) {
					waiting++;
					continue;
				}
				t->gone = 1;    /* ECHILD: it is no longer ours */
				continue;
			}
			if (WIFEXITED(st) || WIFSIGNALED(st)) {
				t->gone = 1;
				continue;
			}
			if (!WIFSTOPPED(st))
				continue;
			record_stop(t, st);
		}
		if (!waiting)
			return 0;
		if (now_ns() > deadline_ns) {
			for (size_t i = 0; i < s->n; i++)
				if (!s->t[i].stopped && !s->t[i].gone) {
					struct hs_proc_status st;
					char state = hs_proc_status_read(s->t[i].tid, &st, NULL) == 0 ? st.state : '?';
					return hs_err_set(err, ETIMEDOUT,
							  "thread %d of pid %d did not stop in time (state %c)",
							  (int)s->t[i].tid, (int)s->pid, state);
				}
			return hs_err_set(err, ETIMEDOUT, "pid %d did not stop in time", (int)s->pid);
		}
		struct timespec ts = { 0, 50000 };
		nanosleep(&ts, NULL);
	}
}

int hs_session_attach(pid_t pid, int timeout_ms, struct hs_session **out, struct hs_err *err)
{
	if (active)
		return hs_err_set(err, EBUSY, "a ptrace session is already active");
	struct hs_session *s = calloc(1, sizeof(*s));
	if (!s)
		return hs_err_set(err, ENOMEM, "out of memory");
	s->pid = pid;
	install_handlers();
	active = s;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	int r, added, rounds = 0;
	/* A stopped thread cannot clone, so once a listing adds nobody new
	 * after everyone listed before has stopped, all threads are held. */
	do {
		r = seize_new(s, &added, err);
		if (r == 0)
			r = wait_stops(s, deadline, err);
	} while (r == 0 && added && ++rounds < 1000);
	if (r == 0) {
		size_t live = 0;
		for (size_t i = 0; i < s->n; i++)
			live += !s->t[i].gone;
		if (!live)
			r = hs_err_set(err, ESRCH, "pid %d exited", (int)pid);
	}
	if (r < 0) {
		hs_session_detach(s, NULL);
		return r;
	}
	*out = s;
	return 0;
}

int hs_session_detach(struct hs_session *s, struct hs_err *err)
{
	if (!s)
		return 0;
	int ret = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct hs_thread *t = &s->t[i];
		if (t->gone)
			continue;
		if (!t->stopped) {
			/* Seized but its stop not yet reaped (attach failed or timed
			 * out): PTRACE_DETACH needs it stopped.  Wait briefly; if it
			 * never stops (D state), the kernel releases it when
			 * heapscope exits. */
			int st;
			for (int k = 0; k < 200; k++) {
				pid_t w = waitpid(t->tid, &st, WNOHANG | __WALL);
				if (w > 0 && WIFSTOPPED(st))
					record_stop(t, st);
				if (w != 0)
					break;
				struct timespec ts = { 0, 1000000 };
				nanosleep(&ts, NULL);
			}
		}
		if (ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->pending_sig) < 0 && errno != ESRCH &&
		    ret == 0)
			ret = hs_err_sys(err, errno, "cannot detach from thread %d", (int)t->tid);
	}
	last_pause_us = s->t0_ns ? (now_ns() - s->t0_ns) / 1000 : 0;
	active = NULL;
	restore_handlers();
	free(s->t);
	free(s);
	return ret;
}

size_t hs_session_threads(const struct hs_session *s, const pid_t **tids)
{
	static pid_t *list;
	static size_t cap;
	if (cap < s->n) {
		pid_t *nl = realloc(list, s->n * sizeof(*nl));
		if (!nl)
			return 0;
		list = nl;
		cap = s->n;
	}
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++)
		if (!s->t[i].gone)
			list[k++] = s->t[i].tid;
	*tids = list;
	return k;
}

int hs_session_regs(struct hs_session *s, pid_t tid, struct hs_thread_regs *regs, struct hs_err *err)
{
	struct hs_thread *t = find(s, tid);
	if (!t || t->gone || !t->stopped)
		return hs_err_set(err, ESRCH, "thread %d is not stopped", (int)tid);
	struct user_regs_struct ur;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &ur) < 0)
		return hs_err_sys(err, errno, "cannot read registers of thread %d", (int)tid);
	regs->ip = ur.rip;
	regs->sp = ur.rsp;
	regs->fs_base = ur.fs_base;
	return 0;
}

uint64_t hs_session_pause_us(const struct hs_session *s)
{
	return s && s->t0_ns ? (now_ns() - s->t0_ns) / 1000 : 0;
}

uint64_t hs_session_last_pause_us(void)
{
	return last_pause_us;
}

/* ---- remote calls ------------------------------------------------------------ */

int hs_session_call(struct hs_session *s, pid_t tid, uint64_t func, const uint64_t *args, int nargs, int timeout_ms,
		    uint64_t *ret, struct hs_err *err)
{
	return hs_session_call_data(s, tid, func, args, nargs, NULL, 0, timeout_ms, ret, err);
}

static int call_data(struct hs_session *s, pid_t tid, uint64_t func, const uint64_t *args, int nargs,
		     const void *data, size_t dlen, int timeout_ms, uint64_t *ret, struct hs_err *err);

int hs_session_call_data(struct hs_session *s, pid_t tid, uint64_t func, const uint64_t *args, int nargs,
			 const void *data, size_t dlen, int timeout_ms, uint64_t *ret, struct hs_err *err)
{
	/* Ctrl-C, SIGTERM and the like wait until the call is over and the
	 * thread restored: stopped half-way, the callee could leave a lock
	 * held.  Then they act as usual. */
	sigset_t hold, old;
	sigemptyset(&hold);
	sigaddset(&hold, SIGINT);
	sigaddset(&hold, SIGTERM);
	sigaddset(&hold, SIGHUP);
	sigaddset(&hold, SIGQUIT);
	sigaddset(&hold, SIGPIPE);
	sigprocmask(SIG_BLOCK, &hold, &old);
	int r = call_data(s, tid, func, args, nargs, data, dlen, timeout_ms, ret, err);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

static int call_data(struct hs_session *s, pid_t tid, uint64_t func, const uint64_t *args, int nargs,
		     const void *data, size_t dlen, int timeout_ms, uint64_t *ret, struct hs_err *err)
{
	struct hs_thread *t = find(s, tid);
	if (!t || t->gone || !t->stopped)
		return hs_err_set(err, ESRCH, "thread %d is not stopped", (int)tid);
	if (nargs > 6 || dlen > 4096)
		return hs_err_set(err, EINVAL, "at most six arguments and 4 KiB of data");
	/* 1. save what the call will change */
	memset(&call.regs, 0, sizeof(call.regs));
	call.tid = tid;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &call.regs) < 0)
		return hs_err_sys(err, errno, "cannot read registers of thread %d", (int)tid);
	/* The extended state is as large as the kernel says (gdb 13 sends a
	 * smaller buffer and fails on new CPUs). */
	struct iovec iov = { call.xstate, sizeof(call.xstate) };
	call.xlen = ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0 ? iov.iov_len : 0;
	call.have_fpregs = !call.xlen && ptrace(PTRACE_GETFPREGS, tid, NULL, &call.fpregs) == 0;
	if (!call.xlen && !call.have_fpregs)
		return hs_err_set(err, ENOTSUP, "cannot save the floating-point state of thread %d: no call made", (int)tid);
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(call.sigmask), &call.sigmask) < 0)
		return hs_err_sys(err, errno, "cannot read the signal mask of thread %d", (int)tid);
	if (t->pending_sig)
		return hs_err_set(err, EBUSY, "thread %d holds signal %d: not used for a call", (int)tid, t->pending_sig);
	/* 2. below the red zone: the data, then the return address 0 (whose
	 * fault brings the thread back to us), 16-byte aligned at the call */
	struct user_regs_struct r = call.regs;
	size_t dwords = (dlen + 7) / 8;
	/* the red zone, then the data: the callee's frames go below, where a
	 * signal handler's would */
	uint64_t data_at = ((r.rsp - 128 - 8 * dwords) & ~(uint64_t)15);
	uint64_t sp = data_at - 8;
	call.stack_addr = sp;
	call.stack_words = 0;
	for (size_t i = 0; i < 1 + dwords; i++) {
		errno = 0;
		long old = ptrace(PTRACE_PEEKDATA, tid, (void *)(sp + 8 * i), NULL);
		if (errno)
			return hs_err_sys(err, errno, "cannot read the stack of thread %d at 0x%llx", (int)tid,
					  (unsigned long long)(sp + 8 * i));
		call.stack_save[i] = (uint64_t)old;
	}
	call.stack_words = 1 + dwords;
	call.active = 1;
	int rc = 0;
	uint64_t words[1 + 4096 / 8] = { 0 };
	if (dlen)
		memcpy(words + 1, data, dlen);
	for (size_t i = 0; i < call.stack_words; i++)
		if (ptrace(PTRACE_POKEDATA, tid, (void *)(sp + 8 * i), (void *)words[i]) < 0) {
			rc = hs_err_sys(err, errno, "cannot write the stack of thread %d", (int)tid);
			goto restore;
		}
	uint64_t *argreg[6] = { (uint64_t *)&r.rdi, (uint64_t *)&r.rsi, (uint64_t *)&r.rdx,
				(uint64_t *)&r.rcx, (uint64_t *)&r.r8, (uint64_t *)&r.r9 };
	for (int i = 0; i < nargs; i++)
		*argreg[i] = (args[i] & HS_CALL_DATA_MASK) == HS_CALL_DATA(0) ? data_at + (args[i] & 0xffff) : args[i];
	r.rip = func;
	r.rsp = sp;
	r.rax = 0;
	/* Stopped inside a system call: no restart with our registers (the
	 * saved ones bring it back at restore). */
	r.orig_rax = (unsigned long long)-1;
	r.eflags &= ~0x400ull;      /* DF clear, as the ABI wants at a call */
	/* 3. no signal handler may run inside the call; pending ones stay
	 * pending and run after the restore.  Fault signals stay unblocked: a
	 * blocked one is forced, which resets the process's handler (the
	 * JVM's, a crash reporter's) to the default; unblocked, it stops the
	 * thread for us and is never delivered. */
	uint64_t all = ~0ull;
	static const int faults[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS };
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		all &= ~(1ull << (faults[i] - 1));
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(all), &all) < 0 ||
	    ptrace(PTRACE_SETREGS, tid, NULL, &r) < 0) {
		rc = hs_err_sys(err, errno, "cannot set up the call in thread %d", (int)tid);
		goto restore;
	}
	/* 4. run it until it returns to address 0 */
	call.running = 1;
	if (ptrace(PTRACE_CONT, tid, NULL, NULL) < 0) {
		call.running = 0;
		rc = hs_err_sys(err, errno, "cannot resume thread %d", (int)tid);
		goto restore;
	}
	/* Once it runs, the call is waited for: stopped half-way, malloc_trim
	 * would leave its arena locked.  Past timeout_ms the other threads are
	 * let go (the call may wait for a lock one of them holds); only past
	 * a hard limit is it abandoned. */
	uint64_t start = now_ns(), deadline = start + (uint64_t)timeout_ms * 1000000u;
	uint64_t hard = start + (uint64_t)timeout_ms * 1000000u * 10 + 60000000000ull;
	int released = 0, stopsig = 0;
	for (;;) {
		int st;
		pid_t w = waitpid(tid, &st, WNOHANG | __WALL);
		if (w == 0) {
			uint64_t now = now_ns();
			if (now > deadline && !released) {
				for (size_t i = 0; i < s->n; i++) {
					struct hs_thread *o = &s->t[i];
					if (o != t && o->stopped && !o->gone &&
					    ptrace(PTRACE_DETACH, o->tid, NULL, (void *)(long)o->pending_sig) == 0)
						o->gone = 1;    /* released: nothing more to do for it */
				}
				released = 1;
			} else if (now > hard) {
				rc = hs_err_set(err, ETIMEDOUT, "the call did not return in %llu s: abandoned (an arena may "
						"stay locked)", (unsigned long long)((now - start) / 1000000000u));
				goto restore;   /* call_restore interrupts it */
			}
			/* the process died: its exit is not reported while we hold
			 * other threads, so look */
			struct hs_proc_status ps;
			if (hs_proc_status_read(tid, &ps, NULL) < 0 || ps.state == 'Z' || ps.state == 'X') {
				call.running = 0;
				call.active = 0;
				t->gone = 1;
				return hs_err_set(err, ESRCH, "the process died during the call");
			}
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		call.running = 0;
		if (w < 0 || WIFEXITED(st) || WIFSIGNALED(st)) {
			t->gone = 1;
			call.active = 0;
			return hs_err_set(err, ESRCH, "thread %d died during the call", (int)tid);
		}
		if (WIFSTOPPED(st) && ((unsigned)st >> 16) == PTRACE_EVENT_STOP) {
			/* a job-control stop (or an interrupt) during the call: go on
			 * with the call, and stop the process again after it */
			if (WSTOPSIG(st) == SIGSTOP || WSTOPSIG(st) == SIGTSTP || WSTOPSIG(st) == SIGTTIN ||
			    WSTOPSIG(st) == SIGTTOU)
				stopsig = WSTOPSIG(st);
			call.running = 1;
			if (ptrace(PTRACE_CONT, tid, NULL, NULL) == 0)
				continue;
			call.running = 0;
		}
		struct user_regs_struct now;
		if (WIFSTOPPED(st) && ptrace(PTRACE_GETREGS, tid, NULL, &now) == 0) {
			if (WSTOPSIG(st) == SIGSEGV && now.rip == 0 && now.rsp == sp + 8) {
				*ret = now.rax;     /* returned to address 0: done */
				break;
			}
			/* A fault inside the callee: the signal is not delivered,
			 * the call is abandoned. */
			rc = hs_err_set(err, EFAULT, "the call faulted (signal %d at 0x%llx): abandoned", WSTOPSIG(st),
					(unsigned long long)now.rip);
			goto restore;
		}
		rc = hs_err_set(err, EIO, "thread %d stopped oddly during the call", (int)tid);
		goto restore;
	}
	if (stopsig) {
		call_restore();
		kill(s->pid, stopsig);  /* the stop it asked for, now */
		return rc;
	}
restore:
	call_restore();
	return rc;
}

bool hs_session_holds_signal(const struct hs_session *s, pid_t tid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->t[i].tid == tid)
			return s->t[i].pending_sig != 0;
	return false;
}
