/* heapscope profile, collection (lib/profile_collect.h): the sampler
 * loaded and routed to, its ring drained, the routing put back. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "got.h"
#include "inject.h"
#include "libc.h"
#include "maps.h"
#include "mem.h"
#include "proc.h"
#include "profile_collect.h"
#include "session.h"
#include "state.h"

#define SAMPLER_FILE "libheapscope-sampler.so"
#define SAMPLER_PREFIX "libheapscope-sampler"
#define KIND "profile"
/* RTLD_NOW | RTLD_NODELETE: never unloaded under running code */
#define DLOPEN_FLAGS 0x1002
#define BATCH 32u

static const char *const excl[] = { SAMPLER_FILE };

void hs_profile_data_release(struct hs_profile_data *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].stack);
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

int hs_profile_find_sampler(char *path, size_t len)
{
	const char *env = getenv("HEAPSCOPE_SAMPLER");
	if (env && *env) {
		if (!realpath(env, path) || strlen(path) >= len)
			return -ENOENT;
		return access(path, R_OK) == 0 ? 0 : -errno;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char cand[3][PATH_MAX + 64];
	int nc = 0;
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(cand[nc++], sizeof(cand[0]), "%s/%s", exe, SAMPLER_FILE);
			snprintf(cand[nc++], sizeof(cand[0]), "%s/../lib/sampler/%s", exe, SAMPLER_FILE);
		}
	}
	snprintf(cand[nc++], sizeof(cand[0]), "%s/%s", HS_SAMPLER_DIR, SAMPLER_FILE);
	char real[PATH_MAX];
	for (int i = 0; i < nc; i++)
		if (access(cand[i], R_OK) == 0 && realpath(cand[i], real) && strlen(real) < len) {
			snprintf(path, len, "%s", real);
			return 0;
		}
	return -ENOENT;
}

/* The library as the target sees it: the same path when its root shows
 * the same file (one mount namespace, or the file visible in both),
 * else a copy in a new private directory under its /tmp. */
static int target_path(pid_t pid, const char *mine, char *out, size_t len, bool *copied, struct hs_err *err)
{
	char seen[PATH_MAX + 64];
	struct stat a, b;
	*copied = false;
	snprintf(seen, sizeof(seen), "/proc/%d/root%s", (int)pid, mine);
	if (stat(mine, &a) < 0)
		return hs_err_sys(err, errno, "cannot stat %s", mine);
	if (stat(seen, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		snprintf(out, len, "%s", mine);
		return 0;
	}
	char root[64], dir[PATH_MAX];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	snprintf(dir, sizeof(dir), "%s/tmp/heapscope-sampler.XXXXXX", root);
	if (!mkdtemp(dir))
		return hs_err_sys(err, errno, "%s is not visible to pid %d and cannot be copied under its /tmp", mine,
				  (int)pid);
	chmod(dir, 0755);
	char dst[PATH_MAX + 64];
	snprintf(dst, sizeof(dst), "%s/%s", dir, SAMPLER_FILE);
	int in = open(mine, O_RDONLY | O_CLOEXEC), o = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0755);
	int r = in < 0 || o < 0 ? -errno : 0;
	char buf[65536];
	ssize_t k;
	while (r == 0 && (k = read(in, buf, sizeof(buf))) != 0)
		if (k < 0 || write(o, buf, (size_t)k) != k)
			r = -EIO;
	if (in >= 0)
		close(in);
	if (o >= 0 && close(o) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		unlink(dst);
		rmdir(dir);
		return hs_err_sys(err, -r, "cannot copy %s into the root of pid %d", mine, (int)pid);
	}
	snprintf(out, len, "%s", dst + strlen(root));
	*copied = true;
	return 0;
}

/* The control block's fields heapscope writes (tail, enabled, rate):
 * the library's own writable data, written while the target runs with
 * process_vm_writev, which never forces a read-only page. */
static int ctl_write(pid_t pid, uint64_t addr, const void *v, size_t len)
{
	struct iovec l = { (void *)v, len }, rm = { (void *)(uintptr_t)addr, len };
	ssize_t n = process_vm_writev(pid, &l, 1, &rm, 1, 0);
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static int ctl_read(pid_t pid, uint64_t addr, struct hs_sampler_ctl *c)
{
	struct iovec l = { c, sizeof(*c) }, rm = { (void *)(uintptr_t)addr, sizeof(*c) };
	ssize_t n = process_vm_readv(pid, &l, 1, &rm, 1, 0);
	return n == (ssize_t)sizeof(*c) ? 0 : n < 0 ? -errno : -EIO;
}

#define CTL_OFF(f) offsetof(struct hs_sampler_ctl, f)

/* The loaded sampler: its control block (checked) and its wrappers for
 * got's names (to[t] 0 where it has none). */
static int sampler_lookup(pid_t pid, const struct hs_maps *maps, const struct hs_got *got, uint64_t *ctl, uint64_t *to,
			  struct hs_err *err)
{
	struct hs_libc lib;
	uint64_t lo, hi;
	if (hs_inject_mapped_object(pid, maps, SAMPLER_PREFIX, &lib, &lo, &hi) < 0)
		return hs_err_set(err, ENOENT, "%s is not loaded in pid %d", SAMPLER_FILE, (int)pid);
	if (hs_libc_lookup_object(&lib, "hs_sampler_ctl", ctl) < 0)
		return hs_err_set(err, ENOENT, "no hs_sampler_ctl in %s (as %s)", lib.map_path, lib.file);
	if (got) {
		char names[64][48];
		const char *np[64];
		for (size_t i = 0; i < got->ntargets && i < 64; i++) {
			snprintf(names[i], sizeof(names[i]), "hs_sampler_%s", got->targets[i].name);
			np[i] = names[i];
		}
		if (hs_libc_lookup_many(&lib, np, got->ntargets, to) < 0)
			return hs_err_set(err, ENOENT, "cannot read the wrappers of %s", lib.file);
	}
	struct hs_sampler_ctl c;
	int r = ctl_read(pid, *ctl, &c);
	if (r < 0)
		return hs_err_sys(err, -r, "cannot read the sampler's control block at 0x%" PRIx64, *ctl);
	if (c.magic != HS_SAMPLER_MAGIC || c.abi != HS_SAMPLER_ABI || c.slots != HS_SAMPLER_SLOTS ||
	    c.slot_size != HS_SAMPLER_SLOT_SIZE)
		return hs_err_set(err, EPROTO, "%s in pid %d is not the sampler this heapscope speaks to (magic 0x%x, abi %u, "
				  "%u slots of %u bytes)", lib.map_path, (int)pid, c.magic, c.abi, c.slots, c.slot_size);
	return 0;
}

static int find_slots(pid_t pid, const struct hs_maps *maps, struct hs_mem *mem, struct hs_got *got, struct hs_err *err)
{
	struct hs_got_opts go = { .names = hs_got_malloc_names, .nnames = hs_got_malloc_nnames, .exclude = excl,
				  .nexclude = 1, .types = HS_GOT_ALL, .skip_unusable = true };
	int r = hs_got_find(pid, maps, mem, &go, got, err);
	if (r == 0 && got->ntargets > 64) {
		hs_got_release(got);
		return hs_err_set(err, E2BIG, "too many names to route");
	}
	return r;
}

/* ---- the record: "sampler PATH", "ctl 0xADDR", "slot 0xADDR 0xOLD 0xNEW"... ---- */

#define RECORD_MAX (1u << 20)

static int record_write(pid_t pid, const char *sampler, uint64_t ctl, const struct hs_poke *v, size_t n,
			struct hs_err *err)
{
	char *text = malloc(RECORD_MAX);
	if (!text)
		return hs_err_set(err, ENOMEM, "out of memory");
	size_t at = (size_t)snprintf(text, RECORD_MAX, "sampler %s\nctl 0x%" PRIx64 "\n", sampler, ctl);
	for (size_t i = 0; i < n && at < RECORD_MAX - 64; i++)
		at += (size_t)snprintf(text + at, RECORD_MAX - at, "slot 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 "\n",
				       v[i].addr, v[i].old, v[i].new);
	int r = at >= RECORD_MAX - 64 ? hs_err_set(err, E2BIG, "too many slots to record (%zu)", n)
				      : hs_state_write(pid, KIND, text, err);
	free(text);
	return r;
}

struct record {
	char sampler[PATH_MAX];
	struct hs_poke *v;
	size_t n;
};

static int record_read(pid_t pid, struct record *rec, struct hs_err *err)
{
	memset(rec, 0, sizeof(*rec));
	char *text = malloc(RECORD_MAX);
	if (!text)
		return hs_err_set(err, ENOMEM, "out of memory");
	int r = hs_state_read(pid, KIND, text, RECORD_MAX, err);
	size_t cap = 0;
	char *save;
	for (char *l = r == 0 ? strtok_r(text, "\n", &save) : NULL; l && r == 0; l = strtok_r(NULL, "\n", &save)) {
		struct hs_poke p;
		if (!strncmp(l, "sampler ", 8))
			snprintf(rec->sampler, sizeof(rec->sampler), "%s", l + 8);
		else if (!strncmp(l, "slot ", 5)) {
			if (sscanf(l + 5, "%" SCNx64 " %" SCNx64 " %" SCNx64, &p.addr, &p.old, &p.new) != 3) {
				r = -EINVAL;
				break;
			}
			if (rec->n == cap) {
				cap = cap ? 2 * cap : 64;
				struct hs_poke *nv = realloc(rec->v, cap * sizeof(*nv));
				if (!nv) {
					r = -ENOMEM;
					break;
				}
				rec->v = nv;
			}
			rec->v[rec->n++] = p;
		}
	}
	free(text);
	if (r == 0 && !rec->sampler[0])
		r = -EINVAL;
	if (r < 0) {
		free(rec->v);
		rec->v = NULL;
		rec->n = 0;
	}
	return r;
}

/* ---- start ---- */

struct start {
	pid_t pid;
	const struct hs_profile_start_opts *o;
	struct hs_profile_report_start *rep;
	struct hs_maps maps, maps2;
	struct hs_libc libc;
	struct hs_mem *mem;
	struct hs_got got;
	struct hs_session *ses;
	uint64_t to[64], ctl;
	struct hs_poke *plan;
	struct hs_route rt;          /* the plan's writing */
	bool enabled;
};

static int start_checks(struct start *st, struct hs_err *err)
{
	pid_t pid = st->pid;
	int r;
	if ((r = hs_maps_read(pid, false, &st->maps, err)) < 0 || (r = hs_libc_find(pid, &st->maps, 0, &st->libc, err)) < 0 ||
	    (r = hs_mem_open_pid(pid, &st->mem, err)) < 0)
		return r;
	/* hs_call_begin reads through a page cache (it drops it at each stop) */
	struct hs_mem *raw = st->mem;
	if ((r = hs_mem_open_cache(raw, &st->mem)) < 0) {
		st->mem = raw;
		return hs_err_set(err, -r, "out of memory");
	}
	if (st->libc.is_static)
		return hs_err_set(err, ENOTSUP, "pid %d is a static binary: no GOT slots to route, no dlopen", (int)pid);
	char buf[64];
	struct hs_err e0 = { 0 };
	if ((r = hs_state_check(true, &e0)) < 0)
		return hs_err_set(err, -r, "%s: nothing done", e0.msg);
	if (hs_state_read(pid, KIND, buf, sizeof(buf), NULL) != -ENOENT)
		return hs_err_set(err, EBUSY, "a profile of pid %d is running, or was left behind: 'heapscope profile --stop "
				  "%d' ends it", (int)pid, (int)pid);
	uint64_t f, lo, hi;
	if (hs_libc_lookup(&st->libc, "dlopen", &f) < 0)
		return hs_err_set(err, ENOENT, "dlopen not found in %s", st->libc.map_path);
	st->rep->loaded_before = hs_inject_mapped_object(pid, &st->maps, SAMPLER_PREFIX, NULL, &lo, &hi) == 0;
	if (!st->rep->loaded_before &&
	    (r = target_path(pid, st->o->sampler, st->rep->sampler, sizeof(st->rep->sampler), &st->rep->copied, err)) < 0)
		return r;
	return find_slots(pid, &st->maps, st->mem, &st->got, err);
}

/* ---- seccomp: the sampler's own system calls must not kill the target ----
 *
 * The sampler makes system calls inside every sampled allocation: getpid,
 * gettid, clock_gettime (when the vDSO cannot) and process_vm_readv (the
 * stack copy).  A thread's seccomp filter may answer one of them with
 * death (SECCOMP_RET_KILL_*, or SIGSYS from TRAP) or hold it until a
 * supervisor answers (USER_NOTIF).  Each thread's filters (stopped: the
 * kernel gives them to a tracer) are run here on those calls, as the
 * kernel would: the start is refused unless every answer is ALLOW, LOG,
 * ERRNO (the call fails: a sample without stack) or TRACE (no tracer:
 * ENOSYS).  A filter that looks at the instruction pointer or a pointer
 * argument is judged on the values below, not every value. */

/* What one classic BPF seccomp program answers to d; anything this does
 * not know is an answer of death */
static uint32_t bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d)
{
	uint32_t a = 0, x = 0, m[BPF_MEMWORDS] = { 0 };
	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *i = &f[pc];
		uint32_t k = i->k, v = BPF_SRC(i->code) == BPF_X ? x : k;
		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (k % 4 || k > sizeof(*d) - 4)
				return SECCOMP_RET_KILL_PROCESS;
			memcpy(&a, (const unsigned char *)d + k, 4);
			continue;
		case BPF_LD | BPF_W | BPF_LEN: a = sizeof(*d); continue;
		case BPF_LDX | BPF_W | BPF_LEN: x = sizeof(*d); continue;
		case BPF_LD | BPF_IMM: a = k; continue;
		case BPF_LDX | BPF_IMM: x = k; continue;
		case BPF_MISC | BPF_TAX: x = a; continue;
		case BPF_MISC | BPF_TXA: a = x; continue;
		case BPF_RET | BPF_K: return k;
		case BPF_RET | BPF_A: return a;
		case BPF_JMP | BPF_JA: pc += k; continue;
		case BPF_LD | BPF_MEM:
		case BPF_LDX | BPF_MEM:
		case BPF_ST:
		case BPF_STX:
			if (k >= BPF_MEMWORDS)
				return SECCOMP_RET_KILL_PROCESS;
			if (i->code == (BPF_LD | BPF_MEM))
				a = m[k];
			else if (i->code == (BPF_LDX | BPF_MEM))
				x = m[k];
			else
				m[k] = i->code == BPF_ST ? a : x;
			continue;
		}
		if (BPF_CLASS(i->code) == BPF_JMP) {
			int c;
			switch (BPF_OP(i->code)) {
			case BPF_JEQ: c = a == v; break;
			case BPF_JGT: c = a > v; break;
			case BPF_JGE: c = a >= v; break;
			case BPF_JSET: c = (a & v) != 0; break;
			default: return SECCOMP_RET_KILL_PROCESS;
			}
			pc += c ? i->jt : i->jf;
			continue;
		}
		if (BPF_CLASS(i->code) != BPF_ALU)
			return SECCOMP_RET_KILL_PROCESS;
		switch (BPF_OP(i->code)) {
		case BPF_ADD: a += v; break;
		case BPF_SUB: a -= v; break;
		case BPF_MUL: a *= v; break;
		case BPF_DIV:
		case BPF_MOD:
			if (!v)
				return 0;   /* the kernel's answer to a division by zero: 0, kill the thread */
			a = BPF_OP(i->code) == BPF_DIV ? a / v : a % v;
			break;
		case BPF_OR: a |= v; break;
		case BPF_AND: a &= v; break;
		case BPF_XOR: a ^= v; break;
		case BPF_LSH: a = v < 32 ? a << v : 0; break;
		case BPF_RSH: a = v < 32 ? a >> v : 0; break;
		case BPF_NEG: a = -a; break;
		default: return SECCOMP_RET_KILL_PROCESS;
		}
	}
	return SECCOMP_RET_KILL_PROCESS;
}

static bool action_harmless(uint32_t r)
{
	uint32_t act = r & SECCOMP_RET_ACTION_FULL;
	return act == SECCOMP_RET_ALLOW || act == SECCOMP_RET_LOG || act == SECCOMP_RET_ERRNO || act == SECCOMP_RET_TRACE;
}

static int seccomp_check(struct start *st, struct hs_err *err)
{
	pid_t pid = st->pid;
	const pid_t *tids;
	size_t nt = hs_session_threads(st->ses, &tids);
	struct sock_filter *f = NULL;
	int r = 0;
	for (size_t ti = 0; ti < nt && r == 0; ti++) {
		pid_t tid = tids[ti];
		/* its Seccomp: mode, -1 when its status cannot be read */
		struct hs_proc_status ps;
		int mode = hs_proc_status_read(tid, &ps, NULL) == 0 ? ps.seccomp : -1;
		if (mode == 0)
			continue;
		if (mode != 2) {
			r = hs_err_set(err, EPERM, "thread %d of pid %d is in seccomp %s mode: the sampler's system calls "
				       "would kill it: refused, nothing done", (int)tid, (int)pid, mode == 1 ? "strict" : "unknown");
			break;
		}
		if (!f && !(f = malloc(BPF_MAXINSNS * sizeof(*f)))) {
			r = hs_err_set(err, ENOMEM, "out of memory");
			break;
		}
		struct hs_thread_regs regs = { 0 };
		hs_session_regs(st->ses, tid, &regs, NULL);
		/* the calls the sampler makes, with the arguments it gives */
		static const struct {
			int nr;
			const char *name;
		} calls[] = { { SYS_process_vm_readv, "process_vm_readv" }, { SYS_getpid, "getpid" },
			      { SYS_gettid, "gettid" }, { SYS_clock_gettime, "clock_gettime" } };
		enum { NCALLS = sizeof(calls) / sizeof(calls[0]) };
		struct seccomp_data d[NCALLS];
		uint32_t res[NCALLS];
		for (size_t c = 0; c < NCALLS; c++) {
			d[c] = (struct seccomp_data){ .nr = calls[c].nr, .arch = AUDIT_ARCH_X86_64 };
			res[c] = SECCOMP_RET_ALLOW;
		}
		d[0].args[0] = (uint64_t)pid;
		d[0].args[1] = d[0].args[3] = regs.sp - 256;
		d[0].args[2] = d[0].args[4] = 1;
		d[3].args[0] = CLOCK_MONOTONIC;
		d[3].args[1] = regs.sp - 256;
		for (unsigned idx = 0;; idx++) {
			int n = hs_session_seccomp_filter(st->ses, tid, idx, f, BPF_MAXINSNS);
			if (n == -ENOENT)
				break;
			if (n < 0) {
				r = hs_err_sys(err, -n, "cannot read the seccomp filter of thread %d of pid %d, which the sampler's "
					       "system calls must pass: refused, nothing done", (int)tid, (int)pid);
				break;
			}
			for (size_t c = 0; c < NCALLS; c++) {
				uint32_t v = bpf_run(f, (size_t)n, &d[c]);
				/* the kernel keeps the answer of highest precedence:
				 * the lowest action, compared signed */
				if ((int32_t)(v & SECCOMP_RET_ACTION_FULL) < (int32_t)(res[c] & SECCOMP_RET_ACTION_FULL))
					res[c] = v;
			}
		}
		for (size_t c = 0; c < NCALLS && r == 0; c++)
			if (!action_harmless(res[c]))
				r = hs_err_set(err, EPERM, "the seccomp filter of thread %d of pid %d answers %s (which the sampler "
					       "makes) with action 0x%08x, which kills or holds the thread: refused, nothing done",
					       (int)tid, (int)pid, calls[c].name, res[c] & SECCOMP_RET_ACTION_FULL);
	}
	free(f);
	if (r < 0 && r != -ENOMEM) {
		st->rep->seccomp = true;
		r = -EPERM;
	}
	return r;
}

/* In the stop: the library (dlopen unless there), its control block and
 * wrappers, what the slots hold now */
static int load(struct start *st, struct hs_err *err)
{
	pid_t pid = st->pid;
	int r;
	if ((r = seccomp_check(st, err)) < 0)
		return r;
	if (!st->rep->loaded_before) {
		uint64_t f, ret = 0, args[2] = { HS_CALL_DATA(0), DLOPEN_FLAGS };
		hs_libc_lookup(&st->libc, "dlopen", &f);
		const char *p = st->rep->sampler;
		r = hs_session_call_data(st->ses, st->rep->call.tid, f, args, 2, p, strlen(p) + 1, st->o->timeout_ms, &ret, err);
		st->rep->call.done++;
		if (r < 0)
			return r;
		if (!ret)
			return hs_err_set(err, EIO, "dlopen(%s) failed in pid %d (static TLS exhausted, or the file not "
					  "readable by it)", p, (int)pid);
	}
	if (hs_session_released(st->ses))
		return hs_err_set(err, ETIMEDOUT, "the call outlived %d ms and the other threads were let go: no slot "
				  "changed", st->o->timeout_ms);
	if ((r = hs_maps_read(pid, false, &st->maps2, err)) < 0)
		return r;
	if (st->rep->loaded_before) {
		struct hs_libc lib;
		uint64_t lo, hi;
		hs_inject_mapped_object(pid, &st->maps2, SAMPLER_PREFIX, &lib, &lo, &hi);
		snprintf(st->rep->sampler, sizeof(st->rep->sampler), "%s", lib.map_path);
	}
	if ((r = sampler_lookup(pid, &st->maps2, &st->got, &st->ctl, st->to, err)) < 0)
		return r;
	hs_mem_cache_preload_unload(st->mem);
	hs_mem_cache_drop(st->mem);   /* the dlopen changed the target */
	if ((r = hs_got_read(st->mem, &st->got, err)) < 0)
		return r;
	if (!(st->plan = calloc(st->got.n ? st->got.n : 1, sizeof(*st->plan))))
		return hs_err_set(err, ENOMEM, "out of memory");
	return 0;
}

static int write_record(void *ctx, struct hs_err *err)
{
	const struct start *st = ctx;
	return record_write(st->pid, st->rep->sampler, st->ctl, st->plan, st->rt.n, err);
}

/* The sampler on (a clean ring: tail = head), then the record, then the
 * slots; every thread stopped */
static int route(struct start *st, struct hs_err *err)
{
	pid_t pid = st->pid;
	struct hs_sampler_ctl c;
	uint64_t rate = st->o->rate ? st->o->rate : HS_SAMPLER_DEFAULT_RATE;
	uint32_t on = 1;
	int r;
	st->rt.n = hs_inject_plan(&st->got, st->to, st->plan, &st->rep->objects, &st->rep->left);
	if ((r = ctl_read(pid, st->ctl, &c)) < 0 || (r = ctl_write(pid, st->ctl + CTL_OFF(rate), &rate, 8)) < 0 ||
	    (r = ctl_write(pid, st->ctl + CTL_OFF(tail), (const void *)&c.head, 8)) < 0 ||
	    (r = ctl_write(pid, st->ctl + CTL_OFF(enabled), &on, 4)) < 0)
		return hs_err_sys(err, -r, "cannot write the sampler's control block at 0x%" PRIx64, st->ctl);
	st->enabled = true;
	/* Ctrl-C and the like wait until the writes are over; a fatal
	 * signal meanwhile puts them back (the session's emergency path) */
	st->rt.plan = st->plan;
	if ((r = hs_inject_route(st->ses, &st->rt, write_record, st, err)) < 0)
		return r;
	st->rep->slots = st->rt.nwritten;
	return 0;
}

static void start_undo(struct start *st)
{
	size_t left = hs_inject_put_back(st->ses, st->plan, st->rt.nwritten);
	uint32_t off = 0;
	if (st->enabled)
		ctl_write(st->pid, st->ctl + CTL_OFF(enabled), &off, 4);
	if (st->rt.recorded && !left)
		hs_state_remove(st->pid, KIND);
	st->rep->slots = st->rep->objects = 0;
}

int hs_profile_start(pid_t pid, const struct hs_profile_start_opts *o, struct hs_profile_session *ps,
		     struct hs_profile_report_start *rep, struct hs_err *err)
{
	struct hs_profile_start_opts oo = *o;
	char found[PATH_MAX];
	struct start st = { .pid = pid, .o = &oo, .rep = rep };
	memset(rep, 0, sizeof(*rep));
	memset(ps, 0, sizeof(*ps));
	if (!oo.sampler && hs_profile_find_sampler(found, sizeof(found)) < 0)
		return hs_err_set(err, ENOENT, "cannot find " SAMPLER_FILE " (beside heapscope, or in its install directory; "
				  "HEAPSCOPE_SAMPLER names another)");
	oo.sampler = oo.sampler ? oo.sampler : found;
	int r = start_checks(&st, err);
	if (r == 0) {
		struct hs_code_range extra[12];
		size_t nextra = hs_inject_loader_code(pid, &st.libc, &st.maps, st.mem, extra, 8);
		/* the sampler's constructor calls pthread_atfork */
		nextra += hs_inject_libc_locks(&st.libc, &st.maps, st.mem, HS_LIBC_LOCK_ATFORK, extra + nextra, 12 - nextra);
		r = hs_call_begin(pid, &st.libc, &st.maps, st.mem, extra, nextra, o->wait_ms, &st.ses, &rep->call, err);
	}
	if (r == 0 && (r = load(&st, err)) == 0)
		r = route(&st, err);
	if (r < 0 && st.ses)
		start_undo(&st);
	if (st.ses) {
		hs_session_undo(st.ses, NULL, NULL);
		hs_call_end(st.ses, &rep->call);
	}
	hs_inject_route_end(&st.rt);
	if (r == 0)
		r = hs_profile_session_open(pid, st.ctl, ps, err);
	free(st.plan);
	hs_got_release(&st.got);
	if (st.mem)
		hs_mem_close(st.mem);
	hs_libc_release(&st.libc);
	hs_maps_release(&st.maps);
	hs_maps_release(&st.maps2);
	return r;
}

/* ---- drain ---- */

int hs_profile_session_open(pid_t pid, uint64_t ctl, struct hs_profile_session *ps, struct hs_err *err)
{
	struct hs_sampler_ctl c;
	memset(ps, 0, sizeof(*ps));
	int r = ctl_read(pid, ctl, &c);
	if (r < 0)
		return hs_err_sys(err, -r, "cannot read the sampler's control block in pid %d", (int)pid);
	if (c.magic != HS_SAMPLER_MAGIC || c.abi != HS_SAMPLER_ABI || c.slots != HS_SAMPLER_SLOTS ||
	    c.slot_size != HS_SAMPLER_SLOT_SIZE)
		return hs_err_set(err, EPROTO, "no sampler control block of this version at 0x%" PRIx64, ctl);
	if (!(ps->buf = malloc((size_t)BATCH * HS_SAMPLER_SLOT_SIZE)))
		return hs_err_set(err, ENOMEM, "out of memory");
	ps->pid = pid;
	ps->ctl = ctl;
	ps->tail = c.tail;
	return 0;
}

void hs_profile_session_close(struct hs_profile_session *ps)
{
	free(ps->buf);
	ps->buf = NULL;
}

int hs_profile_drain(struct hs_profile_session *ps, struct hs_profile_data *d, struct hs_err *err)
{
	struct hs_sampler_ctl c;
	pid_t pid = ps->pid;
	int r = ctl_read(pid, ps->ctl, &c);
	if (r < 0)
		return r == -ESRCH ? hs_err_set(err, ESRCH, "pid %d is gone", (int)pid)
				   : hs_err_sys(err, -r, "cannot read the sampler's control block in pid %d", (int)pid);
	uint64_t base = ps->ctl + c.ring_offset;
	d->dropped = c.dropped;
	d->live_lost = c.live_lost;
	while (ps->tail < c.head) {
		/* 1. the seq words: which slots are complete (a slot is
		 * stable once its seq is seen: no producer reuses it before
		 * the tail passes it); 2. those slots, whole */
		uint64_t n = c.head - ps->tail;
		if (n > BATCH)
			n = BATCH;
		uint64_t seq[BATCH];
		struct iovec l[BATCH], rm[BATCH];
		for (uint64_t i = 0; i < n; i++) {
			l[i] = (struct iovec){ &seq[i], 8 };
			rm[i] = (struct iovec){ (void *)(uintptr_t)(base + ((ps->tail + i) & (HS_SAMPLER_SLOTS - 1)) *
								     (uint64_t)HS_SAMPLER_SLOT_SIZE), 8 };
		}
		if (process_vm_readv(pid, l, n, rm, n, 0) != (ssize_t)(8 * n))
			return hs_err_sys(err, errno ? errno : EIO, "cannot read the sampler's ring in pid %d", (int)pid);
		uint64_t k = 0;
		while (k < n && seq[k] == ps->tail + k + 1)
			k++;
		if (!k)
			break;   /* being written: the next drain */
		for (uint64_t i = 0; i < k; i++) {
			l[i] = (struct iovec){ ps->buf + i * HS_SAMPLER_SLOT_SIZE, HS_SAMPLER_SLOT_SIZE };
			rm[i].iov_len = HS_SAMPLER_SLOT_SIZE;
		}
		if (process_vm_readv(pid, l, k, rm, k, 0) != (ssize_t)(k * HS_SAMPLER_SLOT_SIZE))
			return hs_err_sys(err, errno ? errno : EIO, "cannot read the sampler's ring in pid %d", (int)pid);
		if (d->n + k > d->cap) {
			size_t nc = d->cap ? 2 * d->cap : 1024;
			while (nc < d->n + k)
				nc *= 2;
			struct hs_profile_sample *nv = realloc(d->v, nc * sizeof(*nv));
			if (!nv)
				return hs_err_set(err, ENOMEM, "out of memory for %zu samples", d->n + k);
			d->v = nv;
			d->cap = nc;
		}
		for (uint64_t i = 0; i < k; i++) {
			struct hs_profile_sample *s = &d->v[d->n];
			memcpy(&s->h, ps->buf + i * HS_SAMPLER_SLOT_SIZE, sizeof(s->h));
			s->stack = NULL;
			if (s->h.stack_len > HS_SAMPLER_STACK)
				s->h.stack_len = HS_SAMPLER_STACK;
			if (s->h.kind == HS_SAMPLE_ALLOC && s->h.stack_len) {
				if (!(s->stack = malloc(s->h.stack_len)))
					return hs_err_set(err, ENOMEM, "out of memory for samples");
				memcpy(s->stack, ps->buf + i * HS_SAMPLER_SLOT_SIZE + sizeof(s->h), s->h.stack_len);
			}
			d->n++;
		}
		ps->tail += k;
		if ((r = ctl_write(pid, ps->ctl + CTL_OFF(tail), &ps->tail, 8)) < 0)
			return hs_err_sys(err, -r, "cannot write the sampler's tail in pid %d", (int)pid);
		if (k < n)
			break;
	}
	return 0;
}

/* ---- stop ---- */

/* Every recorded slot must be a malloc-family slot of pid now, given
 * the sampler's wrapper of its name, to be put back to libc's function
 * (or the slot's unbound PLT stub).  Else nothing is written. */
static int check_record(pid_t pid, const struct hs_maps *maps, struct hs_mem *mem, const struct record *rec,
			uint64_t *ctl, struct hs_err *err)
{
	struct hs_got got = { 0 };
	uint64_t to[64] = { 0 };
	int r = find_slots(pid, maps, mem, &got, err);
	if (r < 0)
		return r;
	if ((r = sampler_lookup(pid, maps, &got, ctl, to, err)) < 0)
		goto out;
	for (size_t i = 0; i < rec->n && r == 0; i++) {
		const struct hs_poke *v = &rec->v[i];
		const struct hs_got_slot *sl = NULL;
		for (size_t k = 0; k < got.n && !sl; k++)
			if (got.v[k].addr == v->addr)
				sl = &got.v[k];
		size_t t = 0;
		while (sl && t < got.ntargets && strcmp(got.targets[t].name, sl->symbol))
			t++;
		uint64_t a = sl && sl->type == HS_GOT_ABS64 ? (uint64_t)sl->addend : 0;
		if (!sl || t >= got.ntargets || !to[t] || v->new != to[t] + a ||
		    (!(got.targets[t].libc_addr && v->old == got.targets[t].libc_addr + a) &&
		     !(sl->type == HS_GOT_JUMP_SLOT && sl->lazy && v->old == sl->lazy)))
			r = hs_err_set(err, EPERM, "the record's slot 0x%" PRIx64 " (0x%" PRIx64 " -> 0x%" PRIx64 ") is not a "
				       "malloc-family slot of pid %d routed to the sampler: refused, nothing written",
				       v->addr, v->old, v->new, (int)pid);
	}
out:
	hs_got_release(&got);
	return r;
}

int hs_profile_stop(pid_t pid, int wait_ms, struct hs_profile_session *ps, struct hs_profile_report_start *rep,
		    struct hs_err *err)
{
	memset(rep, 0, sizeof(*rep));
	struct record rec;
	struct hs_maps maps = { 0 };
	struct hs_mem *mem = NULL;
	uint64_t ctl = 0;
	int r = record_read(pid, &rec, err);
	if (r == -ENOENT || r == -EINVAL)
		return hs_err_set(err, ENOENT, "no profile of pid %d is recorded", (int)pid);
	if (r < 0)
		return r;
	snprintf(rep->sampler, sizeof(rep->sampler), "%s", rec.sampler);
	if ((r = hs_maps_read(pid, false, &maps, err)) < 0 || (r = hs_mem_open_pid(pid, &mem, err)) < 0)
		goto out;
	uint64_t lo, hi;
	if (hs_inject_mapped_object(pid, &maps, SAMPLER_PREFIX, NULL, &lo, &hi) < 0) {
		/* not loaded (a new process image, say): nothing of ours is left */
		hs_state_remove(pid, KIND);
		r = hs_err_set(err, ENOENT, "%s is not loaded in pid %d: nothing to undo", rec.sampler, (int)pid);
		goto out;
	}
	if ((r = check_record(pid, &maps, mem, &rec, &ctl, err)) < 0)
		goto out;
	/* slots back, sampler off: every thread stopped, so that no call
	 * enters a wrapper after the sampler is off; threads already inside
	 * one finish there (it only calls libc) */
	struct hs_session *ses;
	if ((r = hs_call_attach(pid, hs_call_deadline(wait_ms), &ses, &rep->call, err)) < 0)
		goto out;
	rep->left = hs_inject_put_back(ses, rec.v, rec.n);
	rep->slots = rec.n - rep->left;
	uint32_t off = 0;
	int w = ctl_write(pid, ctl + CTL_OFF(enabled), &off, 4);
	hs_session_detach(ses, NULL);
	rep->call.pause_us += hs_session_last_pause_us();
	if (w < 0) {
		r = hs_err_sys(err, -w, "the slots are back, but the sampler could not be switched off");
		goto out;
	}
	hs_state_remove(pid, KIND);
	if (ps && !ps->buf)
		r = hs_profile_session_open(pid, ctl, ps, err);
out:
	free(rec.v);
	if (mem)
		hs_mem_close(mem);
	hs_maps_release(&maps);
	return r;
}

int hs_profile_status(pid_t pid, struct hs_profile_status *st, struct hs_err *err)
{
	memset(st, 0, sizeof(*st));
	struct record rec;
	int r = record_read(pid, &rec, NULL);
	if (r == 0) {
		st->recorded = true;
		st->slots = rec.n;
		snprintf(st->sampler, sizeof(st->sampler), "%s", rec.sampler);
		free(rec.v);
	}
	struct hs_maps maps = { 0 };
	if ((r = hs_maps_read(pid, false, &maps, err)) < 0)
		return r;
	struct hs_libc lib;
	uint64_t lo, hi;
	if (hs_inject_mapped_object(pid, &maps, SAMPLER_PREFIX, &lib, &lo, &hi) == 0) {
		st->loaded = true;
		if (!st->sampler[0])
			snprintf(st->sampler, sizeof(st->sampler), "%s", lib.map_path);
		if (hs_libc_lookup_object(&lib, "hs_sampler_ctl", &st->ctl_addr) == 0)
			ctl_read(pid, st->ctl_addr, &st->ctl);
	}
	hs_maps_release(&maps);
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int hs_profile_collect(struct hs_profile_session *ps, const struct hs_profile_collect_opts *o,
		       struct hs_profile_data *d, struct hs_profile_collect_report *rep, struct hs_err *err)
{
	pid_t pid = ps->pid;
	memset(rep, 0, sizeof(*rep));
	d->t_start_ns = mono_ns();
	uint64_t deadline = o->duration > 0 ? d->t_start_ns + (uint64_t)(o->duration * 1e9) : 0;
	while (!(o->stop && *o->stop) && (!deadline || mono_ns() < deadline)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		if (hs_profile_drain(ps, d, &rep->drain_err) < 0) {
			/* a process gone is said below, not as a drain error */
			if (!hs_proc_alive(pid))
				rep->drain_err.msg[0] = '\0';
			break;
		}
	}
	d->t_end_ns = mono_ns();
	if (!hs_proc_alive(pid)) {
		hs_profile_session_close(ps);
		return hs_err_set(err, ESRCH, "pid %d exited while sampled", (int)pid);
	}
	rep->stop_r = hs_profile_stop(pid, o->wait_ms > 10000 ? o->wait_ms : 10000, NULL, &rep->stop, &rep->stop_err);
	/* what the threads wrote before the sampler went off */
	struct hs_err e2;
	rep->partial = rep->drain_err.msg[0] || rep->stop_r < 0 || hs_profile_drain(ps, d, &e2) < 0;
	hs_profile_session_close(ps);
	return 0;
}
