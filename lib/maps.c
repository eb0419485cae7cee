#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maps.h"
#include "proc.h"

static int push(struct hs_maps *maps, size_t *cap)
{
	if (maps->n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 64;
	struct hs_mapping *v = realloc(maps->v, ncap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	maps->v = v;
	*cap = ncap;
	return 0;
}

/* "7f12a000-7f12b000 rw-p 00000000 00:00 0    [heap]" */
static int parse_header(const char *line, size_t len, struct hs_mapping *m)
{
	char buf[4096 + 256];
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, line, len);
	buf[len] = '\0';
	int pathpos = 0;
	memset(m, 0, sizeof(*m));
	if (sscanf(buf, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %11s %" SCNu64 " %n",
		   &m->start, &m->end, m->perms, &m->offset, m->dev, &m->inode, &pathpos) < 6)
		return -EINVAL;
	if (m->end < m->start)
		return -EINVAL;
	const char *p = pathpos ? buf + pathpos : "";
	size_t plen = strlen(p);
	static const char del[] = " (deleted)";
	if (plen >= sizeof(del) - 1 && !strcmp(p + plen - (sizeof(del) - 1), del)) {
		m->deleted = true;
		plen -= sizeof(del) - 1;
	}
	m->path = strndup(p, plen);
	return m->path ? 0 : -ENOMEM;
}

/* smaps field lines look like "Rss:                 132 kB". */
static bool is_header(const char *line, size_t len)
{
	for (size_t i = 0; i < len && line[i] != ' '; i++)
		if (line[i] == '-')
			return true;
	return false;
}

static void parse_field(const char *line, struct hs_mapping *m)
{
	static const struct { const char *name; size_t off; } fields[] = {
		{ "Rss:", offsetof(struct hs_mapping, rss) },
		{ "Pss:", offsetof(struct hs_mapping, pss) },
		{ "Private_Dirty:", offsetof(struct hs_mapping, private_dirty) },
		{ "Anonymous:", offsetof(struct hs_mapping, anonymous) },
		{ "Swap:", offsetof(struct hs_mapping, swap) },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		size_t n = strlen(fields[i].name);
		if (strncmp(line, fields[i].name, n))
			continue;
		uint64_t kb = strtoull(line + n, NULL, 10);
		*(uint64_t *)((char *)m + fields[i].off) = kb * 1024;
		return;
	}
}

int hs_maps_parse(const char *text, size_t len, struct hs_maps *maps, struct hs_err *err)
{
	size_t cap = 0;
	maps->n = 0;
	maps->v = NULL;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (l && is_header(p, l)) {
			int r = push(maps, &cap);
			if (!r)
				r = parse_header(p, l, &maps->v[maps->n]);
			if (r < 0) {
				hs_maps_release(maps);
				return hs_err_set(err, -r, "malformed maps line: %.*s", (int)(l > 80 ? 80 : l), p);
			}
			maps->n++;
		} else if (l && maps->n) {
			char field[128];
			size_t fl = l < sizeof(field) - 1 ? l : sizeof(field) - 1;
			memcpy(field, p, fl);
			field[fl] = '\0';
			parse_field(field, &maps->v[maps->n - 1]);
		}
		p += l + 1;
	}
	return 0;
}

int hs_maps_read(pid_t pid, bool with_smaps, struct hs_maps *maps, struct hs_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)hs_proc_mm_pid(pid), with_smaps ? "smaps" : "maps");
	char *text;
	size_t len;
	int r = hs_proc_slurp(path, &text, &len);
	if (r < 0)
		return hs_err_sys(err, -r, "cannot read %s", path);
	r = hs_maps_parse(text, len, maps, err);
	free(text);
	return r;
}

void hs_maps_release(struct hs_maps *maps)
{
	for (size_t i = 0; i < maps->n; i++)
		free(maps->v[i].path);
	free(maps->v);
	maps->v = NULL;
	maps->n = 0;
}

const struct hs_mapping *hs_maps_find(const struct hs_maps *maps, uint64_t addr)
{
	size_t lo = 0, hi = maps->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hs_mapping *m = &maps->v[mid];
		if (addr < m->start)
			hi = mid;
		else if (addr >= m->end)
			lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

bool hs_maps_readable(const struct hs_maps *maps, uint64_t addr, uint64_t len)
{
	if (len == 0 || addr + len < addr)
		return false;
	uint64_t end = addr + len;
	while (addr < end) {
		const struct hs_mapping *m = hs_maps_find(maps, addr);
		if (!m || m->perms[0] != 'r')
			return false;
		addr = m->end;
	}
	return true;
}

const char *hs_path_basename(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

bool hs_path_is_libc(const char *path)
{
	const char *b = hs_path_basename(path);
	int maj, min, n = 0;
	return !strcmp(b, "libc.so.6") ||
	       (sscanf(b, "libc-%d.%d.so%n", &maj, &min, &n) == 2 && n > 0 && b[n] == '\0');
}
