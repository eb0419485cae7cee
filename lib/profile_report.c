/* heapscope profile's analysis: each sampled allocation's stack unwound
 * offline from the registers and the stack copy the sampler took, with
 * libdwfl reading the process's code and CFI; frames symbolised with
 * symbols.c; samples grouped by stack, thread and arena and scaled by the
 * sampling rate.  The target keeps running: only its maps, its files and
 * (read-only, with process_vm_readv) memory outside the stack copies are
 * read. */
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "debuginfo.h"
#include "elfobj.h"
#include "json.h"
#include "libc.h"
#include "maps.h"
#include "profile.h"
#include "proc.h"
#include "profile_priv.h"
#include "symbols.h"

/* glibc's HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX; a
 * non-main arena's heap_info sits at the start of its aligned region. */
#define HEAP_MAX (64ull << 20)
#define SAMPLER_SUFFIX "libheapscope-sampler.so"
#define UNKNOWN_JIT "[unknown, JIT?]"

/* ---- interned strings -------------------------------------------------- */

struct intern {
	char **slot;
	size_t cap, n;
};

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

static const char *intern(struct intern *t, const char *s)
{
	if (!s)
		return NULL;
	if (t->n * 2 >= t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		char **ns = calloc(ncap, sizeof(*ns));
		if (!ns)
			return NULL;
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->slot[i])
				continue;
			size_t j = hash_bytes(t->slot[i], strlen(t->slot[i]), 0xcbf29ce484222325ull) & (ncap - 1);
			while (ns[j])
				j = (j + 1) & (ncap - 1);
			ns[j] = t->slot[i];
		}
		free(t->slot);
		t->slot = ns;
		t->cap = ncap;
	}
	size_t j = hash_bytes(s, strlen(s), 0xcbf29ce484222325ull) & (t->cap - 1);
	while (t->slot[j]) {
		if (!strcmp(t->slot[j], s))
			return t->slot[j];
		j = (j + 1) & (t->cap - 1);
	}
	t->slot[j] = strdup(s);
	if (t->slot[j])
		t->n++;
	return t->slot[j];
}

static void intern_release(struct intern *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slot[i]);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

/* ---- the report's private part ----------------------------------------- */

struct priv {
	struct intern strs;
	struct hs_profile_object *objs;
	size_t nobjs;
};

const struct hs_profile_object *hs_profile_report_objects(const struct hs_profile_report *r, size_t *n)
{
	struct priv *p = r->priv;
	*n = p ? p->nobjs : 0;
	return p ? p->objs : NULL;
}

int hs_profile_split_line(const char *file, size_t *flen)
{
	size_t n = strlen(file);
	const char *colon = strrchr(file, ':');
	if (colon && colon[1]) {
		char *end;
		long l = strtol(colon + 1, &end, 10);
		if (!*end && l > 0 && l < INT32_MAX) {
			*flen = (size_t)(colon - file);
			return (int)l;
		}
	}
	*flen = n;
	return 0;
}

void hs_profile_estimate(uint64_t size, uint64_t rate, double *bytes, double *objects)
{
	double p = rate ? -expm1(-(double)size / (double)rate) : 1.0;
	if (!(p > 0))
		p = 1.0;    /* size 0: counted as itself */
	*bytes = (double)size / p;
	*objects = 1.0 / p;
}

/* ---- the JVM's perf map: "START SIZE name", hex ------------------------ */

struct perfsym {
	uint64_t start, end;
	char *name;
};

static int perfsym_cmp(const void *a, const void *b)
{
	const struct perfsym *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static void perfmap_read(pid_t pid, struct perfsym **out, size_t *nout)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)pid);
	FILE *fp = fopen(path, "re");
	*out = NULL;
	*nout = 0;
	if (!fp)
		return;
	size_t n = 0, cap = 0;
	struct perfsym *v = NULL;
	while (fgets(line, sizeof(line), fp)) {
		char *e1, *e2;
		uint64_t start = strtoull(line, &e1, 16);
		uint64_t size = strtoull(e1, &e2, 16);
		if (e1 == line || e2 == e1 || *e2 != ' ' || !size)
			continue;
		char *name = e2 + 1;
		name[strcspn(name, "\n")] = 0;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			struct perfsym *nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[n].start = start;
		v[n].end = start + size;
		v[n].name = strdup(name);
		if (v[n].name)
			n++;
	}
	fclose(fp);
	if (n)
		qsort(v, n, sizeof(*v), perfsym_cmp);
	*out = v;
	*nout = n;
}

static const char *perfmap_find(const struct perfsym *v, size_t n, uint64_t pc)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid].start <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* several entries may overlap (code recompiled in place): the latest
	 * line wins in perf; take the nearest start below */
	if (lo && pc < v[lo - 1].end)
		return v[lo - 1].name;
	return NULL;
}

/* ---- unwinding --------------------------------------------------------- */

struct unwinder {
	pid_t pid;
	unsigned debug;
	const struct hs_maps *maps;
	const struct hs_profile_sample *cur;
	uint64_t stk_lo, stk_hi;        /* the mapping holding cur's stack */
	const struct perfsym *perf;
	size_t nperf;
	/* this sample's frames */
	uint64_t *pcs;
	bool *act;
	size_t n, max;
	bool jit_end;                   /* stopped at a pc in no module */
	Dwfl *dwfl;
};

static bool read_live(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };
	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len;
}

static bool uw_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	(void)dwfl;
	struct unwinder *u = arg;
	const struct hs_profile_sample *s = u->cur;
	if (s && s->stack && addr >= s->h.stack_addr && addr - s->h.stack_addr <= (uint64_t)s->h.stack_len &&
	    s->h.stack_len - (addr - s->h.stack_addr) >= sizeof(*result)) {
		memcpy(result, s->stack + (addr - s->h.stack_addr), sizeof(*result));
		return true;
	}
	/* The rest of that stack is not what it was when the sample was
	 * taken: the unwind ends there rather than read today's values. */
	if (addr >= u->stk_lo && addr < u->stk_hi)
		return false;
	uint64_t v;
	if (!read_live(u->pid, addr, &v, sizeof(v)))
		return false;
	*result = v;
	return true;
}

static pid_t uw_next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	/* Samples are reached by get_thread only, one at a time. */
	(void)dwfl, (void)arg, (void)thread_argp;
	return 0;
}

static bool uw_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	(void)dwfl, (void)tid;
	struct unwinder *u = arg;
	*thread_argp = (void *)u->cur;
	return u->cur != NULL;
}

static bool uw_set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
	const struct hs_profile_sample *s = thread_arg;
	Dwarf_Word regs[HS_SAMPLER_NREGS];
	for (int i = 0; i < HS_SAMPLER_NREGS; i++)
		regs[i] = s->h.regs[i];
	if (!dwfl_thread_state_registers(thread, 0, HS_SAMPLER_NREGS, regs))
		return false;
	dwfl_thread_state_register_pc(thread, s->h.regs[16]);
	return true;
}

static const Dwfl_Thread_Callbacks uw_callbacks = {
	.next_thread = uw_next_thread,
	.get_thread = uw_get_thread,
	.memory_read = uw_memory_read,
	.set_initial_registers = uw_set_initial_registers,
};

static int uw_frame(Dwfl_Frame *f, void *arg)
{
	struct unwinder *u = arg;
	Dwarf_Addr pc;
	bool act;
	if (!dwfl_frame_pc(f, &pc, &act))
		return -1;
	if (u->n == u->max)
		return 1;
	u->pcs[u->n] = pc;
	u->act[u->n] = act;
	u->n++;
	uint64_t look = act ? pc : pc - 1;
	if (!dwfl_addrmodule(u->dwfl, look) && !perfmap_find(u->perf, u->nperf, look)) {
		/* No module and no perf map name: whatever the unwinder would
		 * guess past it (frame pointers) is not to be trusted. */
		u->jit_end = true;
		return 2;
	}
	return DWARF_CB_OK;
}

/* Separate debug info for the process's modules, found as symbols.c finds
 * it (HEAPSCOPE_DEBUG_DIRS, build-id, debuglink, debuginfod when allowed):
 * a stripped module's .symtab names the allocator's internal frames. */
static unsigned proc_debug;
static pid_t proc_pid;

static int proc_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
			       const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
			       char **debuginfo_file_name)
{
	(void)userdata, (void)base, (void)debuglink_crc;
	if (!(proc_debug & HS_DEBUG_LOCAL))
		return -1;
	const unsigned char *id;
	GElf_Addr vaddr;
	int idlen = dwfl_module_build_id(mod, &id, &vaddr);
	char hex[81] = "", path[PATH_MAX];
	if (idlen > 0)
		hs_elf_hex(id, (size_t)idlen, hex, sizeof(hex));
	struct hs_debuginfo_query q = {
		.pid = proc_pid, .build_id = hex, .map_path = modname, .file = file_name,
		.debuglink = debuglink_file, .sources = proc_debug,
	};
	const char *how;
	if (hs_debuginfo_find(&q, path, sizeof(path), &how) < 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		*debuginfo_file_name = strdup(path);
	return fd;
}

static char *debuginfo_path;

static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = proc_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

static bool is_alloc_name(const char *n)
{
	static const char *const names[] = {
		"malloc", "calloc", "realloc", "reallocarray", "free", "memalign", "aligned_alloc",
		"posix_memalign", "valloc", "pvalloc", "_mid_memalign", "tcache_init", "sysmalloc",
		"malloc_hook_ini", "realloc_hook_ini", "memalign_hook_ini",
	};
	if (!n)
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(n, names[i]))
			return true;
	return !strncmp(n, "__libc_", 7) || !strncmp(n, "_int_", 5) || !strncmp(n, "__GI___libc_", 12) ||
	       !strncmp(n, "tcache_", 7);
}

/* How many of the innermost frames are the sampler's or the allocator's. */
static size_t frames_to_drop(struct unwinder *u)
{
	size_t i = 0;
	while (i < u->n) {
		uint64_t look = u->act[i] ? u->pcs[i] : u->pcs[i] - 1;
		const struct hs_mapping *m = hs_maps_find(u->maps, look);
		size_t pl = m && m->path ? strlen(m->path) : 0;
		if (pl >= strlen(SAMPLER_SUFFIX) && !strcmp(m->path + pl - strlen(SAMPLER_SUFFIX), SAMPLER_SUFFIX)) {
			i++;
			continue;
		}
		if (m && hs_path_is_libc(m->path)) {
			Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, look);
			const char *name = mod ? dwfl_module_addrname(mod, look) : NULL;
			if (is_alloc_name(name)) {
				i++;
				continue;
			}
		}
		break;
	}
	return i;
}

/* ---- grouping ---------------------------------------------------------- */

struct stackkey {
	uint64_t *pcs;
	size_t n;
	bool truncated;
	uint64_t hash;
};

struct live {                           /* a sampled block, by address */
	uint64_t addr;
	size_t sample;                  /* + 1; 0 empty */
};

struct livetab {
	struct live *v;
	size_t cap, n;
};

static size_t live_pos(const struct livetab *t, uint64_t addr)
{
	size_t j = (size_t)((addr >> 4) * 0x9e3779b97f4a7c15ull) & (t->cap - 1);
	while (t->v[j].sample && t->v[j].addr != addr)
		j = (j + 1) & (t->cap - 1);
	return j;
}

static int live_put(struct livetab *t, uint64_t addr, size_t sample)
{
	if ((t->n + 1) * 2 >= t->cap) {
		struct livetab nt = { .cap = t->cap ? t->cap * 2 : 1024 };
		nt.v = calloc(nt.cap, sizeof(*nt.v));
		if (!nt.v)
			return -ENOMEM;
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].sample) {
				nt.v[live_pos(&nt, t->v[i].addr)] = t->v[i];
				nt.n++;
			}
		free(t->v);
		*t = nt;
	}
	size_t j = live_pos(t, addr);
	if (!t->v[j].sample)
		t->n++;
	t->v[j].addr = addr;
	t->v[j].sample = sample + 1;
	return 0;
}

static void live_del(struct livetab *t, uint64_t addr)
{
	if (!t->cap)
		return;
	size_t j = live_pos(t, addr);
	if (!t->v[j].sample)
		return;
	/* backward-shift deletion keeps the probe chains whole */
	t->v[j].sample = 0;
	t->n--;
	size_t k = j;
	for (;;) {
		k = (k + 1) & (t->cap - 1);
		if (!t->v[k].sample)
			break;
		struct live e = t->v[k];
		t->v[k].sample = 0;
		t->v[live_pos(t, e.addr)] = e;
	}
}

/* ---- arenas ------------------------------------------------------------ */

struct arenainfo {
	uint64_t main_arena;
	size_t next_off;
	bool have_next;
	uint64_t list[64];              /* the arena list from main_arena, in order */
	size_t nlist;
};

static void arenas_init(pid_t pid, const struct hs_maps *maps, unsigned debug, struct arenainfo *ai)
{
	struct hs_libc libc;
	memset(ai, 0, sizeof(*ai));
	if (hs_libc_find(pid, maps, debug, &libc, NULL) < 0)
		return;
	ai->main_arena = libc.main_arena;
	if (libc.have_layout && libc.main_arena) {
		uint64_t a = libc.main_arena;
		ai->list[ai->nlist++] = a;
		while (ai->nlist < sizeof(ai->list) / sizeof(ai->list[0])) {
			uint64_t next;
			if (!read_live(pid, a + (uint64_t)libc.layout.ms_next, &next, sizeof(next)) || !next ||
			    next == libc.main_arena)
				break;
			ai->list[ai->nlist++] = next;
			a = next;
		}
	}
	hs_libc_release(&libc);
}

/* The arena of a live block: its chunk's size field says mmapped (0x2) or
 * not in the main arena (0x4); a non-main arena's heap_info (ar_ptr first)
 * starts its HEAP_MAX-aligned region. */
static void arena_of(pid_t pid, const struct hs_maps *maps, const struct arenainfo *ai, uint64_t addr,
		     int *index, uint64_t *arena)
{
	uint64_t size;
	*index = -1;
	*arena = 0;
	if (!read_live(pid, addr - 8, &size, sizeof(size)))
		return;
	if (size & 2)
		return;
	uint64_t a = ai->main_arena;
	if (size & 4) {
		uint64_t hi = (addr - 16) & ~(HEAP_MAX - 1), ar;
		const struct hs_mapping *m = hs_maps_find(maps, hi);
		if (!m || !hs_mapping_anon(m) || !read_live(pid, hi, &ar, sizeof(ar)))
			return;
		a = ar;
	}
	*arena = a;
	for (size_t i = 0; i < ai->nlist; i++)
		if (ai->list[i] == a) {
			*index = (int)i;
			return;
		}
	*index = (size & 4) ? 1000 : 0;  /* renumbered below when the list is unknown */
}

/* ---- the analysis ------------------------------------------------------ */

struct symcache {
	uint64_t pc;
	bool act;
	struct hs_profile_frame f;
	bool used;
};

struct analysis {
	const struct hs_profile_data *d;
	struct hs_profile_report *r;
	struct priv *p;
	struct hs_symbols *sym;
	const struct hs_maps *maps;
	const struct perfsym *perf;
	size_t nperf;
	struct symcache *sc;
	size_t sccap, scn;
};

static const char *object_of(struct analysis *a, uint64_t pc)
{
	const struct hs_mapping *m = hs_maps_find(a->maps, pc);
	if (!m || !m->path || !m->path[0] || m->path[0] == '[')
		return NULL;
	const char *path = intern(&a->p->strs, m->path);
	for (size_t i = 0; i < a->p->nobjs; i++)
		if (a->p->objs[i].path == path)
			return path;
	struct hs_profile_object *nv = realloc(a->p->objs, (a->p->nobjs + 1) * sizeof(*nv));
	if (!nv)
		return path;
	a->p->objs = nv;
	struct hs_profile_object *o = &nv[a->p->nobjs++];
	memset(o, 0, sizeof(*o));
	o->path = path;
	o->start = UINT64_MAX;
	for (size_t i = 0; i < a->maps->n; i++) {
		const struct hs_mapping *x = &a->maps->v[i];
		if (!x->path || strcmp(x->path, m->path))
			continue;
		if (x->start < o->start) {
			o->start = x->start;
			o->offset = x->offset;
		}
		if (x->end > o->limit)
			o->limit = x->end;
	}
	char file[PATH_MAX];
	snprintf(file, sizeof(file), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)a->d->pid, m->start, m->end);
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(m->path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		Elf *elf = hs_elf_begin(fd, NULL);
		if (elf) {
			hs_elf_build_id(elf, o->build_id, sizeof(o->build_id));
			elf_end(elf);
		}
		close(fd);
	}
	return path;
}

static int symbolise(struct analysis *a, uint64_t pc, bool act, struct hs_profile_frame *out)
{
	if (a->scn * 2 >= a->sccap) {
		size_t ncap = a->sccap ? a->sccap * 2 : 1024;
		struct symcache *nv = calloc(ncap, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		for (size_t i = 0; i < a->sccap; i++) {
			if (!a->sc[i].used)
				continue;
			size_t j = (size_t)((a->sc[i].pc * 2 + a->sc[i].act) * 0x9e3779b97f4a7c15ull) & (ncap - 1);
			while (nv[j].used)
				j = (j + 1) & (ncap - 1);
			nv[j] = a->sc[i];
		}
		free(a->sc);
		a->sc = nv;
		a->sccap = ncap;
	}
	size_t j = (size_t)((pc * 2 + act) * 0x9e3779b97f4a7c15ull) & (a->sccap - 1);
	while (a->sc[j].used) {
		if (a->sc[j].pc == pc && a->sc[j].act == act) {
			*out = a->sc[j].f;
			return 0;
		}
		j = (j + 1) & (a->sccap - 1);
	}
	struct hs_profile_frame f = { .pc = pc };
	struct hs_symbol s;
	char buf[4096];
	uint64_t look = act ? pc : pc - 1;
	int rc = a->sym ? hs_symbols_address(a->sym, pc, act ? 0 : HS_SYM_RETURN, &s, NULL) : -ENOENT;
	const char *perf = perfmap_find(a->perf, a->nperf, look);
	if (rc == 0) {
		f.object = object_of(a, look);
		const char *fn = s.function ? s.function : s.symbol;
		if (fn)
			snprintf(buf, sizeof(buf), "%s+0x%" PRIx64, fn, s.offset);
		else
			snprintf(buf, sizeof(buf), "%s+0x%" PRIx64, hs_path_basename(s.object ? s.object : "?"),
				 s.elf_address);
		f.name = intern(&a->p->strs, buf);
		if (s.file) {
			if (s.line > 0)
				snprintf(buf, sizeof(buf), "%s:%d", s.file, s.line);
			else
				snprintf(buf, sizeof(buf), "%s", s.file);
			f.file = intern(&a->p->strs, buf);
		}
	} else if (perf) {
		f.name = intern(&a->p->strs, perf);
	} else {
		const struct hs_mapping *m = hs_maps_find(a->maps, look);
		if (m && m->path && m->path[0] && m->path[0] != '[') {
			f.object = object_of(a, look);
			snprintf(buf, sizeof(buf), "%s+0x%" PRIx64, hs_path_basename(m->path),
				 pc - m->start + m->offset);
			f.name = intern(&a->p->strs, buf);
		} else {
			f.name = intern(&a->p->strs, UNKNOWN_JIT);
		}
	}
	if (!f.name)
		return -ENOMEM;
	a->sc[j].used = true;
	a->sc[j].pc = pc;
	a->sc[j].act = act;
	a->sc[j].f = f;
	a->scn++;
	*out = f;
	return 0;
}

static int stack_cmp_bytes(const void *x, const void *y)
{
	const struct hs_profile_stack *a = x, *b = y;
	if (a->alloc_bytes != b->alloc_bytes)
		return a->alloc_bytes > b->alloc_bytes ? -1 : 1;
	if (a->inuse_bytes != b->inuse_bytes)
		return a->inuse_bytes > b->inuse_bytes ? -1 : 1;
	if (a->nframes != b->nframes)
		return a->nframes < b->nframes ? -1 : 1;
	for (size_t i = 0; i < a->nframes; i++)
		if (a->frames[i].pc != b->frames[i].pc)
			return a->frames[i].pc < b->frames[i].pc ? -1 : 1;
	return 0;
}

static int add_index(size_t **v, size_t *n, size_t idx)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == idx)
			return 0;
	size_t *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = idx;
	*v = nv;
	return 0;
}

static int size_cmp(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	return a < b ? -1 : a > b;
}

static int arena_cmp(const void *x, const void *y)
{
	const struct hs_profile_arena *a = x, *b = y;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

/* One analysis under way: what hs_profile_analyze's steps share. */
struct run {
	const struct hs_profile_data *d;
	struct hs_profile_report *out;
	struct hs_err *err;
	unsigned debug;
	size_t max;                     /* frames kept per stack */
	struct hs_maps maps;
	Dwfl *dwfl;
	struct perfsym *perf;
	size_t nperf;
	size_t *sample_stack;           /* per sample: its stack + 1, 0 none */
	struct stackkey *keys;
	size_t nkeys, keycap, *ktab, ktcap;
	struct livetab live;
	struct analysis an;
	struct unwinder u;
	size_t *perm;                   /* a stack's index before the sort -> after */
	struct arenainfo ai;
};

static int oom(struct run *g)
{
	return hs_err_set(g->err, ENOMEM, "out of memory");
}

/* The mappings, perf maps, libdwfl attached to the process and the
 * symbols; the unwinder's buffers. */
static int run_setup(struct run *g)
{
	pid_t pid = g->d->pid;
	int rc = hs_maps_read(pid, false, &g->maps, g->err);
	if (rc < 0)
		return rc;
	g->an.maps = g->u.maps = &g->maps;
	perfmap_read(pid, &g->perf, &g->nperf);
	g->an.perf = g->u.perf = g->perf;
	g->an.nperf = g->u.nperf = g->nperf;

	proc_debug = g->debug;
	proc_pid = pid;
	g->dwfl = dwfl_begin(&proc_callbacks);
	if (!g->dwfl)
		return hs_err_set(g->err, ENOMEM, "libdwfl: %s", dwfl_errmsg(-1));
	dwfl_report_begin(g->dwfl);
	int prc = dwfl_linux_proc_report(g->dwfl, pid);
	dwfl_report_end(g->dwfl, NULL, NULL);
	if (prc != 0)
		return hs_err_set(g->err, prc > 0 ? prc : ESRCH, "cannot read the modules of pid %d: %s", (int)pid,
				  prc > 0 ? strerror(prc) : dwfl_errmsg(-1));
	if (!dwfl_attach_state(g->dwfl, NULL, pid, &uw_callbacks, &g->u))
		return hs_err_set(g->err, ENOEXEC, "cannot set up unwinding for pid %d: %s", (int)pid, dwfl_errmsg(-1));
	g->u.dwfl = g->dwfl;
	hs_symbols_new(pid, g->debug, &g->an.sym, NULL);   /* without it: names from mappings only */

	g->u.max = g->max + 32;         /* room for the frames dropped at the top */
	g->u.pcs = calloc(g->u.max, sizeof(*g->u.pcs));
	g->u.act = calloc(g->u.max, sizeof(*g->u.act));
	g->sample_stack = calloc(g->d->n ? g->d->n : 1, sizeof(*g->sample_stack));
	if (!g->u.pcs || !g->u.act || !g->sample_stack)
		return oom(g);
	return 0;
}

/* Unwind sample i into g->u; the frames kept are u.pcs[*drop, *drop + *nf). */
static void unwind_sample(struct run *g, size_t i, size_t *drop, size_t *nf, bool *truncated)
{
	const struct hs_profile_sample *s = &g->d->v[i];
	struct unwinder *u = &g->u;
	u->cur = s;
	u->n = 0;
	u->jit_end = false;
	const struct hs_mapping *sm = hs_maps_find(&g->maps, s->h.stack_addr);
	u->stk_lo = sm ? sm->start : s->h.stack_addr;
	u->stk_hi = sm ? sm->end : s->h.stack_addr + s->h.stack_len;
	/* a fake thread id per sample: libdwfl keeps no state between */
	int frc = dwfl_getthread_frames(g->dwfl, (pid_t)(i + 1), uw_frame, u);
	*truncated = frc != 0;
	*drop = frames_to_drop(u);
	if (*drop == u->n && u->n) {
		/* all of it is the allocator's: keep the outermost */
		*drop = u->n - 1;
	}
	*nf = u->n - *drop;
	if (*nf > g->max) {
		*nf = g->max;
		*truncated = true;
	}
	if (u->jit_end)
		*truncated = true;
}

static int grow_key_table(struct run *g)
{
	size_t ncap = g->ktcap ? g->ktcap * 2 : 256;
	size_t *nt = calloc(ncap, sizeof(*nt));
	if (!nt)
		return oom(g);
	for (size_t x = 0; x < g->nkeys; x++) {
		size_t jj = g->keys[x].hash & (ncap - 1);
		while (nt[jj])
			jj = (jj + 1) & (ncap - 1);
		nt[jj] = x + 1;
	}
	free(g->ktab);
	g->ktab = nt;
	g->ktcap = ncap;
	return 0;
}

/* A new stack of nf frames from u.pcs[drop], symbolised, in table slot jj. */
static int add_stack(struct run *g, struct stackkey k, size_t drop, size_t jj)
{
	size_t nf = k.n;
	if (g->nkeys == g->keycap) {
		g->keycap = g->keycap ? g->keycap * 2 : 64;
		struct stackkey *nk = realloc(g->keys, g->keycap * sizeof(*nk));
		struct hs_profile_stack *ns = realloc(g->out->stacks, g->keycap * sizeof(*ns));
		if (nk)
			g->keys = nk;
		if (ns)
			g->out->stacks = ns;
		if (!nk || !ns)
			return oom(g);
	}
	k.pcs = malloc((nf ? nf : 1) * sizeof(uint64_t));
	struct hs_profile_stack *st = &g->out->stacks[g->nkeys];
	memset(st, 0, sizeof(*st));
	st->frames = calloc(nf ? nf : 1, sizeof(*st->frames));
	if (!k.pcs || !st->frames) {
		free(k.pcs);
		free(st->frames);
		return oom(g);
	}
	memcpy(k.pcs, &g->u.pcs[drop], nf * sizeof(uint64_t));
	st->nframes = nf;
	st->truncated = k.truncated;
	g->keys[g->nkeys++] = k;
	g->out->nstacks = g->nkeys;
	for (size_t x = 0; x < nf; x++) {
		int rc = symbolise(&g->an, g->u.pcs[drop + x], g->u.act[drop + x], &st->frames[x]);
		if (rc < 0)
			return hs_err_set(g->err, -rc, "out of memory");
	}
	g->ktab[jj] = g->nkeys;
	return 0;
}

/* The stack (+ 1) of the frames u.pcs[drop, drop + nf), added when new. */
static int stack_of(struct run *g, size_t drop, size_t nf, bool truncated, size_t *found)
{
	struct stackkey k = { .n = nf, .truncated = truncated };
	k.hash = hash_bytes(&g->u.pcs[drop], nf * sizeof(uint64_t), 0xcbf29ce484222325ull ^ truncated);
	int rc;
	if ((g->nkeys + 1) * 2 >= g->ktcap && (rc = grow_key_table(g)) < 0)
		return rc;
	size_t jj = k.hash & (g->ktcap - 1);
	while (g->ktab[jj]) {
		struct stackkey *e = &g->keys[g->ktab[jj] - 1];
		if (e->hash == k.hash && e->n == nf && e->truncated == truncated &&
		    !memcmp(e->pcs, &g->u.pcs[drop], nf * sizeof(uint64_t))) {
			*found = g->ktab[jj];
			return 0;
		}
		jj = (jj + 1) & (g->ktcap - 1);
	}
	if ((rc = add_stack(g, k, drop, jj)) < 0)
		return rc;
	*found = g->nkeys;
	return 0;
}

/* Every sample: frees end a live block; allocations are unwound and
 * counted to their stack. */
static int group_samples(struct run *g)
{
	const struct hs_profile_data *d = g->d;
	struct hs_profile_report *out = g->out;
	for (size_t i = 0; i < d->n; i++) {
		const struct hs_profile_sample *s = &d->v[i];
		if (s->h.kind == HS_SAMPLE_FREE) {
			out->nfrees++;
			live_del(&g->live, s->h.addr);
			continue;
		}
		if (s->h.kind != HS_SAMPLE_ALLOC)
			continue;
		out->nsamples++;
		if (s->h.old_addr)
			live_del(&g->live, s->h.old_addr);
		if (live_put(&g->live, s->h.addr, i) < 0)
			return oom(g);
		size_t drop, nf, found;
		bool truncated;
		unwind_sample(g, i, &drop, &nf, &truncated);
		int rc = stack_of(g, drop, nf, truncated, &found);
		if (rc < 0)
			return rc;
		struct hs_profile_stack *st = &out->stacks[found - 1];
		double b, ob;
		hs_profile_estimate(s->h.size, d->rate, &b, &ob);
		st->alloc_bytes += b;
		st->alloc_objects += ob;
		st->samples++;
		g->sample_stack[i] = found;
	}
	/* what is still live at the end */
	for (size_t x = 0; x < g->live.cap; x++) {
		if (!g->live.v[x].sample)
			continue;
		size_t i = g->live.v[x].sample - 1;
		double b, ob;
		hs_profile_estimate(d->v[i].h.size, d->rate, &b, &ob);
		out->stacks[g->sample_stack[i] - 1].inuse_bytes += b;
		out->stacks[g->sample_stack[i] - 1].inuse_objects += ob;
	}
	return 0;
}

/* most allocated first; samples follow their stack's new place */
static int sort_stacks(struct run *g)
{
	size_t nkeys = g->nkeys;
	g->perm = calloc(nkeys ? nkeys : 1, sizeof(*g->perm));
	struct pair { struct hs_profile_stack s; size_t old; } *pairs = malloc((nkeys ? nkeys : 1) * sizeof(*pairs));
	if (!g->perm || !pairs) {
		free(pairs);
		return oom(g);
	}
	for (size_t x = 0; x < nkeys; x++) {
		pairs[x].s = g->out->stacks[x];
		pairs[x].old = x;
	}
	/* the stack is the pair's first member: the comparator takes it */
	qsort(pairs, nkeys, sizeof(*pairs), stack_cmp_bytes);
	for (size_t x = 0; x < nkeys; x++) {
		g->out->stacks[x] = pairs[x].s;
		g->perm[pairs[x].old] = x;
	}
	free(pairs);
	return 0;
}

/* What each thread allocated, and by which stacks. */
static int group_threads(struct run *g)
{
	const struct hs_profile_data *d = g->d;
	struct hs_profile_report *out = g->out;
	for (size_t i = 0; i < d->n; i++) {
		if (!g->sample_stack[i])
			continue;
		size_t si = g->perm[g->sample_stack[i] - 1];
		const struct hs_profile_sample *s = &d->v[i];
		struct hs_profile_thread *t = NULL;
		for (size_t x = 0; x < out->nthreads; x++)
			if (out->threads[x].tid == (pid_t)s->h.tid)
				t = &out->threads[x];
		if (!t) {
			struct hs_profile_thread *nt = realloc(out->threads, (out->nthreads + 1) * sizeof(*nt));
			if (!nt)
				return oom(g);
			out->threads = nt;
			t = &nt[out->nthreads++];
			memset(t, 0, sizeof(*t));
			t->tid = (pid_t)s->h.tid;
			hs_proc_comm(d->pid, t->tid, t->name, sizeof(t->name));
		}
		double b, ob;
		hs_profile_estimate(s->h.size, d->rate, &b, &ob);
		t->alloc_bytes += b;
		if (add_index(&t->stacks, &t->nstacks, si) < 0)
			return oom(g);
	}
	return 0;
}

static struct hs_profile_arena *arena_entry(struct run *g, int idx, uint64_t aaddr)
{
	struct hs_profile_report *out = g->out;
	for (size_t y = 0; y < out->narenas; y++)
		if (out->arenas[y].addr == aaddr && (out->arenas[y].index < 0) == (idx < 0))
			return &out->arenas[y];
	struct hs_profile_arena *na = realloc(out->arenas, (out->narenas + 1) * sizeof(*na));
	if (!na)
		return NULL;
	out->arenas = na;
	struct hs_profile_arena *ar = &na[out->narenas++];
	memset(ar, 0, sizeof(*ar));
	ar->index = idx;
	ar->addr = aaddr;
	return ar;
}

/* The blocks live at the end: by thread, and by arena with their stacks. */
static int group_live(struct run *g)
{
	const struct hs_profile_data *d = g->d;
	struct hs_profile_report *out = g->out;
	arenas_init(d->pid, &g->maps, g->debug, &g->ai);
	for (size_t x = 0; x < g->live.cap; x++) {
		if (!g->live.v[x].sample)
			continue;
		size_t i = g->live.v[x].sample - 1;
		size_t si = g->perm[g->sample_stack[i] - 1];
		const struct hs_profile_sample *s = &d->v[i];
		double b, ob;
		hs_profile_estimate(s->h.size, d->rate, &b, &ob);
		for (size_t y = 0; y < out->nthreads; y++)
			if (out->threads[y].tid == (pid_t)s->h.tid)
				out->threads[y].inuse_bytes += b;
		int idx;
		uint64_t aaddr;
		arena_of(d->pid, &g->maps, &g->ai, s->h.addr, &idx, &aaddr);
		struct hs_profile_arena *ar = arena_entry(g, idx, aaddr);
		if (!ar)
			return oom(g);
		ar->inuse_bytes += b;
		if (add_index(&ar->stacks, &ar->nstacks, si) < 0)
			return oom(g);
	}
	return 0;
}

static void finish_order(struct run *g)
{
	struct hs_profile_report *out = g->out;
	if (out->narenas)   /* none live: arenas is NULL, which qsort may not take */
		qsort(out->arenas, out->narenas, sizeof(*out->arenas), arena_cmp);
	/* arenas off the list read from main_arena (no layout): numbered in
	 * address order after it */
	for (size_t y = 0, next = g->ai.nlist ? g->ai.nlist : 1; y < out->narenas; y++)
		if (out->arenas[y].index == 1000)
			out->arenas[y].index = (int)next++;
	for (size_t y = 0; y < out->nthreads; y++)
		if (out->threads[y].nstacks)
			qsort(out->threads[y].stacks, out->threads[y].nstacks, sizeof(size_t), size_cmp);
	for (size_t y = 0; y < out->narenas; y++)
		if (out->arenas[y].nstacks)
			qsort(out->arenas[y].stacks, out->arenas[y].nstacks, sizeof(size_t), size_cmp);
}

static void run_release(struct run *g)
{
	for (size_t x = 0; x < g->nkeys; x++)
		free(g->keys[x].pcs);
	free(g->keys);
	free(g->ktab);
	free(g->perm);
	free(g->live.v);
	free(g->sample_stack);
	free(g->u.pcs);
	free(g->u.act);
	free(g->an.sc);
	if (g->an.sym)
		hs_symbols_free(g->an.sym);
	if (g->dwfl)
		dwfl_end(g->dwfl);
	for (size_t x = 0; x < g->nperf; x++)
		free(g->perf[x].name);
	free(g->perf);
	hs_maps_release(&g->maps);
}

int hs_profile_analyze(const struct hs_profile_data *d, const struct hs_profile_opts *o,
		       struct hs_profile_report *out, struct hs_err *err)
{
	struct hs_profile_opts defo = { .use_debuginfo = true };
	if (!o)
		o = &defo;
	memset(out, 0, sizeof(*out));
	out->pid = d->pid;
	out->rate = d->rate;
	out->seconds = d->t_end_ns > d->t_start_ns ? (double)(d->t_end_ns - d->t_start_ns) / 1e9 : 0;
	out->dropped = d->dropped;
	out->live_lost = d->live_lost;

	struct priv *p = calloc(1, sizeof(*p));
	if (!p)
		return hs_err_set(err, ENOMEM, "out of memory");
	out->priv = p;

	struct run g = { .d = d, .out = out, .err = err };
	g.debug = (o->use_debuginfo ? HS_DEBUG_LOCAL : 0) | (o->use_debuginfo && o->use_debuginfod ? HS_DEBUG_DEBUGINFOD : 0);
	g.max = o->max_frames > 0 ? (size_t)o->max_frames : 128;
	g.an = (struct analysis){ .d = d, .r = out, .p = p };
	g.u = (struct unwinder){ .pid = d->pid, .debug = g.debug };
	int rc;
	if ((rc = run_setup(&g)) == 0 && (rc = group_samples(&g)) == 0 && (rc = sort_stacks(&g)) == 0 &&
	    (rc = group_threads(&g)) == 0 && (rc = group_live(&g)) == 0)
		finish_order(&g);
	run_release(&g);
	if (rc < 0)
		hs_profile_report_release(out);
	return rc;
}

void hs_profile_report_release(struct hs_profile_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nstacks; i++)
		free(r->stacks[i].frames);
	free(r->stacks);
	for (size_t i = 0; i < r->nthreads; i++)
		free(r->threads[i].stacks);
	free(r->threads);
	for (size_t i = 0; i < r->narenas; i++)
		free(r->arenas[i].stacks);
	free(r->arenas);
	struct priv *p = r->priv;
	if (p) {
		intern_release(&p->strs);
		free(p->objs);
		free(p);
	}
	memset(r, 0, sizeof(*r));
}

/* ---- JSON and folded stacks -------------------------------------------- */

static uint64_t rnd(double v)
{
	return v > 0 ? (uint64_t)llround(v) : 0;
}

int hs_profile_write_json(FILE *fp, const struct hs_profile_report *r, int top)
{
	struct hs_json j;
	double ab = 0, ao = 0, ib = 0, io = 0;
	for (size_t i = 0; i < r->nstacks; i++) {
		ab += r->stacks[i].alloc_bytes;
		ao += r->stacks[i].alloc_objects;
		ib += r->stacks[i].inuse_bytes;
		io += r->stacks[i].inuse_objects;
	}
	hs_json_init(&j, fp);
	hs_json_obj_begin(&j, NULL);
	hs_json_i64(&j, "pid", r->pid);
	hs_json_u64(&j, "rate", r->rate);
	hs_json_u64(&j, "duration_ms", rnd(r->seconds * 1000));
	hs_json_u64(&j, "samples", r->nsamples);
	hs_json_u64(&j, "frees", r->nfrees);
	hs_json_u64(&j, "dropped", r->dropped);
	hs_json_obj_begin(&j, "totals");
	hs_json_u64(&j, "alloc_bytes", rnd(ab));
	hs_json_u64(&j, "alloc_objects", rnd(ao));
	hs_json_u64(&j, "inuse_bytes", rnd(ib));
	hs_json_u64(&j, "inuse_objects", rnd(io));
	hs_json_obj_end(&j);
	hs_json_u64(&j, "stacks_total", r->nstacks);
	hs_json_arr_begin(&j, "stacks");
	size_t n = top > 0 && (size_t)top < r->nstacks ? (size_t)top : r->nstacks;
	for (size_t i = 0; i < n; i++) {
		const struct hs_profile_stack *s = &r->stacks[i];
		hs_json_obj_begin(&j, NULL);
		hs_json_u64(&j, "index", i);
		hs_json_u64(&j, "alloc_bytes", rnd(s->alloc_bytes));
		hs_json_u64(&j, "alloc_objects", rnd(s->alloc_objects));
		hs_json_u64(&j, "inuse_bytes", rnd(s->inuse_bytes));
		hs_json_u64(&j, "inuse_objects", rnd(s->inuse_objects));
		hs_json_u64(&j, "samples", s->samples);
		hs_json_bool(&j, "truncated", s->truncated);
		hs_json_arr_begin(&j, "frames");
		for (size_t f = 0; f < s->nframes; f++) {
			hs_json_obj_begin(&j, NULL);
			hs_json_hex(&j, "pc", s->frames[f].pc);
			hs_json_str(&j, "name", s->frames[f].name);
			if (s->frames[f].file)
				hs_json_str(&j, "file", s->frames[f].file);
			else
				hs_json_null(&j, "file");
			if (s->frames[f].object)
				hs_json_str(&j, "object", s->frames[f].object);
			else
				hs_json_null(&j, "object");
			hs_json_obj_end(&j);
		}
		hs_json_arr_end(&j);
		hs_json_obj_end(&j);
	}
	hs_json_arr_end(&j);
	hs_json_arr_begin(&j, "threads");
	for (size_t i = 0; i < r->nthreads; i++) {
		const struct hs_profile_thread *t = &r->threads[i];
		hs_json_obj_begin(&j, NULL);
		hs_json_i64(&j, "tid", t->tid);
		hs_json_str(&j, "name", t->name);
		hs_json_u64(&j, "alloc_bytes", rnd(t->alloc_bytes));
		hs_json_u64(&j, "inuse_bytes", rnd(t->inuse_bytes));
		hs_json_arr_begin(&j, "stacks");
		for (size_t x = 0; x < t->nstacks; x++)
			hs_json_u64(&j, NULL, t->stacks[x]);
		hs_json_arr_end(&j);
		hs_json_obj_end(&j);
	}
	hs_json_arr_end(&j);
	hs_json_arr_begin(&j, "arenas");
	for (size_t i = 0; i < r->narenas; i++) {
		const struct hs_profile_arena *a = &r->arenas[i];
		hs_json_obj_begin(&j, NULL);
		hs_json_i64(&j, "index", a->index);
		hs_json_str(&j, "kind", a->index < 0 ? "mmapped" : a->index == 0 ? "main" : "thread");
		if (a->addr)
			hs_json_hex(&j, "addr", a->addr);
		else
			hs_json_null(&j, "addr");
		hs_json_u64(&j, "inuse_bytes", rnd(a->inuse_bytes));
		hs_json_arr_begin(&j, "stacks");
		for (size_t x = 0; x < a->nstacks; x++)
			hs_json_u64(&j, NULL, a->stacks[x]);
		hs_json_arr_end(&j);
		hs_json_obj_end(&j);
	}
	hs_json_arr_end(&j);
	hs_json_obj_end(&j);
	hs_json_finish(&j);
	fflush(fp);
	return ferror(fp) ? -EIO : 0;
}

/* A frame's name as flamegraph.pl can take it: no ';' (its separator)
 * and no newline. */
static void put_folded_name(FILE *fp, const char *s)
{
	for (; *s; s++)
		fputc(*s == ';' ? ':' : (*s == '\n' || *s == '\r') ? ' ' : *s, fp);
}

int hs_profile_write_folded(FILE *fp, const struct hs_profile_report *r, bool inuse)
{
	for (size_t i = 0; i < r->nstacks; i++) {
		const struct hs_profile_stack *s = &r->stacks[i];
		uint64_t v = rnd(inuse ? s->inuse_bytes : s->alloc_bytes);
		if (!v)
			continue;
		bool first = true;
		if (s->truncated) {
			fputs("[truncated]", fp);
			first = false;
		}
		for (size_t f = s->nframes; f-- > 0;) {
			if (!first)
				fputc(';', fp);
			first = false;
			put_folded_name(fp, s->frames[f].name ? s->frames[f].name : "?");
		}
		if (first)
			fputs("[no frames]", fp);
		fprintf(fp, " %" PRIu64 "\n", v);
	}
	fflush(fp);
	return ferror(fp) ? -EIO : 0;
}

int hs_profile_write_raw(FILE *fp, const struct hs_profile_data *d)
{
	fprintf(fp, "# pid %d rate %" PRIu64 " samples %zu dropped %" PRIu64 " live_lost %" PRIu64 "\n", (int)d->pid,
		d->rate, d->n, d->dropped, d->live_lost);
	fprintf(fp, "# seq kind tid time_ns addr size old_addr rip rsp stack_addr stack_len\n");
	for (size_t i = 0; i < d->n; i++) {
		const struct hs_sample_hdr *h = &d->v[i].h;
		fprintf(fp, "%" PRIu64 " %s %u %" PRIu64 " 0x%" PRIx64 " %" PRIu64 " 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64
			" 0x%" PRIx64 " %u\n", h->seq, h->kind == HS_SAMPLE_ALLOC ? "alloc" : h->kind == HS_SAMPLE_FREE ? "free" : "?",
			h->tid, h->time_ns, h->addr, h->size, h->old_addr, h->regs[16], h->regs[7], h->stack_addr,
			h->stack_len);
	}
	return fflush(fp) == 0 && !ferror(fp) ? 0 : -EIO;
}
