#!/bin/bash
# arenas --no-freeze: the target stopped only to read its threads'
# registers, then its lists walked while it runs, until two walks agree.
# On a heap that does not change, the figures are the stopped walk's (and
# glibc's); no read of the target's memory is made while it is stopped; on
# a churning heap the run ends (agreed, or approximate), the target
# untouched and intact.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
need_strace
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2"; }
# the figures, without what depends on how they were read
strip()
{
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("pause_us", "walk_us", "read_mode", "stops", "walks", "approximate"):
    d.pop(k, None)
print(json.dumps(d, sort_keys=True))' "$1"
}

# 1. a heap that does not change: the stopped walk's figures
start_target "$(target knownheap)" "$HS_TMP/mi.txt" 4
pid=$TARGET_PID
ptrace_ok "$pid"
timeout 60 "$HS" arenas "$pid" >/dev/null   # the layout cached first: the same "layout" for both
timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/stopped.json"
timeout 60 "$HS" arenas --no-freeze --json "$pid" >"$HS_TMP/running.json"
m=$(field "$HS_TMP/running.json" read_mode) w=$(field "$HS_TMP/running.json" walks)
a=$(field "$HS_TMP/running.json" approximate)
[ "$m" = running ] && [ "$w" = 2 ] && [ "$a" = False ] &&
	ok "knownheap: read_mode running, 2 walks, not approximate" ||
	not_ok "knownheap: read_mode '$m', walks '$w', approximate '$a'"
[ "$(strip "$HS_TMP/stopped.json")" = "$(strip "$HS_TMP/running.json")" ] &&
	ok "knownheap: the same figures as the stopped walk (tcaches included)" ||
	not_ok "knownheap: figures differ: $(diff <(strip "$HS_TMP/stopped.json" | tr , '\n') \
		<(strip "$HS_TMP/running.json" | tr , '\n') | head -6 | tr '\n' ' ')"
arenas_match_malloc_info "$HS_TMP/running.json" "$HS_TMP/mi.txt" &&
	ok "knownheap: the running walk's lists match malloc_info in every arena" ||
	not_ok "knownheap: the running walk's lists differ from malloc_info"
timeout 60 "$HS" arenas --no-freeze --no-debuginfo --json "$pid" >"$HS_TMP/running.nodebug.json"
arenas_match_malloc_info "$HS_TMP/running.nodebug.json" "$HS_TMP/mi.txt" &&
	ok "knownheap, --no-debuginfo: the running walk's lists match malloc_info" ||
	not_ok "knownheap, --no-debuginfo: the running walk's lists differ from malloc_info"
grep -q 'stopped only for its threads. registers; the last two of 2 walks agree' \
	< <(timeout 60 "$HS" arenas --no-freeze "$pid") && ok "the text says how it was read" ||
	not_ok "the text does not say how it was read"

# 2. no read of the target's memory while it is stopped: the reads come
# after the last detach
timeout -k 5 60 strace -f -o "$HS_TMP/trace" -e trace=process_vm_readv,ptrace \
	"$HS" arenas --no-freeze "$pid" >/dev/null
counts=$(awk -v p="$pid" '
	/ptrace\(PTRACE_SEIZE/ { held++ }
	/ptrace\(PTRACE_DETACH/ { held--; if (held == 0) detached = 1 }
	index($0, "process_vm_readv(" p ",") { if (held > 0) during++; else if (detached) after++ }
	END { print during + 0, after + 0 }' "$HS_TMP/trace")
read -r during after <<<"$counts"
[ "$during" = 0 ] && [ "$after" -gt 0 ] &&
	ok "no read while the target is stopped ($after after it runs again)" ||
	not_ok "reads while stopped: $during, after: $after"
check_untouched "$pid" || not_ok "knownheap left traced or stopped"

# 3. a churning heap: each look ends, agreed or approximate, with figures
# that add up (but in arenas whose lists every walk met mid-change, marked
# partial) and no top chunk larger than its arena (a walk may read a chunk's
# bytes as top's size: never shown); the target is left untouched, its
# blocks intact
start_target "$(target churn)" 4
pid=$TARGET_PID
bad=0
for i in 1 2 3 4 5 6; do
	rc=0
	timeout 60 "$HS" arenas --no-freeze --json "$pid" >"$HS_TMP/churn.$i.json" 2>"$HS_TMP/churn.err" || rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
		not_ok "churn look $i: exit $rc: $(cat "$HS_TMP/churn.err")"
		bad=1
		continue
	fi
	python3 - "$HS_TMP/churn.$i.json" <<'PY' || { not_ok "churn look $i: $(cat "$HS_TMP/churn.$i.json" | head -c 300)"; bad=1; }
import json, sys
d = json.load(open(sys.argv[1]))
assert d["read_mode"] == "running", d["read_mode"]
assert 2 <= d["walks"] <= 4 and (d["approximate"] or d["walks"] >= 2), d
for a in d["arenas"]:
    assert a["free_total"] == a["free_bins"] + a["free_fastbins"] + a["free_tcache"] + a["top"], a
    # an arena whose lists were met mid-change in every walk is marked partial
    assert a.get("partial") or a["in_use"] + a["free_total"] == a["system"], a
    assert a["top"] <= a["system"], a
PY
done
[ "$bad" = 0 ] && ok "churn: six looks while it runs, each ended with figures that add up"
churn_released "$pid"

[ "$failed" = 0 ] && echo "PASS: running.sh" || exit 1
