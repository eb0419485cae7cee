/* got-dump: print what hs_got_find and hs_got_read see in a live process,
 * one tab-separated record a line, for tests/live/got.sh to check against
 * readelf and /proc/PID/mem.  Not installed; not a subcommand.
 *
 * Usage: got-dump [--exclude NAME]... [--skip-unusable] [--any-version]
 *                 [--maps FILE] [--names a,b,c] PID
 *
 *   target  NAME DEFINED VERSION LIBC_ADDR CANONICAL COMPAT
 *   object  PATH BASE BUILD_ID IS_LIBC BIND_NOW RELRO_LO RELRO_HI NSLOTS DEFINES SKIPPED
 *   slot    PATH SYMBOL TYPE ADDR ADDEND VERSION RELRO LAZY VALUE STATE
 *
 * Exit status 0, or 2 with "got-dump: MESSAGE" on stderr. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "got.h"
#include "maps.h"
#include "mem.h"

static int die(const char *msg)
{
	fprintf(stderr, "got-dump: %s\n", msg);
	return 2;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);
	size_t k;
	while (b && (k = fread(b + n, 1, cap - n, f)) > 0) {
		n += k;
		if (n == cap) {
			char *nb = realloc(b, cap *= 2);
			if (!nb) {
				free(b);
				fclose(f);
				return NULL;
			}
			b = nb;
		}
	}
	fclose(f);
	*len = n;
	return b;
}

int main(int argc, char **argv)
{
	const char *exclude[16], *names[64], *mapsfile = NULL;
	size_t nexclude = 0, nnames = 0;
	bool skip = false, any = false;
	char *namebuf = NULL;
	int i;
	for (i = 1; i < argc - 1; i++) {
		if (!strcmp(argv[i], "--exclude") && nexclude < 16)
			exclude[nexclude++] = argv[++i];
		else if (!strcmp(argv[i], "--skip-unusable"))
			skip = true;
		else if (!strcmp(argv[i], "--any-version"))
			any = true;
		else if (!strcmp(argv[i], "--maps"))
			mapsfile = argv[++i];
		else if (!strcmp(argv[i], "--names")) {
			namebuf = strdup(argv[++i]);
			for (char *t = strtok(namebuf, ","); t && nnames < 64; t = strtok(NULL, ","))
				names[nnames++] = t;
		} else
			return die("usage: got-dump [--exclude NAME]... [--skip-unusable] [--any-version] [--maps FILE] [--names a,b] PID");
	}
	if (i != argc - 1)
		return die("usage: got-dump [--exclude NAME]... [--skip-unusable] [--any-version] [--maps FILE] [--names a,b] PID");
	pid_t pid = (pid_t)atoi(argv[i]);
	struct hs_err err = { 0 };
	struct hs_maps maps = { 0 };
	int r;
	if (mapsfile) {
		size_t len;
		char *text = slurp(mapsfile, &len);
		if (!text)
			return die("cannot read the maps file");
		r = hs_maps_parse(text, len, &maps, &err);
		free(text);
	} else {
		r = hs_maps_read(pid, false, &maps, &err);
	}
	if (r < 0)
		return die(err.msg);
	struct hs_got_opts opts = {
		.names = nnames ? names : hs_got_malloc_names,
		.nnames = nnames ? nnames : hs_got_malloc_nnames,
		.exclude = exclude,
		.nexclude = nexclude,
		.skip_unusable = skip,
		.any_version = any,
	};
	struct hs_got got;
	r = hs_got_find(pid, &maps, NULL, &opts, &got, &err);
	if (r < 0) {
		hs_maps_release(&maps);
		free(namebuf);
		return die(err.msg);
	}
	struct hs_mem *mem;
	r = hs_mem_open_pid(pid, &mem, &err);
	if (r == 0) {
		r = hs_got_read(mem, &got, &err);
		hs_mem_close(mem);
	}
	if (r < 0) {
		hs_got_release(&got);
		hs_maps_release(&maps);
		free(namebuf);
		return die(err.msg);
	}
	for (size_t k = 0; k < got.ntargets; k++) {
		const struct hs_got_target *t = &got.targets[k];
		printf("target\t%s\t%d\t%s\t0x%" PRIx64 "\t0x%" PRIx64 "\t%d\n", t->name, t->defined,
		       t->version[0] ? t->version : "-", t->libc_addr, t->canonical, t->compat);
	}
	for (size_t k = 0; k < got.nobj; k++) {
		const struct hs_got_object *o = &got.obj[k];
		printf("object\t%s\t0x%" PRIx64 "\t%s\t%d\t%d\t0x%" PRIx64 "\t0x%" PRIx64 "\t%zu\t%s\t%s\n", o->path,
		       o->base, o->build_id[0] ? o->build_id : "-", o->is_libc, o->bind_now, o->relro_lo, o->relro_hi,
		       o->nslots, o->defines ? o->defines : "-", o->skipped ? o->skipped : "-");
	}
	for (size_t k = 0; k < got.n; k++) {
		const struct hs_got_slot *s = &got.v[k];
		printf("slot\t%s\t%s\t%s\t0x%" PRIx64 "\t%" PRId64 "\t%s\t%d\t0x%" PRIx64 "\t0x%" PRIx64 "\t%s\n",
		       got.obj[s->object].path, s->symbol, hs_got_type_name(s->type), s->addr, s->addend,
		       s->version[0] ? s->version : "-", s->relro, s->lazy, s->value, hs_got_state_name(s->state));
	}
	hs_got_release(&got);
	hs_maps_release(&maps);
	free(namebuf);
	return 0;
}
