/* The report as pprof's profile.proto (github.com/google/pprof,
 * proto/profile.proto), gzipped as pprof expects: a tiny protobuf encoder
 * (varints and length-delimited fields are all the format needs) and
 * zlib's gzip container. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "profile.h"
#include "profile_priv.h"

/* ---- the encoder ------------------------------------------------------- */

void hs_pb_release(struct hs_pb *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void hs_pb_bytes(struct hs_pb *b, const void *p, size_t n)
{
	if (b->oom || !n)
		return;
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n)
			ncap *= 2;
		unsigned char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void hs_pb_varint(struct hs_pb *b, uint64_t v)
{
	unsigned char buf[10];
	size_t n = 0;
	do {
		buf[n] = v & 0x7f;
		v >>= 7;
		if (v)
			buf[n] |= 0x80;
		n++;
	} while (v);
	hs_pb_bytes(b, buf, n);
}

void hs_pb_tag(struct hs_pb *b, unsigned field, unsigned wire)
{
	hs_pb_varint(b, (uint64_t)field << 3 | wire);
}

void hs_pb_u64(struct hs_pb *b, unsigned field, uint64_t v)
{
	if (!v)
		return;     /* proto3: a default value is not written */
	hs_pb_tag(b, field, 0);
	hs_pb_varint(b, v);
}

void hs_pb_i64(struct hs_pb *b, unsigned field, int64_t v)
{
	hs_pb_u64(b, field, (uint64_t)v);
}

void hs_pb_lenbytes(struct hs_pb *b, unsigned field, const void *p, size_t n)
{
	hs_pb_tag(b, field, 2);
	hs_pb_varint(b, n);
	hs_pb_bytes(b, p, n);
}

void hs_pb_string(struct hs_pb *b, unsigned field, const char *s)
{
	hs_pb_lenbytes(b, field, s, strlen(s));
}

void hs_pb_packed(struct hs_pb *b, unsigned field, const uint64_t *v, size_t n)
{
	struct hs_pb in = { 0 };
	for (size_t i = 0; i < n; i++)
		hs_pb_varint(&in, v[i]);
	if (in.oom)
		b->oom = 1;
	hs_pb_lenbytes(b, field, in.p, in.len);
	hs_pb_release(&in);
}

static void pb_sub(struct hs_pb *b, unsigned field, struct hs_pb *sub)
{
	if (sub->oom)
		b->oom = 1;
	hs_pb_lenbytes(b, field, sub->p, sub->len);
	hs_pb_release(sub);
}

/* ---- the string table -------------------------------------------------- */

struct strtab {
	const char **v;
	size_t n, cap;
	/* an index of v by hash, entries are positions + 1 */
	size_t *h, hcap;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* Strings must outlive the table (they are the report's or literals);
 * -1 when out of memory. */
static int64_t str_id(struct strtab *t, const char *s)
{
	if ((t->n + 1) * 2 >= t->hcap) {
		size_t ncap = t->hcap ? t->hcap * 2 : 256;
		size_t *nh = calloc(ncap, sizeof(*nh));
		if (!nh)
			return -1;
		for (size_t i = 0; i < t->n; i++) {
			size_t j = str_hash(t->v[i]) & (ncap - 1);
			while (nh[j])
				j = (j + 1) & (ncap - 1);
			nh[j] = i + 1;
		}
		free(t->h);
		t->h = nh;
		t->hcap = ncap;
	}
	size_t j = str_hash(s) & (t->hcap - 1);
	while (t->h[j]) {
		if (!strcmp(t->v[t->h[j] - 1], s))
			return (int64_t)(t->h[j] - 1);
		j = (j + 1) & (t->hcap - 1);
	}
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		const char **nv = realloc(t->v, ncap * sizeof(*nv));
		if (!nv)
			return -1;
		t->v = nv;
		t->cap = ncap;
	}
	t->v[t->n] = s;
	t->h[j] = ++t->n;
	return (int64_t)(t->n - 1);
}

/* ---- an index by a pair of 64-bit keys (positions + 1) ----------------- */

struct pairidx {
	struct { uint64_t a, b; size_t v; } *e;
	size_t n, cap;
};

static size_t pair_pos(const struct pairidx *t, uint64_t a, uint64_t b)
{
	size_t j = (size_t)((a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full)) & (t->cap - 1);
	while (t->e[j].v && (t->e[j].a != a || t->e[j].b != b))
		j = (j + 1) & (t->cap - 1);
	return j;
}

/* the value stored for (a, b), 0 when none */
static size_t pair_get(const struct pairidx *t, uint64_t a, uint64_t b)
{
	return t->cap ? t->e[pair_pos(t, a, b)].v : 0;
}

static int pair_put(struct pairidx *t, uint64_t a, uint64_t b, size_t v)
{
	if ((t->n + 1) * 2 >= t->cap) {
		struct pairidx nt = { .cap = t->cap ? t->cap * 2 : 256 };
		nt.e = calloc(nt.cap, sizeof(*nt.e));
		if (!nt.e)
			return -ENOMEM;
		for (size_t i = 0; i < t->cap; i++)
			if (t->e[i].v) {
				nt.e[pair_pos(&nt, t->e[i].a, t->e[i].b)] = t->e[i];
				nt.n++;
			}
		free(t->e);
		*t = nt;
	}
	size_t j = pair_pos(t, a, b);
	if (!t->e[j].v)
		t->n++;
	t->e[j].a = a;
	t->e[j].b = b;
	t->e[j].v = v;
	return 0;
}

/* ---- the profile ------------------------------------------------------- */

struct func {
	const char *name, *file;        /* name without "+0x..", file without ":LINE" (owned) */
};

static char *strip_offset(const char *name)
{
	const char *plus = strrchr(name, '+');
	size_t n = strlen(name);
	if (plus && plus[1] == '0' && plus[2] == 'x' && plus > name && name[0] != '[')
		n = (size_t)(plus - name);
	return strndup(name, n);
}

/* What the profile is built from: the message, its string table, and the
 * locations and functions found in the stacks. */
struct pprof {
	const struct hs_profile_report *r;
	struct hs_pb pb;
	struct strtab st;
	/* locations: one per distinct (pc, name), ids from 1 */
	const struct hs_profile_frame **locs;
	size_t nlocs, loccap;
	struct func *funcs;
	size_t nfuncs, funccap;
	char **owned;
	size_t nowned;
	struct pairidx locidx, funcidx;
	const struct hs_profile_object *objs;
	size_t nobjs;
};

static void pprof_release(struct pprof *p)
{
	free(p->locidx.e);
	free(p->funcidx.e);
	for (size_t i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	free(p->owned);
	free(p->funcs);
	free(p->locs);
	free(p->st.v);
	free(p->st.h);
	hs_pb_release(&p->pb);
}

static void write_sample_types(struct pprof *p)
{
	static const char *const types[4][2] = {
		{ "alloc_objects", "count" }, { "alloc_space", "bytes" },
		{ "inuse_objects", "count" }, { "inuse_space", "bytes" },
	};
	for (int i = 0; i < 4; i++) {
		struct hs_pb vt = { 0 };
		hs_pb_i64(&vt, 1, str_id(&p->st, types[i][0]));
		hs_pb_i64(&vt, 2, str_id(&p->st, types[i][1]));
		pb_sub(&p->pb, 1, &vt);
	}
}

/* The location id (from 1) of a frame, added when new. */
static int64_t location_id(struct pprof *p, const struct hs_profile_frame *f)
{
	/* names are interned: a pointer stands for the name */
	uint64_t np = (uint64_t)(uintptr_t)f->name;
	size_t k = pair_get(&p->locidx, f->pc, np);
	if (k)
		return (int64_t)k;
	k = p->nlocs;
	if (pair_put(&p->locidx, f->pc, np, k + 1) < 0)
		return -ENOMEM;
	if (p->nlocs == p->loccap) {
		p->loccap = p->loccap ? p->loccap * 2 : 256;
		const struct hs_profile_frame **nl = realloc(p->locs, p->loccap * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		p->locs = nl;
	}
	p->locs[p->nlocs++] = f;
	return (int64_t)k + 1;
}

/* One sample per stack: its location ids and the four values. */
static int write_samples(struct pprof *p)
{
	const struct hs_profile_report *r = p->r;
	size_t maxf = 1;
	for (size_t i = 0; i < r->nstacks; i++)
		if (r->stacks[i].nframes > maxf)
			maxf = r->stacks[i].nframes;
	uint64_t *ids = calloc(maxf, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < r->nstacks; i++) {
		const struct hs_profile_stack *s = &r->stacks[i];
		for (size_t f = 0; f < s->nframes; f++) {
			int64_t id = location_id(p, &s->frames[f]);
			if (id < 0) {
				free(ids);
				return (int)id;
			}
			ids[f] = (uint64_t)id;
		}
		struct hs_pb sm = { 0 };
		hs_pb_packed(&sm, 1, ids, s->nframes);
		uint64_t vals[4] = {
			(uint64_t)llround(s->alloc_objects), (uint64_t)llround(s->alloc_bytes),
			(uint64_t)llround(s->inuse_objects), (uint64_t)llround(s->inuse_bytes),
		};
		hs_pb_packed(&sm, 2, vals, 4);
		pb_sub(&p->pb, 2, &sm);
	}
	free(ids);
	return 0;
}

/* mappings: the report's objects, ids from 1 */
static void write_mappings(struct pprof *p)
{
	for (size_t i = 0; i < p->nobjs; i++) {
		const struct hs_profile_object *o = &p->objs[i];
		struct hs_pb m = { 0 };
		hs_pb_u64(&m, 1, i + 1);
		hs_pb_u64(&m, 2, o->start);
		hs_pb_u64(&m, 3, o->limit);
		hs_pb_u64(&m, 4, o->offset);
		hs_pb_i64(&m, 5, str_id(&p->st, o->path));
		if (o->build_id[0])
			hs_pb_i64(&m, 6, str_id(&p->st, o->build_id));
		hs_pb_u64(&m, 7, 1);    /* has_functions */
		hs_pb_u64(&m, 8, 1);    /* has_filenames */
		hs_pb_u64(&m, 9, 1);    /* has_line_numbers */
		pb_sub(&p->pb, 3, &m);
	}
}

/* The function index (from 0) of a name and file, added when new; the
 * strings are owned by p from here. */
static int64_t function_index(struct pprof *p, char *name, char *file)
{
	char **no = realloc(p->owned, (p->nowned + 2) * sizeof(*no));
	if (!no) {
		free(name);
		free(file);
		return -ENOMEM;
	}
	p->owned = no;
	p->owned[p->nowned++] = name;
	if (file)
		p->owned[p->nowned++] = file;
	int64_t nid = str_id(&p->st, name), fid = file ? str_id(&p->st, file) : 0;
	if (nid < 0 || fid < 0)
		return -ENOMEM;
	size_t fi = pair_get(&p->funcidx, (uint64_t)nid, (uint64_t)fid);
	if (fi)
		return (int64_t)fi - 1;
	fi = p->nfuncs;
	if (pair_put(&p->funcidx, (uint64_t)nid, (uint64_t)fid, fi + 1) < 0)
		return -ENOMEM;
	if (p->nfuncs == p->funccap) {
		p->funccap = p->funccap ? p->funccap * 2 : 256;
		struct func *nf = realloc(p->funcs, p->funccap * sizeof(*nf));
		if (!nf)
			return -ENOMEM;
		p->funcs = nf;
	}
	p->funcs[fi].name = name;
	p->funcs[fi].file = file;
	p->nfuncs++;
	return (int64_t)fi;
}

static int write_locations(struct pprof *p)
{
	for (size_t k = 0; k < p->nlocs; k++) {
		const struct hs_profile_frame *f = p->locs[k];
		char *name = strip_offset(f->name ? f->name : "?");
		size_t flen = 0;
		int line = f->file ? hs_profile_split_line(f->file, &flen) : 0;
		char *file = f->file ? strndup(f->file, flen) : NULL;
		if (!name || (f->file && !file)) {
			free(name);
			free(file);
			return -ENOMEM;
		}
		int64_t fi = function_index(p, name, file);
		if (fi < 0)
			return (int)fi;
		struct hs_pb loc = { 0 }, ln = { 0 };
		hs_pb_u64(&loc, 1, k + 1);
		for (size_t i = 0; i < p->nobjs; i++)
			if (f->object == p->objs[i].path) {
				hs_pb_u64(&loc, 2, i + 1);
				break;
			}
		hs_pb_u64(&loc, 3, f->pc);
		hs_pb_u64(&ln, 1, (uint64_t)fi + 1);
		hs_pb_i64(&ln, 2, line);
		pb_sub(&loc, 4, &ln);
		pb_sub(&p->pb, 4, &loc);
	}
	return 0;
}

static void write_functions(struct pprof *p)
{
	for (size_t fi = 0; fi < p->nfuncs; fi++) {
		struct hs_pb fn = { 0 };
		hs_pb_u64(&fn, 1, fi + 1);
		int64_t nid = str_id(&p->st, p->funcs[fi].name);
		hs_pb_i64(&fn, 2, nid);
		hs_pb_i64(&fn, 3, nid);
		if (p->funcs[fi].file)
			hs_pb_i64(&fn, 4, str_id(&p->st, p->funcs[fi].file));
		pb_sub(&p->pb, 5, &fn);
	}
}

/* The string table, and the profile's own fields: period_type
 * space/bytes, period = rate; default sample type: inuse_space, as Go's
 * heap profiles. */
static void write_tail(struct pprof *p)
{
	struct hs_pb pt = { 0 };
	hs_pb_i64(&pt, 1, str_id(&p->st, "space"));
	hs_pb_i64(&pt, 2, str_id(&p->st, "bytes"));
	int64_t comment = str_id(&p->st, "heapscope profile");
	int64_t inuse = str_id(&p->st, "inuse_space");
	for (size_t i = 0; i < p->st.n; i++)
		hs_pb_string(&p->pb, 6, p->st.v[i]);
	hs_pb_i64(&p->pb, 10, (int64_t)llround(p->r->seconds * 1e9));
	pb_sub(&p->pb, 11, &pt);
	hs_pb_i64(&p->pb, 12, (int64_t)p->r->rate);
	hs_pb_i64(&p->pb, 13, comment);
	hs_pb_i64(&p->pb, 14, inuse);
}

/* gzip: deflate with a gzip header (windowBits 16 + 15) */
static int write_gzip(FILE *fp, const struct hs_pb *pb)
{
	z_stream z = { 0 };
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	unsigned char buf[16384];
	z.next_in = pb->p;
	z.avail_in = (uInt)pb->len;
	int zr, rc = 0;
	do {
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		zr = deflate(&z, Z_FINISH);
		if (zr == Z_STREAM_ERROR) {
			rc = -EIO;
			break;
		}
		size_t have = sizeof(buf) - z.avail_out;
		if (have && fwrite(buf, 1, have, fp) != have) {
			rc = -EIO;
			break;
		}
	} while (zr != Z_STREAM_END);
	deflateEnd(&z);
	if (rc == 0 && (fflush(fp) || ferror(fp)))
		rc = -EIO;
	return rc;
}

int hs_profile_write_pprof(FILE *fp, const struct hs_profile_report *r)
{
	struct pprof p = { .r = r };
	p.objs = hs_profile_report_objects(r, &p.nobjs);
	int rc = -ENOMEM;
	if (str_id(&p.st, "") < 0)
		goto out;
	write_sample_types(&p);
	if ((rc = write_samples(&p)) < 0)
		goto out;
	write_mappings(&p);
	if ((rc = write_locations(&p)) < 0)
		goto out;
	write_functions(&p);
	write_tail(&p);
	rc = p.pb.oom ? -ENOMEM : write_gzip(fp, &p.pb);
out:
	pprof_release(&p);
	return rc;
}
