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

int main(void)
{
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
