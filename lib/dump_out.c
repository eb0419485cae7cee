/* The plain output of dump --strings (dump_out.h). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "dump_out.h"
#include "format.h"
#include "thread.h"

#define SIDE_MAX ((size_t)2 << 20)      /* copies held before a write */
#define SPANS_MAX 65536                 /* pieces held before a write */
#define HS_STROUT_SIDE ((size_t)1 << 63)

void hs_strout_init(struct hs_strout *o, int fd, bool address)
{
	memset(o, 0, sizeof(*o));
	o->fd = fd;
	o->address = address;
	o->split_min = (size_t)8 << 20;
}

void hs_strout_release(struct hs_strout *o)
{
	free(o->v);
	free(o->side);
	o->v = NULL;
	o->side = NULL;
	o->n = o->cap = o->sn = o->scap = 0;
}

static bool is_side(const struct hs_strout_span *s)
{
	return s->len & HS_STROUT_SIDE;
}

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t k = writev(fd, iov, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EIO;
		/* a short write: on from where it stopped */
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

int hs_write_full(int fd, const void *buf, size_t len)
{
	struct iovec v = { (void *)buf, len };
	return len ? write_all(fd, &v, 1) : 0;
}

int hs_strout_flush(struct hs_strout *o)
{
	struct iovec iov[IOV_MAX < 1024 ? IOV_MAX : 1024];
	for (size_t i = 0; i < o->n && !o->error;) {
		int k = 0;
		for (; i < o->n && k < (int)(sizeof(iov) / sizeof(iov[0])); i++, k++) {
			const struct hs_strout_span *s = &o->v[i];
			size_t len = s->len & ~HS_STROUT_SIDE;
			iov[k].iov_base = is_side(s) ? o->side + (uintptr_t)s->p : (void *)s->p;
			iov[k].iov_len = len;
			o->bytes += len;
		}
		o->error = write_all(o->fd, iov, k);
	}
	o->n = 0;
	o->sn = 0;
	return o->error;
}

/* Room for one more span (and side bytes): false when out of memory, which
 * ends the output as a write error would. */
static bool room(struct hs_strout *o, size_t side)
{
	if (!o->defer && (o->n == SPANS_MAX || o->sn + side > SIDE_MAX))
		hs_strout_flush(o);
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 1024;
		struct hs_strout_span *v = realloc(o->v, cap * sizeof(*v));
		if (!v)
			goto nomem;
		o->v = v;
		o->cap = cap;
	}
	if (o->sn + side > o->scap) {
		size_t cap = o->scap ? o->scap : SIDE_MAX;
		while (cap < o->sn + side)
			cap *= 2;
		char *p = realloc(o->side, cap);
		if (!p)
			goto nomem;
		o->side = p;
		o->scap = cap;
	}
	return true;
nomem:
	if (!o->error)
		o->error = -ENOMEM;
	return false;
}

/* A span of the region, strings and their newlines in place (from
 * hs_strings_feed_spans, or one string of hs_strout_string): joined to
 * the last one when it goes on from it. */
static void strout_span(void *ctx, const char *p, size_t len)
{
	struct hs_strout *o = ctx;
	if (o->error)
		return;
	struct hs_strout_span *last = o->n ? &o->v[o->n - 1] : NULL;
	if (last && !is_side(last) && last->p + last->len == p) {
		last->len += len;
		return;
	}
	if (!room(o, 0))
		return;
	o->v[o->n++] = (struct hs_strout_span){ p, len };
}

void hs_strout_string(void *ctx, uint64_t addr, const char *s, size_t len, bool more, bool cont)
{
	struct hs_strout *o = ctx;
	const unsigned char *u = (const unsigned char *)s;
	if (o->error)
		return;
	if (!o->address && u >= o->lo && (more ? u + len <= o->hi : u + len < o->hi)) {
		/* in place: the byte after it becomes its newline */
		if (!more) {
			((unsigned char *)o->lo)[u - o->lo + len] = '\n';
			len++;
		}
		strout_span(o, s, len);
		return;
	}
	if (!room(o, len + 18))
		return;
	char *p = o->side + o->sn;
	if (!cont && o->address) {
		unsigned digits = (67 - (unsigned)__builtin_clzll(addr | 1)) / 4;
		for (unsigned k = digits; k-- > 0; addr >>= 4)
			p[k] = "0123456789abcdef"[addr & 15];
		p[digits] = ' ';
		p += digits + 1;
	}
	memcpy(p, s, len);
	p += len;
	if (!more)
		*p++ = '\n';
	size_t off = o->sn, n = (size_t)(p - (o->side + o->sn));
	o->sn += n;
	struct hs_strout_span *last = o->n ? &o->v[o->n - 1] : NULL;
	if (last && is_side(last) && (uintptr_t)last->p + (last->len & ~HS_STROUT_SIDE) == off) {
		last->len += n;
		return;
	}
	o->v[o->n++] = (struct hs_strout_span){ (const char *)(uintptr_t)off, n | HS_STROUT_SIDE };
}

/* Scan [b, b+len) of the region (o->lo..o->hi) with sc into o. */
static void strout_feed(struct hs_strout *o, struct hs_strings *sc, uint64_t addr, unsigned char *b, size_t len)
{
	if (o->address)
		hs_strings_feed(sc, addr, b, len);
	else
		hs_strings_feed_spans(sc, addr, b, len, strout_span, o);
}

/* ---- two threads ---------------------------------------------------------- */

struct half {
	struct hs_strout o;
	struct hs_strings sc;
	uint64_t addr;
	unsigned char *b;
	size_t len;
};

static void *scan_half(void *arg)
{
	struct half *h = arg;
	strout_feed(&h->o, &h->sc, h->addr, h->b, h->len);
	return NULL;
}

/* Where the second half may begin: after the first byte that is not a
 * character at or past the middle (len when there is none). */
static size_t split_at(const unsigned char *b, size_t len)
{
	for (size_t i = len / 2; i < len; i++)
		if (!(b[i] == '\t' || (b[i] >= 0x20 && b[i] <= 0x7e)))
			return i + 1;
	return len;
}

int hs_strout_scan(struct hs_strout *o, struct hs_strings *sc, uint64_t addr, unsigned char *buf, size_t len)
{
	size_t mid = len;
	struct half *h = NULL;
	pthread_t t;
	if (o->split_min && len >= o->split_min && sc->width == 1 && !o->defer && hs_cpus() >= 2)
		mid = split_at(buf, len);
	if (mid < len && (h = calloc(1, sizeof(*h)))) {
		/* The second half alone, from the byte after one that is not a
		 * character: what a scan of the whole would find there. */
		hs_strout_init(&h->o, o->fd, o->address);
		h->o.defer = true;
		h->o.lo = buf + mid;
		h->o.hi = buf + len;
		h->addr = addr + mid;
		h->b = buf + mid;
		h->len = len - mid;
		if (hs_strings_init(&h->sc, HS_ENC_ASCII, sc->min, hs_strout_string, &h->o) < 0 ||
		    hs_strings_set_impl(&h->sc, sc->impl) < 0 || pthread_create(&t, NULL, scan_half, h) != 0) {
			hs_strings_release(&h->sc);
			free(h);
			h = NULL;
		}
	}
	if (!h)
		mid = len;
	o->lo = buf;
	o->hi = buf + mid;
	strout_feed(o, sc, addr, buf, mid);
	if (h) {
		pthread_join(t, NULL);
		hs_strout_flush(o);
		/* the second half's output, then its state: a run that reaches
		 * the end goes on in the next feed */
		if (!o->error)
			o->error = h->o.error ? h->o.error : hs_strout_flush(&h->o);
		o->bytes += h->o.bytes;
		hs_strings_take(sc, &h->sc);
		hs_strings_release(&h->sc);
		hs_strout_release(&h->o);
		free(h);
	}
	/* nothing may point into buf once this returns */
	int r = hs_strout_flush(o);
	o->lo = o->hi = NULL;
	return r;
}

/* ---- dump --strings's sink ------------------------------------------------- */

/* The JSON document begins with the first thing it holds, after the stop:
 * a failure before (the attach) makes it the {"error"} document alone. */
static void json_begin(struct hs_strsink *ss)
{
	struct hs_json *j = ss->o.json;
	if (ss->json_begun)
		return;
	ss->json_begun = true;
	hs_json_obj_begin(j, NULL);
	hs_json_i64(j, "pid", ss->o.pid);
	hs_json_str(j, "range", ss->o.range);
	if (!ss->o.top)
		hs_json_arr_begin(j, "strings");
}

/* A whole string (or a piece of a huge one) from a scanner. */
static void on_string(void *ctx, uint64_t addr, const char *s, size_t n, bool more, bool cont)
{
	struct hs_strsink *ss = ctx;
	if (ss->o.grep) {
		/* Matched on its first HS_STRING_MAX bytes; the pieces of a
		 * longer string follow the first one's verdict. */
		if (!cont) {
			/* one buffer for every string, grown as needed */
			if (n + 1 > ss->gcap) {
				size_t cap = ss->gcap ? ss->gcap : 256;
				while (cap < n + 1)
					cap *= 2;
				char *g = realloc(ss->gbuf, cap);
				if (!g)
					return;
				ss->gbuf = g;
				ss->gcap = cap;
			}
			memcpy(ss->gbuf, s, n);
			ss->gbuf[n] = '\0';
			ss->grep_match = regexec(ss->o.grep, ss->gbuf, 0, NULL, 0) == 0;
		}
		if (!ss->grep_match)
			return;
	}
	if (ss->o.top) {
		if (!cont)
			hs_strtab_add(&ss->top, s, n, n);
	} else if (ss->o.json) {
		if (cont)
			return;     /* JSON holds the first HS_STRING_MAX bytes */
		json_begin(ss);
		hs_json_obj_begin(ss->o.json, NULL);
		hs_json_hex(ss->o.json, "address", addr);
		hs_json_strn(ss->o.json, "string", s, n);
		hs_json_obj_end(ss->o.json);
	} else {
		hs_strout_string(&ss->w, addr, s, n, more, cont);
	}
}

int hs_strsink_grep(regex_t *re, const char *pattern, struct hs_err *err)
{
	int e = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
	if (e) {
		char msg[128];
		regerror(e, re, msg, sizeof(msg));
		return hs_err_set(err, EINVAL, "%s", msg);
	}
	return 0;
}

int hs_strsink_init(struct hs_strsink *ss, const struct hs_strsink_opts *o, int fd)
{
	memset(ss, 0, sizeof(*ss));
	ss->o = *o;
	ss->plain = !o->json && !o->top && !o->grep;
	hs_strout_init(&ss->w, fd, o->address);
	for (int e = 0; e < 2; e++)
		if ((o->encodings & (1 << e)) &&
		    hs_strings_init(&ss->sc[e], e ? HS_ENC_UTF16LE : HS_ENC_ASCII, o->min,
				    ss->plain ? hs_strout_string : on_string, ss->plain ? (void *)&ss->w : ss) < 0)
			return -ENOMEM;
	return 0;
}

/* A write error of the plain output (-errno) ends the read: nobody takes
 * what is left (dump --strings | head). */
int hs_strsink_data(void *ctx, uint64_t addr, const unsigned char *buf, size_t len)
{
	struct hs_strsink *ss = ctx;
	ss->nbytes += len;
	for (int e = 0; e < 2; e++)
		if (ss->o.encodings & (1 << e))
			hs_strings_feed(&ss->sc[e], addr, buf, len);
	return ss->w.error;
}

/* Plain ASCII strings are written from the bytes read, not copied. */
static int strsink_own(void *ctx, uint64_t addr, unsigned char *buf, size_t len)
{
	struct hs_strsink *ss = ctx;
	ss->nbytes += len;
	hs_strout_scan(&ss->w, &ss->sc[0], addr, buf, len);
	return ss->w.error;
}

int (*hs_strsink_own(const struct hs_strsink *ss))(void *, uint64_t, unsigned char *, size_t)
{
	return ss->plain && ss->o.encodings == HS_ENC_ASCII ? strsink_own : NULL;
}

void hs_strsink_end(void *ctx)
{
	struct hs_strsink *ss = ctx;
	for (int e = 0; e < 2; e++)
		if (ss->o.encodings & (1 << e))
			hs_strings_end(&ss->sc[e]);
}

int hs_strsink_flush(struct hs_strsink *ss)
{
	return hs_strout_flush(&ss->w);
}

static void print_top(struct hs_strsink *ss, long k, FILE *fp)
{
	size_t n = hs_strtab_sort(&ss->top);
	const struct hs_strent *v = ss->top.v;
	struct hs_json *j = ss->o.json;
	if ((size_t)k > n)
		k = (long)n;
	if (j) {
		hs_json_arr_begin(j, "top");
		for (long i = 0; i < k; i++) {
			hs_json_obj_begin(j, NULL);
			hs_json_strn(j, "string", v[i].s, v[i].len);
			hs_json_u64(j, "count", v[i].count);
			hs_json_u64(j, "bytes", v[i].bytes);
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
		hs_json_u64(j, "distinct", n);
		hs_json_u64(j, "untracked", ss->top.untracked);
	} else {
		fprintf(fp, "%10s %10s  %s\n", "COUNT", "BYTES", "STRING");
		for (long i = 0; i < k; i++)
			fprintf(fp, "%10" PRIu64 " %10" PRIu64 "  %s\n", v[i].count, v[i].bytes, v[i].s);
		if (ss->top.untracked)
			fprintf(fp, "(%" PRIu64 " strings not counted: more than a million distinct ones)\n",
				ss->top.untracked);
	}
}

void hs_strsink_finish(struct hs_strsink *ss, long top_k, FILE *fp, const struct hs_dump *d, uint64_t skipped)
{
	struct hs_json *j = ss->o.json;
	if (j)
		json_begin(ss);
	if (ss->o.top)
		print_top(ss, top_k, fp);
	if (j) {
		if (!ss->o.top)
			hs_json_arr_end(j);
		hs_json_u64(j, "bytes", ss->nbytes);
		hs_json_u64(j, "skipped", skipped);
		hs_json_u64(j, "pause_us", d->pause_us);
		hs_json_bool(j, "consistent", d->consistent);
		hs_json_obj_end(j);
		hs_json_finish(j);
	}
}

void hs_strsink_release(struct hs_strsink *ss)
{
	free(ss->gbuf);
	ss->gbuf = NULL;
	for (int e = 0; e < 2; e++)
		hs_strings_release(&ss->sc[e]);
	hs_strtab_release(&ss->top);
	hs_strout_release(&ss->w);
}

/* ---- a dump written out ---------------------------------------------- */

struct dump_write {
	const struct hs_dump_write_opts *o;
	struct hs_dump_write_report *rep;
	struct hs_dump_file out;     /* raw: fd, or the file of path */
	struct hs_strsink ss;        /* strings */
	uint64_t total, done;
	uint64_t last_progress_ns;
};

static void progress(struct dump_write *w, bool last)
{
	struct timespec ts;
	if (!w->o->progress || w->total < HS_DUMP_PROGRESS_MIN || clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return;
	uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
	if (!last && t - w->last_progress_ns < 200000000u)
		return;
	w->last_progress_ns = t;
	w->o->progress(w->o->ctx, w->done, w->total, last);
}

/* The sink of the dump: the target runs (again) when these are called. */
static int w_data(void *ctx, uint64_t addr, const unsigned char *buf, size_t len)
{
	struct dump_write *w = ctx;
	bool strings = w->o->strings;
	int r = strings ? hs_strsink_data(&w->ss, addr, buf, len) : hs_write_full(w->out.fd, buf, len);
	w->rep->written += strings || r ? 0 : len;
	w->done += len;
	progress(w, false);
	return r;
}

/* Plain ASCII strings: written from the bytes read, not copied. */
static int w_own(void *ctx, uint64_t addr, unsigned char *buf, size_t len)
{
	struct dump_write *w = ctx;
	w->done += len;
	progress(w, false);
	return hs_strsink_own(&w->ss)(&w->ss, addr, buf, len);
}

static void w_skip(void *ctx, uint64_t addr, uint64_t len, const char *why)
{
	struct dump_write *w = ctx;
	char s[HS_SIZE_BUF], msg[256];
	snprintf(msg, sizeof(msg), "skipped 0x%" PRIx64 "-0x%" PRIx64 " (%s): %s", addr, addr + len,
		 hs_fmt_size(len, s), why);
	w->o->warn(w->o->ctx, msg);
	w->rep->skipped += len;
	w->rep->partial = true;
	w->done += len;
}

static void w_end(void *ctx)
{
	struct dump_write *w = ctx;
	if (w->o->strings)
		hs_strsink_end(&w->ss);
}

static void w_note(void *ctx, const char *msg)
{
	struct dump_write *w = ctx;
	w->o->warn(w->o->ctx, msg);
}

/* After the read (r its result): the strings' output written, then on
 * failure the partial file removed, else the file committed and the
 * strings' end. */
static int w_finish(struct dump_write *w, const struct hs_dump *d, int r, struct hs_err *err)
{
	const struct hs_dump_write_opts *o = w->o;
	if (o->strings && hs_strsink_flush(&w->ss) < 0) {
		w->rep->output_failed = true;
		return hs_err_set(err, -w->ss.w.error, "cannot write output: %s", strerror(-w->ss.w.error));
	}
	if (r < 0) {
		if (!o->strings && r != -ESRCH && err->msg[0] == '\0')
			snprintf(err->msg, sizeof(err->msg), "cannot write %s: %s", o->path ? o->path : "stdout",
				 strerror(-r));
		/* A partial dump is worse than none: it looks complete. */
		bool removed = hs_dump_file_discard(&w->out);
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err->msg[0] ? err->msg : strerror(-r));
		return hs_err_set(err, -r, "%s%s", msg, removed ? " (the partial file was removed)" : "");
	}
	if (!o->strings && o->path && (r = hs_dump_file_commit(&w->out, err)) < 0)
		return r;
	if (o->strings)
		hs_strsink_finish(&w->ss, o->top_k, o->fp, d, w->rep->skipped);
	return 0;
}

int hs_dump_write(struct hs_dump *d, const struct hs_dump_write_opts *o, struct hs_dump_write_report *rep,
		  struct hs_err *err)
{
	struct dump_write w = { .o = o, .rep = rep, .out = { .fd = o->strings ? -1 : o->fd }, .total = d->total };
	struct hs_err e = { 0 };
	memset(rep, 0, sizeof(*rep));
	int r = 0;
	if (!o->strings && o->path)
		r = hs_dump_file_open(&w.out, o->path, o->force, &e);
	else if (o->strings && hs_strsink_init(&w.ss, o->strings, o->fd) < 0)
		r = hs_err_set(&e, ENOMEM, "out of memory");
	if (r == 0) {
		struct hs_dump_sink sink = { .data = w_data, .skip = w_skip, .end = w_end, .note = w_note,
					     .own = o->strings && hs_strsink_own(&w.ss) ? w_own : NULL };
		r = hs_dump_run(d, &sink, &w, &e);
		progress(&w, true);
		r = w_finish(&w, d, r, &e);
	}
	/* still open: the dump failed before it was complete */
	hs_dump_file_discard(&w.out);
	hs_strsink_release(&w.ss);
	if (r < 0 && err)
		*err = e;
	return r;
}
