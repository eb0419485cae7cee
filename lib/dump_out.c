/* The plain output of dump --strings (dump_out.h). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "dump_out.h"

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
		struct hs_strout_span *last = o->n ? &o->v[o->n - 1] : NULL;
		if (last && !is_side(last) && last->p + last->len == s) {
			last->len += len;
			return;
		}
		if (!room(o, 0))
			return;
		o->v[o->n++] = (struct hs_strout_span){ s, len };
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

/* ---- two threads ---------------------------------------------------------- */

static int ncpus(void)
{
	static int n;
	if (!n) {
		cpu_set_t set;
		n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	}
	return n;
}

struct half {
	struct hs_strout o;
	struct hs_strings sc;
	uint64_t addr;
	const unsigned char *b;
	size_t len;
};

static void *scan_half(void *arg)
{
	struct half *h = arg;
	hs_strings_feed(&h->sc, h->addr, h->b, h->len);
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
	if (o->split_min && len >= o->split_min && sc->width == 1 && !o->defer && ncpus() >= 2)
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
	hs_strings_feed(sc, addr, buf, mid);
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
