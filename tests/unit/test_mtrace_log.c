/* The trace log parser (lib/mtrace_log.c), over logs held in memory. */
#include <stdlib.h>
#include <string.h>

#include "mtrace_log.h"
#include "tap.h"

static int feed_str(struct hs_mtrace_log *g, const char *s)
{
	return hs_mtrace_log_feed(g, s, strlen(s));
}

/* a whole log, the blocks of the first k callers listed */
static int parse(struct hs_mtrace_log *g, const char *log, size_t k)
{
	int r = hs_mtrace_log_open(g);
	if (r == 0)
		r = feed_str(g, log);
	return r < 0 ? r : hs_mtrace_log_finish(g, k);
}

/* the caller named text, or NULL */
static const struct hs_mtrace_caller *caller(const struct hs_mtrace_log *g, const char *text)
{
	for (size_t i = 0; i < g->ncallers; i++)
		if (!strcmp(g->callers[i].text, text))
			return &g->callers[i];
	return NULL;
}

static void well_formed(void)
{
	static const char log[] =
		"= Start\n"
		"@ ./prog:[0x1234] + 0x1000 0x20\n"
		"@ ./prog:[0x1234] + 0x2000 0x20\n"
		"@ ./prog:(leak+0x10)[0x1240] + 0x3000 0x100\n"
		"@ ./prog:[0x1250] + 0x4000 0x8\n"
		"@ ./prog:[0x1260] - 0x4000\n"
		"+ 0x5000 0x10\n"
		"= End\n";
	struct hs_mtrace_log g;
	OK(hs_mtrace_log_open(&g) == 0, "open");
	OK(feed_str(&g, log) == 0 && hs_mtrace_log_finish(&g, 0) == 0, "a well-formed log parses");
	OK(g.lines == 8 && g.malformed == 0, "8 lines, none malformed (%llu, %llu)", (unsigned long long)g.lines,
	   (unsigned long long)g.malformed);
	OK(g.not_freed == 4 && g.not_freed_bytes == 0x150, "4 blocks, 0x150 bytes not freed");
	OK(g.ncallers == 3, "three callers with leaks (%zu)", g.ncallers);
	OK(!strcmp(g.callers[0].text, "./prog:(leak+0x10)[0x1240]") && g.callers[0].count == 1 &&
	   g.callers[0].bytes == 0x100, "largest caller first");
	OK(!strcmp(g.callers[1].text, "./prog:[0x1234]") && g.callers[1].count == 2 && g.callers[1].bytes == 0x40,
	   "one caller's two blocks counted together");
	OK(!strcmp(g.callers[2].text, "") && g.callers[2].bytes == 0x10, "a line without a caller: caller \"\"");
	OK(!caller(&g, "./prog:[0x1250]"), "the freed block's caller has nothing left");
	OK(g.callers[0].nblocks == 0, "no blocks listed unless asked");
	hs_mtrace_log_release(&g);
}

static void realloc_chain(void)
{
	static const char log[] =
		"@ a:[0x1] + 0x1000 0x10\n"
		"@ b:[0x2] < 0x1000\n"
		"@ b:[0x2] > 0x2000 0x40\n"
		"@ c:[0x3] < 0x2000\n"
		"@ c:[0x3] > 0x2000 0x80\n"
		"@ d:[0x4] ! 0x2000 0x100000\n"
		"@ e:[0x5] + (nil) 0x7fffffffffff\n";
	struct hs_mtrace_log g;
	OK(parse(&g, log, 10) == 0, "finish with blocks");
	OK(g.not_freed == 1 && g.ncallers == 1 && !strcmp(g.callers[0].text, "c:[0x3]") && g.callers[0].bytes == 0x80,
	   "a realloc chain leaves its last block, to its last caller");
	OK(g.failed == 2 && g.malformed == 0, "a failed realloc and a failed malloc counted, not malformed");
	OK(g.callers[0].nblocks == 1 && g.callers[0].blocks[0].addr == 0x2000 && g.callers[0].blocks[0].size == 0x80,
	   "its block listed");
	hs_mtrace_log_release(&g);
}

static void frees(void)
{
	static const char log[] =
		"@ a:[0x1] + 0x1000 0x10\n"
		"@ a:[0x1] - 0x1000\n"
		"@ a:[0x1] - 0x1000\n"
		"- 0x9000\n"
		"@ x:[0x9] < 0x9000\n"
		"@ x:[0x9] > 0xa000 0x20\n";
	struct hs_mtrace_log g;
	OK(parse(&g, log, 0) == 0, "parsed");
	OK(g.freed_unknown == 2, "a double free and a free of an unknown block: 2 (%llu)",
	   (unsigned long long)g.freed_unknown);
	OK(g.realloc_unknown == 1, "a realloc of an unknown block counted");
	OK(g.not_freed == 1 && g.callers[0].bytes == 0x20, "its new block is tracked");
	hs_mtrace_log_release(&g);
}

static void first_caller(void)
{
	static const char log[] =
		"@ first:[0x1] + 0x1000 0x10\n"
		"@ second:[0x2] + 0x1000 0x999\n"
		"@ third:[0x3] > 0x1000 0x5\n";
	struct hs_mtrace_log g;
	OK(parse(&g, log, 0) == 0, "parsed");
	OK(g.duplicate == 2, "two allocations of a block still allocated (%llu)", (unsigned long long)g.duplicate);
	OK(g.ncallers == 1 && !strcmp(g.callers[0].text, "first:[0x1]") && g.callers[0].bytes == 0x10,
	   "the block keeps its first caller and size, as glibc's mtrace script");
	hs_mtrace_log_release(&g);
}

static void malformed(void)
{
	struct hs_mtrace_log g;
	hs_mtrace_log_open(&g);
	feed_str(&g, "garbage here\n"                 /* 1: op is no one character */
		      "@\n"                            /* 2 */
		      "@ a:[0x1] ? 0x10 0x10\n"        /* 3: unknown op */
		      "@ a:[0x1] + 0xzz 0x10\n"        /* 4: bad address */
		      "@ a:[0x1] + 0x10\n"             /* 5: no size */
		      "+ 0x10 0x123456789abcdef01\n"   /* 6: size over 64 bits */
		      "+ 12 0x10\n"                    /* 7: address without 0x */
		      "\n"
		      "   \t \n"
		      "+ 0x20 0\n");                   /* a size of zero as %#lx writes it */
	OK(hs_mtrace_log_feed(&g, "+ 0x30\0 0x10\n", 13) == 0, "a line with a NUL is fed");
	char *big = malloc(HS_MTRACE_LINE_MAX * 2 + 2);
	memset(big, 'x', HS_MTRACE_LINE_MAX * 2);
	memcpy(big, "+ 0x40 ", 7);
	big[HS_MTRACE_LINE_MAX * 2] = '\n';
	OK(hs_mtrace_log_feed(&g, big, HS_MTRACE_LINE_MAX + 5) == 0 &&
	   hs_mtrace_log_feed(&g, big + HS_MTRACE_LINE_MAX + 5, HS_MTRACE_LINE_MAX - 4) == 0, "an overlong line is fed");
	free(big);
	/* the last line without its newline, split across feeds */
	feed_str(&g, "@ tail:[0x7] + 0x5");
	feed_str(&g, "0 0x3");
	OK(hs_mtrace_log_finish(&g, 0) == 0, "finish");
	OK(g.malformed == 9, "9 malformed lines counted (%llu)", (unsigned long long)g.malformed);
	OK(g.lines == 13, "13 lines (%llu)", (unsigned long long)g.lines);
	OK(g.not_freed == 2 && caller(&g, "tail:[0x7]") && caller(&g, "tail:[0x7]")->bytes == 3,
	   "the good lines among them still count, the last one without its newline");
	hs_mtrace_log_release(&g);
}

static void interned(void)
{
	struct hs_mtrace_log g;
	hs_mtrace_log_open(&g);
	char line[128];
	for (int i = 0; i < 5000; i++) {
		snprintf(line, sizeof(line), "@ obj:[0x%x] + 0x%x 0x1\n", i % 7, 0x10000 + 16 * i);
		hs_mtrace_log_feed(&g, line, strlen(line));
	}
	hs_mtrace_log_finish(&g, 3);
	OK(g.ncallers == 7 && g.not_freed == 5000, "5000 blocks from 7 callers interned into 7 (%zu)", g.ncallers);
	uint64_t sum = 0;
	for (size_t i = 0; i < g.ncallers; i++)
		sum += g.callers[i].count;
	OK(sum == 5000, "every block counted once");
	OK(g.callers[0].nblocks == g.callers[0].count && g.callers[3].nblocks == 0, "blocks listed for the top 3 only");
	bool sorted = true;
	for (size_t b = 1; b < g.callers[1].nblocks; b++)
		sorted &= g.callers[1].blocks[b - 1].addr < g.callers[1].blocks[b].addr;
	OK(sorted && g.callers[1].blocks[0].caller == 1, "a caller's blocks by address");
	hs_mtrace_log_release(&g);
}

static void callers_parse(void)
{
	struct hs_mtrace_where w;
	OK(hs_mtrace_caller_parse("/usr/lib/libfoo.so:(foo_alloc+0x1a)[0x11ab]", &w) &&
	   !strcmp(w.object, "/usr/lib/libfoo.so") && !strcmp(w.sym, "foo_alloc") && w.sym_off == 0x1a && !w.sym_neg &&
	   w.off == 0x11ab, "object:(sym+off)[0xoff]");
	OK(hs_mtrace_caller_parse("./a.out:[0x401234]", &w) && !strcmp(w.object, "./a.out") && !w.sym[0] &&
	   w.off == 0x401234, "object:[0xoff]");
	OK(hs_mtrace_caller_parse("[0x7f0012345678]", &w) && !w.object[0] && w.off == 0x7f0012345678, "[0xaddr]");
	OK(hs_mtrace_caller_parse("a:(x-0x4)[0x10]", &w) && w.sym_neg && w.sym_off == 4, "a negative offset");
	OK(!hs_mtrace_caller_parse("", &w) && !hs_mtrace_caller_parse("]", &w) && !hs_mtrace_caller_parse("[0x]", &w) &&
	   !hs_mtrace_caller_parse("a[0x10]", &w) && !hs_mtrace_caller_parse("(x+1)[0x10]", &w) &&
	   !hs_mtrace_caller_parse("a:[0x10zz]", &w) && !hs_mtrace_caller_parse("a:[0x10000000000000000]", &w),
	   "malformed callers refused");
}

int main(void)
{
	well_formed();
	realloc_chain();
	frees();
	first_caller();
	malformed();
	interned();
	callers_parse();
	return tap_done();
}
