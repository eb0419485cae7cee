/* Every layout table row against offsets derived from each glibc tag's
 * source (tests/unit/layouts.txt: one line per tag, key=value), and the
 * layout check. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "tap.h"

#define F(name) { #name, offsetof(struct hs_layout, name), 'i' }
#define B(name) { #name, offsetof(struct hs_layout, name), 'b' }
#define S(name) { #name, offsetof(struct hs_layout, name), 's' }
static const struct { const char *key; size_t off; char type; } keys[] = {
	F(ms_mutex), F(ms_flags), F(ms_have_fastchunks), F(ms_fastbins), F(ms_top), F(ms_last_remainder), F(ms_bins),
	F(ms_binmap), F(ms_next), F(ms_next_free), F(ms_attached_threads), F(ms_system_mem), F(ms_max_system_mem),
	F(ms_sizeof), F(nfastbins), F(mp_trim_threshold), F(mp_top_pad), F(mp_mmap_threshold), F(mp_arena_test),
	F(mp_arena_max), F(mp_thp_pagesize), F(mp_hp_pagesize), F(mp_n_mmaps), F(mp_n_mmaps_max), F(mp_max_n_mmaps),
	F(mp_no_dyn_threshold), F(mp_mmapped_mem), F(mp_max_mmapped_mem), F(mp_sbrk_base), F(mp_tcache_bins),
	F(mp_tcache_max_bytes), F(mp_tcache_count), F(mp_tcache_unsorted_limit), F(mp_sizeof), F(hi_ar_ptr), F(hi_prev),
	F(hi_size), F(hi_mprotect_size), F(hi_sizeof), F(tc_bins), F(tc_count_width), F(tc_counts), F(tc_entries),
	F(tc_sizeof), B(tc_counts_down), B(safe_linking), B(top_in_rest), B(mi_mmap_total), B(mi_subheaps), B(mi_fast),
	S(mi_size_prefix), S(mi_unsorted_prefix), F(mp_default_tcache_count),
};

/* "7tab8sp", "2sp", "none" -> the characters */
static void prefix(const char *v, char *out)
{
	int tabs = 0, sp = 0;
	const char *t = strstr(v, "tab"), *p = strstr(v, "sp");
	if (t)
		tabs = atoi(v);
	if (p)
		sp = atoi(t ? t + 3 : v);
	int n = 0;
	while (tabs--)
		out[n++] = '\t';
	while (sp--)
		out[n++] = ' ';
	out[n] = '\0';
}

int main(int argc, char **argv)
{
	FILE *f = argc > 1 ? fopen(argv[1], "r") : NULL;
	OK(f != NULL, "derived offsets: %s", argc > 1 ? argv[1] : "(none given)");
	char line[4096];
	int tags = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		char tag[32] = "";
		sscanf(line, "tag=%31s", tag);
		int major = 0, minor = 0;
		sscanf(tag, "%d.%d", &major, &minor);
		const struct hs_layout *l = hs_layout_for_version(major, minor);
		OK(l != NULL, "glibc %s has a row", tag);
		if (!l)
			continue;
		tags++;
		int bad = 0;
		char *save;
		for (char *kv = strtok_r(line, " \t\n", &save); kv; kv = strtok_r(NULL, " \t\n", &save)) {
			char *eq = strchr(kv, '=');
			if (!eq)
				continue;
			*eq = '\0';
			const char *v = eq + 1;
			for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
				if (strcmp(keys[i].key, kv))
					continue;
				const char *p = (const char *)l + keys[i].off;
				if (keys[i].type == 'i') {
					int want = !strcmp(v, "-") ? HS_NO_FIELD : (int)strtol(v, NULL, 0), got;
					memcpy(&got, p, sizeof(got));
					/* no tcache: the table says 0 where the data says "-" */
					if ((!strncmp(kv, "tc_", 3) || !strcmp(kv, "mp_default_tcache_count")) && l->tc_bins == 0 &&
					    want == HS_NO_FIELD && (got == 0 || got == HS_NO_FIELD))
						got = HS_NO_FIELD;
					if (got != want) {
						printf("#   %s %s: table %#x, source %#x\n", tag, kv, got, want);
						bad++;
					}
				} else if (keys[i].type == 'b') {
					bool got;
					memcpy(&got, p, sizeof(got));
					if (got != (atoi(v) != 0)) {
						printf("#   %s %s: table %d, source %s\n", tag, kv, got, v);
						bad++;
					}
				} else {
					const char *got;
					char want[64];
					memcpy(&got, p, sizeof(got));
					prefix(v, want);
					if (!got || strcmp(got, want)) {
						printf("#   %s %s: differs (source %s)\n", tag, kv, v);
						bad++;
					}
				}
			}
		}
		OK(bad == 0, "glibc %s: the %s row matches the offsets derived from its source", tag, l->name);
	}
	OK(tags >= 10, "%d tags checked", tags);
	if (f)
		fclose(f);

	unsigned n;
	const struct hs_layout *t = hs_layout_table(&n);
	for (unsigned i = 0; i < n; i++)
		OK(hs_layout_check(&t[i]), "row %s passes the layout check", t[i].name);
	const struct hs_layout *r = hs_layout_for_version(2, 36);
	struct hs_layout bad = *r;
	bad.mp_sizeof = 0x1000;
	OK(!hs_layout_check(&bad), "an mp_ larger than the walker's buffer is refused");
	bad = *r;
	bad.hi_size = 0x40;
	OK(!hs_layout_check(&bad), "a heap_info field past its struct is refused");
	bad = *r;
	bad.ms_top = HS_NO_FIELD;
	OK(!hs_layout_check(&bad), "a layout without top is refused");
	bad = *r;
	bad.tc_count_width = 3;
	OK(!hs_layout_check(&bad), "a tcache count width of 3 is refused");
	OK(hs_bin_at(r, 0, 1) == 0x60, "bin_at(1) is main_arena+0x60 (\"main_arena+96\") from 2.27 on");
	OK(hs_layout_for_version(2, 16) == NULL && hs_layout_for_version(2, 44) == NULL &&
	   hs_layout_for_version(3, 0) == NULL, "versions without a row: none is guessed");
	return tap_done();
}
