/* heapscope mtrace: glibc's allocation trace switched on and off in a live
 * process, and its log summarised. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "format.h"
#include "inject.h"
#include "libc.h"
#include "proc.h"
#include "session.h"
#include "state.h"
#include "trim.h"

static const char help[] =
	"usage: heapscope mtrace start [--file PATH] PID\n"
	"       heapscope mtrace stop PID\n"
	"       heapscope mtrace status PID\n"
	"       heapscope mtrace report [--top K] [--json] FILE\n"
	"\n"
	"start: set MALLOC_TRACE=PATH in PID and call glibc's mtrace(); stop: call\n"
	"muntrace().  On glibc 2.34 and later the tracer lives in libc_malloc_debug.so,\n"
	"and traces only a process that loaded it at start (LD_PRELOAD); without it,\n"
	"nothing is done to the target and the exit status is 2.  The calls are made\n"
	"only when no thread is inside malloc, as heapscope trim makes them.\n"
	"PATH (default /tmp/mtrace.PID.log) is opened by the target, inside its own\n"
	"mount namespace.\n"
	"Starting while the target traces, or stopping while it does not, is refused.\n"
	"status: whether PID is tracing, and into which file (its open log).\n"
	"report: the blocks a trace log shows allocated and never freed, grouped by\n"
	"caller, largest first.\n"
	"\n"
	"  --file PATH      where the target writes the trace\n"
	"  --wait MS        how long to retry while a thread is inside malloc (3000)\n"
	"  --top K          report: the K callers with most bytes (default 20)\n"
	"  --json           one JSON document\n"
	"  -h, --help       this help\n";

/* The mtrace and muntrace to call: libc_malloc_debug.so's (2.34+, only
 * when loaded) or libc's own (before 2.34). */
static int tracer(const struct hs_snapshot *s, struct hs_libc *dbg, bool *have_dbg, const char **why)
{
	*have_dbg = false;
	if (s->libc.major == 2 && s->libc.minor < 34) {
		*dbg = s->libc;
		return 0;
	}
	for (size_t i = 0; i < s->maps.n; i++) {
		const struct hs_mapping *m = &s->maps.v[i];
		const char *b = strrchr(m->path, '/');
		if (b && !strncmp(b + 1, "libc_malloc_debug.so", 20) && m->offset == 0) {
			memset(dbg, 0, sizeof(*dbg));
			snprintf(dbg->file, sizeof(dbg->file), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)s->pid, m->start,
				 m->end);
			snprintf(dbg->map_path, sizeof(dbg->map_path), "%s", m->path);
			dbg->base = m->start;   /* its first PT_LOAD is at vaddr 0 */
			*have_dbg = true;
			return 0;
		}
	}
	*why = "glibc 2.34 and later keep mtrace in libc_malloc_debug.so, and this process did not load it: "
	       "libc.so.6's mtrace() is an empty stub and tracing cannot start without a restart; restart it with "
	       "LD_PRELOAD=libc_malloc_debug.so.0 (and MALLOC_TRACE=FILE), or use heapscope chunks/bins now";
	return -ENOTSUP;
}

/* Is pid tracing, and into which file?  glibc's tracer keeps its log open
 * from mtrace() to muntrace().  heapscope's own start is recorded (the log
 * may still be empty, its "= Start" in the target's stdio buffer); a trace
 * started otherwise is seen by its log's first line. */
static bool tracing(pid_t pid, char *file, size_t len)
{
	char rec[PATH_MAX + 16];
	if (hs_state_read(pid, "mtrace", rec, sizeof(rec)) == 0 && !strncmp(rec, "file ", 5)) {
		rec[strcspn(rec, "\n")] = '\0';
		if (hs_proc_has_open(pid, rec + 5) == 0) {
			snprintf(file, len, "%s", rec + 5);
			return true;
		}
		hs_state_remove(pid, "mtrace");   /* stopped by someone else */
	}
	return hs_proc_open_file_with(pid, "= Start", file, len) == 0;
}

static int status_cmd(struct hs_cli *cli, pid_t pid)
{
	struct hs_proc_status ps;
	struct hs_err err = { 0 };
	if (hs_proc_check(pid, false, &ps, &err) < 0)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
	char file[PATH_MAX];
	bool on = tracing(pid, file, sizeof(file));
	if (cli->json) {
		struct hs_json *j = &cli->j;
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", pid);
		hs_json_bool(j, "tracing", on);
		if (on)
			hs_json_str(j, "file", file);
		hs_json_obj_end(j);
		hs_json_finish(j);
	} else if (on) {
		printf("pid %d is tracing into %s\n", (int)pid, file);
	} else {
		printf("pid %d is not tracing\n", (int)pid);
	}
	return HS_EXIT_OK;
}

static int start_stop(struct hs_cli *cli, bool start, const char *file, int wait_ms, pid_t pid)
{
	struct hs_snapshot s;
	struct hs_snapshot_opts o;
	hs_cli_snapshot_opts(cli, &o);
	o.residency = false;
	o.walk = 0;
	struct hs_err err = { 0 };
	int status = HS_EXIT_OK;
	if (hs_snapshot_take(pid, &o, &s, &err) < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", err.msg);
		hs_snapshot_release(&s);
		return status;
	}
	/* mtrace() while tracing does nothing, muntrace() while not does
	 * nothing: say so rather than call */
	char current[PATH_MAX];
	bool on = tracing(pid, current, sizeof(current));
	if (start && on) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "pid %d is already tracing into %s: nothing done (stop it first)",
				     (int)pid, current);
		goto out;
	}
	if (!start && !on) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "pid %d is not tracing: nothing to stop", (int)pid);
		goto out;
	}
	struct hs_libc dbg;
	bool have_dbg;
	const char *why = NULL;
	if (tracer(&s, &dbg, &have_dbg, &why) < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s", why);
		goto out;
	}
	struct hs_call calls[2];
	memset(calls, 0, sizeof(calls));
	size_t n = 0;
	char data[4096];
	char path[1024];
	snprintf(path, sizeof(path), "%s", file);
	if (start) {
		/* setenv("MALLOC_TRACE", path, 1): both strings on the stack */
		int k = snprintf(data, sizeof(data), "MALLOC_TRACE%c%s", 0, path);
		if (k <= 0 || (size_t)k >= sizeof(data) || hs_libc_lookup(&s.libc, "setenv", &calls[0].func) < 0) {
			status = hs_cli_fail(cli, HS_EXIT_FATAL, "cannot set up setenv in the target");
			goto out;
		}
		calls[0].args[0] = HS_CALL_DATA(0);
		calls[0].args[1] = HS_CALL_DATA(13);
		calls[0].args[2] = 1;
		calls[0].nargs = 3;
		calls[0].data = data;
		calls[0].dlen = (size_t)k + 1;
		n = 1;
	}
	if (hs_libc_lookup(&dbg, start ? "mtrace" : "muntrace", &calls[n].func) < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s not found in %s", start ? "mtrace" : "muntrace", dbg.map_path);
		goto out;
	}
	n++;
	struct hs_call_report rep = { 0 };
	/* stop: muntrace() clears the stream that a thread inside the tracer
	 * may be about to write to; no thread may be in there */
	struct hs_code_range extra[1];
	size_t nextra = start ? 0 : hs_inject_tracer_code(&s.maps, extra, 1);
	int r = hs_call_safely(pid, &s.libc, &s.maps, s.mem, extra, nextra, calls, n, wait_ms, 10000, &rep, &err);
	if (r == -EAGAIN) {
		status = hs_cli_fail(cli, HS_EXIT_REFUSED, "not safe to call into malloc within %d ms: %s (nothing was called)",
				     wait_ms, rep.unsafe);
		goto out;
	}
	if (r < 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "%s%s", err.msg,
				     rep.done && r != -ETIMEDOUT && r != -ESRCH && r != -ENOTSUP ? " (the thread was put back as it was)"
										 : "");
		goto out;
	}
	if (start && rep.ret[0] != 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "setenv failed in the target (returned %d)", (int)rep.ret[0]);
		goto out;
	}
	/* what the target did, seen from outside: its log open, or closed */
	if (start && (path[0] != '/' || hs_proc_has_open(pid, path) < 0)) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL,
				     "mtrace() ran but opened no %s: tracing is not on (a setuid process ignores "
				     "MALLOC_TRACE; a relative path is the target's cwd)", path);
		goto out;
	}
	if (!start && hs_proc_has_open(pid, file) == 0) {
		status = hs_cli_fail(cli, HS_EXIT_FATAL, "muntrace() ran but %s is still open: tracing is still on", file);
		goto out;
	}
	char rec[PATH_MAX + 16];
	snprintf(rec, sizeof(rec), "file %s\n", path);
	if (start && hs_state_write(pid, "mtrace", rec, &err) < 0)
		hs_cli_warn(cli, "%s: heapscope mtrace status and a second start cannot know of this trace until its log "
			    "has data", err.msg);
	if (!start)
		hs_state_remove(pid, "mtrace");
	if (cli->json) {
		struct hs_json *j = &cli->j;
		hs_json_obj_begin(j, NULL);
		hs_json_i64(j, "pid", pid);
		hs_json_str(j, "action", start ? "start" : "stop");
		hs_json_bool(j, "tracing", start);
		hs_json_str(j, "file", start ? path : file);
		hs_json_str(j, "tracer", have_dbg ? dbg.map_path : s.libc.map_path);
		hs_json_i64(j, "thread", rep.tid);
		hs_json_u64(j, "attempts", (uint64_t)rep.attempts);
		hs_json_u64(j, "pause_us", rep.pause_us);
		hs_json_u64(j, "call_us", rep.call_us);
		hs_json_obj_end(j);
		hs_json_finish(j);
	} else if (start) {
		printf("tracing pid %d into %s, from %s; stop with: heapscope mtrace stop %d\n", (int)pid, path,
		       have_dbg ? dbg.map_path : s.libc.map_path, (int)pid);
	} else {
		printf("tracing of pid %d stopped: %s closed (muntrace() called in thread %d)\n", (int)pid, file,
		       (int)rep.tid);
	}
out:
	hs_snapshot_release(&s);
	return status;
}

struct live {
	uint64_t addr, size;
	char caller[160];
	bool used;
};

struct bycaller {
	char caller[160];
	uint64_t count, bytes;
};

static int cmp_by(const void *x, const void *y)
{
	const struct bycaller *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	return strcmp(a->caller, b->caller);
}

/* The "memory not freed" of a trace log, as glibc's mtrace script finds
 * it, grouped by caller. */
static int report(struct hs_cli *cli, const char *file, long topk)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return hs_cli_fail(cli, HS_EXIT_FATAL, "cannot open %s: %s", file, strerror(errno));
	size_t cap = 1 << 16, n = 0;
	struct live *tab = calloc(cap, sizeof(*tab));
	if (!tab) {
		fclose(f);
		return hs_cli_fail(cli, HS_EXIT_FATAL, "out of memory");
	}
	char line[1024], caller[160] = "";
	uint64_t lines = 0, bad = 0;
	while (fgets(line, sizeof(line), f)) {
		lines++;
		char *p = line;
		caller[0] = '\0';
		if (p[0] == '@') {
			/* "@ CALLER OP ..." */
			char *sp = strchr(p + 2, ' ');
			if (!sp)
				continue;
			snprintf(caller, sizeof(caller), "%.*s", (int)(sp - p - 2), p + 2);
			p = sp + 1;
		}
		char op;
		unsigned long long a, sz = 0;
		if (sscanf(p, "%c %llx %llx", &op, &a, &sz) < 2)
			continue;
		if (op == '+' || op == '>') {
			if (n * 2 >= cap) {   /* grow the open-addressed table */
				struct live *nt = calloc(cap * 2, sizeof(*nt));
				if (!nt)
					break;
				for (size_t i = 0; i < cap; i++)
					if (tab[i].used) {
						size_t j = (tab[i].addr >> 4) & (cap * 2 - 1);
						while (nt[j].used)
							j = (j + 1) & (cap * 2 - 1);
						nt[j] = tab[i];
					}
				free(tab);
				tab = nt;
				cap *= 2;
			}
			size_t j = (a >> 4) & (cap - 1);
			while (tab[j].used && tab[j].addr != a)
				j = (j + 1) & (cap - 1);
			if (!tab[j].used)
				n++;
			tab[j] = (struct live){ a, sz, "", true };
			snprintf(tab[j].caller, sizeof(tab[j].caller), "%s", caller[0] ? caller : "(unknown)");
		} else if (op == '-' || op == '<') {
			size_t j = (a >> 4) & (cap - 1);
			while (tab[j].used && tab[j].addr != a)
				j = (j + 1) & (cap - 1);
			if (!tab[j].used) {
				bad += op == '-';   /* freed what the trace never saw allocated */
				continue;
			}
			/* remove, keeping the probe chains whole */
			tab[j].used = false;
			n--;
			for (size_t k = (j + 1) & (cap - 1); tab[k].used; k = (k + 1) & (cap - 1)) {
				struct live e = tab[k];
				tab[k].used = false;
				size_t h = (e.addr >> 4) & (cap - 1);
				while (tab[h].used)
					h = (h + 1) & (cap - 1);
				tab[h] = e;
			}
		}
	}
	fclose(f);
	struct bycaller *by = calloc(n + 1, sizeof(*by));
	size_t nb = 0;
	uint64_t tot = 0, cnt = 0;
	for (size_t i = 0; by && i < cap; i++) {
		if (!tab[i].used)
			continue;
		size_t k;
		for (k = 0; k < nb && strcmp(by[k].caller, tab[i].caller); k++)
			;
		if (k == nb)
			snprintf(by[nb++].caller, sizeof(by[0].caller), "%s", tab[i].caller);
		by[k].count++;
		by[k].bytes += tab[i].size;
		tot += tab[i].size;
		cnt++;
	}
	if (by)
		qsort(by, nb, sizeof(*by), cmp_by);
	char fsz[HS_SIZE_BUF];
	if (cli->json) {
		struct hs_json *j = &cli->j;
		hs_json_obj_begin(j, NULL);
		hs_json_str(j, "file", file);
		hs_json_u64(j, "lines", lines);
		hs_json_u64(j, "not_freed", cnt);
		hs_json_u64(j, "not_freed_bytes", tot);
		hs_json_u64(j, "freed_unknown", bad);
		hs_json_arr_begin(j, "callers");
		for (size_t k = 0; k < nb && (long)k < topk; k++) {
			hs_json_obj_begin(j, NULL);
			hs_json_str(j, "caller", by[k].caller);
			hs_json_u64(j, "count", by[k].count);
			hs_json_u64(j, "bytes", by[k].bytes);
			hs_json_obj_end(j);
		}
		hs_json_arr_end(j);
		hs_json_obj_end(j);
		hs_json_finish(j);
	} else {
		printf("%" PRIu64 " blocks (%s) allocated and not freed in %s:\n", cnt, hs_fmt_size(tot, fsz), file);
		printf("%10s %10s  %s\n", "BLOCKS", "BYTES", "CALLER");
		for (size_t k = 0; k < nb && (long)k < topk; k++)
			printf("%10" PRIu64 " %10" PRIu64 "  %s\n", by[k].count, by[k].bytes, by[k].caller);
	}
	free(by);
	free(tab);
	return HS_EXIT_OK;
}

int cmd_mtrace(struct hs_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "wait", required_argument, NULL, 'w' },
		{ "top", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *file = NULL;
	int wait_ms = 3000;
	long topk = 20;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'f': file = optarg; break;
		case 'w':
			wait_ms = (int)strtol(optarg, &end, 10);
			if (*end || wait_ms < 0)
				return hs_cli_usage(cli, "--wait takes milliseconds");
			break;
		case 't':
			topk = strtol(optarg, &end, 10);
			if (*end || topk < 1)
				return hs_cli_usage(cli, "--top takes a positive count");
			break;
		case 'j': cli->json = true; break;
		case 'h': fputs(help, stdout); return HS_EXIT_OK;
		default: return hs_cli_usage(cli, "bad option");
		}
	}
	if (optind >= argc)
		return hs_cli_usage(cli, "missing start, stop, status or report");
	const char *what = argv[optind++];
	if (!strcmp(what, "report")) {
		if (optind + 1 != argc)
			return hs_cli_usage(cli, "report takes one FILE");
		return report(cli, argv[optind], topk);
	}
	if (strcmp(what, "start") && strcmp(what, "stop") && strcmp(what, "status"))
		return hs_cli_usage(cli, "'%s': start, stop, status or report", what);
	pid_t pid;
	int r = hs_cli_pid(cli, argc, argv, optind, &pid);
	if (r)
		return r;
	if (!strcmp(what, "status"))
		return status_cmd(cli, pid);
	char def[PATH_MAX];
	if (!strcmp(what, "stop")) {
		if (file)
			return hs_cli_usage(cli, "stop takes no --file: it stops the log the target has open");
		if (!tracing(pid, def, sizeof(def)))
			def[0] = '\0';
		file = def;
	} else if (!file) {
		snprintf(def, sizeof(def), "/tmp/mtrace.%d.log", (int)pid);
		file = def;
	}
	return start_stop(cli, !strcmp(what, "start"), file, wait_ms, pid);
}
