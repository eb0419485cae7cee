/* The verdict on a process's arenas, in plain words: what is wrong (the
 * causes, each with its figures) and what to do about it (the remedies
 * that apply to this process, most effective first).  Built from a walk
 * (struct hs_heap, with residency) and facts about the process that need
 * no stop: its environment (MALLOC_ARENA_MAX, GLIBC_TUNABLES), the CPUs it
 * may run on and, on a JVM, what its JDK offers. */
#ifndef HS_VERDICT_H
#define HS_VERDICT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"
#include "heap.h"
#include "maps.h"

struct hs_procenv {
	long ncpus;                  /* CPUs the target may run on (Cpus_allowed_list), else online */
	long ncpus_online;
	bool has_arena_max_env;      /* MALLOC_ARENA_MAX in /proc/PID/environ */
	uint64_t arena_max_env;
	char tunables[512];          /* GLIBC_TUNABLES, "" when unset */
	bool has_arena_max_tunable, has_trim_threshold_tunable;
	uint64_t arena_max_tunable, trim_threshold_tunable;
	/* A JVM: libjvm.so is mapped. */
	bool jvm;
	char java_home[PATH_MAX];    /* as the target sees it */
	char java_version[64];       /* JAVA_VERSION of its release file, "" unknown */
	int jcmd_trim;               /* System.trim_native_heap in `jcmd PID help`: 1 yes, 0 no, -1 unknown */
	int trim_interval_flag;      /* TrimNativeHeapInterval in -XX:+PrintFlagsFinal: 1, 0, -1 */
	bool trim_interval_experimental;  /* it needs -XX:+UnlockExperimentalVMOptions */
	char jcmd[PATH_MAX];         /* the JDK's jcmd, as heapscope runs it */
};

/* Read pid's environment, CPU set and, with probe_jvm and libjvm.so in
 * maps, its JDK's version and commands (this runs the JDK's jcmd and java,
 * a second or two).  Missing facts are left unknown; returns 0 or -errno
 * when the process is gone. */
int hs_procenv_read(pid_t pid, const struct hs_maps *maps, bool probe_jvm, struct hs_procenv *e, struct hs_err *err);

/* Bytes free inside malloc in arena a (bins, fastbins, tcache, top), and
 * in use (the rest of what it has from the system). */
uint64_t hs_arena_free(const struct hs_arena *a);
uint64_t hs_arena_in_use(const struct hs_arena *a);

/* An arena's figures, or their sum over arenas. */
struct hs_arena_figures {
	uint64_t nheaps, reserved, committed;  /* its heaps: reserved, committed (mprotect_size) */
	uint64_t system, resident, in_use, free, trimmable;
	uint64_t bins, fast, tcache, top;      /* what free is made of */
	uint64_t bin_chunks;                   /* the chunks in bins */
};

void hs_arena_figures(const struct hs_arena *a, struct hs_arena_figures *f);
/* The sum over h's arenas. */
void hs_heap_figures(const struct hs_heap *h, struct hs_arena_figures *t);
/* The sentence heapscope arenas sums h up with (t: hs_heap_figures):
 * the arenas, their heaps' size, reserved, resident, free, trimmable. */
void hs_heap_summary(const struct hs_heap *h, const struct hs_arena_figures *t, char *buf, size_t sz);
/* heapscope stats' summary, to fp: what glibc's mallinfo2 says of h (as
 * glibc counts, tcache in use), in a few lines. */
void hs_heap_summary_write(FILE *fp, pid_t pid, const char *glibc_version, const struct hs_heap *h);

#define HS_VERDICT_MAX 10
struct hs_verdict_line {
	char id[24];                 /* stable key: "trim_now", "arena_max", ... */
	char text[480];              /* one plain sentence or two, with the figures */
	char command[256];           /* what to run or set, "" none */
	uint64_t bytes;              /* the figure it is about (bytes it would return), 0 none */
};

struct hs_verdict {
	/* The figures the words are made of. */
	uint64_t narenas, arena_cap;
	char cap_source[96];         /* "8 x 2 CPUs", "MALLOC_ARENA_MAX=2", ... */
	bool arena_max_set;
	long ncpus;
	uint64_t threads_with_arena, arenas_with_threads, max_threads_per_arena;
	uint64_t resident, in_use, free_total, free_resident, trimmable, tcache, top;
	uint64_t pinned_arenas, pinned_free;  /* arenas whose small top sits above a live block, and the bytes free below it */
	uint64_t free_chunks;
	unsigned suggest_arena_max;  /* 0: none suggested */
	bool wasteful, fragmented;
	char headline[320];
	size_t ncauses, nremedies;
	struct hs_verdict_line causes[HS_VERDICT_MAX], remedies[HS_VERDICT_MAX];
};

void hs_verdict_build(pid_t pid, const struct hs_heap *h, const struct hs_procenv *e, struct hs_verdict *v);

#endif
