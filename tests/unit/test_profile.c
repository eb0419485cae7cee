/* The profile analysis' pieces that need no process: the protobuf
 * encoder pprof output is made of (varints, tags, length-delimited and
 * packed fields, against bytes worked out by hand from the protobuf
 * encoding spec), the estimator for Poisson byte sampling (exact values,
 * and unbiased over a simulated sampling with a fixed seed), "file:line"
 * splitting, and the folded and SVG writers on a synthetic report. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"
#include "profile_priv.h"
#include "tap.h"

static int same(const struct hs_pb *b, const unsigned char *want, size_t n)
{
	return !b->oom && b->len == n && !memcmp(b->p, want, n);
}

#define PB_IS(b, ...) ({ static const unsigned char w_[] = { __VA_ARGS__ }; same(b, w_, sizeof(w_)); })

static void encoder(void)
{
	struct hs_pb b = { 0 };
	hs_pb_varint(&b, 0);
	OK(PB_IS(&b, 0x00), "varint 0 is one zero byte");
	hs_pb_release(&b);
	hs_pb_varint(&b, 127);
	OK(PB_IS(&b, 0x7f), "varint 127 is one byte");
	hs_pb_release(&b);
	hs_pb_varint(&b, 128);
	OK(PB_IS(&b, 0x80, 0x01), "varint 128 is 80 01");
	hs_pb_release(&b);
	hs_pb_varint(&b, 300);
	OK(PB_IS(&b, 0xac, 0x02), "varint 300 is ac 02 (the spec's example)");
	hs_pb_release(&b);
	hs_pb_varint(&b, UINT64_MAX);
	OK(PB_IS(&b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "varint 2^64-1 is ten bytes");
	hs_pb_release(&b);
	hs_pb_i64(&b, 1, -1);
	OK(PB_IS(&b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
	   "int64 -1 is two's complement in ten bytes after its tag");
	hs_pb_release(&b);
	hs_pb_u64(&b, 3, 0);
	OK(b.len == 0, "a zero scalar is not written (proto3 default)");
	hs_pb_u64(&b, 1, 150);
	OK(PB_IS(&b, 0x08, 0x96, 0x01), "field 1 = 150 is 08 96 01 (the spec's example)");
	hs_pb_release(&b);
	hs_pb_tag(&b, 16, 0);
	OK(PB_IS(&b, 0x80, 0x01), "field 16's tag takes two bytes");
	hs_pb_release(&b);
	hs_pb_string(&b, 2, "testing");
	OK(PB_IS(&b, 0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'), "field 2 = \"testing\" is 12 07 ... (the spec's example)");
	hs_pb_release(&b);
	hs_pb_string(&b, 6, "");
	OK(PB_IS(&b, 0x32, 0x00), "an empty string is still written (the string table's first entry)");
	hs_pb_release(&b);
	static const uint64_t v[] = { 3, 270, 86942 };
	hs_pb_packed(&b, 4, v, 3);
	OK(PB_IS(&b, 0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05), "packed 3, 270, 86942 (the spec's example)");
	hs_pb_release(&b);
	char big[200];
	memset(big, 'x', sizeof(big));
	hs_pb_lenbytes(&b, 1, big, sizeof(big));
	OK(!b.oom && b.len == 3 + sizeof(big) && b.p[0] == 0x0a && b.p[1] == 0xc8 && b.p[2] == 0x01 &&
	   !memcmp(b.p + 3, big, sizeof(big)), "a 200-byte field has a two-byte length");
	hs_pb_release(&b);
}

static uint64_t rng = 88172645463325252ull;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static void estimator(void)
{
	double b, o;
	hs_profile_estimate(1000, 0, &b, &o);
	OK(b == 1000 && o == 1, "rate 0: a sample stands for itself");
	hs_profile_estimate(1000, 1, &b, &o);
	OK(b == 1000 && o == 1, "rate 1: p is 1 for any real block");
	hs_profile_estimate(512 << 10, 512 << 10, &b, &o);
	OK(fabs(o - 1 / (1 - exp(-1))) < 1e-12 && fabs(b - (512 << 10) * o) < 1e-6,
	   "size = rate: p = 1 - 1/e, %.6f objects", o);
	hs_profile_estimate(16, 512 << 10, &b, &o);
	OK(fabs(b - (512 << 10)) < 16 && o > 32767,
	   "a tiny block stands for about rate bytes: %.1f bytes, %.1f objects", b, o);

	/* Poisson byte sampling simulated: the estimate's sums are near the truth */
	const uint64_t rate = 64 << 10;
	double true_bytes = 0, true_n = 0, est_bytes = 0, est_n = 0;
	for (int i = 0; i < 400000; i++) {
		uint64_t size = 16 + (uint64_t)(uniform() * uniform() * 200000);
		true_bytes += (double)size;
		true_n += 1;
		double p = 1 - exp(-(double)size / (double)rate);
		if (uniform() < p) {
			hs_profile_estimate(size, rate, &b, &o);
			est_bytes += b;
			est_n += o;
		}
	}
	OK(fabs(est_bytes / true_bytes - 1) < 0.02, "simulated sampling: bytes estimated within 2%% (%.4f)",
	   est_bytes / true_bytes);
	OK(fabs(est_n / true_n - 1) < 0.05, "simulated sampling: objects estimated within 5%% (%.4f)", est_n / true_n);
}

static void split(void)
{
	size_t n;
	OK(hs_profile_split_line("a/b.c:42", &n) == 42 && n == 5, "file:line splits");
	OK(hs_profile_split_line("a/b.c", &n) == 0 && n == 5, "a file without a line");
	OK(hs_profile_split_line("c:\\x:y", &n) == 0 && n == 6, "a colon without digits is part of the name");
}

static void writers(void)
{
	struct hs_profile_frame f1[] = {
		{ 0x1010, "leaf+0x10", "l.c:3", NULL }, { 0x2020, "mid;odd+0x2", NULL, NULL }, { 0x3030, "main+0x5", NULL, NULL },
	};
	struct hs_profile_frame f2[] = { { 0x4040, "jit<&>+0x1", NULL, NULL } };
	struct hs_profile_stack st[] = {
		{ 3, f1, 3000.4, 3, 1000, 1, 3, false },
		{ 1, f2, 500, 1, 0, 0, 1, true },
	};
	struct hs_profile_report r = { .pid = 42, .rate = 1, .nsamples = 4, .nstacks = 2, .stacks = st };
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	OK(fp && hs_profile_write_folded(fp, &r, false) == 0, "folded written");
	fclose(fp);
	OK(buf && !strcmp(buf, "main+0x5;mid:odd+0x2;leaf+0x10 3000\n[truncated];jit<&>+0x1 500\n"),
	   "folded: outer first, ';' in a name replaced, truncated stacks marked");
	free(buf);
	fp = open_memstream(&buf, &len);
	OK(fp && hs_profile_write_folded(fp, &r, true) == 0, "in-use folded written");
	fclose(fp);
	OK(buf && !strcmp(buf, "main+0x5;mid:odd+0x2;leaf+0x10 1000\n"), "in-use folded: stacks with nothing live left out");
	free(buf);
	fp = open_memstream(&buf, &len);
	OK(fp && hs_profile_write_svg(fp, &r, false) == 0, "svg written");
	fclose(fp);
	OK(buf && strstr(buf, "<title>jit&lt;&amp;&gt;+0x1 (500 bytes, 14.28%)</title>") &&
	   strstr(buf, "<title>leaf+0x10 (3000 bytes") && strstr(buf, "</svg>"),
	   "svg: titles with exact bytes, names escaped");
	free(buf);
	fp = open_memstream(&buf, &len);
	OK(fp && hs_profile_write_pprof(fp, &r) == 0 && len > 18 && (unsigned char)buf[0] == 0x1f &&
	   (unsigned char)buf[1] == 0x8b, "pprof written, gzip magic first");
	fclose(fp);
	free(buf);
}

int main(void)
{
	encoder();
	estimator();
	split();
	writers();
	return tap_done();
}
