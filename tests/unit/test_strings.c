/* The strings scanner against what GNU strings prints for the same bytes,
 * and range parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "tap.h"

static char out[4096];

static void collect(void *ctx, uint64_t addr, const char *s, size_t len, bool more, bool cont)
{
	(void)ctx;
	size_t n = strlen(out);
	if (!cont)
		n += snprintf(out + n, sizeof(out) - n, "%llx:", (unsigned long long)addr);
	n += snprintf(out + n, sizeof(out) - n, "%.*s", (int)len, s);
	if (!more)
		snprintf(out + n, sizeof(out) - n, "|");
}

/* Feed bytes in pieces of `step`, return what was found. */
static const char *scan(enum hs_encoding enc, unsigned min, const void *b, size_t n, size_t step)
{
	struct hs_strings s;
	out[0] = '\0';
	if (hs_strings_init(&s, enc, min, collect, NULL) < 0)
		return "init failed";
	for (size_t i = 0; i < n; i += step)
		hs_strings_feed(&s, 0x1000 + i, (const unsigned char *)b + i, n - i < step ? n - i : step);
	hs_strings_end(&s);
	hs_strings_release(&s);
	return out;
}

/* ---- every scanner variant against the byte-at-a-time reference ---- */

struct growbuf {
	char *p;
	size_t n, cap;
};

static void gb_put(struct growbuf *g, const void *s, size_t n)
{
	if (g->n + n > g->cap) {
		g->cap = (g->n + n) * 2 + 4096;
		g->p = realloc(g->p, g->cap);
	}
	memcpy(g->p + g->n, s, n);
	g->n += n;
}

static void collect_all(void *ctx, uint64_t addr, const char *s, size_t len, bool more, bool cont)
{
	struct growbuf *g = ctx;
	char h[64];
	int k = snprintf(h, sizeof(h), "%s%llx:%zu:", cont ? "+" : "", (unsigned long long)addr, len);
	gb_put(g, h, (size_t)k);
	gb_put(g, s, len);
	gb_put(g, more ? "..." : "|", more ? 3 : 1);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Scan b[0..n) with impl, fed in pieces cut at cuts[] (a gap of 16
 * bytes of address after each piece whose gap[] is set). */
static void scan_impl(struct growbuf *g, enum hs_scan_impl impl, enum hs_encoding enc, unsigned min,
		      const unsigned char *b, size_t n, const size_t *cuts, const bool *gap, size_t ncuts)
{
	struct hs_strings s;
	g->n = 0;
	if (hs_strings_init(&s, enc, min, collect_all, g) < 0 || hs_strings_set_impl(&s, impl) < 0) {
		gb_put(g, "init failed", 11);
		return;
	}
	size_t at = 0;
	uint64_t addr = 0x10000;
	for (size_t k = 0; k <= ncuts; k++) {
		size_t to = k < ncuts ? cuts[k] : n;
		hs_strings_feed(&s, addr + at, b + at, to - at);
		if (k < ncuts && gap[k])
			addr += 16;
		at = to;
	}
	hs_strings_end(&s);
	hs_strings_release(&s);
}

static const char *const kinds[] = { "random bytes", "mostly text", "text runs near min", "long runs",
				     "pointers and headers", "tabs and edges", "huge run" };

static void fill(unsigned char *b, size_t n, int kind, unsigned min)
{
	static const unsigned char edges[] = { 0x1f, 0x20, 0x7e, 0x7f, 0x08, 0x09, 0x0a, 0x80, 0xff, 0xa0, 0x00, 'a' };
	size_t i = 0;
	while (i < n) {
		size_t len = 1 + rnd() % (kind == 3 ? 5000 : kind == 2 ? 2 * min + 2 : 80);
		if (len > n - i)
			len = n - i;
		for (size_t k = 0; k < len; k++) {
			unsigned char c;
			switch (kind) {
			case 0: c = (unsigned char)rnd(); break;
			case 1: c = rnd() % 50 ? (unsigned char)(0x20 + rnd() % 95) : (unsigned char)rnd(); break;
			case 2: case 3: c = (unsigned char)(0x20 + rnd() % 95); break;
			case 4: c = k % 8 < 5 ? (unsigned char)rnd() : k % 8 == 5 ? 0x7f : 0; break;
			case 5: c = edges[rnd() % sizeof(edges)]; break;
			default: c = 'h'; break;
			}
			b[i + k] = c;
		}
		i += len;
		if ((kind == 2 || kind == 3) && i < n)
			b[i++] = (unsigned char)(rnd() % 2 ? 0 : 0x80 + rnd() % 128);
	}
}

static void test_variants(void)
{
	static const enum hs_scan_impl all[] = { HS_SCAN_TABLE, HS_SCAN_SSE2, HS_SCAN_AVX2, HS_SCAN_AVX512 };
	static const unsigned mins[] = { 1, 2, 3, 4, 7, 10, 31, 63, 64, 65, 100, 300 };
	size_t n = 3 * HS_STRING_MAX + 777;
	unsigned char *b = malloc(n);
	struct growbuf ref = { 0 }, got = { 0 };
	for (size_t v = 0; v < sizeof(all) / sizeof(all[0]); v++) {
		if (!hs_strings_impl_supported(all[v])) {
			printf("ok %d - # SKIP %s: the CPU does not have it\n", ++tap_n, hs_strings_impl_name(all[v]));
			continue;
		}
		int bad = 0, runs = 0;
		for (int kind = 0; kind < 7 && !bad; kind++)
			for (size_t mi = 0; mi < sizeof(mins) / sizeof(mins[0]) && !bad; mi++) {
				unsigned min = mins[mi];
				/* small buffers (every cut of them), then big ones */
				for (int round = 0; round < 6 && !bad; round++) {
					size_t len = round < 4 ? 1 + rnd() % 300 : kind == 6 ? n : 100000 + rnd() % 200000;
					fill(b, len, kind, min);
					size_t cuts[64];
					bool gap[64];
					size_t nc = round == 0 ? 0 : 1 + rnd() % 63;
					for (size_t k = 0; k < nc; k++) {
						cuts[k] = rnd() % (len + 1);
						gap[k] = rnd() % 8 == 0;
					}
					for (size_t x = 1; x < nc; x++)          /* sort the cuts */
						for (size_t y = x; y > 0 && cuts[y - 1] > cuts[y]; y--) {
							size_t tc = cuts[y]; cuts[y] = cuts[y - 1]; cuts[y - 1] = tc;
						}
					scan_impl(&ref, HS_SCAN_SCALAR, HS_ENC_ASCII, min, b, len, cuts, gap, nc);
					scan_impl(&got, all[v], HS_ENC_ASCII, min, b, len, cuts, gap, nc);
					runs++;
					if (ref.n != got.n || memcmp(ref.p, got.p, ref.n)) {
						bad = 1;
						size_t d = 0;
						while (d < ref.n && d < got.n && ref.p[d] == got.p[d])
							d++;
						printf("# %s, %s, min %u, %zu bytes, %zu cuts: differs at %zu: ref '%.40s' got '%.40s'\n",
						       hs_strings_impl_name(all[v]), kinds[kind], min, len, nc, d,
						       ref.p + d, got.p + d);
					}
				}
			}
		OK(!bad, "%s finds the same strings as the byte-at-a-time scanner (%d buffers: random, text, "
		   "pointers, edge bytes, 3 MiB runs; cut across feeds, with gaps)", hs_strings_impl_name(all[v]), runs);
	}
	/* every single cut of one buffer, each variant */
	unsigned char small[200];
	fill(small, sizeof(small), 2, 10);
	for (size_t v = 0; v < sizeof(all) / sizeof(all[0]); v++) {
		if (!hs_strings_impl_supported(all[v]))
			continue;
		int bad = 0;
		for (size_t c1 = 0; c1 <= sizeof(small) && !bad; c1++)
			for (size_t c2 = c1; c2 <= sizeof(small) && !bad; c2 += 7) {
				size_t cuts[2] = { c1, c2 };
				bool gap[2] = { false, false };
				scan_impl(&ref, HS_SCAN_SCALAR, HS_ENC_ASCII, 10, small, sizeof(small), cuts, gap, 2);
				scan_impl(&got, all[v], HS_ENC_ASCII, 10, small, sizeof(small), cuts, gap, 2);
				bad = ref.n != got.n || memcmp(ref.p, got.p, ref.n);
			}
		OK(!bad, "%s: a 200-byte buffer cut in three at every pair of places", hs_strings_impl_name(all[v]));
	}
	/* UTF-16LE goes the same way whatever the one-byte scanner is */
	fill(b, 100000, 5, 4);
	for (size_t i = 0; i < 100000; i += 2)
		if (rnd() % 3)
			b[i + 1] = 0;
	size_t cuts[3] = { 333, 334, 50001 };
	bool gap[3] = { false, false, false };
	scan_impl(&ref, HS_SCAN_SCALAR, HS_ENC_UTF16LE, 4, b, 100000, cuts, gap, 3);
	scan_impl(&got, HS_SCAN_AUTO, HS_ENC_UTF16LE, 4, b, 100000, cuts, gap, 3);
	OK(ref.n > 0 && ref.n == got.n && !memcmp(ref.p, got.p, ref.n), "utf16le: the same with any variant chosen");
	free(ref.p);
	free(got.p);
	free(b);
}

int main(void)
{
	test_variants();
	static const char a[] = "ab\001cdef\tgh\377xyz";
	for (size_t step = 1; step <= sizeof(a); step++) {
		const char *r = scan(HS_ENC_ASCII, 4, a, sizeof(a) - 1, step);
		if (strcmp(r, "1003:cdef\tgh|")) {
			OK(0, "ascii, pieces of %zu: got %s", step, r);
			goto next;
		}
	}
	OK(1, "ascii: TAB is a character, 0x01 and 0xff end runs, short runs dropped, any feed size");
next:
	OK(!strcmp(scan(HS_ENC_ASCII, 3, a, sizeof(a) - 1, 64), "1003:cdef\tgh|100b:xyz|"), "a run at the end of input");

	/* UTF-16LE: "hi!x" then a bad character, as strings -el: the search
	 * resumes at the bad character's second byte. */
	static const unsigned char u[] = { 'h', 0, 'i', 0, '!', 0, 'x', 0, 0x01, 'A', 0, 'B', 0, 'C', 0, 'D', 0 };
	OK(!strcmp(scan(HS_ENC_UTF16LE, 4, u, sizeof(u), 64), "1000:hi!x|1009:ABCD|"), "utf16le with resync: %s", out);
	OK(!strcmp(scan(HS_ENC_UTF16LE, 4, u, sizeof(u), 3), "1000:hi!x|1009:ABCD|"), "utf16le fed in odd pieces");
	OK(!strcmp(scan(HS_ENC_UTF16LE, 4, "abcdefgh", 8, 64), ""), "ASCII is no UTF-16LE");

	/* A gap ends a run: two pieces at addresses that do not touch. */
	struct hs_strings s;
	out[0] = '\0';
	hs_strings_init(&s, HS_ENC_ASCII, 4, collect, NULL);
	hs_strings_feed(&s, 0x1000, (const unsigned char *)"abcd", 4);
	hs_strings_feed(&s, 0x2000, (const unsigned char *)"efgh", 4);
	hs_strings_end(&s);
	hs_strings_release(&s);
	OK(!strcmp(out, "1000:abcd|2000:efgh|"), "a gap ends a run: %s", out);

	uint64_t v;
	OK(hs_parse_size("64K", &v) == 0 && v == 65536, "64K");
	OK(hs_parse_size("0x10M", &v) == 0 && v == (16u << 20), "0x10M");
	OK(hs_parse_size("1.5M", &v) < 0 && hs_parse_size("-1", &v) < 0 && hs_parse_size("", &v) < 0, "bad sizes refused");
	OK(hs_parse_size("99999999999999G", &v) < 0, "overflowing size refused");

	struct hs_maps maps = { 0 };
	static const char text[] = "1000-3000 rw-p 00000000 00:00 0 [heap]\n"
				   "5000-6000 r--p 00000000 fe:01 7 /lib/x.so\n";
	hs_maps_parse(text, strlen(text), &maps, NULL);
	struct hs_ranges r;
	struct hs_err err = { 0 };
	OK(hs_range_resolve("0x1000-0x2000", &maps, NULL, &r, &err) == 0 && r.n == 1 && r.v[0].end == 0x2000, "START-END");
	hs_ranges_release(&r);
	OK(hs_range_resolve("0x1000+4K", &maps, NULL, &r, &err) == 0 && r.v[0].end == 0x2000, "START+LEN");
	hs_ranges_release(&r);
	OK(hs_range_resolve("[heap]", &maps, NULL, &r, &err) == 0 && r.v[0].start == 0x1000 && r.v[0].end == 0x3000, "[heap]");
	hs_ranges_release(&r);
	OK(hs_range_resolve("/lib/x.so", &maps, NULL, &r, &err) == 0 && r.v[0].start == 0x5000, "a mapped file");
	hs_ranges_release(&r);
	OK(hs_range_resolve("0x5000", &maps, NULL, &r, &err) == 0 && r.v[0].end == 0x6000, "a mapping's start");
	hs_ranges_release(&r);
	OK(hs_range_resolve("0x3000-0x1000", &maps, NULL, &r, &err) < 0, "reversed: %s", err.msg);
	OK(hs_range_resolve("0x8000-0x9000", &maps, NULL, &r, &err) < 0, "outside: %s", err.msg);
	OK(hs_range_resolve("0x1000+0", &maps, NULL, &r, &err) < 0, "empty: %s", err.msg);
	OK(hs_range_resolve("arena:0", &maps, NULL, &r, &err) < 0, "arena without a walk: %s", err.msg);
	OK(hs_range_resolve("zzz", &maps, NULL, &r, &err) < 0, "garbage: %s", err.msg);
	hs_maps_release(&maps);
	return tap_done();
}
