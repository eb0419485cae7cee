/* The remote call's stack image (lib/callframe_x86_64.c), byte by byte:
 * where each frame lies, what rt_sigreturn will read from each, and the
 * XSAVE software bytes sized as the kernel's signal frame, not as
 * ptrace's regset (with AMX the two differ: 2816 against 11008). */
#include <stdlib.h>
#include <string.h>

#include "callframe.h"
#include "tap.h"

/* A host with AVX, AVX-512, PKRU and AMX, as CPUID leaf 0xD reports it
 * (Sapphire Rapids). */
static void amx_layout(struct hs_xstate_layout *l)
{
	memset(l, 0, sizeof(*l));
	static const uint32_t c[][3] = {
		{ 2, 576, 256 },  /* AVX: ymm upper halves */
		{ 5, 1088, 64 },  /* opmask */
		{ 6, 1152, 512 }, /* ZMM_Hi256 */
		{ 7, 1664, 1024 }, /* Hi16_ZMM */
		{ 9, 2688, 8 },   /* PKRU */
		{ 17, 2752, 64 }, /* XTILECFG */
		{ 18, 2816, 8192 }, /* XTILEDATA (dynamic) */
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		l->offset[c[i][0]] = c[i][1], l->size[c[i][0]] = c[i][2];
}

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* rt_sigframe offsets: pretcode 0, uc 8: uc_flags, uc_link, ss_sp 24,
 * ss_flags 32, ss_size 40, sigcontext 48 (r8..r15, rdi, rsi, rbp, rbx,
 * rdx, rax, rcx, rsp 48+120, rip 48+128, eflags, cs.., err, trapno,
 * oldmask, cr2, fpstate 48+184), sigmask 48+256. */
#define F_MC 48
#define F_RAX (F_MC + 104)
#define F_RSP (F_MC + 120)
#define F_RIP (F_MC + 128)
#define F_RDI (F_MC + 64)
#define F_RSI (F_MC + 72)
#define F_RDX (F_MC + 96)
#define F_RBX (F_MC + 88)
#define F_FPSTATE (F_MC + 184)
#define F_MASK (F_MC + 256)

int main(void)
{
	static unsigned char xs[11008] __attribute__((aligned(64)));
	static unsigned char img[32768] __attribute__((aligned(64)));
	struct hs_xstate_layout l;
	amx_layout(&l);
	/* ptrace's image on that host: the software bytes hold the user
	 * features (x87 SSE AVX opmask ZMM PKRU TILECFG TILEDATA) */
	uint64_t user = 0x3ull | 1 << 2 | 0xe0 | 1 << 9 | 1ull << 17 | 1ull << 18;
	for (size_t i = 0; i < sizeof(xs); i++)
		xs[i] = (unsigned char)(i * 7 + 3);
	memcpy(xs + 464, &user, 8);
	uint64_t bv = 0x3ull | 1 << 2 | 0xe0;
	memcpy(xs + 512, &bv, 8);
	memset(xs + 520, 0, 56);

	uint64_t f;
	size_t n = hs_xstate_sigframe_size(xs, sizeof(xs), &l, &f);
	OK(n == 2816, "signal-frame size without AMX in use: %zu (the regset's 11008 makes rt_sigreturn restore SSE only)", n);
	OK(f == (user & ~HS_XFEATURE_DYNAMIC), "features restored: 0x%llx (tile data left out)", (unsigned long long)f);
	bv |= HS_XFEATURE_DYNAMIC;
	memcpy(xs + 512, &bv, 8);
	n = hs_xstate_sigframe_size(xs, sizeof(xs), &l, &f);
	OK(n == 11008 && f == user, "a thread using AMX tiles: the whole image, %zu bytes, features 0x%llx", n,
	   (unsigned long long)f);
	bv &= ~HS_XFEATURE_DYNAMIC;
	memcpy(xs + 512, &bv, 8);
	OK(hs_xstate_sigframe_size(xs, 500, &l, &f) == 0, "an image shorter than the legacy area and header: 0");
	/* a component the image is too short for is not claimed */
	n = hs_xstate_sigframe_size(xs, 2000, &l, &f);
	OK(n == 1664 && !(f & (1 << 7)) && (f & (1 << 6)), "a 2000-byte image: %zu bytes, Hi16_ZMM and above left out", n);

	struct hs_callframe_in in;
	memset(&in, 0, sizeof(in));
	in.regs.rsp = 0x7ffff0001008;
	in.regs.rip = 0x401234;
	in.regs.rax = (unsigned long long)-512;  /* -ERESTARTSYS: inside read() */
	in.regs.orig_rax = 0;
	in.regs.rbx = 0xbbbb;
	in.regs.eflags = 0x646;                  /* DF set */
	in.sigmask = 0x1234;
	in.xstate = xs, in.xlen = sizeof(xs), in.layout = &l;
	static const char data[] = "MALLOC_TRACE";
	in.data = data, in.dlen = sizeof(data);
	in.func = 0x7f0000001000;
	in.nargs = 2;
	in.args[0] = 0xfeedda7a00000000ull | 0;
	in.args[1] = 42;
	in.data_tag = 0xfeedda7a00000000ull, in.data_tag_mask = 0xffffffffffff0000ull;
	in.store = 0x7f0000002000, in.sigreturn = 0x7f0000003000, in.syscall = 0x7f0000004000;
	in.store_pops = 2;
	in.pid = 100, in.tid = 101, in.cue = 23;
	in.call_mask = ~0ull & ~(1ull << 10), in.cue_mask = in.call_mask & ~(1ull << 22);
	struct hs_callframe fr;
	int r = hs_callframe_build(&in, img, sizeof(img), &fr);
	OK(r == 0, "built: %d, %llu bytes from 0x%llx", r, (unsigned long long)fr.len, (unsigned long long)fr.sp);
	if (r)
		return tap_done();
#define AT(a) (img + ((a) - fr.sp))
	OK(fr.sp + fr.len == in.regs.rsp - 128, "the image ends at the red zone");
	OK((fr.sp + 8) % 16 == 0, "sp + 8 is 16-byte aligned, as at a function's entry");
	OK(fr.fp_at % 64 == 0, "fpstate 64-byte aligned");
	OK(fr.a_at == fr.sp + 8 + 8 * 2 && fr.b_at == fr.a_at + 440, "frame A after the store's pops, frame B after it");
	OK(fr.b_at + 440 <= fr.fp_at && fr.fp_at + fr.fp_len <= fr.data_at && fr.data_at + sizeof(data) <= fr.c_at &&
		   fr.c_at + 440 <= fr.sp + fr.len,
	   "B, fpstate, data and C do not overlap");
	OK(rd64(AT(fr.sp)) == in.store, "the return address is the store");
	/* the fpstate */
	unsigned char *fx = AT(fr.fp_at);
	OK(rd32(fx + 464) == 0x46505853u && rd32(fx + 468) == 2816 + 4 && rd64(fx + 472) == (user & ~HS_XFEATURE_DYNAMIC) &&
		   rd32(fx + 480) == 2816,
	   "software bytes: magic1, extended size 2820, features without tile data, size 2816");
	OK(rd32(fx + 2816) == 0x46505845u, "FP_XSTATE_MAGIC2 right after the 2816 bytes");
	OK(!memcmp(fx, xs, 464) && !memcmp(fx + 512, xs + 512, 2816 - 512), "the thread's registers copied unchanged");
	OK(fr.fp_len == 2820 && fr.features == (user & ~HS_XFEATURE_DYNAMIC), "fp_len 2820");
	/* frame C: the call */
	unsigned char *c = AT(fr.c_at);
	OK(rd64(c + F_RIP) == in.func && rd64(c + F_RSP) == fr.sp && rd64(c + F_RBX) == fr.ret_at,
	   "frame C: rip the function, rsp the return address, rbx the result's slot");
	OK(rd64(c + F_RDI) == fr.data_at && rd64(c + F_RSI) == 42, "frame C: a data argument points at the data");
	OK(!memcmp(AT(fr.data_at), data, sizeof(data)), "the data is there");
	OK(!(rd64(c + F_MC + 136) & 0x400), "frame C: DF clear");
	OK(rd64(c + F_MASK) == in.call_mask && rd64(c + F_FPSTATE) == fr.fp_at, "frame C: the call's mask, the thread's fpstate");
	/* frame A: tgkill(pid, tid, cue) at `syscall; ret` */
	unsigned char *a = AT(fr.a_at);
	OK(rd64(a) == in.sigreturn && rd64(a + F_RIP) == in.syscall && rd64(a + F_RAX) == 234 && rd64(a + F_RDI) == 100 &&
		   rd64(a + F_RSI) == 101 && rd64(a + F_RDX) == 23 && rd64(a + F_RSP) == fr.b_at,
	   "frame A: tgkill(100, 101, 23) at the syscall, returning into frame B");
	OK(rd64(a + F_MASK) == in.cue_mask, "frame A: the cue let through");
	/* frame B: the thread, its read() restarted */
	unsigned char *b = AT(fr.b_at);
	OK(rd64(b) == in.sigreturn && rd64(b + F_RIP) == 0x401232 && rd64(b + F_RAX) == 0 &&
		   rd64(b + F_RSP) == in.regs.rsp && rd64(b + F_RBX) == 0xbbbb,
	   "frame B: the thread as it was, its system call to restart (rip - 2, rax = orig_rax)");
	OK(rd64(b + F_MASK) == 0x1234 && rd64(b + F_FPSTATE) == fr.fp_at, "frame B: the thread's own mask and fpstate");
	OK(rd64(b + 8) == 7 && rd32(b + 32) == 3, "uc_flags FP_XSTATE|SIGCONTEXT_SS|STRICT_RESTORE_SS, ss_flags invalid");
	/* the one register set */
	OK(fr.start.rip == in.sigreturn && fr.start.rsp == fr.c_at + 8 && fr.start.orig_rax == (unsigned long long)-1,
	   "start: rt_sigreturn with frame C at rsp - 8, no system call restart");
	OK(fr.back.rip == 0x401232 && fr.back.orig_rax == (unsigned long long)-1, "back: the restarted system call");

	/* without a cue: getpid */
	in.cue = 0;
	hs_callframe_build(&in, img, sizeof(img), &fr);
	OK(rd64(AT(fr.a_at) + F_RAX) == 39, "no cue: frame A makes getpid");
	/* no XSAVE: the legacy image, no software bytes */
	static unsigned char fxs[512];
	memset(fxs, 0x5a, sizeof(fxs));
	in.xstate = NULL, in.fxsave = fxs;
	hs_callframe_build(&in, img, sizeof(img), &fr);
	OK(fr.fp_len == 512 && !memcmp(AT(fr.fp_at), fxs, 512) && rd64(AT(fr.b_at) + 8) == 6,
	   "no XSAVE: the FXSAVE image, uc_flags without FP_XSTATE");
	/* too little room, bad arguments */
	OK(hs_callframe_build(&in, img, 1000, &fr) == -28, "-ENOSPC when the image does not fit");
	in.nargs = 7;
	OK(hs_callframe_build(&in, img, sizeof(img), &fr) == -22, "-EINVAL with seven arguments");
	return tap_done();
}
