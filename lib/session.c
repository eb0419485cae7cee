#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <elf.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "callframe.h"
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
	struct hs_call_return cr;    /* what a call returns through */
	int cr_state;            /* 0 unchecked, 1 checked good, -1 bad */
	int memfd;               /* /proc/PID/mem for hs_session_poke, 0 unopened */
	bool released;           /* a call outlived its timeout: the other threads run */
	int cue;                 /* cue_signal(), found at the first call; -1 before */
};

/* A remote call in progress: what it changed, to be put back on every
 * path, the signal handler's included (hence static, and plain data). */
#define CALL_STACK_MAX (32u << 10)
static struct {
	volatile int active;         /* registers or stack changed */
	volatile int running;        /* the thread runs the call now */
	pid_t tid;
	struct user_regs_struct regs;
	unsigned char xstate[16384] __attribute__((aligned(64)));
	size_t xlen;
	struct user_fpregs_struct fpregs;   /* when there is no XSAVE regset */
	int have_fpregs;
	uint64_t sigmask;
	uint64_t stack_addr;         /* the words the call wrote on the stack */
	size_t stack_len;
	unsigned char stack_save[CALL_STACK_MAX];
} call;

static void stack_put(const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)call.stack_addr, len };
	process_vm_writev(call.tid, &local, 1, &remote, 1, 0);
}

/* Put the calling thread back as it was, what it did not put back itself:
 * its signal mask first, its registers last, so that heapscope dying
 * between two of these leaves a thread that either runs as it was or
 * still returns through frame B (which restores the rest); then the stack
 * below its red zone.  Only system calls: also run from the signal
 * handler.  A thread running the call is not touched: it returns through
 * its frames by itself, after heapscope is gone. */
static void call_restore(void)
{
	if (!call.active || call.running)
		return;
	ptrace(PTRACE_SETSIGMASK, call.tid, (void *)sizeof(call.sigmask), &call.sigmask);
	struct iovec iov = { call.xstate, call.xlen };
	if (call.xlen)
		ptrace(PTRACE_SETREGSET, call.tid, (void *)NT_X86_XSTATE, &iov);
	else if (call.have_fpregs)
		ptrace(PTRACE_SETFPREGS, call.tid, NULL, &call.fpregs);
	ptrace(PTRACE_SETREGS, call.tid, NULL, &call.regs);
	stack_put(call.stack_save, call.stack_len);
	call.active = 0;
}

/* The session a signal handler must release.  Only one at a time. */
static struct hs_session *volatile active;
/* hs_session_undo's words, for the signal handler */
static const struct hs_poke *volatile undo_v;
static const volatile size_t *volatile undo_n;

/* Async-signal-safe: only system calls. */
static void undo_pokes(int memfd)
{
	const struct hs_poke *v = undo_v;
	const volatile size_t *n = undo_n;
	if (!v || !n || memfd <= 0)
		return;
	for (size_t i = 0, k = *n; i < k; i++) {
		uint64_t cur;
		if (pread(memfd, &cur, 8, (off_t)v[i].addr) == 8 && cur == v[i].new)
			pwrite(memfd, &v[i].old, 8, (off_t)v[i].addr);
	}
	undo_v = NULL;
}
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
		undo_pokes(s->memfd);
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

/* ---- threads that exit, and execve, during the attach -----------------------
 *
 * A thread that calls execve kills the others and, in de_thread, waits
 * until each is released; a traced thread that dies is released only when
 * its tracer reaps it.  The execve holds the process's cred_guard_mutex
 * meanwhile, which PTRACE_SEIZE takes too: heapscope blocked seizing the
 * exec'ing thread would never reap the threads it seized before, and both
 * would wait for good (the target in D state).  The lock is taken
 * interruptibly, but the call restarts after a signal handler
 * (-ERESTARTNOINTR).  So a timer ticks while attaching, and its handler
 * reaps the threads of the session that exited (WEXITED only: stops stay
 * for wait_stops), which lets the execve go on; past the deadline it
 * abandons a PTRACE_SEIZE that still blocks. */
static sigjmp_buf seize_jmp;
static volatile sig_atomic_t in_seize;
static volatile uint64_t seize_deadline_ns;
static struct sigaction saved_alrm;
static struct itimerval saved_timer;

/* Reap tid if it exited: 1 if so, 0 if not, -1 if it is not ours.  A
 * tracer's wait reports its tracees' stops whatever the flags, so peek
 * first (WNOWAIT) and leave a stop for wait_stops.  Async-signal-safe. */
static int reap_if_exited(pid_t tid)
{
	siginfo_t si;
	si.si_pid = 0;
	if (waitid(P_PID, tid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0)
		return errno == ECHILD ? -1 : 0;
	if (si.si_pid != tid || (si.si_code != CLD_EXITED && si.si_code != CLD_KILLED && si.si_code != CLD_DUMPED))
		return 0;
	si.si_pid = 0;
	waitid(P_PID, tid, &si, WEXITED | WNOHANG | __WALL);
	return 1;
}

/* Async-signal-safe: only system calls. */
static void reap_exited(struct hs_session *s)
{
	size_t n = __atomic_load_n(&s->n, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < n; i++) {
		struct hs_thread *t = &s->t[i];
		if (!t->gone && reap_if_exited(t->tid) == 1)
			t->gone = 1;
	}
}

static void attach_tick(int sig)
{
	(void)sig;
	int e = errno;
	struct hs_session *s = active;
	if (s)
		reap_exited(s);
	if (in_seize && now_ns() > seize_deadline_ns) {
		in_seize = 0;
		errno = e;
		siglongjmp(seize_jmp, 1);
	}
	errno = e;
}

static void tick_start(uint64_t deadline_ns)
{
	seize_deadline_ns = deadline_ns;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = attach_tick;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &saved_alrm);
	struct itimerval it = { { 0, 10000 }, { 0, 10000 } };
	setitimer(ITIMER_REAL, &it, &saved_timer);
}

static void tick_stop(void)
{
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	/* a tick still pending would meet the old disposition: ignoring
	 * the signal discards it */
	struct sigaction ign;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGALRM, &ign, NULL);
	sigaction(SIGALRM, &saved_alrm, NULL);
	setitimer(ITIMER_REAL, &saved_timer, NULL);
}

/* PTRACE_SEIZE, abandoned past the attach deadline (-ETIMEDOUT). */
static int seize(pid_t tid)
{
	if (sigsetjmp(seize_jmp, 1)) {
		/* the tick may have come just after the call succeeded */
		struct hs_proc_status st;
		if (hs_proc_status_read(tid, &st, NULL) == 0 && st.tracer == getpid())
			return 0;
		return -ETIMEDOUT;
	}
	in_seize = 1;
	long r = ptrace(PTRACE_SEIZE, tid, NULL, NULL);
	int e = errno;
	in_seize = 0;
	return r < 0 ? -e : 0;
}

/* The image this run looks at (hs_session_pin_image): its addresses, and
 * its memory itself (hs_proc_mem_bind), which an execve replaces even
 * where the new image lays out the same addresses (no ASLR). */
static pid_t pinned_pid;
static struct hs_proc_image pinned;
static int pinned_mem = -1;

int hs_session_pin_image(pid_t pid)
{
	struct hs_proc_image img;
	if (pinned_mem >= 0)
		close(pinned_mem);
	/* bound first: an execve between the two is then seen as one */
	pinned_mem = hs_proc_mem_bind(pid);
	int r = hs_proc_image_read(pid, &img);
	if (r < 0) {
		/* nothing pinned: the fd is this pid's, not the one pinned
		 * before (whose execd would read it: 0 bytes once this pid is
		 * gone) */
		if (pinned_mem >= 0)
			close(pinned_mem);
		pinned_mem = -1;
		pinned_pid = 0;
		return r;
	}
	pinned = img;
	pinned_pid = pid;
	return 0;
}

bool hs_session_execd(pid_t pid)
{
	struct hs_proc_image img;
	if (pinned_pid != pid)
		return false;
	int r = hs_proc_image_read(pid, &img);
	if (r == -EAGAIN || (r == 0 && !hs_proc_image_same(&img, &pinned)))
		return true;
	/* it has memory (r == 0), but not the memory pinned */
	return r == 0 && pinned_mem >= 0 && hs_proc_mem_released(pinned_mem, pinned.v[0]);
}

static int execd(pid_t pid, struct hs_err *err)
{
	return hs_err_set(err, ESTALE, "pid %d exec'd (began a new program) during the look; run heapscope again",
			  (int)pid);
}

/* The process exists and is not just a zombie. */
static bool still_there(pid_t pid)
{
	struct hs_proc_status st;
	return hs_proc_status_read(pid, &st, NULL) == 0 && ((st.state != 'Z' && st.state != 'X') || st.threads > 1);
}

static int seize_new(struct hs_session *s, uint64_t deadline, int *added, struct hs_err *err)
{
	pid_t *tids;
	size_t n;
	int r = hs_proc_threads(s->pid, &tids, &n, err);
	/* /proc/PID/task may be missing for an instant while an execve in
	 * another thread takes the pid over */
	for (int k = 0; r == -ESRCH && k < 10 && still_there(s->pid); k++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
		r = hs_proc_threads(s->pid, &tids, &n, err);
	}
	if (r < 0)
		return r;
	*added = 0;
	for (size_t i = 0; i < n; i++) {
		if (find(s, tids[i]))
			continue;
		int sr = seize(tids[i]);
		/* Another tracer took it since the check at the start: if it
		 * is another heapscope and this one holds nothing yet, its hold
		 * is over in milliseconds; if nobody traces it now, whoever did
		 * has just let go.  Then again, up to the deadline: other
		 * heapscopes may take it first, again and again, and let go
		 * before a look at its status shows them.  Refused for 200 ms
		 * while nobody is seen to hold it, it is not a tracer's hold
		 * (a security module's refusal is the same every time). */
		for (uint64_t unheld = 0; sr == -EPERM && !s->n;) {
			struct hs_proc_status ts;
			uint64_t now = now_ns();
			/* a zombie (a leader that called pthread_exit) or an exiting
			 * thread refuses every time: nothing to wait for */
			if (thread_dead(s->pid, tids[i]))
				break;
			bool held = hs_proc_status_read(tids[i], &ts, NULL) == 0 && ts.tracer > 0 && ts.tracer != getpid();
			if (held)
				unheld = 0;     /* 200 ms in a row, not in all */
			else if (!unheld)
				unheld = now;
			if (!held && now - unheld > 200000000u)
				break;
			int left = now < deadline ? (int)((deadline - now) / 1000000) : 0;
			if (left <= 0 || !hs_proc_wait_untraced(tids[i], left))
				break;
			if (!held) {
				struct timespec nap = { 0, 1000000 };
				nanosleep(&nap, NULL);
			}
			sr = seize(tids[i]);
		}
		if (sr < 0) {
			int e = -sr;
			if (e == ESRCH || (e != ETIMEDOUT && thread_dead(s->pid, tids[i])))
				continue;       /* it exited, or is exiting (EPERM then) */
			pid_t tid = tids[i];
			free(tids);
			/* An execve killed the thread (EPERM: it is exiting; the
			 * thread that exec'd may have its tid already, and the
			 * old memory for a moment), or held us off past the
			 * deadline. */
			for (int k = 0; k < (e == EPERM ? 20 : 1); k++) {
				if (hs_session_execd(s->pid))
					return execd(s->pid, err);
				struct timespec ts = { 0, 5000000 };
				nanosleep(&ts, NULL);
			}
			if (e == ETIMEDOUT)
				return hs_err_set(err, ETIMEDOUT,
						  "cannot attach to thread %d of pid %d in time (is it in execve?)",
						  (int)tid, (int)s->pid);
			/* someone else (another heapscope, a debugger) took it since
			 * the check at the start */
			struct hs_proc_status ts;
			if (e == EPERM && hs_proc_status_read(tid, &ts, NULL) == 0 && ts.tracer > 0 && ts.tracer != getpid())
				return hs_err_set(err, EBUSY, "thread %d of pid %d is already traced by pid %d", (int)tid,
						  (int)s->pid, (int)ts.tracer);
			if (e == EPERM) {
				char hint[256];
				hs_proc_perm_hint(s->pid, hint, sizeof(hint));
				return hs_err_set(err, EPERM, "cannot attach to pid %d: Operation not permitted (%s)",
						  (int)s->pid, hint);
			}
			return hs_err_sys(err, e, "cannot attach to thread %d of pid %d", (int)tid, (int)s->pid);
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
	s->cue = -1;
	if (pinned_pid != pid)
		hs_session_pin_image(pid);
	install_handlers();
	active = s;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	int r, added, rounds = 0;
	tick_start(deadline);
	/* A stopped thread cannot clone, so once a listing adds nobody new
	 * after everyone listed before has stopped, all threads are held. */
	do {
		r = seize_new(s, deadline, &added, err);
		if (r == 0)
			r = wait_stops(s, deadline, err);
		if (r == 0 && added && hs_session_execd(pid))
			r = execd(pid, err);
	} while (r == 0 && added && ++rounds < 1000);
	tick_stop();
	/* Threads that exited meanwhile and were not reaped yet. */
	reap_exited(s);
	if (r == 0) {
		size_t live = 0;
		for (size_t i = 0; i < s->n; i++)
			live += !s->t[i].gone;
		/* no thread left, but the process is there: every thread we
		 * held was replaced by an execve */
		if (!live && still_there(pid) && !hs_proc_exiting(pid))
			r = execd(pid, err);
		else if (!live)
			r = hs_err_set(err, ESRCH, "pid %d exited", (int)pid);
	}
	/* Every thread is stopped now, so the image cannot change any more:
	 * is it the one the caller read the maps and the libc of? */
	if (r == 0 && hs_session_execd(pid))
		r = execd(pid, err);
	else if (r == -ETIMEDOUT && hs_session_execd(pid))
		r = execd(pid, err);
	if (r < 0) {
		hs_session_detach(s, NULL);
		return r;
	}
	*out = s;
	return 0;
}

/* Is tid exiting (PF_EXITING, in /proc/TID/stat's flags), or a zombie? */
static bool thread_in_exit(pid_t tid)
{
	char path[64], *text;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	if (hs_proc_slurp(path, &text, &len) < 0)
		return false;
	char *p = strrchr(text, ')');
	char state = 0;
	unsigned long flags = 0;
	bool r = p && sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) == 2 &&
		 (state == 'Z' || state == 'X' || (flags & 0x4));    /* PF_EXITING */
	free(text);
	return r;
}

/* A thread that is no longer in its stop (ESRCH from PTRACE_DETACH) was
 * killed meanwhile (an execve in another thread, a SIGKILL): it stays our
 * zombie until reaped, and an execve waits for it.  It is dying: wait for
 * it, briefly. */
static void reap_dying(pid_t tid)
{
	for (int k = 0; k < 500; k++) {
		if (reap_if_exited(tid) != 0 || !thread_in_exit(tid))
			return;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

int hs_session_detach(struct hs_session *s, struct hs_err *err)
{
	if (!s)
		return 0;
	undo_v = NULL;
	int ret = 0;
	/* Last seized first: another heapscope seizing in the same order
	 * (its first thread first) gets none until all are let go, so it
	 * never waits holding some (its attach waits only holding none). */
	for (size_t i = s->n; i-- > 0;) {
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
		if (ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->pending_sig) < 0) {
			if (errno == ESRCH)
				reap_dying(t->tid);
			else if (ret == 0)
				ret = hs_err_sys(err, errno, "cannot detach from thread %d", (int)t->tid);
		}
	}
	last_pause_us = s->t0_ns ? (now_ns() - s->t0_ns) / 1000 : 0;
	if (s->memfd > 0)
		close(s->memfd);
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

int hs_session_seccomp_filter(struct hs_session *s, pid_t tid, unsigned idx, void *insns, size_t max)
{
	struct hs_thread *t = find(s, tid);
	if (!t || t->gone || !t->stopped)
		return -ESRCH;
#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
	long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)(uintptr_t)idx, NULL);
	if (n < 0)
		return -errno;
	if ((size_t)n > max)
		return -E2BIG;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)(uintptr_t)idx, insns) != n)
		return errno ? -errno : -EIO;
	return (int)n;
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

void hs_session_set_return(struct hs_session *s, const struct hs_call_return *cr)
{
	s->cr = *cr;
	s->cr_state = 0;
}

/* Are the return trampolines' bytes what we expect, in the target? */
static int check_return(struct hs_session *s, pid_t tid, struct hs_err *err)
{
	const uint64_t at[3] = { s->cr.store, s->cr.sigreturn, s->cr.syscall };
	for (int i = 0; i < 3 && s->cr_state == 0; i++) {
		unsigned char got[16];
		struct iovec l = { got, s->cr.len[i] }, r = { (void *)at[i], s->cr.len[i] };
		if (!at[i] || !s->cr.len[i] || s->cr.len[i] > 16 ||
		    process_vm_readv(tid, &l, 1, &r, 1, 0) != (ssize_t)s->cr.len[i] ||
		    memcmp(got, s->cr.code[i], s->cr.len[i]))
			s->cr_state = -1;
	}
	if (s->cr_state < 0)
		return hs_err_set(err, ENOTSUP, "no return trampoline (rt_sigreturn) found in the target's libc: no call made");
	s->cr_state = 1;
	return 0;
}

/* The cue: a signal that the process ignores (SIG_IGN, or SIG_DFL whose
 * default is to ignore), that no thread blocks (a blocked one may be read
 * by signalfd or sigwait) and no handler catches.  Sent by the thread to
 * itself it stops it for the tracer, and is dropped if there is none.
 * 0: none fits; the call then runs under PTRACE_SYSCALL. */
static int cue_signal(struct hs_session *s)
{
	struct hs_proc_status ps;
	if (hs_proc_status_read(s->pid, &ps, NULL) < 0)
		return 0;
	uint64_t blocked = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct hs_proc_status ts;
		if (!s->t[i].gone && hs_proc_status_read(s->t[i].tid, &ts, NULL) == 0)
			blocked |= ts.sig_blk;
	}
	static const int dfl_ignore[] = { SIGURG, SIGWINCH, SIGCHLD };
	for (size_t i = 0; i < sizeof(dfl_ignore) / sizeof(dfl_ignore[0]); i++) {
		uint64_t bit = 1ull << (dfl_ignore[i] - 1);
		if (!(ps.sig_cgt & bit) && !(blocked & bit))
			return dfl_ignore[i];
	}
	for (int sig = 1; sig < 32; sig++) {
		uint64_t bit = 1ull << (sig - 1);
		if ((ps.sig_ign & bit) && !(blocked & bit) && sig != SIGKILL && sig != SIGSTOP)
			return sig;
	}
	return 0;
}

/* Every signal blocked but the faults (a blocked fault is forced, which
 * resets the process's handler, the JVM's or a crash reporter's, to the
 * default; unblocked, it stops the thread for us and is never delivered)
 * and, when given, the cue. */
static uint64_t call_mask(int cue)
{
	static const int faults[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS };
	uint64_t m = ~0ull;
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		m &= ~(1ull << (faults[i] - 1));
	if (cue)
		m &= ~(1ull << (cue - 1));
	return m;
}

/* The CPU's XSAVE layout, read at the first call. */
static struct hs_xstate_layout call_xl;
static int call_xl_read;

/* 1. Save what the call will change; 2. write the frames below the red
 * zone; 3. one PTRACE_SETREGS, to an rt_sigreturn into frame C, that
 * starts the call.  Nothing else of the thread is written: the call's
 * signal mask and the thread's own come from the frames, so that at every
 * moment the thread either is as it was or runs the call and comes back
 * by itself (heapscope SIGKILLed between two ptrace calls included). */
static int call_prepare(struct hs_session *s, pid_t tid, const struct hs_callframe_in *proto, struct hs_callframe *fr,
			struct hs_err *err)
{
	memset(&call.regs, 0, sizeof(call.regs));
	call.tid = tid;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &call.regs) < 0)
		return hs_err_sys(err, errno, "cannot read registers of thread %d", (int)tid);
	/* The extended state is as large as the kernel says (gdb 13 sends a
	 * smaller buffer and fails on new CPUs). */
	struct iovec iov = { call.xstate, sizeof(call.xstate) };
	call.xlen = ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0 ? iov.iov_len : 0;
	if (call.xlen && !call_xl_read)
		call_xl_read = hs_xstate_layout_read(&call_xl) == 0 ? 1 : -1;
	if (call.xlen && call_xl_read < 0)
		call.xlen = 0;
	call.have_fpregs = !call.xlen && ptrace(PTRACE_GETFPREGS, tid, NULL, &call.fpregs) == 0;
	if (!call.xlen && !call.have_fpregs)
		return hs_err_set(err, ENOTSUP, "cannot save the floating-point state of thread %d: no call made", (int)tid);
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(call.sigmask), &call.sigmask) < 0)
		return hs_err_sys(err, errno, "cannot read the signal mask of thread %d", (int)tid);
	struct hs_callframe_in in = *proto;
	in.regs = call.regs;
	in.sigmask = call.sigmask;
	in.xstate = call.xlen ? call.xstate : NULL;
	in.xlen = call.xlen;
	in.layout = &call_xl;
	in.fxsave = &call.fpregs;
	in.store = s->cr.store, in.sigreturn = s->cr.sigreturn, in.syscall = s->cr.syscall;
	in.store_pops = s->cr.store_pops;
	in.pid = s->pid, in.tid = tid;
	in.call_mask = call_mask(0);
	in.cue_mask = call_mask(in.cue);
	static unsigned char img[CALL_STACK_MAX] __attribute__((aligned(64)));
	int r = hs_callframe_build(&in, img, sizeof(img), fr);
	if (r == -ENOSPC)
		return hs_err_set(err, ENOSPC, "the call needs %llu bytes of stack: no call made", (unsigned long long)fr->len);
	if (r < 0)
		return hs_err_set(err, -r, "cannot lay out the call's frames in thread %d: no call made", (int)tid);
	call.stack_addr = fr->sp;
	call.stack_len = fr->len;
	struct iovec local = { call.stack_save, call.stack_len }, remote = { (void *)fr->sp, call.stack_len };
	if (process_vm_readv(tid, &local, 1, &remote, 1, 0) != (ssize_t)call.stack_len)
		return hs_err_sys(err, errno, "cannot read the stack of thread %d at 0x%llx", (int)tid,
				  (unsigned long long)fr->sp);
	call.active = 1;
	struct iovec limg = { img, call.stack_len };
	if (process_vm_writev(tid, &limg, 1, &remote, 1, 0) != (ssize_t)call.stack_len)
		return hs_err_sys(err, errno, "cannot write the stack of thread %d", (int)tid);
	if (ptrace(PTRACE_SETOPTIONS, tid, NULL, (void *)PTRACE_O_TRACESYSGOOD) < 0 ||
	    ptrace(PTRACE_SETREGS, tid, NULL, &fr->start) < 0)
		return hs_err_sys(err, errno, "cannot set up the call in thread %d", (int)tid);
	return 0;
}

/* After frame B's rt_sigreturn: is the thread what it was?  The kernel
 * put back its registers, mask and extended state in one system call;
 * anything it did not (a state it refused) is put back here by ptrace. */
static int call_check(pid_t tid, const struct hs_callframe *fr, struct hs_err *err)
{
	struct user_regs_struct now;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &now) < 0)
		return hs_err_sys(err, errno, "cannot read registers of thread %d after the call", (int)tid);
	const struct user_regs_struct *b = &fr->back;
	if (now.rip != b->rip || now.rsp != b->rsp || now.rax != b->rax || now.rbx != b->rbx || now.rcx != b->rcx ||
	    now.rdx != b->rdx || now.rsi != b->rsi || now.rdi != b->rdi || now.rbp != b->rbp || now.r8 != b->r8 ||
	    now.r9 != b->r9 || now.r10 != b->r10 || now.r11 != b->r11 || now.r12 != b->r12 || now.r13 != b->r13 ||
	    now.r14 != b->r14 || now.r15 != b->r15) {
		/* not where frame B said: put it back by hand, as the frame
		 * would have */
		call.regs = *b;
		return hs_err_set(err, EIO, "thread %d did not return to 0x%llx after the call", (int)tid,
				  (unsigned long long)b->rip);
	}
	uint64_t mask;
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(mask), &mask) < 0 || mask != call.sigmask)
		ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(call.sigmask), &call.sigmask);
	if (call.xlen) {
		/* the registers' bytes: legacy area (x87, MXCSR, XMM) and each
		 * component frame B restored */
		static unsigned char x[sizeof(call.xstate)] __attribute__((aligned(64)));
		struct iovec iov = { x, sizeof(x) };
		bool same = ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0 && iov.iov_len == call.xlen &&
			    !memcmp(x, call.xstate, 416);
		for (int i = 2; same && i < 64; i++)
			if (fr->features >> i & 1)
				same = !memcmp(x + call_xl.offset[i], call.xstate + call_xl.offset[i], call_xl.size[i]);
		if (!same) {
			struct iovec sv = { call.xstate, call.xlen };
			ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &sv);
		}
	}
	return 0;
}

/* Past timeout_ms the other threads are let go (the call may wait for a
 * lock one of them holds). */
static void release_others(struct hs_session *s, const struct hs_thread *t)
{
	for (size_t i = 0; i < s->n; i++) {
		struct hs_thread *o = &s->t[i];
		if (o != t && o->stopped && !o->gone && ptrace(PTRACE_DETACH, o->tid, NULL, (void *)(long)o->pending_sig) == 0)
			o->gone = 1;    /* released: nothing more to do for it */
	}
	s->released = true;
}

static int call_gone(struct hs_thread *t, int e, const char *what, struct hs_err *err)
{
	call.running = 0;
	call.active = 0;
	t->gone = 1;
	return hs_err_set(err, e, "%s", what);
}

static int read_return(pid_t tid, const struct hs_callframe *fr, uint64_t *ret, struct hs_err *err)
{
	errno = 0;
	long v = ptrace(PTRACE_PEEKDATA, tid, (void *)fr->ret_at, NULL);
	if (errno)
		return hs_err_sys(err, errno, "cannot read the return value of the call");
	*ret = (uint64_t)v;
	return 0;
}

/* 4. Run the call.  With a cue, under PTRACE_CONT until the cue that
 * frame A sends; then (and from the start without one) under
 * PTRACE_SYSCALL until the exit of frame B's rt_sigreturn, which puts the
 * thread back by itself.  Once it runs, the call is waited for: stopped
 * half-way, malloc_trim would leave its arena locked.  Past a hard limit
 * the thread is let go: it finishes the call and returns through its
 * frames by itself.  1: the thread is back; 0 with call.running clear:
 * to be put back by call_restore; <0 with the thread gone or released. */
static int call_run(struct hs_session *s, struct hs_thread *t, const struct hs_callframe *fr, int cue, int timeout_ms,
		    uint64_t *ret, int *stopsig, struct hs_err *err)
{
	pid_t tid = t->tid;
	int resume = cue ? PTRACE_CONT : PTRACE_SYSCALL;
	call.running = 1;
	if (ptrace(resume, tid, NULL, NULL) < 0) {
		call.running = 0;
		return hs_err_sys(err, errno, "cannot resume thread %d", (int)tid);
	}
	uint64_t start = now_ns(), deadline = start + (uint64_t)timeout_ms * 1000000u;
	uint64_t hard = start + (uint64_t)timeout_ms * 1000000u * 10 + 60000000000ull;
	uint64_t after_syscall = s->cr.syscall + 2, after_sigreturn = s->cr.sigreturn + s->cr.len[1];
	int at_sigreturn = 0, have_ret = 0;
	for (;;) {
		int st;
		pid_t w = waitpid(tid, &st, WNOHANG | __WALL);
		if (w == 0) {
			uint64_t now = now_ns();
			if (now > deadline && !s->released) {
				release_others(s, t);
			} else if (now > hard) {
				ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
				for (int i = 0; i < 2000 && waitpid(tid, &st, __WALL | WNOHANG) == 0; i++) {
					struct timespec ts = { 0, 1000000 };
					nanosleep(&ts, NULL);
				}
				ptrace(PTRACE_DETACH, tid, NULL, NULL);
				call.running = 0;
				call.active = 0;
				t->gone = 1;
				return hs_err_set(err, ETIMEDOUT, "the call did not return in %llu s: thread %d released to finish "
						  "it and restore itself", (unsigned long long)((now - start) / 1000000000u), (int)tid);
			}
			/* the process died: its exit is not reported while we hold
			 * other threads, so look */
			struct hs_proc_status ps;
			if (hs_proc_status_read(tid, &ps, NULL) < 0 || ps.state == 'Z' || ps.state == 'X')
				return call_gone(t, ESRCH, "the process died during the call", err);
			struct timespec ts = { 0, 20000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 || WIFEXITED(st) || WIFSIGNALED(st))
			return call_gone(t, ESRCH, "the thread died during the call", err);
		struct user_regs_struct now;
		if (!WIFSTOPPED(st) || ptrace(PTRACE_GETREGS, tid, NULL, &now) < 0) {
			call.running = 0;
			return hs_err_set(err, EIO, "thread %d stopped oddly during the call", (int)tid);
		}
		int sig = WSTOPSIG(st), event = (unsigned)st >> 16;
		bool stop_sig = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
		if (cue && sig == cue && !event && now.rip == after_syscall && now.rsp == fr->b_at && !have_ret) {
			/* the cue, sent by frame A: the call is done.  The cue is
			 * dropped, and the thread goes on into frame B. */
			int r = read_return(tid, fr, ret, err);
			if (r < 0) {
				call.running = 0;
				return r;
			}
			have_ret = 1;
			resume = PTRACE_SYSCALL;
			if (ptrace(resume, tid, NULL, NULL) == 0)
				continue;
		} else if (cue && sig == cue && !event) {
			/* the same signal from elsewhere: the process ignores it, so
			 * dropping it changes nothing */
			if (ptrace(resume, tid, NULL, NULL) == 0)
				continue;
		} else if (sig == (SIGTRAP | 0x80) && resume == PTRACE_SYSCALL) {
			/* a system call of the callee, or frame B's rt_sigreturn */
			if (at_sigreturn) {
				/* its exit: the thread put itself back */
				call.running = 0;
				return 1;
			}
			if (now.orig_rax == 15 && now.rip == after_sigreturn && now.rsp == fr->b_at + 8) {
				if (!have_ret) {
					int r = read_return(tid, fr, ret, err);
					if (r < 0) {
						call.running = 0;
						return r;
					}
					have_ret = 1;
				}
				at_sigreturn = 1;
			}
			if (ptrace(PTRACE_SYSCALL, tid, NULL, NULL) == 0)
				continue;
		} else if (event == PTRACE_EVENT_STOP || (!event && stop_sig)) {
			/* a job-control stop (or an interrupt), or a stop signal for
			 * the thread (SIGSTOP is never blocked, so it comes mid-call
			 * too): abandoned half-way the callee would keep what it holds
			 * (an arena's lock); the call goes on, and the process is
			 * stopped after it */
			if (stop_sig)
				*stopsig = sig;
			if (ptrace(resume, tid, NULL, NULL) == 0)
				continue;
		} else if (!event && sig != SIGSEGV && sig != SIGBUS && sig != SIGILL && sig != SIGFPE && sig != SIGTRAP &&
			   sig != SIGSYS && now.rip == fr->start.rip && now.rsp == fr->start.rsp) {
			/* a signal pending when the thread was let run, taken before
			 * it ran anything of the call: not called, the thread put
			 * back, the signal delivered at detach */
			call.running = 0;
			t->pending_sig = sig;
			return hs_err_set(err, EINTR, "signal %d arrived for thread %d before the call: not called", sig,
					  (int)tid);
		} else {
			/* A fault inside the callee: the signal is not delivered, the
			 * call is abandoned. */
			call.running = 0;
			return hs_err_set(err, EFAULT, "the call faulted (signal %d at 0x%llx): abandoned", sig,
					  (unsigned long long)now.rip);
		}
		call.running = 0;
		return hs_err_sys(err, errno, "cannot resume thread %d", (int)tid);
	}
}

static int call_data(struct hs_session *s, pid_t tid, uint64_t func, const uint64_t *args, int nargs,
		     const void *data, size_t dlen, int timeout_ms, uint64_t *ret, struct hs_err *err)
{
	struct hs_thread *t = find(s, tid);
	if (!t || t->gone || !t->stopped)
		return hs_err_set(err, ESRCH, "thread %d is not stopped", (int)tid);
	if (nargs > 6 || dlen > 4096)
		return hs_err_set(err, EINVAL, "at most six arguments and 4 KiB of data");
	if (t->pending_sig)
		return hs_err_set(err, EBUSY, "thread %d holds signal %d: not used for a call", (int)tid, t->pending_sig);
	int rc = check_return(s, tid, err);
	if (rc < 0)
		return rc;
	/* the dispositions and masks cannot change while every thread is
	 * stopped: read once per session, not per call */
	if (s->cue < 0)
		s->cue = cue_signal(s);
	struct hs_callframe_in in;
	memset(&in, 0, sizeof(in));
	in.func = func;
	in.nargs = nargs;
	for (int i = 0; i < nargs; i++)
		in.args[i] = args[i];
	in.data = data, in.dlen = dlen;
	in.data_tag = HS_CALL_DATA(0), in.data_tag_mask = HS_CALL_DATA_MASK;
	in.cue = s->cue;
	struct hs_callframe fr;
	rc = call_prepare(s, tid, &in, &fr, err);
	if (rc < 0) {
		call_restore();
		return rc;
	}
	int stopsig = 0;
	rc = call_run(s, t, &fr, s->cue, timeout_ms, ret, &stopsig, err);
	if (rc == 1) {
		rc = call_check(tid, &fr, err);
		if (rc == 0) {
			call.active = 0;
			stack_put(call.stack_save, call.stack_len);
		}
	}
	call_restore();    /* what the thread did not put back itself */
	if (stopsig)
		kill(s->pid, stopsig);  /* the stop it asked for, now */
	return rc;
}

int hs_session_poke(struct hs_session *s, uint64_t addr, uint64_t expect, uint64_t val, struct hs_err *err)
{
	if (!s->n)
		return hs_err_set(err, ESRCH, "no thread of pid %d is stopped", (int)s->pid);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)s->pid);
	if (s->memfd <= 0 && (s->memfd = open(path, O_RDWR | O_CLOEXEC)) < 0)
		return hs_err_sys(err, errno, "cannot open %s", path);
	int fd = s->memfd;
	uint64_t cur;
	int r = 0;
	if (pread(fd, &cur, 8, (off_t)addr) != 8)
		r = hs_err_sys(err, errno ? errno : EIO, "cannot read 0x%llx in pid %d", (unsigned long long)addr, (int)s->pid);
	else if (cur != expect)
		r = hs_err_set(err, EAGAIN, "0x%llx in pid %d holds 0x%llx, not 0x%llx: not written", (unsigned long long)addr,
			       (int)s->pid, (unsigned long long)cur, (unsigned long long)expect);
	else if (pwrite(fd, &val, 8, (off_t)addr) != 8)
		r = hs_err_sys(err, errno ? errno : EIO, "cannot write 0x%llx in pid %d", (unsigned long long)addr, (int)s->pid);
	return r;
}

void hs_session_undo(struct hs_session *s, const struct hs_poke *v, const volatile size_t *n)
{
	(void)s;
	undo_v = NULL;   /* the handler sees the old pair or the new, never a mix */
	undo_n = n;
	undo_v = v;
}

bool hs_session_released(const struct hs_session *s)
{
	return s->released;
}

bool hs_session_holds_signal(const struct hs_session *s, pid_t tid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->t[i].tid == tid)
			return s->t[i].pending_sig != 0;
	return false;
}
