/* The stack image of a remote call on x86_64: pure (no system calls), so
 * that a unit test can check every byte.  lib/session.c saves the thread,
 * writes the image below its red zone and sets one register set; all else
 * happens through rt_sigreturn, so that the thread is whole whenever
 * heapscope dies (see docs/DESIGN.md, "Remote calls").
 *
 * From the top (the thread's rsp - 128, its red zone kept):
 *   frame C  an rt_sigframe: the call itself (function, arguments, the
 *            stack pointer below, the call's signal mask), loaded by the
 *            one rt_sigreturn that starts the call;
 *   data     up to 4 KiB (strings the callee reads);
 *   fpstate  the thread's XSAVE image (64-byte aligned) with the software
 *            bytes and FP_XSTATE_MAGIC2 that rt_sigreturn checks, or its
 *            legacy FXSAVE image;
 *   frame B  the thread as it was: registers, fpstate, its signal mask;
 *   frame A  tgkill(pid, tid, cue) (getpid without a cue) at `syscall;
 *            ret`, whose ret goes on into frame B;
 *   the store's pops, the first the return value's slot;
 *   sp:      the return address into the store (aligned as after a call).
 */
#ifndef HS_CALLFRAME_H
#define HS_CALLFRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* XSAVE components in the standard (uncompacted) format, from CPUID leaf
 * 0xD: component i at offset[i], size[i] bytes (0: none). */
struct hs_xstate_layout {
	uint32_t offset[64], size[64];
};

/* The running CPU's layout (CPUID).  0, or -ENOTSUP without XSAVE. */
int hs_xstate_layout_read(struct hs_xstate_layout *l);

/* Components whose state the kernel enables only on request (AMX tile
 * data, arch_prctl(ARCH_REQ_XCOMP_PERM)): outside the signal frame of a
 * thread that has not asked for them. */
#define HS_XFEATURE_DYNAMIC (1ull << 18)

/* The signal-frame size of a ptrace XSAVE image (NT_X86_XSTATE) of xlen
 * bytes and the features rt_sigreturn is to restore from it: those the
 * image's software bytes name (the kernel's user features), less the
 * dynamic ones unless the image shows them in use (XSTATE_BV).  The size
 * is never above the kernel's for the thread (rt_sigreturn restores only
 * x87/SSE if it is), and never above xlen.  0 if the image is too short. */
size_t hs_xstate_sigframe_size(const unsigned char *xstate, size_t xlen, const struct hs_xstate_layout *l,
			       uint64_t *features);

struct hs_callframe_in {
	struct user_regs_struct regs;   /* the thread as stopped */
	uint64_t sigmask;               /* its signal mask */
	const unsigned char *xstate;    /* its NT_X86_XSTATE image, or NULL */
	size_t xlen;
	const struct hs_xstate_layout *layout;   /* with xstate */
	const void *fxsave;             /* else its FXSAVE image (512 bytes) */
	const void *data;               /* copied for the callee */
	size_t dlen;
	uint64_t func, args[6];
	int nargs;
	uint64_t data_tag, data_tag_mask;   /* an argument a with (a & mask) == tag is data + (a & ~mask) */
	uint64_t store, sigreturn, syscall; /* hs_call_return's code */
	int store_pops;
	pid_t pid, tid;
	int cue;                        /* 0: no cue (getpid in frame A) */
	uint64_t call_mask, cue_mask;   /* masks during the call, in frame A */
};

struct hs_callframe {
	uint64_t sp, len;               /* the image covers [sp, sp + len) */
	uint64_t a_at, b_at, c_at, fp_at, data_at, ret_at;
	size_t fp_len;                  /* bytes of fpstate in the image */
	uint64_t features;              /* what frame B's fpstate restores */
	struct user_regs_struct start;  /* the one register set that starts the call */
	struct user_regs_struct back;   /* the registers frame B puts back */
};

/* Build the image into img (cap bytes).  0, or -ENOSPC / -EINVAL. */
int hs_callframe_build(const struct hs_callframe_in *in, unsigned char *img, size_t cap, struct hs_callframe *out);

/* The registers rt_sigreturn brings a stopped thread back to: one stopped
 * inside an interrupted system call restarts it, as the kernel would have
 * had no signal handler run. */
struct user_regs_struct hs_callframe_resume_regs(const struct user_regs_struct *r);

#endif
