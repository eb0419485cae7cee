# Helpers for heapscope's shell tests; source it from bash (set -eu friendly):
#
#   . "$(dirname "$0")/../lib.sh"
#
# Exit statuses, as in strace's and automake's test drivers: 0 pass, 1 fail,
# 77 skip, 99 harness error (the test itself could not run properly).
#
# Environment:
#   HEAPSCOPE    path to the heapscope binary (required)
#   TARGETS_DIR  directory holding the compiled target programs (for target())
#
# Sets: HS (the binary), HS_TMP (a private temporary directory, removed on
# exit), and after start_target: TARGET_PID, TARGET_OUT.  Every process
# started with start_target or registered with track_pid is killed on exit.
# ok and not_ok print a TAP line; not_ok also sets failed=1, which a test
# checks at its end ([ "$failed" = 0 ]).

# shellcheck disable=SC2034 # (file-wide) HS, TARGET_* are set for the tests
ME=${0##*/}

framework_failure()
{
	printf '%s: harness error: %s\n' "$ME" "$*" >&2
	exit 99
}

failed=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failed=1; }

skip()
{
	printf 'SKIP: %s\n' "$*"
	exit 77
}

fail()
{
	printf 'FAIL: %s: %s\n' "$ME" "$*"
	exit 1
}

need_cmd()
{
	command -v "$1" >/dev/null 2>&1 || skip "$1 not found"
}

[ -n "${HEAPSCOPE:-}" ] ||
	framework_failure "HEAPSCOPE is not set (path to the heapscope binary)"
[ -x "$HEAPSCOPE" ] ||
	framework_failure "HEAPSCOPE=$HEAPSCOPE is not an executable file"
HS=$HEAPSCOPE

# target NAME: path of a compiled target program in TARGETS_DIR
target()
{
	[ -n "${TARGETS_DIR:-}" ] ||
		framework_failure "TARGETS_DIR is not set (directory of compiled targets)"
	[ -x "$TARGETS_DIR/$1" ] ||
		framework_failure "target program $TARGETS_DIR/$1 not found"
	printf '%s\n' "$TARGETS_DIR/$1"
}

HS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/heapscope-test.XXXXXX") ||
	framework_failure "mktemp -d failed"
# A private, empty layout cache: the first run of each test reads DWARF,
# later runs read the cache, so both paths are exercised.
export XDG_CACHE_HOME=$HS_TMP/cache
export HEAPSCOPE_STATE_DIR=$HS_TMP/state

_hs_pids=
_hs_nstarted=0

# track_pid PID: kill PID when the test exits
track_pid()
{
	_hs_pids="$_hs_pids $1"
}

untrack_pid()
{
	local p rest=
	for p in $_hs_pids; do
		[ "$p" = "$1" ] || rest="$rest $p"
	done
	_hs_pids=$rest
}

# alive PID: the process exists and is not a zombie
alive()
{
	local state
	state=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' \
		"/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

_hs_cleanup()
{
	local rc=$? p i
	trap - EXIT
	set +e
	for p in $_hs_pids; do
		# CONT too: a target left stopped would not act on TERM
		kill -TERM "$p" 2>/dev/null && kill -CONT "$p" 2>/dev/null
	done
	for p in $_hs_pids; do
		for i in 1 2 3 4 5 6 7 8 9 10; do
			alive "$p" || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$HS_TMP"
	exit "$rc"
}
trap _hs_cleanup EXIT
trap 'exit 99' HUP INT TERM

# start_target CMD [ARGS...]: run a target in the background (stdout to
# $TARGET_OUT, stderr to $TARGET_OUT.err), wait up to 10 s for its
# "READY <pid>" line, set TARGET_PID.  MALLOC_PERTURB_ is pinned to 0 (meson
# sets a random one) so that freed memory holds what glibc put there.
start_target()
{
	local pid out i=0

	_hs_nstarted=$((_hs_nstarted + 1))
	out=$HS_TMP/target.$_hs_nstarted.out
	MALLOC_PERTURB_=0 "$@" >"$out" 2>"$out.err" </dev/null &
	pid=$!
	track_pid "$pid"
	while ! grep -q '^READY ' "$out"; do
		alive "$pid" ||
			framework_failure "target '$*' exited before READY: $(cat "$out" "$out.err")"
		i=$((i + 1))
		[ "$i" -le 100 ] ||
			framework_failure "target '$*' not READY after 10 s"
		sleep 0.1
	done
	TARGET_PID=$(sed -n 's/^READY \([0-9][0-9]*\)$/\1/p' "$out" | head -n 1)
	[ "$TARGET_PID" = "$pid" ] ||
		framework_failure "target '$*' says READY '$TARGET_PID', its pid is $pid"
	TARGET_OUT=$out
}

# wait_target PID [TIMEOUT_S]: wait for a started target to exit (default
# 10 s) and set TARGET_STATUS to its exit status (128+N if killed by signal N)
wait_target()
{
	local pid=$1 limit=$((${2:-10} * 10)) i=0

	while alive "$pid"; do
		i=$((i + 1))
		[ "$i" -le "$limit" ] || fail "pid $pid did not exit within ${2:-10} s"
		sleep 0.1
	done
	TARGET_STATUS=0
	wait "$pid" || TARGET_STATUS=$?
	untrack_pid "$pid"
}

# check_untouched PID: after heapscope has gone, every thread of PID must be
# untraced (TracerPid 0) and sleeping (State S), not stopped (t/T).  A thread
# may need a moment to get back into its syscall after the detach, so retry
# for up to 2 s.  Returns 1 with the reason on stderr.
check_untouched()
{
	local pid=$1 i=0 task tracer state bad

	while :; do
		bad=
		[ -d "/proc/$pid/task" ] || { echo "pid $pid is gone" >&2; return 1; }
		for task in /proc/"$pid"/task/*; do
			tracer=$(sed -n 's/^TracerPid:[[:space:]]*//p' "$task/status" 2>/dev/null) || continue
			state=$(sed -n 's/^State:[[:space:]]*//p' "$task/status" 2>/dev/null) || continue
			if [ "$tracer" != 0 ]; then
				bad="thread ${task##*/} of pid $pid is traced by pid $tracer"
				break
			fi
			case $state in
			S*) ;;
			*) bad="thread ${task##*/} of pid $pid is in state '$state', not S"
			   break ;;
			esac
		done
		[ -n "$bad" ] || return 0
		i=$((i + 1))
		if [ "$i" -gt 20 ]; then
			echo "$bad" >&2
			return 1
		fi
		sleep 0.1
	done
}

# ptrace_ok PID: skip the test (77) unless we may ptrace PID.  Tries a real
# PTRACE_SEIZE (which does not stop the tracee; our tracer's exit detaches),
# so a refusal by yama, a missing CAP_SYS_PTRACE or a seccomp filter of the
# container shows up here as a skip, never as a heapscope failure.
ptrace_ok()
{
	local pid=$1 scope='' msg

	if [ -r /proc/sys/kernel/yama/ptrace_scope ]; then
		scope=$(cat /proc/sys/kernel/yama/ptrace_scope)
		[ "$scope" != 3 ] ||
			skip "kernel.yama.ptrace_scope=3: ptrace is disabled"
	fi
	if ! command -v python3 >/dev/null 2>&1; then
		# no way to try: the targets are our children, so yama 1 is fine
		if [ "$scope" = 2 ] && [ "$(id -u)" != 0 ]; then
			skip "kernel.yama.ptrace_scope=2 and not root"
		fi
		return 0
	fi
	# a process inside execve refuses a seize for an instant (not yet
	# dumpable): try again before calling it a permission problem
	local try
	for try in 1 2 3 4 5 6 7 8 9 10; do
	if ! msg=$(python3 - "$pid" <<'EOF' 2>&1
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_SEIZE = 0x4206
if libc.ptrace(PTRACE_SEIZE, int(sys.argv[1]), None, None) != 0:
    e = ctypes.get_errno()
    print(f"{errno.errorcode.get(e, e)}: {os.strerror(e)}")
    sys.exit(1 if e in (errno.EPERM, errno.EACCES) else 2)
EOF
	); then
		case $msg in
		EPERM*|EACCES*)
			[ "$try" -lt 10 ] && { sleep 0.05; continue; }
			skip "may not ptrace pid $pid ($msg; see kernel.yama.ptrace_scope, CAP_SYS_PTRACE, seccomp)" ;;
		*)
			framework_failure "PTRACE_SEIZE probe of pid $pid failed: $msg" ;;
		esac
	fi
	break
	done
	# the probe's exit detached it; make sure the kernel agrees
	check_untouched "$pid" || framework_failure "ptrace probe left pid $pid traced"
}

# arena_heap_range PID: 0xSTART-0xEND of the first 64 MiB-aligned rw-p
# anonymous mapping of PID (a thread arena's heap), or nothing
arena_heap_range()
{
	awk '$2 == "rw-p" && NF == 5 {
		split($1, a, "-")
		n = length(a[1])
		if (n > 7 && substr(a[1], n - 5) == "000000" && index("048c", substr(a[1], n - 6, 1))) {
			print "0x" a[1] "-0x" a[2]
			exit
		}
	}' "/proc/$1/maps"
}

# wait_traced PID [TRIES]: wait (0.01 s a try, 500 by default) until PID
# is traced by someone; 0 when it is
wait_traced()
{
	local pid=$1 tries=${2:-500} i=0
	while [ "$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)" = 0 ] && [ $i -lt "$tries" ]; do
		i=$((i + 1))
		sleep 0.01
	done
	[ "$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)" != 0 ]
}

# churn_released PID: the churn target PID (its threads running, not
# asleep: not check_untouched) is untraced and not stopped; then its own
# check of every block it holds (SIGUSR1, "CHECK OK" in TARGET_OUT).  ok or
# not_ok lines for both.
churn_released()
{
	local pid=$1
	sleep 0.2
	if grep -H -E '^(TracerPid:[[:space:]]*[1-9]|State:[[:space:]]*[tT])' /proc/"$pid"/task/*/status; then
		not_ok "churn left traced or stopped"
	else
		ok "churn left untraced and running"
	fi
	kill -USR1 "$pid"
	wait_target "$pid" || true
	grep -q '^CHECK OK' "$TARGET_OUT" && ok "churn's own check of its blocks passes" ||
		not_ok "churn's check: $(grep CHECK "$TARGET_OUT" || echo none)"
}

# need_malloc_debug: DBG, glibc's libc_malloc_debug.so.0 (mtrace's home
# since 2.34), or skip
need_malloc_debug()
{
	DBG=$(ls /lib/x86_64-linux-gnu/libc_malloc_debug.so.0 /usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0 2>/dev/null |
		head -1)
	[ -n "$DBG" ] || skip "libc_malloc_debug.so.0 not found (glibc < 2.34?)"
}

# need_syscall_nrs: NR_WRITE, NR_WRITEV and NR_OPENAT of this machine, and
# /proc/PID/syscall to see them in, or skip
need_syscall_nrs()
{
	case $(uname -m) in
	x86_64) NR_WRITE=1 NR_WRITEV=20 NR_OPENAT=257 ;;
	aarch64|riscv64) NR_WRITE=64 NR_WRITEV=66 NR_OPENAT=56 ;;
	*) skip "no system call numbers known for $(uname -m)" ;;
	esac
	[ -r /proc/self/syscall ] || skip "/proc/PID/syscall is not available"
}

# in_write DIR: the thread of /proc/PID or /proc/PID/task/TID sleeps in
# write(2) or writev(2) (need_syscall_nrs first)
in_write()
{
	local nr state
	read -r nr _ <"$1/syscall" 2>/dev/null || return 1
	state=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "$1/status" 2>/dev/null)
	{ [ "$nr" = "$NR_WRITE" ] || [ "$nr" = "$NR_WRITEV" ]; } && [ "$state" = S ]
}

# thread_in_write PID: one of PID's threads sleeps in write(2) or writev(2)
thread_in_write()
{
	local t
	for t in /proc/"$1"/task/*; do
		in_write "$t" && return 0
	done
	return 1
}

# wait_or_kill PID: wait up to 30 s for PID, a child of this shell, to
# exit; RC its exit status.  Still running then: killed, and 1.
wait_or_kill()
{
	local i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 300 ]; do
		i=$((i + 1))
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
		return 1
	fi
	RC=0
	wait "$1" || RC=$?
}

# need_strace: strace is there to trace heapscope, and LeakSanitizer (an
# ASan build's) is off, since it cannot run under a tracer
need_strace()
{
	need_cmd strace
	export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0"
}

# start_textheap: textheap with 16 MiB of text lines in its arena heap (P,
# range), the heap read raw to $HS_TMP/raw and its strings -n 10 to
# $HS_TMP/expect
start_textheap()
{
	start_target "$(target textheap)" 16
	P=$TARGET_PID
	ptrace_ok "$P"
	range=$(arena_heap_range "$P")
	[ -n "$range" ] || framework_failure "no arena heap in $(cat /proc/"$P"/maps)"
	timeout -k 5 60 "$HS" dump "$P" "$range" >"$HS_TMP/raw"
	strings -n 10 "$HS_TMP/raw" >"$HS_TMP/expect"
}

# arenas_match_malloc_info JSON MALLOC_INFO: arenas --json's fastbins (count,
# bytes) and bin chunks agree with the target's own malloc_info, arena by
# arena (0, or a message on stderr)
arenas_match_malloc_info()
{
	python3 - "$1" "$2" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
heaps = re.findall(r'<heap nr="(\d+)">(.*?)</heap>', open(sys.argv[2]).read(), re.S)
assert len(heaps) == len(d["arenas"]), (len(heaps), len(d["arenas"]))
for (nr, body), a in zip(heaps, d["arenas"]):
    fast = [int(x) for x in re.search(r'<total type="fast" count="(\d+)" size="(\d+)"/>', body).groups()]
    rest = [int(x) for x in re.search(r'<total type="rest" count="(\d+)" size="(\d+)"/>', body).groups()]
    assert [a["fastbin_chunks"], a["free_fastbins"]] == fast, (nr, a["fastbin_chunks"], a["free_fastbins"], fast)
    assert a["bin_chunks"] + 1 == rest[0], (nr, a["bin_chunks"], rest)
PY
}
