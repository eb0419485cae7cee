#!/bin/bash
# heapscope profile, collection: (a) a target allocating known bytes from
# two call chains (tests/targets/allocrate.c, sizes tell the chains apart)
# is sampled; samples x rate estimates each chain's bytes within 20% (the
# bound is some 10 standard deviations wide at these counts), every block
# the target checks is intact, and the slots are back after; (b) 50
# start/stop cycles against 8 churning threads: no crash, no hang, slots
# back after each, every block verified; (c) heapscope SIGKILLed mid-profile:
# the target runs on, `profile --status` says so, `profile --stop` puts the
# slots back.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
GOT_DUMP=${GOT_DUMP:?}
slots() { "$GOT_DUMP" "$1" | awk -F'\t' '$1 == "slot" { print $5, $10, $11 }' | sort; }
# slots now equal to a saved list (or a lazy slot bound since)
slots_back() {
	slots "$1" >"$HS_TMP/slots.now"
	python3 - "$2" "$HS_TMP/slots.now" <<'PY'
import sys
b = {l.split()[0]: l.split()[1:] for l in open(sys.argv[1])}
a = {l.split()[0]: l.split()[1:] for l in open(sys.argv[2])}
assert b.keys() == a.keys(), "different slots"
bad = [k for k in b if b[k] != a[k] and not (b[k][1] == "lazy" and a[k][1] == "libc")]
assert not bad, bad
PY
}
# heapscope's exit: 0, or 1 with samples dropped (a full ring: said so)
collected() { [ "$1" = 0 ] || { [ "$1" = 1 ] && grep -q "samples dropped" "$2"; }; }

# ---- (a) ----
start_target "$(target allocrate)" 4 $((24 << 20))
R=$TARGET_PID
ptrace_ok "$R"
slots "$R" >"$HS_TMP/slots.before"
RATE=65536
rc=0
timeout 120 "$HS" profile --rate $RATE --raw "$HS_TMP/a.raw" --json -o "$HS_TMP/a.json" --pprof "$HS_TMP/a.pb.gz" \
	"$R" >"$HS_TMP/a.out" 2>"$HS_TMP/a.err" &
H=$!
for _ in $(seq 100); do grep -q "routed to" "$HS_TMP/a.err" && break; sleep 0.1; done
if grep -q "routed to" "$HS_TMP/a.err"; then
	ok "profile started: $(head -1 "$HS_TMP/a.err")"
else
	not_ok "profile did not start: $(cat "$HS_TMP/a.err")"
fi
st=$("$HS" profile --status "$R" 2>&1) || true
case $st in *"profile active"*) ok "status while sampling: $st" ;; *) not_ok "status: $st" ;; esac
kill -USR2 "$R"
for _ in $(seq 300); do grep -q '^CHECK' "$TARGET_OUT" && break; sleep 0.1; done
kill -INT "$H"
wait "$H" || rc=$?
collected "$rc" "$HS_TMP/a.err" && ok "profile ended on SIGINT (exit $rc)" || not_ok "profile: exit $rc: $(cat "$HS_TMP/a.err")"
grep -q '^CHECK OK' "$TARGET_OUT" && ok "every block of the burst verified by the target" ||
	not_ok "target: $(cat "$TARGET_OUT")"
if python3 - "$HS_TMP/a.raw" "$TARGET_OUT" $RATE <<'PY'
import re, sys
raw, out, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = re.search(r"BURST 1 a=(\d+) b=(\d+)", open(out).read())
truth = {"a": int(m.group(1)), "b": int(m.group(2))}
head = open(raw).readline()
dropped = int(re.search(r"dropped (\d+)", head).group(1))
est = {"a": 0, "b": 0}
for l in open(raw):
    if l.startswith("#"):
        continue
    f = l.split()
    if f[1] != "alloc":
        continue
    size = int(f[5])
    est["a" if 1000 <= size < 2000 else "b" if 3000 <= size < 4000 else "?"] = est.get("a" if 1000 <= size < 2000 else "b" if 3000 <= size < 4000 else "?", 0) + rate
assert est.get("?", 0) == 0, "samples of sizes the burst never allocates: %d" % est["?"]
for k in "ab":
    r = est[k] / truth[k]
    print(f"chain {k}: truth {truth[k]} estimated {est[k]} ({r:.3f}), dropped {dropped}")
    assert 0.8 <= r <= 1.2 or dropped, (k, r)
PY
then
	ok "samples x rate within 20% of each chain's bytes"
else
	not_ok "estimate: $(head -3 "$HS_TMP/a.raw")"
fi
# the analysis: each chain's stack named in order, from the allocating
# function out to the thread's start, its bytes estimated within 20%
if python3 - "$HS_TMP/a.json" "$TARGET_OUT" <<'PY'
import json, re, sys
rep = json.load(open(sys.argv[1]))
m = re.search(r"BURST 1 a=(\d+) b=(\d+)", open(sys.argv[2]).read())
truth = {"a": int(m.group(1)), "b": int(m.group(2))}
want = {"a": ["chain_a_leaf", "chain_a", "worker", "start_thread"], "b": ["chain_b", "worker", "start_thread"]}
got = {"a": 0, "b": 0}
for st in rep["stacks"]:
    names = [f["name"].split("+")[0] for f in st["frames"]]
    for k, w in want.items():
        if names[:len(w)] == w:
            got[k] += st["alloc_bytes"]
for k in "ab":
    r = got[k] / truth[k]
    print(f"# chain {k}: {' <- '.join(want[k])}: estimated {got[k]} of {truth[k]} bytes ({r:.3f})")
    assert 0.8 <= r <= 1.2 or rep["dropped"], (k, r)
PY
then
	ok "each chain's stack named in order, its bytes within 20% (JSON)"
else
	not_ok "stacks: $(head -c 2000 "$HS_TMP/a.json")"
fi
if command -v go >/dev/null && go tool pprof -h >/dev/null 2>&1; then
	go tool pprof -top -sample_index=alloc_space "$HS_TMP/a.pb.gz" >"$HS_TMP/pprof.top" 2>&1 || :
	if grep -q chain_a_leaf "$HS_TMP/pprof.top" && grep -q chain_b "$HS_TMP/pprof.top"; then
		ok "go tool pprof -top reads --pprof: $(grep -c . "$HS_TMP/pprof.top") lines, both chains"
	else
		not_ok "go tool pprof: $(cat "$HS_TMP/pprof.top")"
	fi
else
	echo "# skip: go tool pprof is not installed (golang-go): --pprof checked by live-profile_analyze only"
fi
slots_back "$R" "$HS_TMP/slots.before" && ok "every slot back after the profile" || not_ok "slots differ after the profile"
st=$("$HS" profile --status "$R" 2>&1) || true
case $st in *"no profile"*inert*) ok "status after: $st" ;; *) not_ok "status after: $st" ;; esac
check_untouched "$R" || not_ok "target left traced or stopped"
# after the stop the wrappers are not called: a second burst, no sample anywhere
kill -USR2 "$R"
for _ in $(seq 300); do [ "$(grep -c '^CHECK' "$TARGET_OUT")" = 2 ] && break; sleep 0.1; done
[ "$(grep -c '^CHECK OK' "$TARGET_OUT")" = 2 ] && ok "a burst after the stop runs clean" || not_ok "second burst: $(cat "$TARGET_OUT")"

# ---- (b) ----
start_target "$(target churn)" 8
C=$TARGET_PID
slots "$C" >"$HS_TMP/c.before"
bad=0
for i in $(seq 50); do
	rc=0
	timeout 60 "$HS" profile --duration 0.05 --rate 4096 --wait 10000 --raw "$HS_TMP/b.raw" "$C" >"$HS_TMP/b.out" 2>"$HS_TMP/b.err" || rc=$?
	if ! collected "$rc" "$HS_TMP/b.err"; then
		not_ok "cycle $i: exit $rc: $(cat "$HS_TMP/b.err")"
		bad=1
		break
	fi
	if [ $((i % 10)) = 0 ] && ! slots_back "$C" "$HS_TMP/c.before"; then
		not_ok "cycle $i: slots not back"
		bad=1
		break
	fi
done
[ "$bad" = 0 ] && ok "50 start/stop cycles on 8 churning threads ($(head -1 "$HS_TMP/b.raw"))"
slots_back "$C" "$HS_TMP/c.before" && ok "slots back after the cycles" || not_ok "slots after the cycles"
untraced() { ! grep -q '^TracerPid:[[:space:]]*[1-9]' /proc/"$1"/task/*/status 2>/dev/null; }
untraced "$C" && ok "churn untraced after the cycles" || not_ok "churn left traced"

# ---- (c) ----
timeout 60 "$HS" profile --rate 65536 "$C" >/dev/null 2>"$HS_TMP/c.err" &
H=$!
for _ in $(seq 100); do grep -q "routed to" "$HS_TMP/c.err" && break; sleep 0.1; done
sleep 0.3
kill -KILL "$H"
wait "$H" 2>/dev/null || true
sleep 0.5
alive "$C" && ok "the target runs on after heapscope is SIGKILLed" || not_ok "churn died"
st=$("$HS" profile --status "$C" 2>&1) || true
case $st in *"profile active"*) ok "status names the profile left behind: $st" ;; *) not_ok "status: $st" ;; esac
rc=0
timeout 60 "$HS" profile --stop "$C" >"$HS_TMP/stop.out" 2>&1 || rc=$?
[ "$rc" = 0 ] && ok "--stop: $(cat "$HS_TMP/stop.out")" || not_ok "--stop: exit $rc: $(cat "$HS_TMP/stop.out")"
slots_back "$C" "$HS_TMP/c.before" && ok "--stop put every slot back" || not_ok "slots after --stop"
rc=0
"$HS" profile --stop "$C" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] && ok "a second --stop finds nothing to stop (exit 2)" || not_ok "second --stop: exit $rc"
kill -USR1 "$C"
for _ in $(seq 100); do grep -q '^CHECK' "$TARGET_OUT" && break; sleep 0.1; done
grep -q '^CHECK OK' "$TARGET_OUT" && ok "churn verified every block: $(grep CHECK "$TARGET_OUT")" ||
	not_ok "churn: $(cat "$TARGET_OUT")"
exit $failed
