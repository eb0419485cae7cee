#!/bin/bash
# SIGSTOP for the target while heapscope's call runs in it: SIGSTOP is
# never blocked, so the calling thread takes it mid-call.  The call must go
# on and the process stop after it; abandoned half-way (registers put
# back), the callee would keep whatever it held (malloc_trim an arena's
# lock, dlopen the loader's) and the SIGSTOP would be lost.  The call is
# held inside by mtrace()'s fopen of a FIFO (made in place of the log after
# heapscope's checks, at its call hook) until a reader opens it.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_malloc_debug
need_syscall_nrs

start_target env LD_PRELOAD="$DBG" "$(target simple)" single
P=$TARGET_PID
ptrace_ok "$P"
LOG=$HS_TMP/fifo.log
rm -f "$HS_TMP/go" "$HS_TMP/go.call"
HEAPSCOPE_TEST_CALL_WAIT=$HS_TMP/go timeout -k 5 60 "$HS" mtrace start --file "$LOG" "$P" >"$HS_TMP/out" 2>&1 &
hs=$!
for _ in $(seq 600); do [ -e "$HS_TMP/go.call" ] && break; sleep 0.05; done
[ -e "$HS_TMP/go.call" ] || { touch "$HS_TMP/go"; wait "$hs" || true; fail "heapscope never reached the call hook: $(cat "$HS_TMP/out")"; }
mkfifo "$LOG"
touch "$HS_TMP/go"
nr=
for _ in $(seq 400); do read -r nr _ <"/proc/$P/syscall" || true; [ "$nr" = "$NR_OPENAT" ] && break; sleep 0.05; done
if [ "$nr" != "$NR_OPENAT" ]; then
	cat "$LOG" >/dev/null 2>&1 &
	wait "$hs" || true
	framework_failure "the call never blocked in the FIFO's open: $(cat "$HS_TMP/out")"
fi
kill -STOP "$P"
sleep 0.3
# the reader lets the open finish
timeout 30 cat "$LOG" >/dev/null 2>&1 &
rc=0
wait "$hs" || rc=$?
if grep -q "faulted\|abandoned" "$HS_TMP/out"; then
	not_ok "SIGSTOP mid-call: the call was abandoned: $(cat "$HS_TMP/out")"
else
	ok "SIGSTOP mid-call: the call went on to its end (exit $rc: $(head -c 200 "$HS_TMP/out"))"
fi
state=$(sed -n 's/^State:[[:space:]]*//p' "/proc/$P/status")
case $state in
T*) ok "the process is stopped after the call, as SIGSTOP asked" ;;
*) not_ok "the process is in state '$state' after the call: the SIGSTOP was lost" ;;
esac
kill -CONT "$P"
check_untouched "$P" || not_ok "target left traced or stopped"
alive "$P" || not_ok "the target died"
kill "$P" 2>/dev/null || true
[ "$failed" = 0 ] || exit 1
echo "PASS: call_signals.sh"
