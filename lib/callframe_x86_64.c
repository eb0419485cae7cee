/* The stack image of a remote call on x86_64 (see callframe.h). */
#include <cpuid.h>
#include <errno.h>
#include <string.h>

#include "callframe.h"

/* The kernel's signal frame (arch/x86/include/asm/sigframe.h,
 * uapi/asm/sigcontext.h): what rt_sigreturn reads. */
struct k_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate, reserved1[8];
};
struct k_ucontext {
	uint64_t uc_flags, uc_link;
	uint64_t ss_sp;
	int32_t ss_flags, pad;
	uint64_t ss_size;
	struct k_sigcontext mc;
	uint64_t sigmask;
};
struct k_rt_sigframe {
	uint64_t pretcode;
	struct k_ucontext uc;
	unsigned char info[128];
};
/* struct _fpx_sw_bytes, at offset 464 of the FXSAVE area */
struct k_fpx_sw_bytes {
	uint32_t magic1, extended_size;
	uint64_t xfeatures;
	uint32_t xstate_size, pad[7];
};
_Static_assert(sizeof(struct k_sigcontext) == 256, "sigcontext");
_Static_assert(sizeof(struct k_rt_sigframe) == 440, "rt_sigframe");
_Static_assert(sizeof(struct k_fpx_sw_bytes) == 48, "_fpx_sw_bytes");

#define UC_FP_XSTATE_ 0x1
#define UC_SIGCONTEXT_SS_ 0x2
#define UC_STRICT_RESTORE_SS_ 0x4
#define FP_XSTATE_MAGIC1_ 0x46505853u
#define FP_XSTATE_MAGIC2_ 0x46505845u
#define XSAVE_SW_BYTES 464
#define XSAVE_HEADER 512
#define XSAVE_MIN 576          /* legacy area + header */
#define ERESTARTSYS_ 512
#define ERESTARTNOINTR_ 513
#define ERESTARTNOHAND_ 514
#define ERESTART_RESTARTBLOCK_ 516

int hs_xstate_layout_read(struct hs_xstate_layout *l)
{
	unsigned a, b, c, d;
	memset(l, 0, sizeof(*l));
	if (__get_cpuid_max(0, NULL) < 0xd || !__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 26)))
		return -ENOTSUP;
	for (unsigned i = 2; i < 64; i++) {
		__cpuid_count(0xd, i, a, b, c, d);
		if (c & 1)      /* a supervisor component: never in a user image */
			continue;
		l->size[i] = a;
		l->offset[i] = b;
	}
	return 0;
}

size_t hs_xstate_sigframe_size(const unsigned char *xstate, size_t xlen, const struct hs_xstate_layout *l,
			       uint64_t *features)
{
	if (xlen < XSAVE_MIN)
		return 0;
	uint64_t user, inuse;
	memcpy(&user, xstate + XSAVE_SW_BYTES, 8);
	memcpy(&inuse, xstate + XSAVE_HEADER, 8);
	uint64_t f = user;
	if (!(inuse & HS_XFEATURE_DYNAMIC))
		f &= ~HS_XFEATURE_DYNAMIC;
	size_t size = XSAVE_MIN;
	for (int i = 2; i < 64; i++) {
		if (!(f >> i & 1))
			continue;
		size_t end = (size_t)l->offset[i] + l->size[i];
		if (!l->size[i] || end > xlen) {
			f &= ~(1ull << i);   /* unknown to CPUID, or outside the image: not restored */
			continue;
		}
		if (end > size)
			size = end;
	}
	*features = f;
	return size;
}

struct user_regs_struct hs_callframe_resume_regs(const struct user_regs_struct *r)
{
	struct user_regs_struct o = *r;
	if ((long long)r->orig_rax >= 0) {
		switch ((long long)r->rax) {
		case -ERESTARTSYS_:
		case -ERESTARTNOINTR_:
		case -ERESTARTNOHAND_:
			o.rax = r->orig_rax;
			o.rip -= 2;
			break;
		case -ERESTART_RESTARTBLOCK_:
			o.rax = 219;    /* __NR_restart_syscall */
			o.rip -= 2;
			break;
		}
	}
	o.orig_rax = (unsigned long long)-1;
	return o;
}

static void fill_frame(unsigned char *at, const struct user_regs_struct *r, uint64_t pretcode, uint64_t fpstate,
		       uint64_t sigmask, int xsave)
{
	struct k_rt_sigframe f;
	memset(&f, 0, sizeof(f));
	f.pretcode = pretcode;
	f.uc.uc_flags = UC_SIGCONTEXT_SS_ | UC_STRICT_RESTORE_SS_ | (xsave ? UC_FP_XSTATE_ : 0);
	/* An invalid sigaltstack mode: rt_sigreturn's restore_altstack fails
	 * with EINVAL, which it ignores, and the thread's own alternate stack
	 * (which heapscope cannot read) stays as it is. */
	f.uc.ss_flags = 3;
	struct k_sigcontext *m = &f.uc.mc;
	m->r8 = r->r8, m->r9 = r->r9, m->r10 = r->r10, m->r11 = r->r11;
	m->r12 = r->r12, m->r13 = r->r13, m->r14 = r->r14, m->r15 = r->r15;
	m->rdi = r->rdi, m->rsi = r->rsi, m->rbp = r->rbp, m->rbx = r->rbx;
	m->rdx = r->rdx, m->rax = r->rax, m->rcx = r->rcx, m->rsp = r->rsp;
	m->rip = r->rip, m->eflags = r->eflags;
	m->cs = (uint16_t)r->cs, m->gs = (uint16_t)r->gs, m->fs = (uint16_t)r->fs, m->ss = (uint16_t)r->ss;
	m->fpstate = fpstate;
	f.uc.sigmask = sigmask;
	memcpy(at, &f, sizeof(f));
}

/* The thread's extended state as rt_sigreturn wants it: the ptrace image
 * is the signal frame's but for the software bytes that say it is
 * complete (ptrace puts the kernel's user features there, as gdb knows:
 * I386_LINUX_XSAVE_XCR0_OFFSET) and the magic after it.  Their sizes are
 * the signal frame's, not the regset's: with AMX the regset holds the
 * tile data (11008 bytes) that a thread's frame has only once it asked
 * for it, and a size above the frame's makes rt_sigreturn restore x87/SSE
 * alone, the vector registers' upper halves lost. */
static size_t put_fpstate(const struct hs_callframe_in *in, unsigned char *fx, uint64_t *features)
{
	if (!in->xstate) {
		memcpy(fx, in->fxsave, 512);
		*features = 3;
		return 512;
	}
	size_t n = hs_xstate_sigframe_size(in->xstate, in->xlen, in->layout, features);
	memcpy(fx, in->xstate, n);
	struct k_fpx_sw_bytes sw = {
		.magic1 = FP_XSTATE_MAGIC1_, .extended_size = (uint32_t)n + 4, .xfeatures = *features,
		.xstate_size = (uint32_t)n,
	};
	memcpy(fx + XSAVE_SW_BYTES, &sw, sizeof(sw));
	uint32_t m2 = FP_XSTATE_MAGIC2_;
	memcpy(fx + n, &m2, 4);
	return n + 4;
}

int hs_callframe_build(const struct hs_callframe_in *in, unsigned char *img, size_t cap, struct hs_callframe *out)
{
	const uint64_t fsz = sizeof(struct k_rt_sigframe);
	uint64_t fp_features;
	if (in->nargs < 0 || in->nargs > 6 || in->dlen > 4096 || in->store_pops < 0 || in->store_pops > 16)
		return -EINVAL;
	if (in->xstate && !hs_xstate_sigframe_size(in->xstate, in->xlen, in->layout, &fp_features))
		return -EINVAL;
	size_t fp_len = in->xstate ? hs_xstate_sigframe_size(in->xstate, in->xlen, in->layout, &fp_features) + 4 : 512;
	memset(out, 0, sizeof(*out));
	uint64_t top = in->regs.rsp - 128;
	out->c_at = (top - fsz) & ~(uint64_t)15;
	out->data_at = (out->c_at - in->dlen) & ~(uint64_t)15;
	out->fp_at = (out->data_at - fp_len) & ~(uint64_t)63;
	uint64_t b_max = (out->fp_at - fsz) & ~(uint64_t)15;
	uint64_t pops = (uint64_t)in->store_pops;
	out->sp = ((b_max - fsz - 8 * pops - 8 - 8) & ~(uint64_t)15) + 8;
	out->ret_at = out->sp + 8;
	out->a_at = out->sp + 8 + 8 * pops;
	out->b_at = out->a_at + fsz;
	if (out->b_at + fsz > out->fp_at || top > in->regs.rsp)
		return -EINVAL;
	out->len = top - out->sp;
	if (out->len > cap)
		return -ENOSPC;
	memset(img, 0, out->len);
#define AT(addr) (img + ((addr) - out->sp))
	memcpy(AT(out->sp), &in->store, 8);
	out->fp_len = put_fpstate(in, AT(out->fp_at), &out->features);
	if (in->dlen)
		memcpy(AT(out->data_at), in->data, in->dlen);
	int xsave = in->xstate != NULL;
	/* frame B: the thread as it was */
	out->back = hs_callframe_resume_regs(&in->regs);
	fill_frame(AT(out->b_at), &out->back, in->sigreturn, out->fp_at, in->sigmask, xsave);
	/* frame A: tgkill(pid, tid, cue) from `syscall; ret`, whose ret goes on
	 * into frame B; without a cue a harmless getpid, and the tracer
	 * watches system calls instead */
	struct user_regs_struct ra = out->back;
	ra.rip = in->syscall;
	ra.rsp = out->b_at;
	ra.rax = in->cue ? 234 : 39;    /* __NR_tgkill, __NR_getpid */
	ra.rdi = (uint64_t)in->pid;
	ra.rsi = (uint64_t)in->tid;
	ra.rdx = (uint64_t)in->cue;
	fill_frame(AT(out->a_at), &ra, in->sigreturn, out->fp_at, in->cue_mask, xsave);
	/* frame C: the call, returning into the store, with the call's mask */
	struct user_regs_struct rc = in->regs;
	uint64_t *argreg[6] = { (uint64_t *)&rc.rdi, (uint64_t *)&rc.rsi, (uint64_t *)&rc.rdx,
				(uint64_t *)&rc.rcx, (uint64_t *)&rc.r8, (uint64_t *)&rc.r9 };
	for (int i = 0; i < in->nargs; i++)
		*argreg[i] = in->data_tag_mask && (in->args[i] & in->data_tag_mask) == in->data_tag
				     ? out->data_at + (in->args[i] & ~in->data_tag_mask)
				     : in->args[i];
	rc.rip = in->func;
	rc.rsp = out->sp;
	rc.rbx = out->ret_at;       /* where the store puts rax */
	rc.rax = 0;
	rc.eflags &= ~0x400ull;     /* DF clear, as the ABI wants at a call */
	fill_frame(AT(out->c_at), &rc, 0, out->fp_at, in->call_mask, xsave);
#undef AT
	/* the one register set: rt_sigreturn (glibc's __restore_rt) into
	 * frame C.  orig_rax -1: an interrupted system call is not restarted
	 * with these registers (frame B restarts it). */
	out->start = out->back;
	out->start.rip = in->sigreturn;
	out->start.rsp = out->c_at + 8;
	out->start.orig_rax = (unsigned long long)-1;
	return 0;
}
