#include <elf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "config.h"
#include "elfobj.h"
#include "maps.h"
#include "proc.h"
#include "symbols.h"
#if HS_HAVE_BFD
#include <bfd.h>
#include <dlfcn.h>
#include <pthread.h>
#endif

/* One object: its file, opened once, and its libdwfl handle. */
struct sym_object {
	char *key;               /* the path it was asked for (or found by) */
	char *map_path;          /* as the process maps it, or as given */
	char *file;              /* the file opened */
	bool mapped;
	int error;               /* -errno when it could not be opened */
	Dwfl *dwfl;
	Dwfl_Module *mod;
	uint64_t fbase_vaddr;    /* ALIGN_DOWN(first PT_LOAD's p_vaddr, page): dladdr's dli_fbase */
	char build_id[81];
	char debuglink[256];     /* its .gnu_debuglink name, "" when none */
	char *debuginfo;         /* separate debug file found, NULL when none */
	const char *debuginfo_from;
	struct hs_symbols *owner;
};

struct hs_symbols {
	pid_t pid;
	unsigned debug;
	struct hs_maps maps;
	char exe[PATH_MAX];      /* the process's executable, as its maps name it */
	struct sym_object **obj;
	size_t nobj;
	char **strs;             /* strings handed out, freed with the symboliser */
	size_t nstrs;
};

static const char *keep(struct hs_symbols *s, const char *str)
{
	if (!str)
		return NULL;
	char **n = realloc(s->strs, (s->nstrs + 1) * sizeof(*n));
	if (!n)
		return NULL;
	s->strs = n;
	if (!(s->strs[s->nstrs] = strdup(str)))
		return NULL;
	return s->strs[s->nstrs++];
}

/* ---- demangling -------------------------------------------------------- */

#if HS_HAVE_BFD
/* libiberty's demangle.h is not installed with bfd.h; these two have had
 * these values since the first cplus_demangle. */
#ifndef DMGL_PARAMS
#define DMGL_PARAMS (1 << 0)
#endif
#ifndef DMGL_ANSI
#define DMGL_ANSI (1 << 1)
#endif
#endif

#if HS_HAVE_BFD
/* libbfd is not linked: loaded the first time a name needs demangling
 * (it pulls in a dozen libraries that other commands never use). */
static char *(*bfd_demangle_fn)(bfd *, const char *, int);
static pthread_once_t bfd_once = PTHREAD_ONCE_INIT;

static void bfd_load(void)
{
	void *h = dlopen(HS_BFD_SONAME, RTLD_LAZY | RTLD_LOCAL);
	if (!h)
		h = dlopen("libbfd.so", RTLD_LAZY | RTLD_LOCAL);
	if (h)
		*(void **)&bfd_demangle_fn = dlsym(h, "bfd_demangle");
}
#endif

char *hs_symbols_demangle(const char *name)
{
#if HS_HAVE_BFD
	/* As addr2line -C and objdump -C do: parameters and const shown. */
	if (name && (name[0] == '_' && (name[1] == 'Z' || name[1] == 'R'))) {
		pthread_once(&bfd_once, bfd_load);
		return bfd_demangle_fn ? bfd_demangle_fn(NULL, name, DMGL_PARAMS | DMGL_ANSI) : NULL;
	}
	return NULL;
#else
	(void)name;
	return NULL;
#endif
}

const char *hs_symbols_demangler(void)
{
#if HS_HAVE_BFD
	pthread_once(&bfd_once, bfd_load);
	return bfd_demangle_fn ? "libbfd" : NULL;
#else
	return NULL;
#endif
}

/* ---- debug info for libdwfl -------------------------------------------- */

static int no_find_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
		       char **file_name, Elf **elfp)
{
	/* Never asked: every module is reported with its file. */
	(void)mod, (void)userdata, (void)modname, (void)base, (void)file_name, (void)elfp;
	errno = ENOENT;
	return -1;
}

static int open_found(const char *path, char **name)
{
	int fd = hs_proc_open_file(path);
	if (fd >= 0)
		*name = strdup(path);
	return fd;
}

/* The dwz file shared by several debug files (.gnu_debugaltlink): its
 * path as written, beside the debug file, then by its own build-id. */
static int find_alt(Dwfl_Module *mod, struct sym_object *o, char **name)
{
	Dwarf_Addr bias;
	/* libdwfl asks for the alt file only once the module's Dwarf is set
	 * up, so this returns it without looking again. */
	Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
	const char *alt;
	const void *id;
	ssize_t n = dw ? dwelf_dwarf_gnu_debugaltlink(dw, &alt, &id) : -1;
	if (n <= 0)
		return -1;
	char hex[81], cand[PATH_MAX + 64];
	hs_elf_hex(id, (size_t)n, hex, sizeof(hex));
	if (alt[0] == '/') {
		if (hs_debuginfo_check(alt, hex) == 0)
			return open_found(alt, name);
		snprintf(cand, sizeof(cand), "/proc/%d/root%s", (int)o->owner->pid, alt);
		if (o->owner->pid > 0 && hs_debuginfo_check(cand, hex) == 0)
			return open_found(cand, name);
	} else {
		const char *from = o->debuginfo ? o->debuginfo : o->file;
		const char *slash = strrchr(from, '/');
		snprintf(cand, sizeof(cand), "%.*s%s", slash ? (int)(slash - from + 1) : 0, from, alt);
		if (hs_debuginfo_check(cand, hex) == 0)
			return open_found(cand, name);
	}
	struct hs_debuginfo_query q = { .pid = o->owner->pid, .build_id = hex, .sources = o->owner->debug };
	const char *how;
	if (hs_debuginfo_find(&q, cand, sizeof(cand), &how) == 0)
		return open_found(cand, name);
	return -1;
}

/* Our own find_debuginfo, not dwfl_standard_find_debuginfo: that one asks
 * debuginfod whenever DEBUGINFOD_URLS is set, which --no-debuginfod and
 * --no-debuginfo must be able to refuse, and it knows neither
 * HEAPSCOPE_DEBUG_DIRS nor a container's /proc/PID/root. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
			  const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
			  char **debuginfo_file_name)
{
	(void)modname, (void)base, (void)file_name, (void)debuglink_crc;
	struct sym_object *o = *userdata;
	errno = 0;
	if (!o || !(o->owner->debug & HS_DEBUG_LOCAL))
		return -1;
	/* libdwfl asks again, with the alt file's name, for a dwz file. */
	if (debuglink_file && strcmp(debuglink_file, o->debuglink))
		return find_alt(mod, o, debuginfo_file_name);
	char path[PATH_MAX];
	const char *how;
	struct hs_debuginfo_query q = {
		.pid = o->owner->pid,
		.build_id = o->build_id,
		.map_path = o->map_path,
		.file = o->file,
		.debuglink = o->debuglink[0] ? o->debuglink : NULL,
		.sources = o->owner->debug,
	};
	if (hs_debuginfo_find(&q, path, sizeof(path), &how) < 0)
		return -1;
	int fd = open_found(path, debuginfo_file_name);
	if (fd >= 0) {
		free(o->debuginfo);
		o->debuginfo = strdup(path);
		o->debuginfo_from = how;
	}
	return fd;
}

static const Dwfl_Callbacks callbacks = {
	.find_elf = no_find_elf,
	.find_debuginfo = find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

/* ---- objects ----------------------------------------------------------- */

static void object_free(struct sym_object *o)
{
	if (!o)
		return;
	if (o->dwfl)
		dwfl_end(o->dwfl);
	free(o->key);
	free(o->map_path);
	free(o->file);
	free(o->debuginfo);
	free(o);
}

/* Report file to a Dwfl of its own at bias 0 (module addresses are the
 * file's own), and read what we need of its ELF image. */
static int object_open(struct sym_object *o, struct hs_err *err)
{
	o->dwfl = dwfl_begin(&callbacks);
	if (!o->dwfl)
		return hs_err_set(err, ENOMEM, "%s: %s", o->map_path, dwfl_errmsg(-1));
	dwfl_report_begin(o->dwfl);
	/* opened here, not by libdwfl: as every file of the target is */
	int fd = hs_proc_open_file(o->file);
	if (fd < 0)
		return hs_err_set(err, -fd, "cannot open %s: %s", o->file, strerror(-fd));
	o->mod = dwfl_report_elf(o->dwfl, o->map_path, o->file, fd, 0, true);
	if (!o->mod)
		close(fd);
	dwfl_report_end(o->dwfl, NULL, NULL);
	if (!o->mod)
		return hs_err_set(err, ENOEXEC, "cannot read %s: %s", o->file, dwfl_errmsg(-1));
	void **ud;
	dwfl_module_info(o->mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL);
	*ud = o;
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(o->mod, &bias);
	size_t n;
	if (!elf || elf_getphdrnum(elf, &n) != 0)
		return hs_err_set(err, ENOEXEC, "cannot read %s: %s", o->file, elf_errmsg(-1));
	long page = sysconf(_SC_PAGESIZE);
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
			o->fbase_vaddr = ph.p_vaddr & ~(uint64_t)(page > 0 ? page - 1 : 4095);
			break;
		}
	}
	hs_elf_build_id(elf, o->build_id, sizeof(o->build_id));
	GElf_Word crc;
	const char *link = dwelf_elf_gnu_debuglink(elf, &crc);
	snprintf(o->debuglink, sizeof(o->debuglink), "%s", link ? link : "");
	return 0;
}

/* The object made before for path (as a mapping of the process, or a
 * path alone), or a new one (*fresh) with its key and map_path set. */
static struct sym_object *object_get(struct hs_symbols *s, bool mapped, const char *path, bool *fresh)
{
	*fresh = false;
	for (size_t i = 0; i < s->nobj; i++)
		if (s->obj[i]->mapped == mapped && !strcmp(s->obj[i]->key, path))
			return s->obj[i];
	struct sym_object *o = calloc(1, sizeof(*o));
	struct sym_object **v = realloc(s->obj, (s->nobj + 1) * sizeof(*v));
	if (!o || !v) {
		free(o);
		if (v)
			s->obj = v;
		return NULL;
	}
	s->obj = v;
	s->obj[s->nobj++] = o;
	o->owner = s;
	o->mapped = mapped;
	o->key = strdup(path);
	o->map_path = strdup(path);
	*fresh = true;
	return o;
}

/* The object for a mapping of the process (any of its mappings). */
static struct sym_object *object_for_mapping(struct hs_symbols *s, const struct hs_mapping *m)
{
	bool fresh;
	struct sym_object *o = object_get(s, true, m->path, &fresh);
	if (!o || !fresh)
		return o;
	/* As the process sees it: map_files holds the very file it mapped
	 * (deleted, replaced, in another mount namespace), then its path in
	 * its root (never the host's). */
	char path[PATH_MAX + 64];
	const char *tries[2];
	char a[PATH_MAX + 64], b[PATH_MAX + 64];
	snprintf(a, sizeof(a), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)s->pid, m->start, m->end);
	snprintf(b, sizeof(b), "/proc/%d/root%s", (int)s->pid, m->path);
	tries[0] = a, tries[1] = b;
	o->error = -ENOENT;
	for (int k = 0; k < 2 && o->error; k++) {
		int fd = hs_proc_open_file(tries[k]);
		if (fd < 0)
			continue;
		close(fd);
		snprintf(path, sizeof(path), "%s", tries[k]);
		o->file = strdup(path);
		o->error = object_open(o, NULL);
		if (o->error) {
			if (o->dwfl)
				dwfl_end(o->dwfl);
			o->dwfl = NULL;
			o->mod = NULL;
			free(o->file);
			o->file = NULL;
		}
	}
	return o;
}

/* The object named by a path alone (no process, or one that does not map it). */
static struct sym_object *object_for_path(struct hs_symbols *s, const char *path)
{
	bool fresh;
	struct sym_object *o = object_get(s, false, path, &fresh);
	if (!o || !fresh)
		return o;
	o->file = strdup(path);
	int fd = hs_proc_open_file(path);
	if (fd < 0) {
		o->error = fd;
		return o;
	}
	close(fd);
	o->error = object_open(o, NULL);
	return o;
}

/* The address in the object's file of a runtime address inside mapping m:
 * through the PT_LOAD that holds its file offset. */
static int mapping_elf_address(struct sym_object *o, const struct hs_mapping *m, uint64_t addr, uint64_t *out)
{
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(o->mod, &bias);
	size_t n;
	if (!elf || elf_getphdrnum(elf, &n) != 0)
		return -ENOEXEC;
	uint64_t foff = addr - m->start + m->offset;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && foff >= ph.p_offset &&
		    foff < ph.p_offset + ph.p_filesz) {
			*out = foff - ph.p_offset + ph.p_vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

static void describe(struct hs_symbols *s, struct sym_object *o, uint64_t elf_addr, unsigned flags,
		     struct hs_symbol *out)
{
	out->elf_address = elf_addr;
	uint64_t a = elf_addr - ((flags & HS_SYM_RETURN) && elf_addr ? 1 : 0);
	GElf_Off off;
	GElf_Sym sym;
	const char *name = dwfl_module_addrinfo(o->mod, a, &off, &sym, NULL, NULL, NULL);
	if (name && name[0]) {
		out->symbol = keep(s, name);
		out->offset = off + (elf_addr - a);
		char *d = hs_symbols_demangle(name);
		out->function = d ? keep(s, d) : out->symbol;
		free(d);
	}
	if (s->debug & HS_DEBUG_LOCAL) {
		Dwfl_Line *l = dwfl_module_getsrc(o->mod, a);
		int line = 0;
		const char *file = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
		if (file && line > 0) {
			/* A name relative to its compilation directory is
			 * given whole, as addr2line gives it. */
			const char *dir = file[0] != '/' ? dwfl_line_comp_dir(l) : NULL;
			char *whole = NULL;
			if (dir && dir[0] == '/' && asprintf(&whole, "%s/%s", dir, file) < 0)
				whole = NULL;
			out->file = keep(s, whole ? whole : file);
			out->line = line;
			free(whole);
		}
	}
	out->debuginfo = o->debuginfo;
	out->debuginfo_from = o->debuginfo ? o->debuginfo_from : NULL;
}

int hs_symbols_new(pid_t pid, unsigned debug, struct hs_symbols **out, struct hs_err *err)
{
	struct hs_symbols *s = calloc(1, sizeof(*s));
	if (!s)
		return hs_err_set(err, ENOMEM, "out of memory");
	s->pid = pid;
	s->debug = debug;
	elf_version(EV_CURRENT);
	if (pid > 0) {
		int r = hs_maps_read(pid, false, &s->maps, err);
		if (r < 0) {
			free(s);
			return r;
		}
		char link[64];
		snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
		ssize_t n = readlink(link, s->exe, sizeof(s->exe) - 1);
		s->exe[n > 0 ? n : 0] = '\0';
		static const char deleted[] = " (deleted)";
		size_t dl = sizeof(deleted) - 1;
		if (n > (ssize_t)dl && !strcmp(s->exe + n - dl, deleted))
			s->exe[n - dl] = '\0';
	}
	*out = s;
	return 0;
}

void hs_symbols_free(struct hs_symbols *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nobj; i++)
		object_free(s->obj[i]);
	free(s->obj);
	for (size_t i = 0; i < s->nstrs; i++)
		free(s->strs[i]);
	free(s->strs);
	hs_maps_release(&s->maps);
	free(s);
}

int hs_symbols_address(struct hs_symbols *s, uint64_t addr, unsigned flags, struct hs_symbol *out, struct hs_err *err)
{
	memset(out, 0, sizeof(*out));
	out->address = addr;
	if (s->pid <= 0)
		return hs_err_set(err, EINVAL, "0x%" PRIx64 ": a runtime address needs a process", addr);
	const struct hs_mapping *m = hs_maps_find(&s->maps, addr);
	if (!m || m->path[0] != '/')
		return hs_err_set(err, ENOENT, "0x%" PRIx64 " is in no file mapping of pid %d", addr, (int)s->pid);
	struct sym_object *o = object_for_mapping(s, m);
	if (!o)
		return hs_err_set(err, ENOMEM, "out of memory");
	out->object = o->map_path;
	out->mapped = true;
	if (o->error)
		return hs_err_set(err, -o->error, "cannot read %s: %s", m->path, strerror(-o->error));
	uint64_t ea;
	if (mapping_elf_address(o, m, addr, &ea) < 0)
		return hs_err_set(err, ENOENT, "0x%" PRIx64 " is in no loaded segment of %s", addr, m->path);
	describe(s, o, ea, flags, out);
	return 0;
}

static bool same_inode(const struct hs_mapping *m, const struct stat *st)
{
	unsigned maj, min;
	return m->inode && m->inode == (uint64_t)st->st_ino && sscanf(m->dev, "%x:%x", &maj, &min) == 2 &&
	       maj == major(st->st_dev) && min == minor(st->st_dev);
}

static const char *base_name(const char *p)
{
	const char *b = strrchr(p, '/');
	return b ? b + 1 : p;
}

/* The process's mapping at the object's load base + off: the object is
 * found by its path as mapped, then by the inode the path names (a
 * relative path from the process's cwd, or "..", or a symlink, as ld.so
 * may write l_name), then as the executable (dladdr names it by argv[0]).
 * Among the object's mappings at file offset 0, the load base is the one
 * whose object holds base + off in an executable mapping. */
static const struct hs_mapping *mapped_at(struct hs_symbols *s, const char *object, uint64_t off, uint64_t *addr)
{
	struct stat st;
	bool have_st = false;
	char p[PATH_MAX + 64];
	if (object[0] == '/')
		snprintf(p, sizeof(p), "/proc/%d/root%s", (int)s->pid, object);
	else
		snprintf(p, sizeof(p), "/proc/%d/cwd/%s", (int)s->pid, object);
	have_st = stat(p, &st) == 0 || (object[0] == '/' && stat(object, &st) == 0);
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < s->maps.n; i++) {
			const struct hs_mapping *b = &s->maps.v[i];
			bool match = pass == 0   ? !strcmp(b->path, object)
				     : pass == 1 ? have_st && same_inode(b, &st)
						 : object[0] != '/' && s->exe[0] && !strcmp(b->path, s->exe) &&
							   !strcmp(base_name(object), base_name(s->exe));
			if (!match || b->offset != 0 || b->path[0] != '/')
				continue;
			uint64_t a = b->start + off;
			const struct hs_mapping *m = hs_maps_find(&s->maps, a);
			if (m && m->perms[2] == 'x' && !strcmp(m->path, b->path) && m->inode == b->inode) {
				*addr = a;
				return m;
			}
		}
	}
	return NULL;
}

int hs_symbols_object(struct hs_symbols *s, const char *object, uint64_t off, unsigned flags,
		      struct hs_symbol *out, struct hs_err *err)
{
	memset(out, 0, sizeof(*out));
	if (s->pid > 0) {
		uint64_t addr;
		const struct hs_mapping *m = mapped_at(s, object, off, &addr);
		if (m)
			return hs_symbols_address(s, addr, flags, out, err);
	}
	struct sym_object *o = object_for_path(s, object);
	if (!o)
		return hs_err_set(err, ENOMEM, "out of memory");
	out->object = o->map_path;
	if (o->error)
		return hs_err_set(err, -o->error, "cannot read %s: %s", object, strerror(-o->error));
	describe(s, o, off + o->fbase_vaddr, flags, out);
	return 0;
}
