#!/bin/bash
# libc locks a remote call takes besides the arenas': mtrace()'s fopen and
# muntrace()'s fclose take stdio's stream list lock, which fflush(NULL)
# holds while it writes every stream.  A thread blocked there (a stream on
# a full pipe) holds it for good: mtrace start and stop, plain and
# --inject, must refuse (exit 75), not call into that lock (the target's
# calling thread would wait in fopen until the pipe drains, heapscope with
# it, long past --timeout).  Once the lock is free, they work.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_malloc_debug
need_syscall_nrs

# held PID / free PID: the flusher blocked in fflush(NULL), or let go
held()
{
	kill -USR1 "$1"
	for _ in $(seq 200); do thread_in_write "$1" && return 0; sleep 0.05; done
	framework_failure "the target's thread never blocked in fflush(NULL)"
}
free_lock()
{
	kill -USR2 "$1"
	for _ in $(seq 200); do thread_in_write "$1" || return 0; sleep 0.05; done
	framework_failure "the target's fflush(NULL) never returned"
}

# refused PID WHAT ARGS...: heapscope ARGS must exit 75 within 5 s naming
# stdio's lock; if it still runs (the old failure) the lock is let go so
# that it ends
refused()
{
	local p=$1 what=$2 rc=0 hs waited=
	shift 2
	timeout -k 5 120 "$HS" "$@" >"$HS_TMP/out" 2>"$HS_TMP/err" &
	hs=$!
	for _ in $(seq 100); do kill -0 "$hs" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$hs" 2>/dev/null && { waited=1; kill -USR2 "$p"; }
	wait "$hs" || rc=$?
	if [ -z "$waited" ] && [ "$rc" = 75 ] && grep -q "stdio's stream list lock .* is held" "$HS_TMP/err"; then
		ok "$what, stdio's list lock held: refused (exit 75): $(cat "$HS_TMP/err")"
	else
		not_ok "$what, stdio's list lock held: exit $rc${waited:+, still running after 5 s (the call waited for the lock)}: $(head -c 300 "$HS_TMP/err")"
	fi
	check_untouched "$p" || not_ok "$what: target left traced or stopped"
	alive "$p" || not_ok "$what: the target died"
	[ -z "$waited" ] || free_lock "$p"
}

works()
{
	local p=$1 what=$2 rc=0
	shift 2
	timeout -k 5 120 "$HS" "$@" >"$HS_TMP/out" 2>&1 || rc=$?
	[ "$rc" = 0 ] && ok "$what, the lock free: done" || not_ok "$what, the lock free: exit $rc: $(cat "$HS_TMP/out")"
}

# plain: libc_malloc_debug.so preloaded
LOG=/tmp/heapscope-call-locks.$$.log
rm -f "$LOG" "$LOG.i"
start_target env LD_PRELOAD="$DBG" "$(target simple)" stdio-lock
P=$TARGET_PID
ptrace_ok "$P"
for _ in $(seq 200); do thread_in_write "$P" && break; sleep 0.05; done
thread_in_write "$P" || framework_failure "the target's thread never blocked in fflush(NULL)"
refused "$P" "mtrace start" mtrace start --wait 300 --file "$LOG" "$P"
[ ! -e "$LOG" ] && ok "no log opened" || not_ok "a log was opened while refused"
free_lock "$P"
works "$P" "mtrace start" mtrace start --file "$LOG" "$P"
held "$P"
refused "$P" "mtrace stop" mtrace stop --wait 300 "$P"
free_lock "$P"
works "$P" "mtrace stop" mtrace stop "$P"

# --inject: the tracer loaded and routed to by heapscope
start_target "$(target simple)" stdio-lock
P=$TARGET_PID
for _ in $(seq 200); do thread_in_write "$P" && break; sleep 0.05; done
refused "$P" "mtrace start --inject" mtrace start --inject --wait 300 --file "$LOG.i" "$P"
free_lock "$P"
works "$P" "mtrace start --inject" mtrace start --inject --file "$LOG.i" "$P"
held "$P"
refused "$P" "mtrace stop (injected)" mtrace stop --wait 300 "$P"
free_lock "$P"
works "$P" "mtrace stop (injected)" mtrace stop "$P"
rm -f "$LOG" "$LOG.i"
[ "$failed" = 0 ] || exit 1
echo "PASS: call_locks.sh"
