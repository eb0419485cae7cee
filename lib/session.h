/* A ptrace session: every thread of a process stopped, for as short a time
 * as possible, and always released.  This is the only module that calls
 * ptrace(2). */
#ifndef HS_SESSION_H
#define HS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct hs_session;

struct hs_thread_regs {
	uint64_t ip, sp, fs_base;
};

/* Seize every thread of pid (and threads born meanwhile), interrupt them and
 * wait until all are stopped, at most timeout_ms.  Installs handlers for
 * SIGINT, SIGTERM, SIGHUP, SIGQUIT and fatal signals that detach before
 * heapscope dies.  On failure every thread already seized is released. */
int hs_session_attach(pid_t pid, int timeout_ms, struct hs_session **s, struct hs_err *err);

/* Remember pid's program image (hs_proc_image_read) as the one this run
 * looks at: from then on hs_session_attach to pid fails with -ESTALE
 * ("pid N exec'd during the look") once every thread is stopped, if the
 * process has called execve since, for the maps, the libc and the
 * addresses read before belong to the old program.  hs_session_attach
 * pins the image itself when nothing (or another pid) was pinned.  Call
 * it before reading anything of pid.  -EAGAIN: pid is inside execve. */
int hs_session_pin_image(pid_t pid);
/* Has pid exec'd (or is it exec'ing) since its image was pinned? */
bool hs_session_execd(pid_t pid);

/* Resume and detach every thread; signals that arrived while stopped are
 * delivered.  Returns the first error but always detaches all it can, and
 * frees s.  Safe with s == NULL. */
int hs_session_detach(struct hs_session *s, struct hs_err *err);

/* Threads stopped in this session (sorted by tid). */
size_t hs_session_threads(const struct hs_session *s, const pid_t **tids);

/* Registers of a stopped thread. */
int hs_session_regs(struct hs_session *s, pid_t tid, struct hs_thread_regs *regs, struct hs_err *err);

/* A stopped thread's seccomp filter number idx (0: the newest) copied to
 * insns (struct sock_filter[max]): its instruction count; -ENOENT past
 * the oldest; -EINVAL none at all (or a kernel without the request);
 * -EACCES not allowed (CAP_SYS_ADMIN needed); -E2BIG more than max. */
int hs_session_seccomp_filter(struct hs_session *s, pid_t tid, unsigned idx, void *insns, size_t max);

/* Microseconds from the first interrupt until now (while attached), or
 * until the last thread was resumed (after detach: see the out-parameter
 * of hs_session_detach's caller through hs_session_last_pause_us). */
uint64_t hs_session_pause_us(const struct hs_session *s);
/* The pause of the most recent session that was detached. */
uint64_t hs_session_last_pause_us(void);

/* Did a call outlive its timeout, so that the other threads were let go
 * (and run now)? */
bool hs_session_released(const struct hs_session *s);

/* Is the thread stopped with a signal heapscope holds for it? */
bool hs_session_holds_signal(const struct hs_session *s, pid_t tid);

/* Replace the 8-byte word at addr in the stopped process, if it holds
 * expect: written through /proc/PID/mem, which may write a read-only page
 * (a GOT after RELRO) without changing the mapping's protection (the
 * kernel copies the page on write, as for a breakpoint).  -EAGAIN if the
 * word is not expect (nothing written). */
int hs_session_poke(struct hs_session *s, uint64_t addr, uint64_t expect, uint64_t val, struct hs_err *err);

/* Words about to be written with hs_session_poke that heapscope's
 * emergency path (a signal that kills it while attached) puts back before
 * it detaches: v[i].old wherever v[i].new is found, for i < *n as *n is
 * when the signal comes (count a word before writing it).  v and n must
 * stay valid until hs_session_undo(s, NULL, NULL) or the detach, which
 * forgets them. */
struct hs_poke {
	uint64_t addr, old, new;
};
void hs_session_undo(struct hs_session *s, const struct hs_poke *v, const volatile size_t *n);

/* Code in the target that a call returns through, found by the caller in
 * the target's libc (hs_libc_call_return):
 *   store:      mov %rax,(%rbx); then store_pops pops; ret
 *   sigreturn:  mov $15,%rax; syscall   (glibc's __restore_rt)
 *   syscall:    syscall; ret
 * The callee returns into store, which keeps its return value on the
 * stack; rt_sigreturn then loads a first signal frame that makes the
 * thread send itself a signal it ignores (the tracer's cue: a stop while
 * traced, nothing if not), and a second that puts the thread back as it
 * was: registers, extended state, signal mask.  So a thread whose tracer
 * vanished (heapscope SIGKILLed) or gave up finishes the call and resumes
 * by itself.  The bytes are checked in the target before the first call. */
struct hs_call_return {
	uint64_t store, sigreturn, syscall;
	int store_pops;
	unsigned char code[3][16];   /* their bytes, as the file has them */
	unsigned char len[3];
};
void hs_session_set_return(struct hs_session *s, const struct hs_call_return *cr);

/* Call func(args...) in stopped thread tid of the session, x86_64 System V:
 * up to six integer arguments, on the thread's stack below its red zone,
 * all signals but faults blocked in it meanwhile, returning through the
 * code above (needed: -ENOTSUP without it).  The call starts with one
 * register set (an rt_sigreturn into a frame holding the call) and ends
 * with the thread's own rt_sigreturn through the frame that holds it as
 * it was, checked after; the frames are built by lib/callframe.h.  A
 * fault inside the callee abandons it (signal mask, extended state and
 * registers restored by ptrace, in that order).  Past timeout_ms the other threads are released; past a hard
 * limit the calling thread is released too, to finish the call and
 * restore itself.  Returns 0 with *ret the function's return value, or
 * -errno: the mechanism failed (the function may not have run, or was
 * abandoned). */
int hs_session_call(struct hs_session *s, pid_t tid, uint64_t func, const uint64_t *args, int nargs, int timeout_ms,
		    uint64_t *ret, struct hs_err *err);

/* The same with up to 4 KiB of data (strings) placed on the stack for the
 * call: an argument HS_CALL_DATA(off) becomes the address of data + off.
 * The stack words are restored afterwards like everything else. */
#define HS_CALL_DATA(off) (0xfeedda7a00000000ull | (uint64_t)(off))
#define HS_CALL_DATA_MASK 0xffffffffffff0000ull
int hs_session_call_data(struct hs_session *s, pid_t tid, uint64_t func, const uint64_t *args, int nargs,
			 const void *data, size_t dlen, int timeout_ms, uint64_t *ret, struct hs_err *err);

#endif
