#!/bin/bash
# heapscope mtrace: on a target started with libc_malloc_debug.so preloaded,
# start makes the log receive + and - lines from every thread, stop ends
# them, the target's blocks are intact, and report agrees with glibc's own
# mtrace script on how many blocks were not freed.  Without the preload:
# a clear error, exit 2, nothing done to the target.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
need_malloc_debug
CHURN=$(target churn)
start_target "$(target simple)" single
ptrace_ok "$TARGET_PID"

for round in 1 2 3 4 5; do
	LOG=/tmp/heapscope-mtrace-test.$$.$round.log
	rm -f "$LOG"
	# a new file: the last round's READY must not be taken for this one's
	rm -f "$HS_TMP/churn.out"
	LD_PRELOAD=$DBG "$CHURN" 4 >"$HS_TMP/churn.out" &
	P=$!
	track_pid "$P"
	for _ in $(seq 50); do grep -q "^READY $P\$" "$HS_TMP/churn.out" 2>/dev/null && break; sleep 0.1; done
	# round 2 speaks JSON
	J=; [ "$round" = 2 ] && J=--json
	rc=0
	"$HS" mtrace start $J --file "$LOG" "$P" >"$HS_TMP/out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { not_ok "round $round: start exit $rc: $(cat "$HS_TMP/out")"; kill "$P"; continue; }
	if [ -n "$J" ]; then
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["action"]=="start" and d["tracing"] and d["file"]==sys.argv[2] and d["pause_us"]>0, d' "$HS_TMP/out" "$LOG" &&
			ok "start --json: action, file, tracing, pause" || not_ok "start --json: $(cat "$HS_TMP/out")"
	fi
	if [ "$round" = 1 ]; then
		# tracing is seen from outside, and a second start is refused
		"$HS" mtrace status --json "$P" >"$HS_TMP/st"
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tracing"] and d["file"]==sys.argv[2], d' "$HS_TMP/st" "$LOG" &&
			ok "status: tracing into $LOG" || not_ok "status while tracing: $(cat "$HS_TMP/st")"
		rc=0
		"$HS" mtrace start --file "$LOG.other" "$P" >/dev/null 2>"$HS_TMP/err" || rc=$?
		[ "$rc" = 2 ] && grep -q "already tracing into $LOG" "$HS_TMP/err" && [ ! -e "$LOG.other" ] &&
			ok "a second start is refused, naming the open log: $(cat "$HS_TMP/err")" ||
			not_ok "second start: exit $rc: $(cat "$HS_TMP/err")"
	fi
	sleep 0.3
	rc=0
	"$HS" mtrace stop $J "$P" >"$HS_TMP/out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || not_ok "round $round: stop exit $rc: $(cat "$HS_TMP/out")"
	if [ -n "$J" ]; then
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["action"]=="stop" and not d["tracing"] and d["file"]==sys.argv[2], d' "$HS_TMP/out" "$LOG" &&
			ok "stop --json: action, file, tracing off" || not_ok "stop --json: $(cat "$HS_TMP/out")"
	fi
	if [ "$round" = 1 ]; then
		"$HS" mtrace status "$P" | grep -q "is not tracing" && ok "status after stop: not tracing" ||
			not_ok "status after stop: $("$HS" mtrace status "$P")"
		rc=0
		"$HS" mtrace stop "$P" >/dev/null 2>"$HS_TMP/err" || rc=$?
		[ "$rc" = 2 ] && grep -q "is not tracing: nothing to stop" "$HS_TMP/err" &&
			ok "stop while not tracing is refused" || not_ok "second stop: exit $rc: $(cat "$HS_TMP/err")"
	fi
	n1=$(wc -l <"$LOG")
	sleep 0.3
	n2=$(wc -l <"$LOG")
	plus=$(grep -c ' + 0x' "$LOG" || true)
	minus=$(grep -c ' - 0x' "$LOG" || true)
	if [ "$plus" -gt 0 ] && [ "$minus" -gt 0 ] && [ "$n1" = "$n2" ] && tail -1 "$LOG" | grep -q '^= End'; then
		ok "round $round: $plus + and $minus - lines between start and stop, none after"
	else
		not_ok "round $round: + $plus, - $minus, lines $n1 then $n2, last: $(tail -1 "$LOG")"
	fi
	kill -USR1 "$P"
	rc=0
	wait "$P" || rc=$?
	untrack_pid "$P"
	grep -q '^CHECK OK' "$HS_TMP/churn.out" && [ "$rc" = 0 ] && ok "round $round: the target's blocks are intact, it exits cleanly" ||
		not_ok "round $round: target: $(cat "$HS_TMP/churn.out") (status $rc)"
	if [ "$round" = 1 ]; then
		"$HS" mtrace report --json "$LOG" >"$HS_TMP/r.json"
		ours=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["not_freed"])' "$HS_TMP/r.json")
		if command -v mtrace >/dev/null; then
			theirs=$(mtrace "$CHURN" "$LOG" 2>/dev/null | grep -c '^0x' || true)
			[ "$ours" = "$theirs" ] && ok "report: $ours blocks not freed, as glibc's mtrace script says" ||
				not_ok "report: $ours blocks not freed, glibc's mtrace script says $theirs"
		else
			echo "ok - report against glibc's mtrace script # SKIP libc-devtools is not installed"
		fi
	fi
	rm -f "$LOG"
done

# without the preload: nothing is done, and the message says what would work
start_target "$CHURN" 2
rc=0
"$HS" mtrace start --file /tmp/heapscope-mtrace-none.$$.log "$TARGET_PID" >/dev/null 2>"$HS_TMP/err" || rc=$?
if [ "$rc" = 2 ] && grep -q 'LD_PRELOAD=libc_malloc_debug.so.0' "$HS_TMP/err" && [ ! -e /tmp/heapscope-mtrace-none.$$.log ]; then
	ok "no preload: exit 2, nothing done: $(cat "$HS_TMP/err")"
else
	not_ok "no preload: exit $rc: $(cat "$HS_TMP/err")"
fi
grep -H -E '^(TracerPid:[[:space:]]*[1-9]|State:[[:space:]]*[tT])' /proc/"$TARGET_PID"/task/*/status && not_ok "target left traced" || true
[ "$failed" = 0 ] && echo "PASS: mtrace.sh" || exit 1
