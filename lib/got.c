#include <elf.h>
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

#include "elfobj.h"
#include "got.h"
#include "proc.h"

/* Declaration order is the order they are routed in docs/INJECT.md. */
const char *const hs_got_malloc_names[] = {
	"malloc", "free", "calloc", "realloc", "memalign", "aligned_alloc", "posix_memalign", "valloc",
	"pvalloc", "malloc_usable_size", "free_sized", "free_aligned_sized",
};
const size_t hs_got_malloc_nnames = sizeof(hs_got_malloc_names) / sizeof(hs_got_malloc_names[0]);

#define PAGE 4096ULL
#define TRUNC(x) ((x) & ~(PAGE - 1))

/* ---- one object's file ------------------------------------------------
 *
 * The dynamic tables are read the way ld.so reads them: from PT_DYNAMIC,
 * through the PT_LOAD segments' file images, not from section headers
 * (which a stripped file may lack and ld.so never looks at).  The file is
 * ELFCLASS64, little-endian, x86_64 (checked), so its tables are read as
 * <elf.h>'s Elf64 structs, copied out with bounds checks. */

struct obj {
	int fd;
	Elf *elf;
	const unsigned char *raw;    /* the whole file (libelf's mapping) */
	size_t rawsz;
	GElf_Ehdr eh;
	size_t nph;
	uint64_t base;
	/* from PT_DYNAMIC; 0 when absent */
	uint64_t soname, symtab, strtab, strsz, rela, relasz, jmprel, pltrelsz, pltrel, versym, verneed, verneednum,
		verdef, verdefnum, hash, gnu_hash, flags, flags_1;
	bool has_dynamic, bind_now_tag;
};

static void obj_close(struct obj *o)
{
	hs_elf_close(&o->elf, &o->fd);
}

/* File offset of [vaddr, vaddr+len), inside one PT_LOAD's file image. */
static bool v2off(const struct obj *o, uint64_t vaddr, uint64_t len, uint64_t *off)
{
	for (size_t i = 0; i < o->nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(o->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr >= ph.p_vaddr && len <= ph.p_filesz && vaddr - ph.p_vaddr <= ph.p_filesz - len) {
			uint64_t f = ph.p_offset + (vaddr - ph.p_vaddr);
			if (f > o->rawsz || len > o->rawsz - f)
				return false;
			*off = f;
			return true;
		}
	}
	return false;
}

/* Copy len bytes at vaddr out of the file image. */
static bool rd(const struct obj *o, uint64_t vaddr, void *buf, size_t len)
{
	uint64_t off;
	if (!v2off(o, vaddr, len, &off))
		return false;
	memcpy(buf, o->raw + off, len);
	return true;
}

/* A NUL-terminated string of the dynamic string table, or NULL. */
static const char *dynstr(const struct obj *o, uint64_t idx)
{
	if (idx >= o->strsz)
		return NULL;
	uint64_t off;
	if (!v2off(o, o->strtab + idx, 1, &off))
		return NULL;
	size_t max = o->strsz - idx;
	if (max > o->rawsz - off)
		max = o->rawsz - off;
	const char *s = (const char *)o->raw + off;
	return memchr(s, '\0', max) ? s : NULL;
}

static bool get_sym(const struct obj *o, uint64_t idx, Elf64_Sym *sym)
{
	return o->symtab && idx < (UINT64_MAX - o->symtab) / sizeof(*sym) &&
	       rd(o, o->symtab + idx * sizeof(*sym), sym, sizeof(*sym));
}

/* The version index of symbol idx (with the hidden bit), 1 (global) when
 * the object has no version table. */
static unsigned get_versym(const struct obj *o, uint64_t idx)
{
	Elf64_Versym v;
	if (!o->versym || idx > (UINT64_MAX - o->versym) / 2 || !rd(o, o->versym + idx * 2, &v, 2))
		return VER_NDX_GLOBAL;
	return v;
}

/* The name of version index ndx, from the object's needed versions (a
 * reference) or its own definitions; "" for local/global or not found. */
static const char *version_name(const struct obj *o, unsigned ndx)
{
	ndx &= 0x7fff;
	if (ndx <= VER_NDX_GLOBAL)
		return "";
	uint64_t at = o->verneed;
	for (uint64_t i = 0; at && i < o->verneednum && i < 4096; i++) {
		Elf64_Verneed vn;
		if (!rd(o, at, &vn, sizeof(vn)))
			break;
		uint64_t aux = at + vn.vn_aux;
		for (unsigned k = 0; k < vn.vn_cnt && k < 4096; k++) {
			Elf64_Vernaux va;
			if (!rd(o, aux, &va, sizeof(va)))
				break;
			if (va.vna_other == ndx) {
				const char *s = dynstr(o, va.vna_name);
				return s ? s : "";
			}
			if (!va.vna_next)
				break;
			aux += va.vna_next;
		}
		if (!vn.vn_next)
			break;
		at += vn.vn_next;
	}
	at = o->verdef;
	for (uint64_t i = 0; at && i < o->verdefnum && i < 4096; i++) {
		Elf64_Verdef vd;
		if (!rd(o, at, &vd, sizeof(vd)))
			break;
		if (vd.vd_ndx == ndx && vd.vd_cnt > 0) {
			Elf64_Verdaux vda;
			const char *s = rd(o, at + vd.vd_aux, &vda, sizeof(vda)) ? dynstr(o, vda.vda_name) : NULL;
			return s ? s : "";
		}
		if (!vd.vd_next)
			break;
		at += vd.vd_next;
	}
	return "";
}

/* How many dynamic symbols: DT_HASH's nchain, else the highest index the
 * DT_GNU_HASH chains reach (the way readelf and elfutils count them). */
static uint64_t dynsym_count(const struct obj *o)
{
	uint32_t w[4];
	if (o->hash && rd(o, o->hash, w, 8))
		return w[1];
	if (!o->gnu_hash || !rd(o, o->gnu_hash, w, 16) || !w[0])
		return 0;
	uint32_t nbuckets = w[0], symoffset = w[1];
	uint64_t buckets = o->gnu_hash + 16 + (uint64_t)w[2] * 8, maxb = 0;
	for (uint32_t i = 0; i < nbuckets; i++) {
		uint32_t b;
		if (!rd(o, buckets + (uint64_t)i * 4, &b, 4))
			return 0;
		maxb = b > maxb ? b : maxb;
	}
	if (maxb < symoffset)
		return symoffset;
	uint64_t chain = buckets + (uint64_t)nbuckets * 4;
	for (uint64_t i = maxb; i < maxb + (1u << 24); i++) {
		uint32_t h;
		if (!rd(o, chain + (i - symoffset) * 4, &h, 4))
			return 0;
		if (h & 1)
			return i + 1;
	}
	return 0;
}

static int obj_load(struct obj *o, const char *path)
{
	memset(o, 0, sizeof(*o));
	o->fd = hs_proc_open_file(path);
	if (o->fd < 0) {
		int e = o->fd;
		o->fd = -1;
		return e;
	}
	o->elf = hs_elf_begin(o->fd, &o->eh);
	if (!o->elf || elf_getphdrnum(o->elf, &o->nph) != 0)
		return -ENOEXEC;
	o->raw = (const unsigned char *)elf_rawfile(o->elf, &o->rawsz);
	if (!o->raw)
		return -ENOEXEC;
	return 0;
}

/* Is it a 64-bit x86 program or library at all? (Anything else mapped at
 * offset 0 is data: locale-archive, a font, an ELF file mapped to be read.) */
static bool obj_is_x86_64(const struct obj *o)
{
	return o->eh.e_ident[EI_CLASS] == ELFCLASS64 && o->eh.e_ident[EI_DATA] == ELFDATA2LSB &&
	       o->eh.e_machine == EM_X86_64 && (o->eh.e_type == ET_EXEC || o->eh.e_type == ET_DYN);
}

static void obj_read_dynamic(struct obj *o)
{
	for (size_t i = 0; i < o->nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(o->elf, (int)i, &ph) || ph.p_type != PT_DYNAMIC)
			continue;
		if (ph.p_offset > o->rawsz || ph.p_filesz > o->rawsz - ph.p_offset)
			return;
		o->has_dynamic = true;
		for (uint64_t k = 0; k + sizeof(Elf64_Dyn) <= ph.p_filesz; k += sizeof(Elf64_Dyn)) {
			Elf64_Dyn d;
			memcpy(&d, o->raw + ph.p_offset + k, sizeof(d));
			if (d.d_tag == DT_NULL)
				break;
			uint64_t v = d.d_un.d_val;
			switch (d.d_tag) {
			case DT_SONAME: o->soname = v; break;
			case DT_SYMTAB: o->symtab = v; break;
			case DT_STRTAB: o->strtab = v; break;
			case DT_STRSZ: o->strsz = v; break;
			case DT_RELA: o->rela = v; break;
			case DT_RELASZ: o->relasz = v; break;
			case DT_JMPREL: o->jmprel = v; break;
			case DT_PLTRELSZ: o->pltrelsz = v; break;
			case DT_PLTREL: o->pltrel = v; break;
			case DT_VERSYM: o->versym = v; break;
			case DT_VERNEED: o->verneed = v; break;
			case DT_VERNEEDNUM: o->verneednum = v; break;
			case DT_VERDEF: o->verdef = v; break;
			case DT_VERDEFNUM: o->verdefnum = v; break;
			case DT_HASH: o->hash = v; break;
			case DT_GNU_HASH: o->gnu_hash = v; break;
			case DT_FLAGS: o->flags = v; break;
			case DT_FLAGS_1: o->flags_1 = v; break;
			case DT_BIND_NOW: o->bind_now_tag = true; break;
			}
		}
		return;
	}
}

/* ---- matching a file to its mapping ---------------------------------- */

static bool same_file(const struct hs_mapping *a, const struct hs_mapping *b)
{
	return a->inode == b->inode && !strcmp(a->dev, b->dev) && !strcmp(a->path, b->path);
}

/* ld.so maps every PT_LOAD at base + its page, from its file page, and the
 * one with PF_X executable.  A file mmap()ed to be read (an ELF file opened
 * as data, as a JVM or a debugger may) fails this. */
static bool loaded_by_ldso(const struct obj *o, const struct hs_maps *maps, const struct hs_mapping *first)
{
	int nload = 0;
	for (size_t i = 0; i < o->nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(o->elf, (int)i, &ph) || ph.p_type != PT_LOAD || !ph.p_filesz)
			continue;
		nload++;
		const struct hs_mapping *m = hs_maps_find(maps, o->base + TRUNC(ph.p_vaddr));
		if (!m || !same_file(m, first) || m->offset + (o->base + TRUNC(ph.p_vaddr) - m->start) != TRUNC(ph.p_offset))
			return false;
		if ((ph.p_flags & PF_X) && m->perms[2] != 'x')
			return false;
	}
	return nload > 0;
}

/* The GNU build-id note: its bytes in the file and where it sits at run time. */
static bool build_id(const struct obj *o, const unsigned char **id, size_t *len, uint64_t *vaddr)
{
	for (size_t i = 0; i < o->nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(o->elf, (int)i, &ph) || ph.p_type != PT_NOTE || ph.p_offset > o->rawsz ||
		    ph.p_filesz > o->rawsz - ph.p_offset)
			continue;
		size_t off, n;
		if (hs_elf_note_build_id(o->raw + ph.p_offset, ph.p_filesz, ph.p_align, &off, &n)) {
			*id = o->raw + ph.p_offset + off;
			*len = n;
			*vaddr = ph.p_vaddr + off;
			return true;
		}
	}
	return false;
}

/* ---- the search ------------------------------------------------------------ */

struct ctx {
	pid_t pid;
	const struct hs_maps *maps;
	struct hs_mem *mem;
	const struct hs_got_opts *opts;
	struct hs_got *got;
	size_t slotcap, objcap;
	struct hs_err *err;
};

static int name_index(const struct ctx *c, const char *name)
{
	for (size_t i = 0; i < c->opts->nnames; i++)
		if (!strcmp(c->opts->names[i], name))
			return (int)i;
	return -1;
}

static int add_object(struct ctx *c, const struct hs_mapping *m, struct hs_got_object **out)
{
	struct hs_got *g = c->got;
	if (g->nobj == c->objcap) {
		size_t ncap = c->objcap ? c->objcap * 2 : 32;
		struct hs_got_object *v = realloc(g->obj, ncap * sizeof(*v));
		if (!v)
			return hs_err_set(c->err, ENOMEM, "out of memory");
		g->obj = v;
		c->objcap = ncap;
	}
	struct hs_got_object *ob = &g->obj[g->nobj++];
	memset(ob, 0, sizeof(*ob));
	snprintf(ob->path, sizeof(ob->path), "%s", m->path);
	ob->start = m->start;
	*out = ob;
	return 0;
}

static int add_slot(struct ctx *c, const struct hs_got_slot *s)
{
	struct hs_got *g = c->got;
	if (g->n == c->slotcap) {
		size_t ncap = c->slotcap ? c->slotcap * 2 : 64;
		struct hs_got_slot *v = realloc(g->v, ncap * sizeof(*v));
		if (!v)
			return hs_err_set(c->err, ENOMEM, "out of memory");
		g->v = v;
		c->slotcap = ncap;
	}
	g->v[g->n++] = *s;
	return 0;
}

/* An object that cannot be used: an error, or with skip_unusable a reason
 * kept in the list. */
static int unusable(struct ctx *c, struct hs_got_object *ob, int code, const char *why)
{
	if (c->opts->skip_unusable) {
		ob->skipped = why;
		return 0;
	}
	if (code == ENOENT && !hs_proc_alive(c->pid))
		return hs_err_set(c->err, ESRCH, "pid %d is gone", (int)c->pid);
	if (code != ENOEXEC)
		return hs_err_sys(c->err, code, "%s (mapped at 0x%" PRIx64 " in pid %d): %s", ob->path, ob->start,
				  (int)c->pid, why);
	return hs_err_set(c->err, code, "%s (mapped at 0x%" PRIx64 " in pid %d): %s", ob->path, ob->start,
			  (int)c->pid, why);
}

/* Open the object behind mapping m (offset 0) and check it is what the
 * target has loaded there.  Returns 1 for an object to search, 0 for a
 * mapping that is no loaded object (or one skipped), < 0 for an error. */
static int open_object(struct ctx *c, const struct hs_mapping *m, struct obj *o, struct hs_got_object **obp)
{
	*obp = NULL;
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)c->pid, m->start, m->end);
	int r = obj_load(o, path), r2 = r;
	if (r == -ENOENT || r == -EACCES || r == -EPERM) {
		obj_close(o);
		snprintf(path, sizeof(path), "/proc/%d/root%s", (int)c->pid, m->path);
		r2 = obj_load(o, path);
	}
	if (r2 == -ENOEXEC) {           /* not ELF: a data file */
		obj_close(o);
		return 0;
	}
	if (r2 < 0) {
		obj_close(o);
		if (!hs_proc_alive(c->pid))
			return hs_err_set(c->err, ESRCH, "pid %d is gone", (int)c->pid);
		/* Unopenable: only an error if the target maps an ELF image there. */
		unsigned char magic[SELFMAG];
		if (hs_mem_read(c->mem, m->start, magic, SELFMAG) < 0 || memcmp(magic, ELFMAG, SELFMAG))
			return 0;
		int rr = add_object(c, m, obp);
		if (rr < 0)
			return rr;
		return unusable(c, *obp, -r2, "cannot open it through /proc/PID/map_files or /proc/PID/root");
	}
	if (!obj_is_x86_64(o)) {
		obj_close(o);
		return 0;
	}
	/* The load bias: the first PT_LOAD starts the offset-0 mapping. */
	GElf_Phdr first = { 0 };
	bool have = false;
	for (size_t i = 0; i < o->nph && !have; i++)
		have = gelf_getphdr(o->elf, (int)i, &first) && first.p_type == PT_LOAD;
	if (!have || TRUNC(first.p_offset) != 0) {
		obj_close(o);
		return 0;
	}
	o->base = m->start - TRUNC(first.p_vaddr);
	if (!loaded_by_ldso(o, c->maps, m)) {
		obj_close(o);
		return 0;
	}
	r = add_object(c, m, obp);
	if (r < 0) {
		obj_close(o);
		return r;
	}
	struct hs_got_object *ob = *obp;
	snprintf(ob->file, sizeof(ob->file), "%s", path);
	ob->base = o->base;
	obj_read_dynamic(o);
	const char *soname = o->soname ? dynstr(o, o->soname) : NULL;
	snprintf(ob->soname, sizeof(ob->soname), "%s", soname ? soname : "");
	for (size_t i = 0; i < c->opts->nexclude; i++) {
		const char *x = c->opts->exclude[i];
		if (!strcmp(x, m->path) || !strcmp(x, hs_path_basename(m->path)) || (soname && !strcmp(x, soname))) {
			ob->skipped = "excluded";
			obj_close(o);
			return 0;
		}
	}

	/* The same file?  map_files is the mapped inode itself; through the
	 * root, the file may have been replaced since: the inode says, and the
	 * build-id the target holds in memory says it surely. */
	struct stat st;
	bool same_inode = fstat(o->fd, &st) == 0 && (uint64_t)st.st_ino == m->inode;
	const unsigned char *id;
	size_t idlen;
	uint64_t idv;
	if (build_id(o, &id, &idlen, &idv)) {
		hs_elf_hex(id, idlen, ob->build_id, sizeof(ob->build_id));
		unsigned char live[40];
		int rr = hs_mem_read(c->mem, o->base + idv, live, idlen);
		if (rr == -ESRCH) {
			obj_close(o);
			return hs_err_set(c->err, ESRCH, "pid %d is gone", (int)c->pid);
		}
		if (rr < 0 || memcmp(live, id, idlen)) {
			obj_close(o);
			return unusable(c, ob, ENOEXEC, rr < 0 ? "cannot read its build-id in the target"
							   : "the file's build-id differs from the one loaded");
		}
	} else if (!same_inode) {
		obj_close(o);
		return unusable(c, ob, ENOEXEC, "the file has been replaced since it was loaded (another inode, no build-id)");
	}
	ob->bind_now = (o->flags & DF_BIND_NOW) || (o->flags_1 & DF_1_NOW) || o->bind_now_tag;
	for (size_t i = 0; i < o->nph; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(o->elf, (int)i, &ph) && ph.p_type == PT_GNU_RELRO) {
			/* _dl_protect_relro: whole pages only, the end rounded down */
			ob->relro_lo = TRUNC(o->base + ph.p_vaddr);
			ob->relro_hi = TRUNC(o->base + ph.p_vaddr + ph.p_memsz);
		}
	}
	return 1;
}

/* libc's default (non-hidden) definition of each name: its version and
 * address; with any_version, a name libc has only as a compat (hidden)
 * symbol (__malloc_hook since 2.34) takes that one.  An STT_GNU_IFUNC's
 * address is known only once resolved: 0. */
static void libc_targets(struct ctx *c, const struct obj *o)
{
	uint64_t n = dynsym_count(o);
	bool *dflt = calloc(c->got->ntargets, sizeof(*dflt));
	for (uint64_t i = 1; dflt && i < n; i++) {
		Elf64_Sym s;
		if (!get_sym(o, i, &s) || s.st_shndx == SHN_UNDEF || !s.st_name)
			continue;
		const char *name = dynstr(o, s.st_name);
		int k = name ? name_index(c, name) : -1;
		if (k < 0)
			continue;
		unsigned vs = get_versym(o, i);
		bool hidden = vs & 0x8000;      /* a compat version, never the default */
		if (dflt[k] || (hidden && !c->opts->any_version))
			continue;
		struct hs_got_target *t = &c->got->targets[k];
		t->defined = true;
		t->compat = hidden;
		dflt[k] = !hidden;
		snprintf(t->version, sizeof(t->version), "%s", version_name(o, vs));
		t->libc_addr = ELF64_ST_TYPE(s.st_info) == STT_GNU_IFUNC ? 0 : o->base + s.st_value;
	}
	free(dflt);
}

/* The first of the names an object other than libc defines (hidden ones
 * too: a versioned reference, malloc@GLIBC_2.2.5, binds to a compat
 * definition as well, so a library like libc_malloc_debug.so interposes
 * from wherever it stands in the global scope). */
static void find_defines(struct ctx *c, const struct obj *o, struct hs_got_object *ob)
{
	uint64_t n = dynsym_count(o);
	for (uint64_t i = 1; i < n && !ob->defines; i++) {
		Elf64_Sym s;
		if (!get_sym(o, i, &s) || s.st_shndx == SHN_UNDEF || !s.st_name)
			continue;
		const char *name = dynstr(o, s.st_name);
		int k = name ? name_index(c, name) : -1;
		if (k >= 0)
			ob->defines = c->opts->names[k];
	}
}

static int cmp_slot(const void *a, const void *b)
{
	const struct hs_got_slot *x = a, *y = b;
	if (x->object != y->object)
		return x->object < y->object ? -1 : 1;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return strcmp(x->symbol, y->symbol);
}

static int scan_relocs(struct ctx *c, const struct obj *o, size_t oi, uint64_t table, uint64_t size)
{
	if (!table || !size)
		return 0;
	unsigned types = c->opts->types ? c->opts->types : HS_GOT_ALL;
	struct hs_got_object *ob = &c->got->obj[oi];
	for (uint64_t at = 0; at + sizeof(Elf64_Rela) <= size; at += sizeof(Elf64_Rela)) {
		Elf64_Rela r;
		if (!rd(o, table + at, &r, sizeof(r)))
			return unusable(c, ob, ENOEXEC, "its relocation table lies outside the file");
		unsigned rt = ELF64_R_TYPE(r.r_info), type;
		switch (rt) {
		case R_X86_64_JUMP_SLOT: type = HS_GOT_JUMP_SLOT; break;
		case R_X86_64_GLOB_DAT: type = HS_GOT_GLOB_DAT; break;
		case R_X86_64_64: type = HS_GOT_ABS64; break;
		default: continue;
		}
		uint64_t si = ELF64_R_SYM(r.r_info);
		Elf64_Sym s;
		if (!si || !get_sym(o, si, &s))
			continue;
		const char *name = dynstr(o, s.st_name);
		int k = name ? name_index(c, name) : -1;
		if (k < 0)
			continue;
		struct hs_got_target *t = &c->got->targets[k];
		/* A non-PIE executable that takes a function's address gives it a
		 * canonical PLT entry: an undefined symbol with a value, which
		 * every non-PLT reference in the process then binds to. */
		if (s.st_shndx == SHN_UNDEF && s.st_value && !t->canonical)
			t->canonical = o->base + s.st_value;
		if (!(types & type))
			continue;
		const char *ver = version_name(o, get_versym(o, si));
		/* Bound to libc's default version, or unversioned (ld.so then
		 * takes the default); libc not defining it: not libc's. */
		if (!t->defined ||
		    (!c->opts->any_version && ver[0] && t->version[0] && strcmp(ver, t->version)))
			continue;
		struct hs_got_slot sl = { 0 };
		sl.object = oi;
		sl.symbol = c->opts->names[k];
		sl.type = type;
		sl.rtype = rt;
		sl.addr = o->base + r.r_offset;
		/* ld.so stores S for JUMP_SLOT and GLOB_DAT, S + A for 64
		 * (elf_machine_rela): a JUMP_SLOT's r_addend, non-zero when
		 * linked with -z mark-plt (trixie's libc.so.6), is its PLT
		 * entry's offset, for the PLT rewrite of 2.39+. */
		sl.addend = type == HS_GOT_ABS64 ? r.r_addend : 0;
		snprintf(sl.version, sizeof(sl.version), "%s", ver);
		sl.relro = sl.addr >= ob->relro_lo && sl.addr < ob->relro_hi;
		uint64_t init;
		if (type == HS_GOT_JUMP_SLOT && rd(o, r.r_offset, &init, 8))
			sl.lazy = o->base + init;     /* elf_machine_lazy_rel: += l_addr */
		/* The slot must be in this object's own file-backed image. */
		const struct hs_mapping *m = hs_maps_find(c->maps, sl.addr);
		if (!m || m->inode == 0 || sl.addr + 8 > m->end)
			return unusable(c, ob, ENOEXEC, "a relocated slot lies outside its mappings");
		int rr = add_slot(c, &sl);
		if (rr < 0)
			return rr;
		ob->nslots++;
	}
	return 0;
}

int hs_got_find(pid_t pid, const struct hs_maps *maps, struct hs_mem *mem, const struct hs_got_opts *opts,
		struct hs_got *got, struct hs_err *err)
{
	memset(got, 0, sizeof(*got));
	if (!opts || !opts->nnames || !maps)
		return hs_err_set(err, EINVAL, "no symbol names to look for");
	struct ctx c = { .pid = pid, .maps = maps, .mem = mem, .opts = opts, .got = got, .err = err };
	struct hs_mem *own = NULL;
	int r = 0;
	if (!c.mem) {
		r = hs_mem_open_pid(pid, &own, err);
		if (r < 0)
			return r;
		c.mem = own;
	}
	got->targets = calloc(opts->nnames, sizeof(*got->targets));
	if (!got->targets) {
		r = hs_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	got->ntargets = opts->nnames;
	for (size_t i = 0; i < opts->nnames; i++)
		got->targets[i].name = opts->names[i];

	/* The candidates: a file's first page (not [vdso], [heap], anonymous
	 * memory), of a file with an executable mapping somewhere.  A data
	 * file mapped at offset 0, of which a JVM or a search engine may have
	 * thousands, is not even opened. */
	size_t nx = 0, ncand = 0;
	const struct hs_mapping **xmaps = calloc(maps->n ? maps->n : 1, sizeof(*xmaps));
	size_t *cand = calloc(maps->n ? maps->n : 1, sizeof(*cand));
	if (!xmaps || !cand) {
		free(xmaps);
		free(cand);
		r = hs_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < maps->n; i++)
		if (maps->v[i].perms[2] == 'x' && maps->v[i].path[0] == '/' && maps->v[i].inode)
			xmaps[nx++] = &maps->v[i];
	for (size_t i = 0; i < maps->n; i++) {
		const struct hs_mapping *m = &maps->v[i];
		if (m->offset != 0 || m->path[0] != '/' || m->inode == 0)
			continue;
		for (size_t k = 0; k < nx; k++)
			if (same_file(xmaps[k], m)) {
				cand[ncand++] = i;
				break;
			}
	}
	free(xmaps);

	/* Every object, libc found among them: its definitions decide which
	 * references are to it.  The objects stay open until the end. */
	size_t nopen = 0, libc = SIZE_MAX;
	struct obj *objs = calloc(ncand ? ncand : 1, sizeof(*objs));
	size_t *objidx = calloc(ncand ? ncand : 1, sizeof(*objidx));
	if (!objs || !objidx) {
		free(objs);
		free(objidx);
		free(cand);
		r = hs_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t ci = 0; ci < ncand; ci++) {
		const struct hs_mapping *m = &maps->v[cand[ci]];
		struct hs_got_object *ob;
		objs[nopen].fd = -1;
		r = open_object(&c, m, &objs[nopen], &ob);
		if (r < 0)
			break;
		if (r == 0)
			continue;
		objidx[nopen] = got->nobj - 1;
		if (hs_path_is_libc(m->path)) {
			if (libc != SIZE_MAX) {
				r = hs_err_set(err, ENOTSUP,
					       "pid %d has libc.so.6 loaded twice (at 0x%" PRIx64 " and 0x%" PRIx64
					       ", dlmopen namespaces): which objects bind to which cannot be told from "
					       "the files", (int)pid, got->obj[objidx[libc]].start, m->start);
				nopen++;
				break;
			}
			libc = nopen;
			ob->is_libc = true;
		}
		nopen++;
	}
	free(cand);
	if (r >= 0 && libc == SIZE_MAX && !maps->n)
		r = hs_err_set(err, ENOTSUP, "pid %d has no memory mappings (a kernel thread, or a process exiting)",
			       (int)pid);
	else if (r >= 0 && libc == SIZE_MAX)
		r = hs_err_set(err, ENOTSUP, "pid %d has no libc.so.6 loaded (a static binary, or not glibc): no slot "
			       "can point to it", (int)pid);
	if (r >= 0) {
		got->libc = objidx[libc];
		libc_targets(&c, &objs[libc]);
		r = 0;
		for (size_t i = 0; i < nopen && r >= 0; i++) {
			struct hs_got_object *ob = &got->obj[objidx[i]];
			if (ob->skipped)
				continue;
			if (!ob->is_libc)
				find_defines(&c, &objs[i], ob);
			size_t before = got->n;
			r = scan_relocs(&c, &objs[i], objidx[i], objs[i].rela, objs[i].relasz);
			if (r >= 0 && !ob->skipped && objs[i].pltrel == DT_RELA)
				r = scan_relocs(&c, &objs[i], objidx[i], objs[i].jmprel, objs[i].pltrelsz);
			if (r >= 0 && ob->skipped) {     /* drop what it had added */
				got->n = before;
				ob->nslots = 0;
			}
		}
	}
	for (size_t i = 0; i < nopen; i++)
		obj_close(&objs[i]);
	free(objs);
	free(objidx);
	if (r < 0)
		goto out;
	/* Sorted, and once each: some linkers make DT_RELA's range cover
	 * DT_JMPREL's too (ld.so skips the overlap). */
	qsort(got->v, got->n, sizeof(*got->v), cmp_slot);
	size_t w = 0;
	for (size_t i = 0; i < got->n; i++)
		if (!w || got->v[i].addr != got->v[w - 1].addr || got->v[i].object != got->v[w - 1].object ||
		    strcmp(got->v[i].symbol, got->v[w - 1].symbol))
			got->v[w++] = got->v[i];
		else
			got->obj[got->v[i].object].nslots--;
	got->n = w;
out:
	if (own)
		hs_mem_close(own);
	if (r < 0)
		hs_got_release(got);
	return r < 0 ? r : 0;
}

int hs_got_read(struct hs_mem *mem, struct hs_got *got, struct hs_err *err)
{
	for (size_t i = 0; i < got->n; i++) {
		struct hs_got_slot *s = &got->v[i];
		int r = hs_mem_u64(mem, s->addr, &s->value);
		if (r < 0) {
			s->state = HS_GOT_UNREAD;
			return r == -ESRCH ? hs_err_set(err, ESRCH, "the process is gone")
					   : hs_err_sys(err, -r, "read the %s slot of %s at 0x%" PRIx64, s->symbol,
							got->obj[s->object].path, s->addr);
		}
		const struct hs_got_target *t = NULL;
		for (size_t k = 0; k < got->ntargets && !t; k++)
			if (got->targets[k].name == s->symbol)
				t = &got->targets[k];
		uint64_t a = (uint64_t)s->addend;
		if (t && t->libc_addr && s->value == t->libc_addr + a)
			s->state = HS_GOT_LIBC;
		else if (s->type == HS_GOT_JUMP_SLOT && s->lazy && s->value == s->lazy)
			s->state = HS_GOT_LAZY;
		else if (t && t->canonical && s->value == t->canonical + a)
			s->state = HS_GOT_CANONICAL;
		else
			s->state = HS_GOT_OTHER;
	}
	return 0;
}

void hs_got_release(struct hs_got *got)
{
	free(got->targets);
	free(got->obj);
	free(got->v);
	memset(got, 0, sizeof(*got));
}

const char *hs_got_type_name(unsigned type)
{
	switch (type) {
	case HS_GOT_JUMP_SLOT: return "JUMP_SLOT";
	case HS_GOT_GLOB_DAT: return "GLOB_DAT";
	case HS_GOT_ABS64: return "64";
	}
	return "?";
}

const char *hs_got_state_name(enum hs_got_state state)
{
	switch (state) {
	case HS_GOT_UNREAD: return "unread";
	case HS_GOT_LIBC: return "libc";
	case HS_GOT_LAZY: return "lazy";
	case HS_GOT_CANONICAL: return "canonical";
	case HS_GOT_OTHER: return "other";
	}
	return "?";
}
