/* libFuzzer harness for the trace log parser (lib/mtrace_log.c): the input
 * is a log, fed in pieces cut where its first two bytes say, then
 * summarised with the blocks of a few callers listed, and each caller's
 * text parsed as tr_where()'s.  The summary's counts must agree with each
 * other; anything else is a crash.  Seeds: logs glibc's tracer wrote and
 * their odd cases (tests/fuzz/corpus_mtrace_log). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mtrace_log.h"

static void check(const struct hs_mtrace_log *g, size_t k)
{
	uint64_t n = 0;
	for (size_t i = 0; i < g->ncallers; i++) {
		const struct hs_mtrace_caller *c = &g->callers[i];
		struct hs_mtrace_where w;
		n += c->count;
		if (!c->count || (i && c->bytes > g->callers[i - 1].bytes))
			abort();
		if (c->nblocks != (i < k ? c->count : 0))
			abort();
		for (size_t b = 0; b < c->nblocks; b++)
			if (c->blocks[b].caller != i || (b && c->blocks[b - 1].addr >= c->blocks[b].addr))
				abort();
		hs_mtrace_caller_parse(c->text, &w);
	}
	if (n != g->not_freed)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cut1 = 0, cut2 = 0;
	if (size >= 2) {
		cut1 = data[0] % (size + 1);
		cut2 = cut1 + data[1] * 131 % (size - cut1 + 1);
	}
	struct hs_mtrace_log g;
	if (hs_mtrace_log_open(&g) < 0)
		return 0;
	const char *p = (const char *)data;
	size_t k = size ? data[size - 1] % 8 : 0;
	if (hs_mtrace_log_feed(&g, p, cut1) == 0 && hs_mtrace_log_feed(&g, p + cut1, cut2 - cut1) == 0 &&
	    hs_mtrace_log_feed(&g, p + cut2, size - cut2) == 0 && hs_mtrace_log_finish(&g, k) == 0)
		check(&g, k);
	hs_mtrace_log_release(&g);
	return 0;
}
