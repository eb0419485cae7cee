/* The printable-run scanner behind dump --strings (declared in dump.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

/* ---- strings ------------------------------------------------------------------- */

static bool graphic(unsigned c)
{
	return c == '\t' || (c >= 0x20 && c <= 0x7e);
}

static bool graphic_tab[256];

int hs_strings_init(struct hs_strings *s, enum hs_encoding enc, unsigned min,
		    void (*fn)(void *, uint64_t, const char *, size_t, bool, bool), void *ctx)
{
	memset(s, 0, sizeof(*s));
	if (min < 1 || min > HS_STRING_MAX)
		return -EINVAL;
	s->buf = malloc(HS_STRING_MAX);
	if (!s->buf)
		return -ENOMEM;
	for (unsigned c = 0; c < 256; c++)
		graphic_tab[c] = graphic(c);
	s->width = enc == HS_ENC_UTF16LE ? 2 : 1;
	s->min = min;
	s->fn = fn;
	s->ctx = ctx;
	s->next = UINT64_MAX;
	return hs_strings_set_impl(s, HS_SCAN_AUTO);
}

static void end_run(struct hs_strings *s)
{
	if (s->emitted)
		s->fn(s->ctx, s->run_addr, s->buf, s->len, false, s->cont);
	s->len = 0;
	s->emitted = false;
	s->cont = false;
}

static void good_char(struct hs_strings *s, uint64_t addr, unsigned char c)
{
	if (s->len == 0 && !s->cont)
		s->run_addr = addr;
	if (s->len == HS_STRING_MAX) {
		/* a huge run: hand on what we have, go on with the rest */
		s->fn(s->ctx, s->run_addr, s->buf, s->len, true, s->cont);
		s->cont = true;
		s->len = 0;
	}
	s->buf[s->len++] = (char)c;
	if (!s->emitted && s->len >= s->min)
		s->emitted = true;
}

/* A run of good one-byte characters, appended at once. */
static void good_run(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t n)
{
	if (s->len == 0 && !s->cont)
		s->run_addr = addr;
	while (n) {
		if (s->len == HS_STRING_MAX) {
			s->fn(s->ctx, s->run_addr, s->buf, s->len, true, s->cont);
			s->cont = true;
			s->len = 0;
		}
		size_t k = HS_STRING_MAX - s->len < n ? HS_STRING_MAX - s->len : n;
		memcpy(s->buf + s->len, b, k);
		s->len += k;
		b += k;
		n -= k;
		if (!s->emitted && s->len >= s->min)
			s->emitted = true;
	}
}

static void feed_scalar(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t n)
{
	{
		/* The hot loop: whole runs of characters, then whole runs of
		 * others, a table lookup a byte. */
		size_t i = 0;
		while (i < n) {
			size_t j = i;
			while (j < n && graphic_tab[b[j]])
				j++;
			if (j > i)
				good_run(s, addr + i, b + i, j - i);
			if (j == n)
				break;
			end_run(s);
			i = j + 1;
			while (i < n && !graphic_tab[b[i]])
				i++;
		}
		s->next = addr + n;
		return;
	}
}

/* UTF-16LE: a character at a time. */
static void feed_utf16(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t a = addr + i;
		if (!s->have_carry) {
			s->carry = b[i];
			s->carry_addr = a;
			s->have_carry = true;
			continue;
		}
		if (b[i] == 0 && graphic(s->carry)) {
			good_char(s, s->carry_addr, s->carry);
			s->have_carry = false;
		} else {
			/* strings(1) ungets all but the first byte of a bad
			 * character: the search resumes at this byte. */
			end_run(s);
			s->carry = b[i];
			s->carry_addr = a;
		}
	}
	s->next = addr + n;
}

/* ---- the vectorised scanner (one-byte characters) -------------------------------
 *
 * 64 bytes at a time become a 64-bit mask of the graphic ones (by SSE2,
 * AVX2 or AVX-512BW compares, or a table); runs are then found with
 * count-trailing-zeros on the masks.  Runs shorter than the minimum are
 * skipped without being looked at: a run of at least L = min(min, 64)
 * characters starts where L consecutive bits are set, and those starts are
 * found for a whole block with a few shifts (the next block's bits included,
 * so that a run across two blocks is seen).  Runs wholly inside one feed are
 * handed on without a copy; only a run that reaches the end of a feed is
 * kept in s->buf, to be continued by the next one. */

#define GRAPHIC_LO 0x20
#define GRAPHIC_HI 0x7e

typedef uint64_t (*mask_fn)(const unsigned char *p);

static inline __attribute__((always_inline)) uint64_t mask_table(const unsigned char *p)
{
	uint64_t m = 0;
	for (unsigned i = 0; i < 64; i++)
		m |= (uint64_t)graphic_tab[p[i]] << i;
	return m;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HS_HAVE_X86 1

/* c in 0x20..0x7e, as signed bytes: c + 0x60 (mod 256) in -128..-34. */
static inline __attribute__((always_inline)) uint64_t mask_sse2(const unsigned char *p)
{
	const __m128i off = _mm_set1_epi8(0x60), lim = _mm_set1_epi8(-33), tab = _mm_set1_epi8('\t');
	uint64_t m = 0;
	for (unsigned k = 0; k < 4; k++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
		__m128i g = _mm_or_si128(_mm_cmplt_epi8(_mm_add_epi8(v, off), lim), _mm_cmpeq_epi8(v, tab));
		m |= (uint64_t)(uint16_t)_mm_movemask_epi8(g) << (16 * k);
	}
	return m;
}

__attribute__((target("avx2"))) static inline uint64_t mask_avx2(const unsigned char *p)
{
	const __m256i off = _mm256_set1_epi8(0x60), lim = _mm256_set1_epi8(-33), tab = _mm256_set1_epi8('\t');
	__m256i v0 = _mm256_loadu_si256((const __m256i *)p), v1 = _mm256_loadu_si256((const __m256i *)(p + 32));
	__m256i g0 = _mm256_or_si256(_mm256_cmpgt_epi8(lim, _mm256_add_epi8(v0, off)), _mm256_cmpeq_epi8(v0, tab));
	__m256i g1 = _mm256_or_si256(_mm256_cmpgt_epi8(lim, _mm256_add_epi8(v1, off)), _mm256_cmpeq_epi8(v1, tab));
	return (uint64_t)(uint32_t)_mm256_movemask_epi8(g0) | (uint64_t)(uint32_t)_mm256_movemask_epi8(g1) << 32;
}

__attribute__((target("avx512f,avx512bw"))) static inline uint64_t mask_avx512(const unsigned char *p)
{
	__m512i v = _mm512_loadu_si512((const void *)p);
	__m512i x = _mm512_sub_epi8(v, _mm512_set1_epi8(GRAPHIC_LO));
	return _mm512_cmplt_epu8_mask(x, _mm512_set1_epi8(GRAPHIC_HI - GRAPHIC_LO + 1)) |
	       _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\t'));
}
#endif

/* Positions p of a block whose bits p..p+L-1 are all set, in the 128-bit
 * window lo (this block) and hi (the next one). */
static inline __attribute__((always_inline)) uint64_t long_starts(uint64_t lo, uint64_t hi, unsigned L)
{
	unsigned have = 1;          /* lo: bit p set when p..p+have-1 are; hi: the same for 64 + p */
#define HS_STEP(k)                                              \
	do {                                                    \
		lo &= lo >> (k) | hi << (64 - (k));             \
		hi &= hi >> (k);                                \
		have = 2 * (k);                                 \
	} while (0)
	/* constant shifts: L is the same for a whole scan, so the branches
	 * are always guessed right (and gone where L is a constant) */
	if (L >= 2)
		HS_STEP(1);
	if (L >= 4)
		HS_STEP(2);
	if (L >= 8)
		HS_STEP(4);
	if (L >= 16)
		HS_STEP(8);
	if (L >= 32)
		HS_STEP(16);
	if (L >= 64)
		HS_STEP(32);
#undef HS_STEP
	if (have < L)
		lo &= lo >> (L - have) | hi << (64 - (L - have));
	return lo;
}

/* Where the runs that may be long enough start in a block (last: the
 * previous byte is graphic).  Few runs: their starts, each then measured.
 * Many (binary data): only the starts of runs of at least L. */
static inline __attribute__((always_inline)) uint64_t block_starts(uint64_t cur, uint64_t nxt, uint64_t last,
								    unsigned L)
{
	uint64_t st = cur & ~(cur << 1 | last), x = st & (st - 1);
	x &= x - 1;
	return !(x & (x - 1)) ? st : long_starts(cur, nxt, L);     /* at most 3 */
}

/* A run of one-byte characters b[i..j) of a feed, whole (not touching its
 * ends): handed on as it is, in pieces of HS_STRING_MAX. */
static void whole_run(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t len)
{
	bool cont = false;
	while (len > HS_STRING_MAX) {
		s->fn(s->ctx, addr, (const char *)b, HS_STRING_MAX, true, cont);
		cont = true;
		b += HS_STRING_MAX;
		len -= HS_STRING_MAX;
	}
	s->fn(s->ctx, addr, (const char *)b, len, false, cont);
}

/* The block at b + base as a mask; the bytes past n (in the last block)
 * count as graphic, so that a run reaching the end of the feed is seen as
 * long enough: it goes on in the next feed. */
static __attribute__((noinline, cold)) uint64_t tail_mask(const unsigned char *b, size_t base, size_t n,
							  mask_fn mask)
{
	if (base >= n)
		return ~0ull;
	unsigned char tmp[64];
	memset(tmp, 'x', sizeof(tmp));
	memcpy(tmp, b + base, n - base);
	return mask(tmp);
}

static inline __attribute__((always_inline)) uint64_t block_mask(const unsigned char *b, size_t base, size_t n,
								  mask_fn mask)
{
	if (__builtin_expect(base + 64 <= n, 1))
		return mask(b + base);
	return tail_mask(b, base, n, mask);
}

/* A run carried over from the last feed, continued up to its first bad
 * byte: where the scan of b goes on (after that byte), or SIZE_MAX when
 * the run takes the whole feed. */
static inline __attribute__((always_inline)) size_t carry_over(struct hs_strings *s, uint64_t addr,
								const unsigned char *b, size_t n, mask_fn mask)
{
	if (!s->len && !s->cont)
		return 0;
	size_t base = 0;
	uint64_t bad = 0;
	for (; base < n; base += 64)
		if ((bad = ~block_mask(b, base, n, mask)))
			break;
	size_t j = base < n ? base + (size_t)__builtin_ctzll(bad) : n;
	if (j > n)
		j = n;
	good_run(s, addr, b, j);
	if (j == n) {
		s->next = addr + n;
		return SIZE_MAX;
	}
	end_run(s);
	return j + 1;
}

/* The scan of a feed, strings to s->fn (b is only read): each run of at
 * least s->min characters wholly inside b goes to s->fn; a run reaching the
 * end of b is kept for the next feed. */
static inline __attribute__((always_inline)) void feed_vec(struct hs_strings *s, uint64_t addr,
							    const unsigned char *b, size_t n, mask_fn mask)
{
	unsigned L = s->min < 64 ? s->min : 64;
	size_t i = carry_over(s, addr, b, n, mask);
	if (i == SIZE_MAX)
		return;
	size_t base = i & ~(size_t)63;
	uint64_t cur = block_mask(b, base, n, mask), nxt = block_mask(b, base + 64, n, mask);
	/* the byte before i is bad (or i is where the feed starts) */
	uint64_t starts = block_starts(cur, nxt, 0, L) >> (i - base) << (i - base);
	for (;;) {
		/* outside a run: the next start of a long enough one */
		while (!starts) {
			base += 64;
			if (base >= n)
				goto done;
			uint64_t last = cur >> 63;
			cur = nxt;
			nxt = block_mask(b, base + 64, n, mask);
			starts = block_starts(cur, nxt, last, L);
		}
		size_t start = base + (size_t)__builtin_ctzll(starts);
		if (start >= n)
			break;
		/* its end: the first bad byte after it */
		unsigned o = (unsigned)(start - base);
		uint64_t bad = ~cur >> o << o;
		if (!bad) {
			do {
				base += 64;
				if (base >= n)
					break;
				cur = nxt;
				nxt = block_mask(b, base + 64, n, mask);
				bad = ~cur;
			} while (!bad);
			starts = base < n ? block_starts(cur, nxt, 1, L) : 0;
		}
		size_t end = base < n ? base + (size_t)__builtin_ctzll(bad) : n;
		if (end >= n) {
			/* reaches the end of the feed: kept for the next one */
			good_run(s, addr + start, b + start, n - start);
			s->next = addr + n;
			return;
		}
		if (end - start >= s->min) {
			if (end - start <= HS_STRING_MAX)
				s->fn(s->ctx, addr + start, (const char *)b + start, end - start, false, false);
			else
				whole_run(s, addr + start, b + start, end - start);
		}
		/* the starts after the bad byte at end */
		unsigned e = (unsigned)(end - base) + 1;
		starts = e < 64 ? starts >> e << e : 0;
	}
done:
	s->next = addr + n;
}

/* ---- plain output in place, by masks ----
 *
 * With span (plain output without addresses) only where the output's
 * spans begin and end is needed, so runs are not visited one by one.  In a
 * block of graphic bits g: the starts of runs of at least L = min
 * characters (a run's first bit, with L set bits from it: long_starts),
 * added to g, carry through their runs and stop at the bad byte after
 * each: (g + starts) ^ g is those runs and that byte (made a newline), the
 * output; its edges are the spans' ends.  One branch a block on text (no
 * edge) or binary data (no bit), not one a string; the carry goes on into
 * the next block. */

/* The graphic bytes of the block at base among [0, end) (those at or past
 * end count as bad). */
static inline __attribute__((always_inline)) uint64_t mask_upto(const unsigned char *b, size_t base, size_t end,
								 size_t n, mask_fn mask)
{
	if (base >= end)
		return 0;
	uint64_t m = block_mask(b, base, n, mask);
	return end - base >= 64 ? m : m & ((1ull << (end - base)) - 1);
}

/* Where the run reaching the end of b begins (n when b[n-1] is bad), at
 * least i. */
static inline __attribute__((always_inline)) size_t last_run(const unsigned char *b, size_t i, size_t n,
							      mask_fn mask)
{
	for (size_t base = (n - 1) & ~(size_t)63;; base -= 64) {
		uint64_t bad = ~block_mask(b, base, n, mask);
		if (base + 64 > n)
			bad &= (n - base == 64 ? ~0ull : (1ull << (n - base)) - 1);
		if (bad) {
			size_t j = base + 63 - (size_t)__builtin_clzll(bad) + 1;
			return j > i ? j : i;
		}
		if (base <= i)
			return i;
	}
}

/* The newlines: term's bytes of the block at p made '\n' (whole: the
 * block's 64 bytes are all in the feed). */
typedef void (*term_fn)(unsigned char *p, uint64_t term, bool whole);

static inline __attribute__((always_inline)) void put_scalar(unsigned char *p, uint64_t term, bool whole)
{
	(void)whole;
	for (; term; term &= term - 1)
		p[__builtin_ctzll(term)] = '\n';
}

#ifdef HS_HAVE_X86
/* A whole block written back with its newlines, without a branch (most
 * blocks of text hold one; a masked store is slower). */
__attribute__((target("avx512f,avx512bw"))) static inline void put_avx512(unsigned char *p, uint64_t term,
									  bool whole)
{
	if (__builtin_expect(whole, 1))
		_mm512_storeu_si512((void *)p, _mm512_mask_blend_epi8(term, _mm512_loadu_si512((const void *)p),
								       _mm512_set1_epi8('\n')));
	else
		put_scalar(p, term, false);
}
#endif

static inline __attribute__((always_inline)) void spans_mask(struct hs_strings *s, uint64_t addr, unsigned char *b,
							      size_t n, unsigned L, mask_fn mask, term_fn put,
							      hs_span_fn span, void *ctx)
{
	size_t i = carry_over(s, addr, b, n, mask);
	if (i == SIZE_MAX)
		return;
	/* [i, e): every run there ends before e, at a bad byte; [e, n) is
	 * kept for the next feed */
	size_t e = i < n ? last_run(b, i, n, mask) : n;
	size_t open = SIZE_MAX;     /* where the span being made begins */
	size_t base = i & ~(size_t)63;
	uint64_t cur = mask_upto(b, base, e, n, mask) & (~0ull << (i - base));
	uint64_t nxt = mask_upto(b, base + 64, e, n, mask);
	uint64_t last = 0, out_last = 0;     /* the block before's top bits */
	bool carry = false;                   /* ... and its sum's carry */
	for (; base < e; base += 64) {
		/* Inside a long run that fills this block and the next (rare
		 * in short lines, so the branch is guessed right on both):
		 * whole blocks passed over up to the one where it ends, all
		 * output, nothing written. */
		if (__builtin_expect(((cur & nxt) == ~0ull) & carry & (bool)out_last, 0)) {
			do {
				base += 64;
				cur = nxt;
				nxt = mask_upto(b, base + 64, e, n, mask);
				__builtin_prefetch(b + base + 1024);
			} while (cur == ~0ull);
		}
		uint64_t out = 0;
		/* (a block of zeros, as heaps hold many, is passed over) */
		if (cur | carry) {
			uint64_t starts = cur & ~(cur << 1 | last) & long_starts(cur, nxt, L), sum;
			bool c1 = __builtin_add_overflow(cur, starts, &sum);
			bool c2 = __builtin_add_overflow(sum, (uint64_t)carry, &sum);
			carry = c1 | c2;
			out = sum ^ cur;
			put(b + base, out & ~cur, base + 64 <= n);
		}
		uint64_t edge = out ^ (out << 1 | out_last);
		for (; edge; edge &= edge - 1) {
			size_t p = base + (size_t)__builtin_ctzll(edge);
			if (open == SIZE_MAX) {
				open = p;
			} else {
				span(ctx, (const char *)b + open, p - open);
				open = SIZE_MAX;
			}
		}
		last = cur >> 63;
		out_last = out >> 63;
		cur = nxt;
		nxt = mask_upto(b, base + 128, e, n, mask);
		__builtin_prefetch(b + base + 1024);
	}
	if (open != SIZE_MAX)
		span(ctx, (const char *)b + open, e - open);
	if (e < n)
		good_run(s, addr + e, b + e, n - e);
	s->next = addr + n;
}

static inline __attribute__((always_inline)) void feed_spans_vec(struct hs_strings *s, uint64_t addr,
								  unsigned char *b, size_t n, hs_span_fn span,
								  void *ctx, mask_fn mask, term_fn put)
{
	/* The usual minimums as constants: long_starts' shifts fixed */
	switch (s->min) {
	case 4:
		spans_mask(s, addr, b, n, 4, mask, put, span, ctx);
		break;
	case 8:
		spans_mask(s, addr, b, n, 8, mask, put, span, ctx);
		break;
	case 10:
		spans_mask(s, addr, b, n, 10, mask, put, span, ctx);
		break;
	default:
		spans_mask(s, addr, b, n, s->min, mask, put, span, ctx);
	}
}

static void feed_table(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t n)
{
	feed_vec(s, addr, b, n, mask_table);
}

static void spans_table(struct hs_strings *s, uint64_t addr, unsigned char *b, size_t n, hs_span_fn span,
			void *ctx)
{
	feed_spans_vec(s, addr, b, n, span, ctx, mask_table, put_scalar);
}

#ifdef HS_HAVE_X86
static void feed_sse2(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t n)
{
	feed_vec(s, addr, b, n, mask_sse2);
}

__attribute__((target("avx2"))) static void feed_avx2(struct hs_strings *s, uint64_t addr,
						      const unsigned char *b, size_t n)
{
	feed_vec(s, addr, b, n, mask_avx2);
}

static void spans_sse2(struct hs_strings *s, uint64_t addr, unsigned char *b, size_t n, hs_span_fn span,
		       void *ctx)
{
	feed_spans_vec(s, addr, b, n, span, ctx, mask_sse2, put_scalar);
}

__attribute__((target("avx2"))) static void spans_avx2(struct hs_strings *s, uint64_t addr, unsigned char *b,
						       size_t n, hs_span_fn span, void *ctx)
{
	feed_spans_vec(s, addr, b, n, span, ctx, mask_avx2, put_scalar);
}

__attribute__((target("avx512f,avx512bw"))) static void spans_avx512(struct hs_strings *s, uint64_t addr,
								 unsigned char *b, size_t n, hs_span_fn span,
								 void *ctx)
{
	feed_spans_vec(s, addr, b, n, span, ctx, mask_avx512, put_avx512);
}

__attribute__((target("avx512f,avx512bw"))) static void feed_avx512(struct hs_strings *s, uint64_t addr,
								const unsigned char *b, size_t n)
{
	feed_vec(s, addr, b, n, mask_avx512);
}
#endif

static const struct {
	const char *name;
	void (*feed)(struct hs_strings *, uint64_t, const unsigned char *, size_t);
	void (*spans)(struct hs_strings *, uint64_t, unsigned char *, size_t, hs_span_fn, void *);
} impls[] = {
	[HS_SCAN_SCALAR] = { "scalar", feed_scalar, NULL },
	[HS_SCAN_TABLE] = { "table", feed_table, spans_table },
#ifdef HS_HAVE_X86
	[HS_SCAN_SSE2] = { "sse2", feed_sse2, spans_sse2 },
	[HS_SCAN_AVX2] = { "avx2", feed_avx2, spans_avx2 },
	[HS_SCAN_AVX512] = { "avx512bw", feed_avx512, spans_avx512 },
#endif
};

bool hs_strings_impl_supported(enum hs_scan_impl impl)
{
	if (impl <= 0 || (size_t)impl >= sizeof(impls) / sizeof(impls[0]) || !impls[impl].feed)
		return false;
#ifdef HS_HAVE_X86
	__builtin_cpu_init();
	if (impl == HS_SCAN_AVX2)
		return __builtin_cpu_supports("avx2");
	if (impl == HS_SCAN_AVX512)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
	return true;
}

const char *hs_strings_impl_name(enum hs_scan_impl impl)
{
	return impl > 0 && (size_t)impl < sizeof(impls) / sizeof(impls[0]) && impls[impl].name ? impls[impl].name
												  : "?";
}

int hs_strings_set_impl(struct hs_strings *s, enum hs_scan_impl impl)
{
	if (impl == HS_SCAN_AUTO) {
		impl = HS_SCAN_TABLE;
		for (enum hs_scan_impl k = HS_SCAN_SSE2; k <= HS_SCAN_AVX512; k++)
			if (hs_strings_impl_supported(k))
				impl = k;
	}
	if (!hs_strings_impl_supported(impl))
		return -ENOTSUP;
	s->impl = impl;
	return 0;
}

void hs_strings_feed(struct hs_strings *s, uint64_t addr, const unsigned char *b, size_t n)
{
	if (addr != s->next) {
		end_run(s);
		s->have_carry = false;
	}
	if (s->width == 2)
		feed_utf16(s, addr, b, n);
	else
		impls[s->impl].feed(s, addr, b, n);
}

void hs_strings_feed_spans(struct hs_strings *s, uint64_t addr, unsigned char *b, size_t n, hs_span_fn span,
			   void *ctx)
{
	if (s->width != 1 || s->min > 64 || !impls[s->impl].spans) {
		hs_strings_feed(s, addr, b, n);
		return;
	}
	if (addr != s->next) {
		end_run(s);
		s->have_carry = false;
	}
	impls[s->impl].spans(s, addr, b, n, span, ctx);
}

void hs_strings_end(struct hs_strings *s)
{
	end_run(s);
	s->have_carry = false;
	s->next = UINT64_MAX;
}

void hs_strings_take(struct hs_strings *dst, struct hs_strings *src)
{
	char *b = dst->buf;
	dst->buf = src->buf;
	src->buf = b;
	dst->next = src->next;
	dst->have_carry = src->have_carry;
	dst->carry = src->carry;
	dst->carry_addr = src->carry_addr;
	dst->run_addr = src->run_addr;
	dst->len = src->len;
	dst->emitted = src->emitted;
	dst->cont = src->cont;
}

void hs_strings_release(struct hs_strings *s)
{
	free(s->buf);
	s->buf = NULL;
}
