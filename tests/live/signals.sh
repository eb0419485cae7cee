#!/bin/bash
# A heapscope that is interrupted, terminated or killed while it holds the
# target's threads stopped must leave the target running and untraced.
# HEAPSCOPE_TEST_HOLD_MS makes heapscope keep the threads stopped after its
# walk, long enough to signal it.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

KNOWN=$(target knownheap)
start_target "$KNOWN" "$HS_TMP/mi.txt" 3
ptrace_ok "$TARGET_PID"

stopped_threads()
{
	local n=0 t
	for t in /proc/"$TARGET_PID"/task/*; do
		grep -q '^State:.*t (tracing stop)' "$t/status" 2>/dev/null && n=$((n + 1))
	done
	echo "$n"
}

for sig in INT TERM HUP QUIT KILL; do
	# default dispositions: test runners may start us with some ignored
	HEAPSCOPE_TEST_HOLD_MS=20000 env --default-signal "$HS" arenas "$TARGET_PID" >/dev/null 2>&1 &
	hs_pid=$!
	# wait until every thread is held (4 threads: main + 3)
	for _ in $(seq 200); do
		[ "$(stopped_threads)" -ge 4 ] && break
		sleep 0.02
	done
	held=$(stopped_threads)
	kill -s "$sig" "$hs_pid"
	rc=0
	wait "$hs_pid" || rc=$?
	if [ "$held" -lt 4 ]; then
		echo "not ok - SIG$sig: heapscope never held all threads ($held stopped)"
		failed=1
	elif check_untouched "$TARGET_PID"; then
		echo "ok - SIG$sig while 4 threads were stopped: heapscope died (status $rc), target running and untraced"
	else
		echo "not ok - SIG$sig: target left stopped or traced"
		grep -H -E 'State|TracerPid' /proc/"$TARGET_PID"/task/*/status | sed 's/^/#   /'
		failed=1
	fi
done

# An ignored SIGHUP (nohup) stays ignored: heapscope finishes its run.
HEAPSCOPE_TEST_HOLD_MS=1500 env --ignore-signal=HUP "$HS" arenas "$TARGET_PID" >/dev/null 2>&1 &
hs_pid=$!
for _ in $(seq 200); do
	[ "$(stopped_threads)" -ge 4 ] && break
	sleep 0.02
done
kill -s HUP "$hs_pid"
rc=0
wait "$hs_pid" || rc=$?
if [ "$rc" = 0 ] && check_untouched "$TARGET_PID"; then
	echo "ok - ignored SIGHUP: heapscope finished normally and released the target"
else
	echo "not ok - ignored SIGHUP: heapscope exit status $rc"
	failed=1
fi

# The target's own check: its heap is exactly as it was.
kill -USR1 "$TARGET_PID"
wait_target "$TARGET_PID"
if grep -q 'CHECK OK' "$TARGET_OUT"; then
	echo "ok - target's heap unchanged after six sessions, five interrupted"
else
	echo "not ok - target self-check: $(grep CHECK "$TARGET_OUT" || echo none)"
	failed=1
fi
[ "$failed" = 0 ] && echo "PASS: signals.sh" || exit 1
