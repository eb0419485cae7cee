/* The profile analysis on samples recorded by a test target (the
 * stand-in sampler, tests/targets/profsampler.c): builds the struct
 * hs_profile_data that collection would have drained, runs
 * hs_profile_analyze and every writer, for tests/live/profile_analyze.sh.
 *
 *   profile-analyze PID RATE SAMPLES OUTPREFIX [--no-debuginfo] [--max-frames N]
 *
 * writes OUTPREFIX.json, .pb.gz, .folded, .inuse.folded, .svg, .inuse.svg. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

static int out(const char *prefix, const char *ext, const struct hs_profile_report *r, int which)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s%s", prefix, ext);
	FILE *fp = fopen(path, "w");
	if (!fp) {
		perror(path);
		return -1;
	}
	int rc;
	switch (which) {
	case 0: rc = hs_profile_write_json(fp, r, 0); break;
	case 1: rc = hs_profile_write_pprof(fp, r); break;
	case 2: rc = hs_profile_write_folded(fp, r, false); break;
	case 3: rc = hs_profile_write_folded(fp, r, true); break;
	case 4: rc = hs_profile_write_svg(fp, r, false); break;
	default: rc = hs_profile_write_svg(fp, r, true); break;
	}
	if (fclose(fp) || rc < 0) {
		fprintf(stderr, "profile-analyze: writing %s failed\n", path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: profile-analyze PID RATE SAMPLES OUTPREFIX [--no-debuginfo] [--max-frames N]\n");
		return 64;
	}
	struct hs_profile_opts o = { .use_debuginfo = true };
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--no-debuginfo"))
			o.use_debuginfo = false;
		else if (!strcmp(argv[i], "--max-frames") && i + 1 < argc)
			o.max_frames = atoi(argv[++i]);
	}
	struct hs_profile_data d = { .pid = atoi(argv[1]), .rate = strtoull(argv[2], NULL, 0) };
	FILE *fp = fopen(argv[3], "r");
	if (!fp) {
		perror(argv[3]);
		return 2;
	}
	struct hs_sample_hdr h;
	while (fread(&h, sizeof(h), 1, fp) == 1) {
		if (h.stack_len > HS_SAMPLER_STACK) {
			fprintf(stderr, "profile-analyze: bad record\n");
			return 2;
		}
		if (d.n == d.cap) {
			d.cap = d.cap ? d.cap * 2 : 64;
			d.v = realloc(d.v, d.cap * sizeof(*d.v));
			if (!d.v)
				return 2;
		}
		struct hs_profile_sample *s = &d.v[d.n++];
		s->h = h;
		s->stack = NULL;
		if (h.stack_len) {
			s->stack = malloc(h.stack_len);
			if (!s->stack || fread(s->stack, 1, h.stack_len, fp) != h.stack_len) {
				fprintf(stderr, "profile-analyze: short record\n");
				return 2;
			}
		}
		if (h.time_ns && (!d.t_start_ns || h.time_ns < d.t_start_ns))
			d.t_start_ns = h.time_ns;
		if (h.time_ns > d.t_end_ns)
			d.t_end_ns = h.time_ns;
	}
	fclose(fp);
	struct hs_profile_report r;
	struct hs_err err = { 0 };
	if (hs_profile_analyze(&d, &o, &r, &err) < 0) {
		fprintf(stderr, "profile-analyze: %s\n", err.msg);
		return 2;
	}
	static const char *const ext[] = { ".json", ".pb.gz", ".folded", ".inuse.folded", ".svg", ".inuse.svg" };
	int rc = 0;
	for (int i = 0; i < 6; i++)
		if (out(argv[4], ext[i], &r, i) < 0)
			rc = 1;
	hs_profile_report_release(&r);
	for (size_t i = 0; i < d.n; i++)
		free(d.v[i].stack);
	free(d.v);
	return rc;
}
