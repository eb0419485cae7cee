#include <elf.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "debuginfo.h"
#include "elfobj.h"
#include "got.h"
#include "libc.h"
#include "mem.h"
#include "proc.h"

/* ---- small ELF helpers ------------------------------------------------- */

struct elf_file {
	int fd;
	Elf *elf;
	size_t shstrndx;
};

static int elf_file_open(const char *path, struct elf_file *f)
{
	memset(f, 0, sizeof(*f));
	f->fd = hs_proc_open_file(path);
	if (f->fd < 0) {
		int e = -f->fd;
		f->fd = -1;
		errno = e;
		return -e;
	}
	f->elf = hs_elf_begin(f->fd, NULL);
	if (!f->elf || elf_getshdrstrndx(f->elf, &f->shstrndx) != 0) {
		if (f->elf)
			elf_end(f->elf);
		close(f->fd);
		f->fd = -1;
		return -ENOEXEC;
	}
	return 0;
}

static void elf_file_close(struct elf_file *f)
{
	hs_elf_close(&f->elf, &f->fd);
}

static Elf_Scn *section(struct elf_file *f, const char *name, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(f->elf, scn))) {
		if (!gelf_getshdr(scn, sh))
			continue;
		const char *n = elf_strptr(f->elf, f->shstrndx, sh->sh_name);
		if (n && !strcmp(n, name))
			return scn;
	}
	return NULL;
}

static Elf_Data *section_data(struct elf_file *f, const char *name, GElf_Shdr *sh)
{
	Elf_Scn *scn = section(f, name, sh);
	if (!scn || sh->sh_type == SHT_NOBITS)
		return NULL;
	return elf_getdata(scn, NULL);
}

/* Look a symbol up in .symtab (and .dynsym); value is st_value. */
static int lookup(struct elf_file *f, const char *want, GElf_Sym *out)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	while ((scn = elf_nextscn(f->elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
		    !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t n = d ? d->d_size / sh.sh_entsize : 0;
		for (size_t i = 0; i < n; i++) {
			GElf_Sym sym;
			if (!gelf_getsym(d, (int)i, &sym) || !sym.st_name)
				continue;
			const char *name = elf_strptr(f->elf, sh.sh_link, sym.st_name);
			if (name && !strcmp(name, want) && sym.st_shndx != SHN_UNDEF) {
				*out = sym;
				return 0;
			}
		}
	}
	return -ENOENT;
}

static void set_version(struct hs_libc *lc, int maj, int min)
{
	lc->major = maj;
	lc->minor = min;
	snprintf(lc->version, sizeof(lc->version), "%d.%d", maj, min);
}

/* "2.36" exactly, as a whole string: NUL before (or the start) and after. */
static bool bare_version(const char *buf, size_t size, size_t at, int *min)
{
	int maj, n = 0;
	if (at && buf[at - 1])
		return false;
	size_t len = strnlen(buf + at, size - at);
	if (len < 4 || len > 5 || at + len == size)
		return false;
	char tmp[8];
	memcpy(tmp, buf + at, len);
	tmp[len] = '\0';
	return sscanf(tmp, "%d.%d%n", &maj, min, &n) == 2 && maj == 2 && (size_t)n == len && *min >= 17 &&
	       *min < 100;
}

/* The version from the file's own strings, most trusted first:
 * "GNU C Library (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36."
 * (libc.so's banner; a static binary links it only with
 * gnu_get_libc_version), "glibc 2.36" (confstr's _CS_GNU_LIBC_VERSION), then
 * in a static binary with a .symtab the string __nptl_version or
 * __libc_version names (nptl's, linked with pthread_create). */
static void find_version(struct elf_file *f, struct hs_libc *lc)
{
	GElf_Shdr sh;
	Elf_Data *d = section_data(f, ".rodata", &sh);
	if (!d)
		return;
	static const char key[] = "release version ";
	const char *p = memmem(d->d_buf, d->d_size, key, sizeof(key) - 1);
	int maj, min;
	if (p && sscanf(p + sizeof(key) - 1, "%d.%d", &maj, &min) == 2) {
		set_version(lc, maj, min);
		return;
	}
	static const char key2[] = "glibc 2.";
	const char *buf = d->d_buf;
	for (p = buf; (p = memmem(p, d->d_size - (size_t)(p - buf), key2, sizeof(key2) - 1)); p++)
		if ((p == buf || !p[-1]) && bare_version(buf, d->d_size, (size_t)(p - buf) + 6, &min)) {
			set_version(lc, 2, min);
			return;
		}
	static const char *const syms[] = { "__nptl_version", "__libc_version" };
	for (size_t k = 0; k < sizeof(syms) / sizeof(syms[0]); k++) {
		GElf_Sym s;
		if (lookup(f, syms[k], &s) == 0 && GELF_ST_TYPE(s.st_info) == STT_OBJECT &&
		    s.st_value >= sh.sh_addr && s.st_value < sh.sh_addr + d->d_size &&
		    bare_version(buf, d->d_size, s.st_value - sh.sh_addr, &min)) {
			set_version(lc, 2, min);
			return;
		}
	}
}

/* No version banner (a static binary rarely links it in): recognise glibc
 * by its malloc's messages and pick the layout whose main_arena and mp_
 * signatures the file holds, newest first.  Within the rows that share
 * those structs, safe-linking's message tells 2.32+ apart.  Rows with the
 * same structs (2.35-2.41 and 2.42) are told apart by a bare "2.NN" string
 * in .rodata (nptl's version, which a stripped binary keeps) that only one
 * of the matching rows covers. */
static uint64_t scan_main_arena(struct elf_file *f, const struct hs_layout *l);
static uint64_t scan_mp(struct elf_file *f, const struct hs_layout *l);

static bool rodata_has(struct elf_file *f, const char *needle)
{
	GElf_Shdr sh;
	Elf_Data *d = section_data(f, ".rodata", &sh);
	return d && memmem(d->d_buf, d->d_size, needle, strlen(needle));
}

/* The one minor version in [lo, hi] that .rodata holds as a bare "2.NN"
 * string; 0 when none or several. */
static int rodata_version_in(struct elf_file *f, int lo, int hi)
{
	GElf_Shdr sh;
	Elf_Data *d = section_data(f, ".rodata", &sh);
	if (!d)
		return 0;
	const char *buf = d->d_buf;
	int found = 0, min;
	for (const char *p = buf; (p = memmem(p, d->d_size - (size_t)(p - buf), "2.", 2)); p++) {
		if (!bare_version(buf, d->d_size, (size_t)(p - buf), &min) || min < lo || min > hi)
			continue;
		if (found && found != min)
			return 0;
		found = min;
	}
	return found;
}

static const struct hs_layout *layout_by_structure(struct elf_file *f, struct hs_libc *lc)
{
	if (!rodata_has(f, "malloc(): corrupted top size") && !rodata_has(f, "malloc assertion failure"))
		return NULL;
	bool safe = rodata_has(f, "unaligned tcache chunk detected");
	unsigned n;
	const struct hs_layout *t = hs_layout_table(&n), *first = NULL;
	for (unsigned i = n; i-- > 0;) {
		if (t[i].safe_linking != safe && !(t[i].min_minor >= 35))
			continue;
		if (scan_mp(f, &t[i]) && scan_main_arena(f, &t[i])) {
			int min = rodata_version_in(f, t[i].min_minor, t[i].max_minor);
			if (min) {
				set_version(lc, 2, min);
				return &t[i];
			}
			if (!first)
				first = &t[i];
		}
	}
	if (first) {
		lc->major = 2;
		lc->minor = first->max_minor;
		snprintf(lc->version, sizeof(lc->version), "%s?", first->name);
	}
	return first;
}

/* ---- locating the library ------------------------------------------------ */

/* A malloc replacement that is mapped is not yet one the process uses: a
 * library dlopen()ed (RTLD_LOCAL, or after start) is not in the global
 * scope that binds the program's malloc.  Which malloc the program's calls
 * reach is in its GOT: the executable's malloc slot bound to libc's malloc
 * means glibc's malloc; else, with the executable's slot not bound (lazy)
 * or absent, every other object's bound slot must be libc's.  A slot bound
 * into a replacement (LD_PRELOAD, a DT_NEEDED library ahead of libc), or no
 * bound slot at all, leaves the process to the replacement. */
static bool in_foreign(const struct hs_maps *maps, uint64_t addr, const char *path)
{
	const struct hs_mapping *m = hs_maps_find(maps, addr);
	return m && !strcmp(m->path, path);
}

static bool malloc_binds_to_libc(pid_t pid, const struct hs_maps *maps, const char *foreign)
{
	static const char *const names[] = { "malloc" };
	struct hs_got_opts opts = { .names = names, .nnames = 1, .skip_unusable = true };
	struct hs_got got;
	struct hs_mem *mem = NULL;
	bool libc = false;
	if (hs_mem_open_pid(pid, &mem, NULL) < 0)
		return false;
	if (hs_got_find(pid, maps, mem, &opts, &got, NULL) < 0) {
		hs_mem_close(mem);
		return false;
	}
	char exe[64], target[PATH_MAX];
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(exe, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	if (hs_got_read(mem, &got, NULL) == 0) {
		int exe_libc = 0, exe_other = 0, libc_slots = 0, other = 0;
		for (size_t i = 0; i < got.n; i++) {
			const struct hs_got_slot *sl = &got.v[i];
			const char *path = got.obj[sl->object].path;
			bool is_exe = !strcmp(path, target);
			if (!strcmp(path, foreign))
				continue;   /* the replacement's own calls */
			if (sl->state == HS_GOT_LIBC) {
				libc_slots++;
				exe_libc += is_exe;
			} else if (sl->state == HS_GOT_OTHER) {
				other++;
				exe_other += is_exe && in_foreign(maps, sl->value, foreign);
			}
		}
		libc = exe_libc ? !exe_other : (!exe_other && libc_slots && !other);
	}
	hs_got_release(&got);
	hs_mem_close(mem);
	return libc;
}

static int foreign_allocator(pid_t pid, const struct hs_maps *maps, struct hs_err *err)
{
	static const struct { const char *needle, *what; } known[] = {
		{ "ld-musl-", "musl libc" },
		{ "libc.musl-", "musl libc" },
		{ "libjemalloc", "jemalloc" },
		{ "libtcmalloc", "tcmalloc" },
		{ "libmimalloc", "mimalloc" },
		{ "libhoard", "Hoard" },
		{ "libasan", "AddressSanitizer's allocator" },
		{ "vgpreload_memcheck", "valgrind's allocator" },
	};
	const char *checked = NULL;
	for (size_t i = 0; i < maps->n; i++) {
		const char *b = hs_path_basename(maps->v[i].path);
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
			bool musl = k < 2;
			if (!(!strncmp(b, known[k].needle, strlen(known[k].needle)) ||
			      (k == 0 && strstr(maps->v[i].path, "-linux-musl/"))))   /* Debian's musl libc.so */
				continue;
			if (!musl && checked && !strcmp(checked, maps->v[i].path))
				break;      /* the same file's next mapping: already found unbound */
			if (!musl && malloc_binds_to_libc(pid, maps, maps->v[i].path)) {
				checked = maps->v[i].path;
				break;
			}
			return hs_err_set(err, ENOTSUP,
					  "this process uses %s (%s), not glibc's malloc: heapscope reads "
					  "only glibc's ptmalloc", known[k].what, maps->v[i].path);
		}
	}
	return 0;
}

/* Open the file behind a mapping as the target sees it: through
 * map_files (deleted or replaced files, containers), else by its path in
 * the target's root (never the host's: a container's absolute symlinks
 * must not reach the host's files). */
static int open_mapped(pid_t pid, const struct hs_mapping *m, struct elf_file *f, char *used, size_t usedsz)
{
	snprintf(used, usedsz, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, m->start, m->end);
	if (elf_file_open(used, f) == 0)
		return 0;
	snprintf(used, usedsz, "/proc/%d/root%s", (int)pid, m->path);
	return elf_file_open(used, f);
}

static uint64_t load_bias(struct elf_file *f, const struct hs_mapping *first)
{
	size_t n;
	if (elf_getphdrnum(f->elf, &n) != 0)
		return first->start;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(f->elf, (int)i, &ph) && ph.p_type == PT_LOAD)
			return first->start - (ph.p_vaddr & ~(ph.p_align ? ph.p_align - 1 : 0xfff));
	}
	return first->start;
}

/* ---- debug info ------------------------------------------------------------ */

/* The library's separate debug file (debuginfo.c), opened. */
static int find_debuginfo(pid_t pid, struct elf_file *lf, struct hs_libc *lc, unsigned debug, struct elf_file *df)
{
	GElf_Shdr sh;
	Elf_Data *d = section_data(lf, ".gnu_debuglink", &sh);
	char name[256] = "";
	if (d && d->d_size > 4)
		snprintf(name, sizeof(name), "%.*s", (int)strnlen(d->d_buf, d->d_size), (const char *)d->d_buf);
	struct hs_debuginfo_query q = {
		.pid = pid,
		.build_id = lc->build_id,
		.map_path = lc->map_path,
		.file = lc->file,
		.debuglink = name[0] ? name : NULL,
		.sources = debug,
	};
	if (hs_debuginfo_find(&q, lc->debuginfo, sizeof(lc->debuginfo), &lc->debuginfo_from) < 0)
		return -ENOENT;
	if (elf_file_open(lc->debuginfo, df) < 0) {
		lc->debuginfo[0] = '\0';
		lc->debuginfo_from = NULL;
		return -ENOENT;
	}
	return 0;
}

/* Struct member offsets from DWARF, as pahole reads them. */
struct member_map {
	const char *type, *member;
	size_t field;            /* offsetof(struct hs_layout, ...) */
};

#define L(f) offsetof(struct hs_layout, f)
static const struct member_map members[] = {
	{ "malloc_state", "mutex", L(ms_mutex) },
	{ "malloc_state", "flags", L(ms_flags) },
	{ "malloc_state", "have_fastchunks", L(ms_have_fastchunks) },
	{ "malloc_state", "fastbinsY", L(ms_fastbins) },
	{ "malloc_state", "top", L(ms_top) },
	{ "malloc_state", "last_remainder", L(ms_last_remainder) },
	{ "malloc_state", "bins", L(ms_bins) },
	{ "malloc_state", "binmap", L(ms_binmap) },
	{ "malloc_state", "next", L(ms_next) },
	{ "malloc_state", "next_free", L(ms_next_free) },
	{ "malloc_state", "attached_threads", L(ms_attached_threads) },
	{ "malloc_state", "system_mem", L(ms_system_mem) },
	{ "malloc_state", "max_system_mem", L(ms_max_system_mem) },
	{ "malloc_par", "trim_threshold", L(mp_trim_threshold) },
	{ "malloc_par", "top_pad", L(mp_top_pad) },
	{ "malloc_par", "mmap_threshold", L(mp_mmap_threshold) },
	{ "malloc_par", "arena_test", L(mp_arena_test) },
	{ "malloc_par", "arena_max", L(mp_arena_max) },
	{ "malloc_par", "thp_pagesize", L(mp_thp_pagesize) },
	{ "malloc_par", "hp_pagesize", L(mp_hp_pagesize) },
	{ "malloc_par", "n_mmaps", L(mp_n_mmaps) },
	{ "malloc_par", "n_mmaps_max", L(mp_n_mmaps_max) },
	{ "malloc_par", "max_n_mmaps", L(mp_max_n_mmaps) },
	{ "malloc_par", "no_dyn_threshold", L(mp_no_dyn_threshold) },
	{ "malloc_par", "mmapped_mem", L(mp_mmapped_mem) },
	{ "malloc_par", "max_mmapped_mem", L(mp_max_mmapped_mem) },
	{ "malloc_par", "sbrk_base", L(mp_sbrk_base) },
	{ "malloc_par", "tcache_bins", L(mp_tcache_bins) },
	{ "malloc_par", "tcache_small_bins", L(mp_tcache_bins) },    /* 2.42 */
	{ "malloc_par", "tcache_max_bytes", L(mp_tcache_max_bytes) },
	{ "malloc_par", "tcache_count", L(mp_tcache_count) },
	{ "malloc_par", "tcache_unsorted_limit", L(mp_tcache_unsorted_limit) },
	{ "_heap_info", "ar_ptr", L(hi_ar_ptr) },
	{ "_heap_info", "prev", L(hi_prev) },
	{ "_heap_info", "size", L(hi_size) },
	{ "_heap_info", "mprotect_size", L(hi_mprotect_size) },
	{ "tcache_perthread_struct", "counts", L(tc_counts) },
	{ "tcache_perthread_struct", "num_slots", L(tc_counts) },   /* 2.42 */
	{ "tcache_perthread_struct", "entries", L(tc_entries) },
};
static const struct { const char *type; size_t field; } sizes[] = {
	{ "malloc_state", L(ms_sizeof) },
	{ "malloc_par", L(mp_sizeof) },
	{ "_heap_info", L(hi_sizeof) },
	{ "tcache_perthread_struct", L(tc_sizeof) },
};
#undef L

#define FIELD(l, off) (*(int *)((char *)(l) + (off)))

static int read_struct(Dwarf_Die *sdie, const char *type, struct hs_layout *l)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (!strcmp(sizes[i].type, type)) {
			int bs = dwarf_bytesize(sdie);
			if (bs <= 0)
				return -ENOENT;
			FIELD(l, sizes[i].field) = bs;
		}
	/* Fields this version lacks stay absent. */
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (!strcmp(members[i].type, type))
			FIELD(l, members[i].field) = HS_NO_FIELD;
	Dwarf_Die m;
	if (dwarf_child(sdie, &m) != 0)
		return -ENOENT;
	do {
		if (dwarf_tag(&m) != DW_TAG_member)
			continue;
		const char *name = dwarf_diename(&m);
		Dwarf_Attribute a;
		Dwarf_Word off;
		if (!name || !dwarf_attr_integrate(&m, DW_AT_data_member_location, &a) || dwarf_formudata(&a, &off))
			continue;
		for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
			if (!strcmp(members[i].type, type) && !strcmp(members[i].member, name))
				FIELD(l, members[i].field) = (int)off;
	} while (dwarf_siblingof(&m, &m) == 0);
	return 0;
}

/* malloc.c's compilation unit holds all four structs (arena.c is included). */
static int layout_from_dwarf(const char *path, struct hs_layout *l)
{
	int fd = hs_proc_open_file(path);
	if (fd < 0)
		return fd;
	Elf *elf = hs_elf_begin(fd, NULL);
	Dwarf *dw = elf ? dwarf_begin_elf(elf, DWARF_C_READ, NULL) : NULL;
	if (!dw) {
		if (elf)
			elf_end(elf);
		close(fd);
		return -ENOENT;
	}
	int found = 0;
	Dwarf_Off off = 0, next;
	size_t hsize;
	while (found == 0 && dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		if (dwarf_offdie(dw, off + hsize, &cu)) {
			const char *name = dwarf_diename(&cu);
			size_t nl = name ? strlen(name) : 0;
			if (nl >= 8 && !strcmp(name + nl - 8, "malloc.c")) {
				Dwarf_Die d;
				if (dwarf_child(&cu, &d) == 0) {
					do {
						if (dwarf_tag(&d) != DW_TAG_structure_type || dwarf_hasattr(&d, DW_AT_declaration))
							continue;
						const char *sn = dwarf_diename(&d);
						if (!sn)
							continue;
						for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
							if (!strcmp(sn, sizes[i].type) && read_struct(&d, sn, l) == 0)
								found |= 1 << i;
					} while (dwarf_siblingof(&d, &d) == 0);
				}
			}
		}
		off = next;
	}
	dwarf_end(dw);
	elf_end(elf);
	close(fd);
	if (!(found & 7))   /* tcache is optional (< 2.26) */
		return -ENOENT;
	if (found & 8) {
		l->tc_bins = (l->tc_sizeof - l->tc_entries) / 8;
		l->tc_count_width = l->tc_bins ? l->tc_entries / l->tc_bins : 0;
	} else {
		l->tc_bins = 0;
	}
	l->nfastbins = l->ms_fastbins == HS_NO_FIELD ? 0 : 10;
	return 0;
}

/* Decompressing libc's .debug_info costs ~50 ms, more than the rest of a
 * run; the offsets read from it are kept per build-id under
 * $XDG_CACHE_HOME/heapscope (or ~/.cache/heapscope), as debuginfod keeps
 * its files.  A cache that cannot be read or written is simply skipped. */
#define LAYOUT_CACHE_MAGIC "heapscope-layout-4\n"

/* The cache directory, opened without following a symlink, owned by us and
 * writable by nobody else; -1 when there is none fit to use. */
static int cache_dir(bool create)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char base[PATH_MAX];
	if (xdg && xdg[0] == '/')
		snprintf(base, sizeof(base), "%s", xdg);
	else if (home && home[0] == '/')
		snprintf(base, sizeof(base), "%s/.cache", home);
	else
		return -1;
	if (create)
		mkdir(base, 0700);
	int bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return -1;
	if (create)
		mkdirat(bfd, "heapscope", 0700);
	int fd = openat(bfd, "heapscope", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(bfd);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int layout_cache_load(const char *build_id, struct hs_layout *l)
{
	char name[128];
	if (!build_id[0])
		return -ENOENT;
	int dfd = cache_dir(false);
	if (dfd < 0)
		return -ENOENT;
	snprintf(name, sizeof(name), "%s.layout", build_id);
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(dfd);
	if (fd < 0)
		return -errno;
	char buf[sizeof(LAYOUT_CACHE_MAGIC) + sizeof(*l) + 1];
	struct stat st;
	ssize_t n = fstat(fd, &st) == 0 && st.st_uid == geteuid() ? read(fd, buf, sizeof(buf)) : -1;
	close(fd);
	/* Exactly magic + struct: a file of another build's struct is refused. */
	if (n != (ssize_t)(sizeof(buf) - 1) || memcmp(buf, LAYOUT_CACHE_MAGIC, sizeof(LAYOUT_CACHE_MAGIC)))
		return -EINVAL;
	/* Only the offsets DWARF gives are taken from the file; the rest of
	 * the row (names, formats, flags) stays the table's. */
	struct hs_layout c, m = *l;
	memcpy(&c, buf + sizeof(LAYOUT_CACHE_MAGIC), sizeof(c));
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		FIELD(&m, members[i].field) = FIELD(&c, members[i].field);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		FIELD(&m, sizes[i].field) = FIELD(&c, sizes[i].field);
	m.tc_bins = c.tc_bins;
	m.tc_count_width = c.tc_count_width;
	m.nfastbins = c.nfastbins;
	if (!hs_layout_check(&m))
		return -EINVAL;
	*l = m;
	return 0;
}

static void layout_cache_store(const char *build_id, const struct hs_layout *l)
{
	char name[128], tmp[160];
	if (!build_id[0])
		return;
	int dfd = cache_dir(true);
	if (dfd < 0)
		return;
	snprintf(name, sizeof(name), "%s.layout", build_id);
	snprintf(tmp, sizeof(tmp), "%s.%d", name, (int)getpid());
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		close(dfd);
		return;
	}
	struct hs_layout copy = *l;
	copy.name = NULL;
	char buf[sizeof(LAYOUT_CACHE_MAGIC) + sizeof(copy)];
	memcpy(buf, LAYOUT_CACHE_MAGIC, sizeof(LAYOUT_CACHE_MAGIC));
	memcpy(buf + sizeof(LAYOUT_CACHE_MAGIC), &copy, sizeof(copy));
	bool ok = write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf);
	ok = close(fd) == 0 && ok;
	if (!ok || renameat(dfd, tmp, dfd, name) < 0)
		unlinkat(dfd, tmp, 0);
	close(dfd);
}

/* ---- no symbols: the file image ------------------------------------------ */

/* main_arena is the only malloc_state in .data whose image is all zero but
 * for next == &main_arena and attached_threads == 1 (GLIBC.md 3.2). */
static uint64_t scan_main_arena(struct elf_file *f, const struct hs_layout *l)
{
	GElf_Shdr sh;
	Elf_Data *d = section_data(f, ".data", &sh);
	if (!d || d->d_size < (size_t)l->ms_sizeof)
		return 0;
	const unsigned char *b = d->d_buf;
	for (size_t i = 0; i + l->ms_sizeof <= d->d_size; i += 8) {
		uint64_t next;
		memcpy(&next, b + i + l->ms_next, 8);
		if (next != sh.sh_addr + i)
			continue;
		bool ok = true;
		for (int k = 0; k < l->ms_next && ok; k += 8) {
			uint64_t w;
			memcpy(&w, b + i + k, 8);
			ok = w == 0;
		}
		if (ok && l->ms_attached_threads != HS_NO_FIELD) {
			uint64_t at;
			memcpy(&at, b + i + l->ms_attached_threads, 8);
			ok = at == 1;
		}
		if (ok)
			return sh.sh_addr + i;
	}
	/* RELA without the addend in place: R_X86_64_RELATIVE whose addend is
	 * the slot's own struct. */
	Elf_Data *r = section_data(f, ".rela.dyn", &sh);
	size_t n = r && sh.sh_entsize ? r->d_size / sh.sh_entsize : 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Rela rel;
		if (gelf_getrela(r, (int)i, &rel) && GELF_R_TYPE(rel.r_info) == R_X86_64_RELATIVE &&
		    rel.r_offset - l->ms_next == (uint64_t)rel.r_addend)
			return (uint64_t)rel.r_addend;
	}
	return 0;
}

/* mp_ holds its default initializer in the file (live values move). */
static uint64_t scan_mp(struct elf_file *f, const struct hs_layout *l)
{
	GElf_Shdr sh;
	Elf_Data *d = section_data(f, ".data", &sh);
	if (!d)
		return 0;
	unsigned char img[256] = { 0 };
	if (l->mp_sizeof > (int)sizeof(img))
		return 0;
#define SET64(off, v) do { uint64_t x_ = (v); if ((off) != HS_NO_FIELD) memcpy(img + (off), &x_, 8); } while (0)
	SET64(l->mp_trim_threshold, 128 * 1024);
	SET64(l->mp_top_pad, 128 * 1024);        /* malloc-machine.h's DEFAULT_TOP_PAD */
	SET64(l->mp_mmap_threshold, 128 * 1024);
	SET64(l->mp_arena_test, 8);               /* NARENAS_FROM_NCORES (1) */
	int32_t nmax = 65536;
	if (l->mp_n_mmaps_max != HS_NO_FIELD)
		memcpy(img + l->mp_n_mmaps_max, &nmax, 4);
	if (l->mp_tcache_bins != HS_NO_FIELD) {
		SET64(l->mp_tcache_bins, 64);
		SET64(l->mp_tcache_max_bytes, l->mp_default_tcache_max ? (uint64_t)l->mp_default_tcache_max : 1032);
		SET64(l->mp_tcache_count, (uint64_t)l->mp_default_tcache_count);
	}
#undef SET64
	const unsigned char *b = d->d_buf;
	uint64_t found = 0;
	for (size_t i = 0; i + l->mp_sizeof <= d->d_size; i += 8)
		if (!memcmp(b + i, img, l->mp_sizeof)) {
			if (found)
				return 0;       /* not unique: refuse to guess */
			found = sh.sh_addr + i;
		}
	return found;
}

static void read_tpoff(struct elf_file *f, struct hs_libc *lc)
{
	GElf_Shdr sh;
	Elf_Data *r = section_data(f, ".rela.dyn", &sh);
	size_t n = r && sh.sh_entsize ? r->d_size / sh.sh_entsize : 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Rela rel;
		if (!gelf_getrela(r, (int)i, &rel) || GELF_R_TYPE(rel.r_info) != R_X86_64_TPOFF64 ||
		    GELF_R_SYM(rel.r_info) != 0)
			continue;
		struct hs_tpoff *nt = realloc(lc->tpoff, (lc->ntpoff + 1) * sizeof(*nt));
		if (!nt)
			return;
		lc->tpoff = nt;
		lc->tpoff[lc->ntpoff++] = (struct hs_tpoff){ lc->base + rel.r_offset, rel.r_addend };
	}
}

/* Static binaries use the local-exec model: a TLS symbol's TP offset is its
 * value minus the TLS segment's size rounded up to its alignment. */
static void static_tls(struct elf_file *f, struct hs_libc *lc)
{
	size_t n;
	if (elf_getphdrnum(f->elf, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(f->elf, (int)i, &ph) && ph.p_type == PT_TLS) {
			uint64_t a = ph.p_align ? ph.p_align : 1;
			lc->static_tls_tpoff = -(int64_t)((ph.p_memsz + a - 1) / a * a);
		}
	}
}

static void symbols_from(struct elf_file *f, struct hs_libc *lc)
{
	GElf_Sym s;
	if (!lc->main_arena && lookup(f, "main_arena", &s) == 0)
		lc->main_arena = lc->base + s.st_value;
	if (!lc->mp && lookup(f, "mp_", &s) == 0)
		lc->mp = lc->base + s.st_value;
	if (!lc->global_max_fast && lookup(f, "global_max_fast", &s) == 0)
		lc->global_max_fast = lc->base + s.st_value;
	if (lc->tls_tcache < 0 && lookup(f, "tcache", &s) == 0 && GELF_ST_TYPE(s.st_info) == STT_TLS)
		lc->tls_tcache = (int64_t)s.st_value;
	if (lc->tls_thread_arena < 0 && lookup(f, "thread_arena", &s) == 0 && GELF_ST_TYPE(s.st_info) == STT_TLS)
		lc->tls_thread_arena = (int64_t)s.st_value;
}

int hs_libc_find(pid_t pid, const struct hs_maps *maps, unsigned debug, struct hs_libc *lc, struct hs_err *err)
{
	memset(lc, 0, sizeof(*lc));
	bool use_debuginfo = debug & HS_DEBUG_LOCAL;
	lc->use_debuginfod = (debug & HS_DEBUG_DEBUGINFOD) != 0;
	lc->tls_tcache = lc->tls_thread_arena = -1;
	int r = foreign_allocator(pid, maps, err);
	if (r < 0)
		return r;

	const struct hs_mapping *first = NULL;
	for (size_t i = 0; i < maps->n && !first; i++)
		if (hs_path_is_libc(maps->v[i].path) && maps->v[i].offset == 0)
			first = &maps->v[i];
	struct elf_file f;
	if (!first) {
		/* No libc.so: a static binary, whose executable holds malloc. */
		char exe[64], target[PATH_MAX];
		snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
		ssize_t n = readlink(exe, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		static const char deleted[] = " (deleted)";
		if (n > (ssize_t)sizeof(deleted) && !strcmp(target + n - (sizeof(deleted) - 1), deleted))
			target[n - (sizeof(deleted) - 1)] = '\0';
		for (size_t i = 0; i < maps->n && !first; i++)
			if (maps->v[i].offset == 0 && !strcmp(maps->v[i].path, target))
				first = &maps->v[i];
		if (!first)
			return hs_err_set(err, ENOENT, "pid %d maps no C library and no executable", (int)pid);
		if (open_mapped(pid, first, &f, lc->file, sizeof(lc->file)) < 0)
			return hs_err_sys(err, errno ? errno : ENOENT, "cannot open %s", first->path);
		find_version(&f, lc);
		if (!lc->major && !layout_by_structure(&f, lc)) {
			elf_file_close(&f);
			return hs_err_set(err, ENOTSUP,
					  "pid %d maps no glibc (no libc.so, and %s holds no glibc): it does not use "
					  "glibc's malloc", (int)pid, target);
		}
		lc->is_static = true;
		static_tls(&f, lc);
	} else if (open_mapped(pid, first, &f, lc->file, sizeof(lc->file)) < 0) {
		return hs_err_sys(err, errno ? errno : ENOENT, "cannot open the C library %s", first->path);
	}
	snprintf(lc->map_path, sizeof(lc->map_path), "%s", first->path);
	lc->base = load_bias(&f, first);
	if (!lc->major)
		find_version(&f, lc);
	hs_elf_build_id(f.elf, lc->build_id, sizeof(lc->build_id));

	const struct hs_layout *row = hs_layout_for_version(lc->major, lc->minor);
	if (!row && !lc->major)
		row = layout_by_structure(&f, lc);
	if (row) {
		lc->layout = *row;
		lc->have_layout = true;
		lc->layout_from = "table";
	}

	if (use_debuginfo) {
		struct elf_file df;
		if (find_debuginfo(pid, &f, lc, debug, &df) == 0) {
			symbols_from(&df, lc);
			struct hs_layout dl = lc->layout;
			dl.name = "dwarf";
			if (layout_cache_load(lc->build_id, &dl) == 0) {
				lc->layout = dl;
				lc->have_layout = true;
				lc->layout_from = "dwarf (cached)";
			} else if (layout_from_dwarf(lc->debuginfo, &dl) == 0 && hs_layout_check(&dl)) {
				dl.name = "dwarf";
				lc->layout = dl;
				lc->have_layout = true;
				lc->layout_from = "dwarf";
				layout_cache_store(lc->build_id, &dl);
			}
			elf_file_close(&df);
			if (lc->main_arena)
				lc->symbols_from = "debuginfo";
		}
		/* An unstripped libc or static binary carries its own .symtab. */
		if (!lc->main_arena) {
			symbols_from(&f, lc);
			if (lc->main_arena)
				lc->symbols_from = "symtab";
		}
	}
	if (!lc->have_layout) {
		elf_file_close(&f);
		return hs_err_set(err, ENOTSUP, "glibc %s is not supported yet (no layout table, no debug info)",
				  lc->version[0] ? lc->version : "of unknown version");
	}
	if (!lc->main_arena) {
		uint64_t a = scan_main_arena(&f, &lc->layout);
		lc->main_arena = a ? lc->base + a : 0;
		lc->symbols_from = "signature";
	}
	if (!lc->mp) {
		uint64_t a = scan_mp(&f, &lc->layout);
		lc->mp = a ? lc->base + a : 0;
	}
	if (!lc->is_static)
		read_tpoff(&f, lc);
	elf_file_close(&f);
	if (!lc->main_arena)
		return hs_err_set(err, ENOENT, "cannot locate main_arena in %s (glibc %s)", lc->map_path,
				  lc->version);
	if (!lc->mp)
		return hs_err_set(err, ENOENT, "cannot locate mp_ in %s (glibc %s)", lc->map_path, lc->version);
	return 0;
}

void hs_libc_release(struct hs_libc *lc)
{
	free(lc->tpoff);
	lc->tpoff = NULL;
	lc->ntpoff = 0;
}

/* The runtime address of a defined symbol of the given type. */
static int lookup_typed(const struct hs_libc *lc, const char *name, int type, uint64_t *addr)
{
	struct elf_file f;
	if (elf_file_open(lc->file, &f) < 0)
		return -ENOENT;
	GElf_Sym sym;
	int r = lookup(&f, name, &sym);
	if (r == 0 && GELF_ST_TYPE(sym.st_info) == type)
		*addr = lc->base + sym.st_value;
	else if (r == 0)
		r = -ENOENT;
	elf_file_close(&f);
	return r;
}

int hs_libc_lookup(const struct hs_libc *lc, const char *name, uint64_t *addr)
{
	return lookup_typed(lc, name, STT_FUNC, addr);
}

int hs_libc_lookup_many(const struct hs_libc *lc, const char *const *names, size_t n, uint64_t *addrs)
{
	struct elf_file f;
	if (elf_file_open(lc->file, &f) < 0)
		return -ENOENT;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		addrs[i] = lookup(&f, names[i], &sym) == 0 && GELF_ST_TYPE(sym.st_info) == STT_FUNC ? lc->base + sym.st_value
												    : 0;
	}
	elf_file_close(&f);
	return 0;
}

int hs_libc_lookup_object(const struct hs_libc *lc, const char *name, uint64_t *addr)
{
	return lookup_typed(lc, name, STT_OBJECT, addr);
}

int hs_libc_lookup_object_size(const struct hs_libc *lc, const char *name, uint64_t *addr, uint64_t *size)
{
	struct elf_file f;
	if (elf_file_open(lc->file, &f) < 0)
		return -ENOENT;
	GElf_Sym sym;
	int r = lookup(&f, name, &sym);
	if (r == 0 && GELF_ST_TYPE(sym.st_info) == STT_OBJECT) {
		*addr = lc->base + sym.st_value;
		*size = sym.st_size;
	} else if (r == 0) {
		r = -ENOENT;
	}
	elf_file_close(&f);
	return r;
}

int hs_libc_malloc_code(const struct hs_libc *lc, uint64_t *lo, uint64_t *hi)
{
	/* malloc.c is one compilation unit: its static helpers (_int_malloc,
	 * _int_free, sysmalloc, malloc_consolidate...) sit next to its
	 * exported functions, not in the dynamic symbol table.  The span is
	 * taken from the end of the last other exported function before them
	 * to the start of the first one after: wider than malloc.c perhaps,
	 * which only makes the safety check more careful. */
	static const char *const names[] = {
		"malloc", "free", "calloc", "realloc", "memalign", "aligned_alloc", "posix_memalign", "valloc",
		"pvalloc", "malloc_trim", "malloc_usable_size", "mallinfo", "mallinfo2", "malloc_stats",
		"malloc_info", "mallopt", "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc",
		"__libc_memalign", "__libc_valloc", "__libc_pvalloc", "__libc_mallinfo", "__libc_mallopt",
		"__malloc_trim", "__malloc_info", "cfree", "__default_morecore",
	};
	struct elf_file f;
	if (elf_file_open(lc->file, &f) < 0)
		return -ENOENT;
	uint64_t glo = UINT64_MAX, ghi = 0, prev_end = 0, next_start = UINT64_MAX;
	for (int pass = 0; pass < 2; pass++) {
		Elf_Scn *scn = NULL;
		GElf_Shdr sh;
		while ((scn = elf_nextscn(f.elf, scn))) {
			if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
				continue;
			Elf_Data *d = elf_getdata(scn, NULL);
			size_t n = d ? d->d_size / sh.sh_entsize : 0;
			for (size_t i = 0; i < n; i++) {
				GElf_Sym sym;
				if (!gelf_getsym(d, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value)
					continue;
				const char *name = elf_strptr(f.elf, sh.sh_link, sym.st_name);
				bool ours = false;
				for (size_t k = 0; name && k < sizeof(names) / sizeof(names[0]) && !ours; k++)
					ours = !strcmp(name, names[k]);
				uint64_t a = sym.st_value, e = a + sym.st_size;
				if (pass == 0 && ours) {
					glo = a < glo ? a : glo;
					ghi = e > ghi ? e : ghi;
				} else if (pass == 1 && !ours) {
					if (e <= glo && e > prev_end)
						prev_end = e;
					if (a >= ghi && a < next_start)
						next_start = a;
				}
			}
		}
		if (!ghi)
			break;
	}
	elf_file_close(&f);
	if (!ghi)
		return -ENOENT;
	*lo = lc->base + (prev_end ? prev_end : glo);
	*hi = lc->base + (next_start != UINT64_MAX ? next_start : ghi);
	return 0;
}

/* Patterns for find_code: a byte string, or for the store a
 * `mov %rax,(%rbx)` followed by pops (not of rsp) and a ret. */
static int match_store(const unsigned char *p, size_t left, size_t *len)
{
	if (left < 4 || p[0] != 0x48 || p[1] != 0x89 || p[2] != 0x03)
		return -1;
	int pops = 0;
	for (size_t i = 3; i < left && pops < 6;) {
		if (p[i] == 0xc3) {
			*len = i + 1;
			return pops;
		}
		if (p[i] >= 0x58 && p[i] <= 0x5f && p[i] != 0x5c)
			i++;
		else if (p[i] == 0x41 && i + 1 < left && p[i + 1] >= 0x58 && p[i + 1] <= 0x5f)
			i += 2;
		else
			return -1;
		pops++;
	}
	return -1;
}

/* The first place in an executable segment of f holding pat (n bytes), or
 * with pat NULL the store with the fewest pops (*pops); 0 if none.  Its
 * bytes go to code (16 at most), their number to *len. */
static uint64_t find_code(struct elf_file *f, const unsigned char *pat, size_t n, int *pops, unsigned char *code,
			  unsigned char *len)
{
	size_t nph, fsize;
	const unsigned char *img = (const unsigned char *)elf_rawfile(f->elf, &fsize);
	if (!img || elf_getphdrnum(f->elf, &nph) < 0)
		return 0;
	uint64_t best = 0;
	int best_pops = 99;
	unsigned char first = pat ? pat[0] : 0x48;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(f->elf, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) ||
		    ph.p_offset > fsize || ph.p_filesz > fsize - ph.p_offset || ph.p_filesz < n)
			continue;
		const unsigned char *seg = img + ph.p_offset, *p = seg, *end = seg + ph.p_filesz - n + 1;
		while (p < end && (p = memchr(p, first, (size_t)(end - p)))) {
			int k;
			size_t l;
			if (pat && !memcmp(p, pat, n)) {
				memcpy(code, p, n);
				*len = (unsigned char)n;
				return ph.p_vaddr + (uint64_t)(p - seg);
			}
			if (!pat && (k = match_store(p, (size_t)(seg + ph.p_filesz - p), &l)) >= 0 && k < best_pops) {
				best = ph.p_vaddr + (uint64_t)(p - seg);
				best_pops = k;
				memcpy(code, p, l);
				*len = (unsigned char)l;
				if (k == 0)
					break;
			}
			p++;
		}
	}
	if (best)
		*pops = best_pops;
	return best;
}

int hs_libc_call_return(const struct hs_libc *lc, struct hs_call_return *cr)
{
	/* Byte patterns, not symbols: __restore_rt is a local symbol that
	 * stripped libcs do not name, and the others are any function's
	 * tail.  All are in every x86_64 glibc checked (2.31, 2.36, 2.41, a
	 * static 2.36 executable). */
	static const unsigned char sigret[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };
	static const unsigned char sysret[] = { 0x0f, 0x05, 0xc3 };
	struct elf_file f;
	if (elf_file_open(lc->file, &f) < 0)
		return -ENOENT;
	int pops = 0;
	uint64_t a = find_code(&f, NULL, 4, &pops, cr->code[0], &cr->len[0]),
		 b = find_code(&f, sigret, sizeof(sigret), NULL, cr->code[1], &cr->len[1]),
		 c = find_code(&f, sysret, sizeof(sysret), NULL, cr->code[2], &cr->len[2]);
	elf_file_close(&f);
	if (!a || !b || !c)
		return -ENOENT;
	cr->store = lc->base + a;
	cr->store_pops = pops;
	cr->sigreturn = lc->base + b;
	cr->syscall = lc->base + c;
	return 0;
}
