/* The contract between heapscope and its sampler library
 * (libheapscope-sampler.so, loaded into a target by `heapscope profile`):
 * the control block and sample ring the library exports as the symbol
 * hs_sampler_ctl, which heapscope reads and drains from outside with
 * process_vm_readv (and writes only `tail`, `enabled` and `rate` with
 * process_vm_writev).  Plain C, fixed sizes, no pointers that heapscope
 * must follow but the ring's own offsets.  Bump HS_SAMPLER_ABI on any
 * change: heapscope refuses a library of another version.
 *
 * The ring: HS_SAMPLER_SLOTS slots of HS_SAMPLER_SLOT_SIZE bytes.  A
 * producer (any thread, inside the wrappers) takes a slot with one atomic
 * fetch-add on `head`; if head - tail would exceed the slot count it gives
 * the slot back by counting a drop (it never waits).  It fills the slot
 * and stores the slot's `seq` last (release), equal to the ticket it took
 * + 1.  heapscope reads slots from `tail` while their `seq` is ticket + 1,
 * then advances `tail`.  A slot whose seq is still old is being written:
 * heapscope stops there and retries at the next drain. */
#ifndef HS_SAMPLER_ABI_H
#define HS_SAMPLER_ABI_H

#include <stdint.h>

#define HS_SAMPLER_MAGIC 0x48535341u   /* "HSSA" */
#define HS_SAMPLER_ABI 1
#define HS_SAMPLER_SLOTS 512u          /* a power of two */
#define HS_SAMPLER_STACK 16384u        /* bytes of stack copied per sample, at most */
#define HS_SAMPLER_SLOT_SIZE (sizeof(struct hs_sample_hdr) + HS_SAMPLER_STACK)
#define HS_SAMPLER_DEFAULT_RATE (512u << 10)

enum hs_sample_kind {
	HS_SAMPLE_ALLOC = 1,    /* a sampled allocation: registers and stack */
	HS_SAMPLE_FREE = 2,     /* a sampled block freed (or realloc'ed away): addr only */
};

/* x86_64 registers at the sampler's capture point, in DWARF order
 * (rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip: 0..16), for
 * dwfl_thread_state_registers: the unwinder starts in the sampler's own
 * frame, whose CFI the library carries, and heapscope drops the frames
 * that are the library's. */
#define HS_SAMPLER_NREGS 17

struct hs_sample_hdr {
	uint64_t seq;           /* ticket + 1 once complete (written last) */
	uint32_t kind;          /* enum hs_sample_kind */
	uint32_t tid;
	uint64_t time_ns;       /* CLOCK_MONOTONIC */
	uint64_t addr;          /* the block (what malloc returned) */
	uint64_t size;          /* requested bytes (0 for a free) */
	uint64_t old_addr;      /* realloc: the block it replaced, else 0 */
	uint64_t regs[HS_SAMPLER_NREGS];
	uint64_t stack_addr;    /* the copied stack starts here (the capture's rsp) */
	uint32_t stack_len;     /* bytes copied (up to the stack's end) */
	uint32_t pad;
};

struct hs_sampler_ctl {
	uint32_t magic, abi;
	uint32_t slots, slot_size;      /* HS_SAMPLER_SLOTS, HS_SAMPLER_SLOT_SIZE */
	volatile uint32_t enabled;      /* 0: the wrappers only call libc */
	uint32_t pad0;
	volatile uint64_t rate;         /* mean bytes between samples */
	volatile uint64_t head;         /* next ticket (producers, atomic) */
	volatile uint64_t tail;         /* first ticket not drained (heapscope) */
	volatile uint64_t dropped;      /* samples lost to a full ring */
	volatile uint64_t sampled, freed;   /* samples taken, sampled blocks seen freed */
	volatile uint64_t live_lost;    /* sampled blocks not tracked (address set full) */
	uint64_t ring_offset;           /* from &hs_sampler_ctl to slot 0 */
	uint64_t reserved[7];
};

#endif
