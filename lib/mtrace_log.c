/* glibc's trace log summarised: see mtrace_log.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtrace_log.h"

/* The callers, interned: blocks refer to one by index. */
struct hs_mtrace_intern {
	char **text;
	size_t n, cap;
	uint32_t *hash;          /* index + 1, 0 empty; open addressing */
	size_t caphash;
};

/* A block allocated and not (yet) freed. */
struct hs_mtrace_live {
	uint64_t addr, size;
	uint32_t caller;
	bool used;
};

int hs_mtrace_log_open(struct hs_mtrace_log *g)
{
	memset(g, 0, sizeof(*g));
	g->in = calloc(1, sizeof(*g->in));
	return g->in ? 0 : -ENOMEM;
}

void hs_mtrace_log_release(struct hs_mtrace_log *g)
{
	if (g->in) {
		for (size_t i = 0; i < g->in->n; i++)
			free(g->in->text[i]);
		free(g->in->text);
		free(g->in->hash);
		free(g->in);
	}
	free(g->tab);
	free(g->line);
	free(g->callers);
	free(g->listed);
	memset(g, 0, sizeof(*g));
}

static size_t str_hash(const char *s)
{
	size_t h = 1469598103934665603ull;   /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int rehash(struct hs_mtrace_intern *in)
{
	size_t nh = in->caphash ? in->caphash * 2 : 256;
	uint32_t *t = calloc(nh, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		size_t j = str_hash(in->text[i]) & (nh - 1);
		while (t[j])
			j = (j + 1) & (nh - 1);
		t[j] = (uint32_t)i + 1;
	}
	free(in->hash);
	in->hash = t;
	in->caphash = nh;
	return 0;
}

static int intern(struct hs_mtrace_intern *in, const char *text, uint32_t *out)
{
	if (in->n >= UINT32_MAX - 1)
		return -E2BIG;
	if ((in->n + 1) * 2 > in->caphash && rehash(in) < 0)
		return -ENOMEM;
	size_t j = str_hash(text) & (in->caphash - 1);
	for (; in->hash[j]; j = (j + 1) & (in->caphash - 1))
		if (!strcmp(in->text[in->hash[j] - 1], text)) {
			*out = in->hash[j] - 1;
			return 0;
		}
	if (in->n == in->cap) {
		size_t nc = in->cap ? in->cap * 2 : 64;
		char **v = realloc(in->text, nc * sizeof(*v));
		if (!v)
			return -ENOMEM;
		in->text = v;
		in->cap = nc;
	}
	if (!(in->text[in->n] = strdup(text)))
		return -ENOMEM;
	in->hash[j] = (uint32_t)in->n + 1;
	*out = (uint32_t)in->n++;
	return 0;
}

static size_t slot(const struct hs_mtrace_log *g, uint64_t a)
{
	size_t j = (a >> 4) & (g->cap - 1);
	while (g->tab[j].used && g->tab[j].addr != a)
		j = (j + 1) & (g->cap - 1);
	return j;
}

static int grow_blocks(struct hs_mtrace_log *g)
{
	size_t nc = g->cap ? g->cap * 2 : 64;
	struct hs_mtrace_live *old = g->tab, *nt = calloc(nc, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	size_t ocap = g->cap;
	g->tab = nt;
	g->cap = nc;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].used)
			g->tab[slot(g, old[i].addr)] = old[i];
	free(old);
	return 0;
}

/* Remove the block at j, keeping the probe chains whole. */
static void unlink_block(struct hs_mtrace_log *g, size_t j)
{
	g->tab[j].used = false;
	g->n--;
	for (size_t i = (j + 1) & (g->cap - 1); g->tab[i].used; i = (i + 1) & (g->cap - 1)) {
		struct hs_mtrace_live e = g->tab[i];
		g->tab[i].used = false;
		g->tab[slot(g, e.addr)] = e;
	}
}

/* A number as glibc prints it: "0x" and hex digits (%p, %#lx), or a bare
 * "0" (%#lx of zero) when bare is allowed; at most 64 bits. */
static bool hex(const char *s, bool bare, uint64_t *v)
{
	if (s[0] == '0' && s[1] == 'x')
		s += 2;
	else if (!bare)
		return false;
	if (!*s)
		return false;
	uint64_t x = 0;
	for (size_t n = 0; *s; s++, n++) {
		int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
			: *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : -1;
		if (d < 0 || (x >> 60))
			return false;
		x = x << 4 | (uint64_t)d;
	}
	*v = x;
	return true;
}

static int allocated(struct hs_mtrace_log *g, const char *caller, uint64_t a, uint64_t sz)
{
	if (g->n * 2 >= g->cap && grow_blocks(g) < 0)
		return -ENOMEM;
	size_t j = slot(g, a);
	if (g->tab[j].used) {
		g->duplicate++;
		return 0;
	}
	uint32_t ci;
	int r = intern(g->in, caller, &ci);
	if (r < 0)
		return r;
	g->tab[j] = (struct hs_mtrace_live){ a, sz, ci, true };
	g->n++;
	return 0;
}

/* One line of the log, as glibc's mtrace script reads it: "[@ CALLER] OP
 * ADDR [SIZE]", split at whitespace.  A block allocated again before it
 * is freed keeps its first caller and size, as the script keeps them. */
static int log_line(struct hs_mtrace_log *g, char *line)
{
	char *cols[5];
	int nc = 0;
	char *save;
	for (char *t = strtok_r(line, " \t\r\n\v\f", &save); t && nc < 5; t = strtok_r(NULL, " \t\r\n\v\f", &save))
		cols[nc++] = t;
	if (!nc)
		return 0;
	int k = !strcmp(cols[0], "@") ? 2 : 0;
	if (nc < k + 1 || strlen(cols[k]) != 1)
		goto bad;
	char op = cols[k][0];
	if (op == '=')
		return 0;
	if (!strchr("+-<>!", op) || nc < k + 2)
		goto bad;
	uint64_t a, sz = 0;
	if (!strcmp(cols[k + 1], "(nil)") && op != '-' && op != '<') {
		g->failed++;          /* a failed allocation */
		return 0;
	}
	if (!hex(cols[k + 1], false, &a))
		goto bad;
	if (op == '!') {
		g->failed++;
		return 0;
	}
	if (op == '+' || op == '>') {
		if (nc < k + 3 || !hex(cols[k + 2], true, &sz))
			goto bad;
		return allocated(g, k ? cols[1] : "", a, sz);
	}
	size_t j = g->cap ? slot(g, a) : 0;
	if (!g->cap || !g->tab[j].used) {
		/* freed what the trace never saw allocated */
		if (op == '-')
			g->freed_unknown++;
		else
			g->realloc_unknown++;
		return 0;
	}
	unlink_block(g, j);
	return 0;
bad:
	g->malformed++;
	return 0;
}

static int end_line(struct hs_mtrace_log *g)
{
	g->lines++;
	int r = 0;
	if (g->overlong || g->has_nul) {
		g->malformed++;
	} else if (g->linelen) {
		g->line[g->linelen] = '\0';
		r = log_line(g, g->line);
	}
	g->linelen = 0;
	g->overlong = g->has_nul = false;
	return r;
}

static int grow_line(struct hs_mtrace_log *g, size_t need)
{
	size_t nc = g->linecap ? g->linecap : 256;
	while (nc < need)
		nc *= 2;
	char *l = realloc(g->line, nc);
	if (!l)
		return -ENOMEM;
	g->line = l;
	g->linecap = nc;
	return 0;
}

int hs_mtrace_log_feed(struct hs_mtrace_log *g, const char *buf, size_t len)
{
	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) : len;
		if (g->linelen + n > HS_MTRACE_LINE_MAX) {
			g->overlong = true;
		} else if (!g->overlong) {
			if (g->linelen + n >= g->linecap && grow_line(g, g->linelen + n + 1) < 0)
				return -ENOMEM;
			if (memchr(buf, '\0', n))
				g->has_nul = true;
			memcpy(g->line + g->linelen, buf, n);
			g->linelen += n;
		}
		if (!nl)
			break;
		int r = end_line(g);
		if (r < 0)
			return r;
		buf += n + 1;
		len -= n + 1;
	}
	return 0;
}

int hs_mtrace_log_read_file(struct hs_mtrace_log *g, const char *path, struct hs_err *err)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return hs_err_set(err, errno, "cannot open %s: %s", path, strerror(errno));
	char buf[65536];
	size_t n;
	int r = 0;
	while (r == 0 && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		r = hs_mtrace_log_feed(g, buf, n);
	bool rerr = ferror(f);
	fclose(f);
	if (r < 0)
		return hs_err_set(err, -r, "%s: out of memory", path);
	if (rerr)
		return hs_err_set(err, EIO, "%s: read error", path);
	return 0;
}

static int cmp_callers(const void *x, const void *y)
{
	const struct hs_mtrace_caller *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	return strcmp(a->text, b->text);
}

/* by caller's place (in caller), then address */
static int cmp_blocks(const void *x, const void *y)
{
	const struct hs_mtrace_block *a = x, *b = y;
	if (a->caller != b->caller)
		return a->caller < b->caller ? -1 : 1;
	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* The blocks of the first k callers, by caller then address. */
static int list_blocks(struct hs_mtrace_log *g, size_t k, uint32_t *place)
{
	size_t m = 0;
	for (size_t i = 0; i < g->cap; i++)
		m += g->tab[i].used && place[g->tab[i].caller] < k;
	if (!(g->listed = malloc((m + 1) * sizeof(*g->listed))))
		return -ENOMEM;
	m = 0;
	for (size_t i = 0; i < g->cap; i++)
		if (g->tab[i].used && place[g->tab[i].caller] < k)
			g->listed[m++] = (struct hs_mtrace_block){ g->tab[i].addr, g->tab[i].size,
								   place[g->tab[i].caller] };
	qsort(g->listed, m, sizeof(*g->listed), cmp_blocks);
	for (size_t i = 0; i < m; i++) {
		struct hs_mtrace_caller *c = &g->callers[g->listed[i].caller];
		if (!c->nblocks)
			c->blocks = &g->listed[i];
		c->nblocks++;
	}
	return 0;
}

int hs_mtrace_log_finish(struct hs_mtrace_log *g, size_t k)
{
	int r = 0;
	if (g->linelen || g->overlong || g->has_nul)
		r = end_line(g);
	size_t nin = g->in->n;
	struct hs_mtrace_caller *all = calloc(nin + 1, sizeof(*all));
	uint32_t *place = malloc((nin + 1) * sizeof(*place));
	if (r < 0 || !all || !place) {
		free(all);
		free(place);
		return r < 0 ? r : -ENOMEM;
	}
	for (size_t i = 0; i < g->cap; i++)
		if (g->tab[i].used) {
			struct hs_mtrace_caller *c = &all[g->tab[i].caller];
			c->count++;
			c->bytes = sat_add(c->bytes, g->tab[i].size);
			g->not_freed++;
			g->not_freed_bytes = sat_add(g->not_freed_bytes, g->tab[i].size);
		}
	/* keep those with blocks; nblocks holds the interned index meanwhile */
	size_t n = 0;
	for (size_t i = 0; i < nin; i++)
		if (all[i].count) {
			all[n] = all[i];
			all[n].text = g->in->text[i];
			all[n++].nblocks = i;
		}
	qsort(all, n, sizeof(*all), cmp_callers);
	for (size_t i = 0; i < nin; i++)
		place[i] = UINT32_MAX;
	for (size_t p = 0; p < n; p++) {
		place[all[p].nblocks] = (uint32_t)p;
		all[p].nblocks = 0;
	}
	g->callers = all;
	g->ncallers = n;
	if (k)
		r = list_blocks(g, k < n ? k : n, place);
	free(place);
	return r;
}

bool hs_mtrace_caller_parse(const char *c, struct hs_mtrace_where *w)
{
	memset(w, 0, sizeof(*w));
	size_t n = strlen(c);
	const char *lb = strrchr(c, '[');
	if (!n || c[n - 1] != ']' || !lb || strncmp(lb + 1, "0x", 2))
		return false;
	char num[32];
	if ((size_t)(c + n - 1 - lb - 1) >= sizeof(num))
		return false;
	snprintf(num, sizeof(num), "%.*s", (int)(c + n - 1 - lb - 1), lb + 1);
	if (!hex(num, false, &w->off))
		return false;
	if (lb == c)
		return true;
	const char *colon = lb - 1;
	if (*colon == ')') {
		const char *lp = colon;
		while (lp > c && *lp != '(')
			lp--;
		if (*lp != '(' || lp == c || lp[-1] != ':')
			return false;
		const char *pm = colon;
		while (pm > lp && *pm != '+' && *pm != '-')
			pm--;
		if (pm > lp) {
			snprintf(w->sym, sizeof(w->sym), "%.*s", (int)(pm - lp - 1), lp + 1);
			w->sym_off = strtoull(pm + 1, NULL, 16);
			w->sym_neg = *pm == '-';
		}
		colon = lp - 1;
	}
	if (*colon != ':')
		return false;
	snprintf(w->object, sizeof(w->object), "%.*s", (int)(colon - c), c);
	return true;
}
