#!/bin/bash
# A lock taken between heapscope's look and its call: trim's safety check
# reads the arenas' mutexes in the stop it calls in, never from what an
# earlier stop read.  The target's thread enters malloc_stats() after the
# look (a test hook holds heapscope there) and blocks in it, holding
# main_arena's lock; trim must refuse (exit 75), not call malloc_trim into
# that lock (the target would hang until --timeout let its threads go).
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3

need_syscall_nrs

start_target "$(target simple)" stats-lock
P=$TARGET_PID
ptrace_ok "$P"

# the look (its stop reads main_arena, unlocked, into its preload), then
# the hook
rm -f "$HS_TMP/go" "$HS_TMP/go.call"
HEAPSCOPE_TEST_CALL_WAIT=$HS_TMP/go timeout -k 5 60 "$HS" trim --json --wait 300 --timeout 1000 "$P" \
	>"$HS_TMP/out" 2>"$HS_TMP/err" &
hs=$!
for _ in $(seq 600); do [ -e "$HS_TMP/go.call" ] && break; sleep 0.05; done
[ -e "$HS_TMP/go.call" ] || { touch "$HS_TMP/go"; wait "$hs" || true; fail "heapscope never reached the call hook: $(cat "$HS_TMP/err")"; }

# now main_arena's lock is taken, and held
kill -USR1 "$P"
for _ in $(seq 200); do thread_in_write "$P" && break; sleep 0.05; done
thread_in_write "$P" || framework_failure "the target's thread never blocked in malloc_stats' write"
touch "$HS_TMP/go"

# the old failure: the call waits for the lock, its threads let go past
# --timeout, heapscope waits on; let the lock go after a while so that it
# ends, and say what happened
for _ in $(seq 100); do kill -0 "$hs" 2>/dev/null || break; sleep 0.05; done
held=
kill -0 "$hs" 2>/dev/null && held=1
kill -USR2 "$P"
rc=0
wait "$hs" || rc=$?
if [ -z "$held" ] && [ "$rc" = 75 ] && grep -q 'arena 0 .* is locked' "$HS_TMP/err"; then
	ok "lock taken after the look: refused as unsafe (exit 75): $(cat "$HS_TMP/err")"
else
	not_ok "lock taken after the look: exit $rc${held:+, still running 5 s after (the call waited for the lock)}: $(head -c 300 "$HS_TMP/err")"
fi
check_untouched "$P" || not_ok "target left traced or stopped"
kill -0 "$P" || not_ok "the target died"
[ "$failed" = 0 ] || exit 1
echo "PASS: trim_race.sh"
