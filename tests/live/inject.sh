#!/bin/bash
# heapscope mtrace start --inject on glibc >= 2.34, no preload: a target
# whose worker threads count their own allocations (tests/targets/rounds.c)
# traces exactly those made between start and stop, in every thread, libc's
# own (strdup) included, and none after; every GOT slot is back to the value
# it had before start; the target's blocks are intact and it exits cleanly.
# Then 50 start/stop cycles on the 8-thread churn target of the trim tests.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
GOT_DUMP=${GOT_DUMP:?}
ROUNDS=$(target rounds)
"$ROUNDS" 4 4 100 >"$HS_TMP/rounds.out" 2>&1 &
R=$!
track_pid "$R"
for _ in $(seq 50); do grep -q '^READY' "$HS_TMP/rounds.out" && break; sleep 0.1; done
ptrace_ok_any() { [ "$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)" -le 1 ] || [ "$(id -u)" = 0 ]; }
ptrace_ok_any || skip "ptrace is not permitted here"
ver=$(ldd --version | sed -n '1s/.* \([0-9]*\.[0-9]*\)$/\1/p')
case $ver in 2.[0-9] | 2.[12][0-9] | 2.3[0-3]) skip "glibc $ver keeps mtrace in libc.so.6: nothing to inject" ;; esac

"$GOT_DUMP" "$R" | awk -F'\t' '$1 == "slot" { print $5, $10, $11 }' | sort >"$HS_TMP/slots.before"
LOG=$HS_TMP/inject.log
rc=0
"$HS" mtrace start --inject --json --file "$LOG" "$R" >"$HS_TMP/start.json" 2>"$HS_TMP/err" || rc=$?
if [ "$rc" = 0 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["injected"] and d["slots_routed"] > 0 and d["tracing"], d' "$HS_TMP/start.json"; then
	ok "start --inject: $(cat "$HS_TMP/start.json")"
else
	not_ok "start --inject: exit $rc: $(cat "$HS_TMP/start.json" "$HS_TMP/err")"
fi
# while tracing: the recorded slots hold the tracer's functions
rec=$(ls "$HEAPSCOPE_STATE_DIR"/mtrace."$R".* 2>/dev/null | head -1)
"$GOT_DUMP" "$R" | awk -F'\t' '$1 == "slot" { print $5, $10 }' | sort >"$HS_TMP/slots.during"
if [ -n "$rec" ] && python3 - "$rec" "$HS_TMP/slots.during" <<'PY'
import sys
rec = [l.split() for l in open(sys.argv[1]) if l.startswith("slot ")]
now = dict(l.split()[:2] for l in open(sys.argv[2]))
assert rec, "no slot recorded"
for _, addr, old, new in rec:
    assert int(now[addr], 16) == int(new, 16), (addr, now[addr], new)
print(len(rec))
PY
then
	ok "while tracing, every recorded slot holds the tracer's function"
else
	not_ok "slots while tracing: $(cat "$rec" 2>/dev/null | head -5)"
fi
"$HS" mtrace status "$R" | grep -q "tracing into $LOG, through .*libc_malloc_debug.so.0 injected" &&
	ok "status names the injected tracer" || not_ok "status: $("$HS" mtrace status "$R")"

# one round of counted allocations in 4 threads, then stop, then a round
# that must not be traced
kill -USR2 "$R"
for _ in $(seq 100); do grep -q '^ROUND 1 DONE' "$HS_TMP/rounds.out" && break; sleep 0.1; done
rc=0
"$HS" mtrace stop --wait 10000 "$R" >"$HS_TMP/out" 2>&1 || rc=$?
[ "$rc" = 0 ] && ok "stop: $(cat "$HS_TMP/out")" || not_ok "stop: exit $rc: $(cat "$HS_TMP/out")"
# right after stop, before round 2 binds any lazy slot for real
"$GOT_DUMP" "$R" | awk -F'\t' '$1 == "slot" { print $5, $10, $11 }' | sort >"$HS_TMP/slots.after"
# equal, or a lazy slot put back lazy that ld.so has bound since
if python3 - "$HS_TMP/slots.before" "$HS_TMP/slots.after" <<'PY'
import sys
b = {l.split()[0]: l.split()[1:] for l in open(sys.argv[1])}
a = {l.split()[0]: l.split()[1:] for l in open(sys.argv[2])}
assert b.keys() == a.keys(), "different slots"
bad = [k for k in b if b[k] != a[k] and not (b[k][1] == "lazy" and a[k][1] == "libc")]
assert not bad, bad
PY
then
	ok "every GOT slot ($(wc -l <"$HS_TMP/slots.before")) is back to its value before start (or bound since, if it was lazy)"
else
	not_ok "GOT slots differ: $(diff "$HS_TMP/slots.before" "$HS_TMP/slots.after" | tr '\n' ' ')"
fi
lines=$(wc -l <"$LOG")
kill -USR2 "$R"
for _ in $(seq 100); do grep -q '^ROUND 2 DONE' "$HS_TMP/rounds.out" && break; sleep 0.1; done
sleep 0.2
if [ "$(wc -l <"$LOG")" = "$lines" ] && [ "$(tail -1 "$LOG")" = "= End" ]; then
	ok "no line after stop (round 2 untraced), the log ends with '= End'"
else
	not_ok "after stop: $lines then $(wc -l <"$LOG") lines, last: $(tail -1 "$LOG")"
fi
if python3 - "$LOG" <<'PY'
import re, sys, collections
plus, freed = collections.Counter(), set()
want = {}
for i in range(4):
    s = 5000 + 16 * i
    for k in range(5):
        want[("+", s + k)] = 0
    want[(">", s + 5)] = 0
ours = {}
for l in open(sys.argv[1]):
    f = l.split()
    if "+" in f or ">" in f:
        op = "+" if "+" in f else ">"
        i = f.index(op)
        key = (op, int(f[i + 2], 16))
        if key in want:
            want[key] += 1
            ours[f[i + 1]] = key
    elif "-" in f:
        a = f[f.index("-") + 1]
        if a in ours:
            freed.add(a)
            del ours[a]
bad = {k: v for k, v in want.items() if v != 100}
assert not bad, "counts off: %s" % bad
assert not ours, "%d of our blocks never freed in the log" % len(ours)
print("4 threads x (malloc, calloc, posix_memalign, strdup, malloc, realloc) x 100: all logged, all freed")
PY
then
	ok "the log has exactly the allocations the 4 workers counted, each one freed"
else
	not_ok "the log's counts differ from the target's"
fi
"$HS" mtrace status "$R" | grep -q "is not tracing" && ok "status after stop: not tracing" ||
	not_ok "status after stop: $("$HS" mtrace status "$R")"
tracer=$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$R/status")
kill -USR1 "$R"
wait "$R" && st=0 || st=$?
untrack_pid "$R"
if [ "$st" = 0 ] && [ "$tracer" = 0 ] && grep -q '^CHECK OK' "$HS_TMP/rounds.out"; then
	ok "the target checks its blocks and exits cleanly: $(grep CHECK "$HS_TMP/rounds.out")"
else
	not_ok "target: status $st, TracerPid $tracer: $(cat "$HS_TMP/rounds.out")"
fi

# --- a thread inside dlopen (its library's constructor never returns)
# holds the dynamic loader's lock: the injected dlopen would wait for it
if [ -n "${SLOWINIT:-}" ] && [ -e "$SLOWINIT" ]; then
	start_target "$(target simple)" in-dlopen "$SLOWINIT"
	rc=0
	"$HS" mtrace start --inject --wait 300 --file "$HS_TMP/none.log" "$TARGET_PID" >/dev/null 2>"$HS_TMP/err" || rc=$?
	if [ "$rc" = 75 ] && grep -q "_dl_load_lock) is held by thread [1-9]" "$HS_TMP/err" && [ ! -e "$HS_TMP/none.log" ] &&
		! grep -q libc_malloc_debug "/proc/$TARGET_PID/maps" && check_untouched "$TARGET_PID"; then
		ok "refused while a thread holds the loader's lock (exit 75), nothing loaded: $(cat "$HS_TMP/err")"
	else
		not_ok "in-dlopen: exit $rc: $(cat "$HS_TMP/err")"
	fi
else
	echo "ok - loader lock refusal # SKIP the slowinit library was not built"
fi

# --- 50 start/stop cycles on 8 threads churning malloc
start_target "$(target churn)" 8
C=$TARGET_PID
started=0 stopped=0 refused=0
for i in $(seq 50); do
	rc=0
	timeout -k 5 60 "$HS" mtrace start --inject --file "$HS_TMP/c.log" "$C" >/dev/null 2>"$HS_TMP/err" || rc=$?
	case $rc in
	0) started=$((started + 1)) ;;
	75) refused=$((refused + 1)); continue ;;
	*) not_ok "cycle $i: start exit $rc: $(cat "$HS_TMP/err")"; break ;;
	esac
	sleep 0.05
	rc=0
	for _ in 1 2 3; do
		timeout -k 5 60 "$HS" mtrace stop --wait 5000 "$C" >/dev/null 2>"$HS_TMP/err" && { rc=0; break; } || rc=$?
		[ "$rc" = 75 ] || break
	done
	[ "$rc" = 0 ] && stopped=$((stopped + 1)) || { not_ok "cycle $i: stop exit $rc: $(cat "$HS_TMP/err")"; break; }
	tail -1 "$HS_TMP/c.log" | grep -q '^= End' || { not_ok "cycle $i: log does not end"; break; }
	rm -f "$HS_TMP/c.log"
done
if grep -H -E '^(TracerPid:[[:space:]]*[1-9]|State:[[:space:]]*[tT])' /proc/"$C"/task/*/status; then
	not_ok "churn target left traced or stopped"
fi
kill -USR1 "$C"
wait_target "$C" 30
if grep -q '^CHECK OK' "$TARGET_OUT" && [ "$TARGET_STATUS" = 0 ] && [ "$stopped" = "$started" ] && [ "$started" -ge 40 ]; then
	ok "50 cycles on churn 8: $started started and stopped, $refused refused as unsafe; $(grep CHECK "$TARGET_OUT")"
else
	not_ok "churn: $started started, $stopped stopped, $refused refused; $(cat "$TARGET_OUT") (status $TARGET_STATUS)"
fi
[ "$failed" = 0 ] && echo "PASS: inject.sh" || exit 1
