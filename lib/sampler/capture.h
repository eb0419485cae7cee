/* The sampler's capture point, shared by libheapscope-sampler.so and the
 * tests' stand-in for it (tests/targets/profsampler.c), so that both
 * record registers and stack the same way.  x86_64; include once per
 * object: the function is static and must stay out of line (its own
 * frame is where the unwinder starts). */
#ifndef HS_SAMPLER_CAPTURE_H
#define HS_SAMPLER_CAPTURE_H

#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../sampler_abi.h"

/* The registers here, in DWARF order, with rip this function's own label
 * (whose CFI the library carries: the unwinder starts in this frame), and
 * the stack from this frame's rsp copied to stk, while this
 * frame is still intact.  process_vm_readv on ourselves returns a short
 * count at the end of the stack mapping instead of faulting. */
__attribute__((noinline)) static void hs_sampler_capture(struct hs_sample_hdr *h, unsigned char *stk)
{
	uint64_t *r = h->regs;
	__asm__ volatile("movq %%rax, 0(%0)\n\t"
			 "movq %%rdx, 8(%0)\n\t"
			 "movq %%rcx, 16(%0)\n\t"
			 "movq %%rbx, 24(%0)\n\t"
			 "movq %%rsi, 32(%0)\n\t"
			 "movq %%rdi, 40(%0)\n\t"
			 "movq %%rbp, 48(%0)\n\t"
			 "movq %%rsp, 56(%0)\n\t"
			 "movq %%r8, 64(%0)\n\t"
			 "movq %%r9, 72(%0)\n\t"
			 "movq %%r10, 80(%0)\n\t"
			 "movq %%r11, 88(%0)\n\t"
			 "movq %%r12, 96(%0)\n\t"
			 "movq %%r13, 104(%0)\n\t"
			 "movq %%r14, 112(%0)\n\t"
			 "movq %%r15, 120(%0)\n\t"
			 "1: leaq 1b(%%rip), %%r11\n\t"
			 "movq %%r11, 128(%0)\n\t"
			 :
			 : "r"(r)
			 : "r11", "memory");
	uint64_t sp = r[7];
	/* Always through the kernel, never a plain copy: whatever this
	 * thread's stack is now (a coroutine's, freed and mapped again
	 * smaller), a read past its end is a short count, not a fault in
	 * the target. */
	struct iovec local = { stk, HS_SAMPLER_STACK };
	struct iovec remote = { (void *)(uintptr_t)sp, HS_SAMPLER_STACK };
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n < 0) {
		/* the stack's end within the first page: copy what is there */
		remote.iov_len = local.iov_len = 4096 - (sp & 4095);
		n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	}
	h->stack_addr = r[7];
	h->stack_len = n > 0 ? (uint32_t)n : 0;
}

#endif
