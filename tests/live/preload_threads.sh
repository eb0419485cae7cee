#!/bin/bash
# The stopped read of the preload, split between the tracing thread and a
# helper that only reads (HEAPSCOPE_PRELOAD_THREADS=2 forces the helper
# whatever the read's size): the figures are those of one thread and of
# whole pages; a target killed while stopped, before that read (a test hook
# holds heapscope there), ends heapscope with exit 2 (or 0), never a hang;
# a churning target is left untraced, alive and intact, with consistent
# figures.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2"; }
strip() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [d.pop(k, None) for k in ("pause_us","walk_us","read_mode","glibc")]; print(json.dumps(d, sort_keys=True))' "$1"; }

start_target "$(target bigheap)" 2 16384
pid=$TARGET_PID
ptrace_ok "$pid"
HEAPSCOPE_PRELOAD_THREADS=2 timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/two.json"
HEAPSCOPE_PRELOAD_THREADS=1 timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/one.json"
HEAPSCOPE_READ_MODE=bulk timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/bulk.json"
m=$(field "$HS_TMP/two.json" read_mode)
[ "$m" = preload ] && ok "read_mode is preload with two threads" || not_ok "read_mode is '$m', not preload"
[ "$(strip "$HS_TMP/two.json")" = "$(strip "$HS_TMP/one.json")" ] &&
	ok "two threads: the same figures as one" ||
	not_ok "two threads and one give different figures: $(diff <(strip "$HS_TMP/one.json" | tr , '\n') <(strip "$HS_TMP/two.json" | tr , '\n') | head -5)"
[ "$(strip "$HS_TMP/two.json")" = "$(strip "$HS_TMP/bulk.json")" ] &&
	ok "two threads: the same figures as reading whole pages" || not_ok "figures differ from HEAPSCOPE_READ_MODE=bulk"
check_untouched "$pid" || not_ok "bigheap left traced or stopped"

# Killed while stopped, just before the two threads read.
rm -f "$HS_TMP/go" "$HS_TMP/go.stopped"
HEAPSCOPE_PRELOAD_THREADS=2 HEAPSCOPE_TEST_STOPPED_WAIT=$HS_TMP/go timeout 60 "$HS" arenas --json "$pid" \
	>"$HS_TMP/killed.json" 2>"$HS_TMP/killed.err" &
hs=$!
for _ in $(seq 600); do [ -e "$HS_TMP/go.stopped" ] && break; sleep 0.05; done
if [ -e "$HS_TMP/go.stopped" ]; then
	kill -KILL "$pid"
	touch "$HS_TMP/go"
	rc=0
	wait "$hs" || rc=$?
	case $rc in
	0 | 2) ok "target killed while stopped: heapscope ends (exit $rc)" ;;
	124) not_ok "target killed while stopped: heapscope hung (timeout)" ;;
	*) not_ok "target killed while stopped: exit $rc, not 2 or 0: $(cat "$HS_TMP/killed.err")" ;;
	esac
	[ "$rc" != 2 ] || grep -q 'exited during the run' "$HS_TMP/killed.err" &&
		ok "it says the target exited" || not_ok "no 'exited during the run' message: $(cat "$HS_TMP/killed.err")"
else
	not_ok "heapscope never reached the stopped hook (HEAPSCOPE_TEST_STOPPED_WAIT)"
	touch "$HS_TMP/go"
	wait "$hs" || true
fi
wait_target "$pid" || true

# A churning target, looked at again and again with two threads.
start_target "$(target churn)" 4
pid=$TARGET_PID
bad=0
for i in 1 2 3 4 5 6; do
	rc=0
	HEAPSCOPE_PRELOAD_THREADS=2 timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/churn.$i.json" 2>"$HS_TMP/churn.err" || rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
		not_ok "churn look $i: exit $rc: $(cat "$HS_TMP/churn.err")"
		bad=1
		continue
	fi
	python3 - "$HS_TMP/churn.$i.json" <<'PY' || { not_ok "churn look $i: figures inconsistent"; bad=1; }
import json, sys
d = json.load(open(sys.argv[1]))
assert d["read_mode"] == "preload", d["read_mode"]
t = d["total"]
for a in d["arenas"]:
    assert a["free_total"] == a["free_bins"] + a["free_fastbins"] + a["free_tcache"] + a["top"], a
    assert a["in_use"] + a["free_total"] == a["system"], a
for k in ("free_bins", "free_fastbins", "free_tcache", "top", "system", "in_use"):
    assert t[k] == sum(a[k] for a in d["arenas"]), k
PY
done
[ "$bad" = 0 ] && ok "churn: six looks with two threads, each with consistent figures"
churn_released "$pid"
[ "$failed" = 0 ] || exit 1
echo "PASS: preload_threads.sh"
