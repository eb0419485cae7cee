/* Target for the profile analysis (tests/live/profile_analyze.sh): three
 * threads allocate through known call chains, three functions deep each,
 * while the stand-in sampler (profsampler.c, linked in as
 * libheapscope-sampler.so) records every allocation of at least 1000
 * bytes into the file named by HS_TEST_SAMPLES:
 *   hs-alpha: alpha_outer -> alpha_mid -> alpha_leaf -> malloc(40000),
 *             ALPHA_N blocks, all kept;
 *   hs-beta:  beta_outer -> lib_beta_mid -> lib_beta_leaf (libhsprof.so)
 *             -> malloc(24000), BETA_N blocks, every other one freed;
 *   hs-gamma: gamma_outer -> gamma_cxx -> hsprof::Builder<long>::make
 *             (C++) -> malloc(8000), GAMMA_N blocks, all freed.
 * With HS_TEST_JIT set, a fourth thread, hs-jit, calls jit_leaf ->
 * malloc(16000) JIT_N times through a stub of machine code in anonymous
 * executable memory (no module, no CFI; it keeps a frame pointer), as a
 * JIT's code would, from jit_outer; with HS_TEST_PERFMAP set too, the stub
 * is named "hsjit::stub" in /tmp/perf-PID.map, as a JVM's perf agent does.
 * Then the sampler stops, "READY <pid>" is printed and the threads wait
 * (alive, so their names can be read) until the process is killed. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALPHA_N 6
#define BETA_N 8
#define GAMMA_N 5
#define JIT_N 3

void hs_test_sampler_start(const char *path, size_t min);
void hs_test_sampler_stop(void);
void *lib_beta_mid(size_t n);
void *gamma_cxx(size_t n);

static sem_t done;
static void *keep[64];

#define NOTAIL(p) __asm__ volatile("" : : "r"(p) : "memory")

__attribute__((noinline, noipa)) static void *alpha_leaf(size_t n)
{
	void *p = malloc(n);
	NOTAIL(p);
	return p;
}

__attribute__((noinline, noipa)) static void *alpha_mid(size_t n)
{
	void *p = alpha_leaf(n);
	NOTAIL(p);
	return p;
}

__attribute__((noinline, noipa)) static void alpha_outer(void)
{
	for (int i = 0; i < ALPHA_N; i++) {
		keep[i] = alpha_mid(40000);
		NOTAIL(keep[i]);
	}
}

__attribute__((noinline, noipa)) static void beta_outer(void)
{
	for (int i = 0; i < BETA_N; i++) {
		void *p = lib_beta_mid(24000);
		NOTAIL(p);
		if (i % 2)
			free(p);
		else
			keep[16 + i] = p;
	}
}

__attribute__((noinline, noipa)) static void gamma_outer(void)
{
	for (int i = 0; i < GAMMA_N; i++) {
		void *p = gamma_cxx(8000);
		NOTAIL(p);
		free(p);
	}
}

__attribute__((noinline, noipa)) static void *jit_leaf(size_t n)
{
	void *p = malloc(n);
	NOTAIL(p);
	return p;
}

__attribute__((noinline, noipa)) static void jit_outer(void)
{
	/* stub(fn, n): push %rbp; mov %rsp,%rbp; mov %rdi,%rax; mov %rsi,%rdi;
	 * call *%rax; pop %rbp; ret */
	static const unsigned char code[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7,
					      0xff, 0xd0, 0x5d, 0xc3 };
	unsigned char *stub = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stub == MAP_FAILED)
		abort();
	memcpy(stub, code, sizeof(code));
	if (getenv("HS_TEST_PERFMAP")) {
		char path[64];
		snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
		FILE *fp = fopen(path, "w");
		if (!fp)
			abort();
		fprintf(fp, "%lx %zx hsjit::stub\n", (unsigned long)(uintptr_t)stub, sizeof(code));
		fclose(fp);
	}
	void *(*call)(void *(*)(size_t), size_t) = (void *(*)(void *(*)(size_t), size_t))(uintptr_t)stub;
	for (int i = 0; i < JIT_N; i++) {
		keep[32 + i] = call(jit_leaf, 16000);
		NOTAIL(keep[32 + i]);
	}
}

static void *run(void *arg)
{
	void (*fn)(void) = (void (*)(void))arg;
	fn();
	sem_post(&done);
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	const char *path = getenv("HS_TEST_SAMPLES");
	if (!path) {
		fprintf(stderr, "HS_TEST_SAMPLES is not set\n");
		return 2;
	}
	sem_init(&done, 0, 0);
	static const char *const names[4] = { "hs-alpha", "hs-beta", "hs-gamma", "hs-jit" };
	void (*const fns[4])(void) = { alpha_outer, beta_outer, gamma_outer, jit_outer };
	pthread_t t[4];
	int nt = getenv("HS_TEST_JIT") ? 4 : 3;
	hs_test_sampler_start(path, 1000);
	/* one at a time: each thread's chain is the only one running */
	for (int i = 0; i < nt; i++) {
		if (pthread_create(&t[i], NULL, run, (void *)fns[i]))
			return 2;
		pthread_setname_np(t[i], names[i]);
		sem_wait(&done);
	}
	hs_test_sampler_stop();
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}
