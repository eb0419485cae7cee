#!/bin/bash
# heapscope top: three demo targets of known waste (1, 3 and 6 threads,
# each thread leaving ~37 MiB free in its own arena) are ranked 6, 3, 1;
# the first pass (--exact 0) stops none of them (TracerPid and State of
# every thread sampled all along it); and the exact pass gives for each the
# figures `heapscope arenas --json` gives.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3

start_target "$(target demo)" 1; A=$TARGET_PID
ptrace_ok "$A"
start_target "$(target demo)" 3; B=$TARGET_PID
start_target "$(target demo)" 6; C=$TARGET_PID
PIDS=$A,$B,$C

# --- the first pass: nothing stopped, sampled all along
python3 - "$A" "$B" "$C" "$HS_TMP/sampling.done" "$HS_TMP/sampling.ready" >"$HS_TMP/samples" <<'PY' &
import glob, os, sys
pids, done, ready = sys.argv[1:4], sys.argv[4], sys.argv[5]
n = bad = 0
first = True
while first or not os.path.exists(done):
    for p in pids:
        for st in glob.glob(f"/proc/{p}/task/*/status"):
            try:
                text = open(st).read()
            except OSError:
                continue
            f = dict(l.split(":", 1) for l in text.splitlines() if ":" in l)
            n += 1
            if f["TracerPid"].strip() != "0" or f["State"].strip()[0] in "tT":
                bad += 1
                print("stopped:", st, f["TracerPid"].strip(), f["State"].strip())
    if first:
        open(ready, "w").close()     # the runs start after one round
        first = False
print("samples", n, bad)
PY
sampler=$!
# (20 runs may all end before python has started: wait for its first round)
for _ in $(seq 500); do [ -e "$HS_TMP/sampling.ready" ] && break; sleep 0.01; done
for _ in $(seq 20); do
	timeout 60 "$HS" top --exact 0 --pids "$PIDS" --json >"$HS_TMP/first.json" 2>"$HS_TMP/first.err" ||
		not_ok "top --exact 0 exit $?: $(cat "$HS_TMP/first.err")"
done
touch "$HS_TMP/sampling.done"
wait "$sampler"
read -r _ nsamples nbad < <(grep '^samples' "$HS_TMP/samples")
if [ "$nbad" = 0 ] && [ "$nsamples" -gt 0 ]; then
	ok "first pass, 20 runs: $nsamples thread samples, none traced or stopped"
else
	not_ok "first pass stopped a target: $(cat "$HS_TMP/samples")"
fi

# --- exact for all three; ranked; equal to arenas --json
timeout 120 "$HS" top --exact 3 --pids "$PIDS" >"$HS_TMP/top.txt" 2>&1 || not_ok "top exit $?"
sed 's/^/# /' "$HS_TMP/top.txt"
timeout 120 "$HS" top --exact 3 --pids "$PIDS" --json >"$HS_TMP/top.json" 2>"$HS_TMP/top.err" || not_ok "top --json exit $?: $(cat "$HS_TMP/top.err")"
for p in "$A" "$B" "$C"; do
	timeout 60 "$HS" arenas --json --no-verdict "$p" >"$HS_TMP/arenas.$p.json" || not_ok "arenas $p exit $?"
done
if python3 - "$HS_TMP/top.json" "$HS_TMP/first.json" "$HS_TMP" "$A" "$B" "$C" <<'PY'; then
import json, sys
t = json.load(open(sys.argv[1])); first = json.load(open(sys.argv[2])); tmp = sys.argv[3]
a, b, c = map(int, sys.argv[4:7])
order = [e["pid"] for e in t["top"]]
assert order == [c, b, a], (order, [c, b, a])
assert [e["pid"] for e in first["top"]] == [c, b, a], first["top"]
assert all(not e["exact"] for e in first["top"]) and first["exact"] == 0
heaps = {e["pid"]: e["arena_heaps"] for e in first["top"]}
assert heaps == {a: 1, b: 3, c: 6}, heaps
for e in t["top"]:
    assert e["exact"], e
    d = json.load(open(f"{tmp}/arenas.{e['pid']}.json"))["total"]
    for k, j in (("arenas", "arenas"), ("resident", "resident"), ("in_use", "in_use"), ("free_total", "free_total"),
                 ("trimmable", "trimmable")):
        assert e[k] == d[j], (e["pid"], k, e[k], d[j])
fr = [e["free_resident"] for e in t["top"]]
print(f"ok - ranked {order} (6, 3, 1 threads) by free resident {fr}; 64 MiB heaps seen in the first pass {heaps}; "
      "exact figures equal arenas --json for each")
PY
	:
else
	not_ok "top's ranking or figures"
fi
for p in "$A" "$B" "$C"; do check_untouched "$p" || not_ok "pid $p left traced or stopped"; done
[ "$failed" = 0 ] && echo "PASS: top.sh" || exit 1
