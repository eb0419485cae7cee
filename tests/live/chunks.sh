#!/bin/bash
# heapscope chunks and bins on real heaps: the linear walk agrees with
# glibc's own malloc_info per arena and accounts for every byte, bins lists
# exactly what the target freed, and corrupt heaps are named, not followed.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3

start_target "$(target knownheap)" "$HS_TMP/mi.txt" 4
ptrace_ok "$TARGET_PID"
"$HS" chunks --json "$TARGET_PID" >"$HS_TMP/c.json"
if python3 - "$HS_TMP/c.json" "$HS_TMP/mi.txt" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
xml = open(sys.argv[2]).read()
heaps = re.findall(r'<heap nr="(\d+)">(.*?)</heap>', xml, re.S)
assert len(heaps) == len(d["arenas"]), (len(heaps), len(d["arenas"]))
for (nr, body), a in zip(heaps, d["arenas"]):
    fast = re.search(r'<total type="fast" count="(\d+)" size="(\d+)"/>', body).groups()
    rest = re.search(r'<total type="rest" count="(\d+)" size="(\d+)"/>', body).groups()
    system = int(re.search(r'<system type="current" size="(\d+)"/>', body).group(1))
    b, f, t = a["bin"], a["fastbin"], a["top"]["bytes"]
    # malloc_info: fast from the lists; rest = top + bins, raw sizes (+1 each)
    assert (f["count"], f["bytes"]) == (int(fast[0]), int(fast[1])), (nr, f, fast)
    assert b["count"] + 1 == int(rest[0]) and t + b["bytes"] + b["count"] == int(rest[1]), (nr, b, t, rest)
    assert a["system"] == system
    # every byte: chunks of every state, and the heap's own header
    # (heap_info 0x30 + malloc_state 0x898, aligned: 0x8d0 in glibc 2.36)
    walked = sum(a[k]["bytes"] for k in ("used", "bin", "fastbin", "tcache", "top", "fencepost"))
    overhead = system - walked
    assert overhead == (0 if nr == "0" else 0x8d0), (nr, overhead)
    inuse = a["used"]["bytes"] + a["tcache"]["bytes"] + overhead
    assert inuse == system - (b["bytes"] + f["bytes"] + t)
m = d["mmapped"]
assert m["count"] == m["glibc_count"] and m["bytes"] == m["glibc_bytes"], m
print(f"# {len(heaps)} arenas, {len(d['chunks'])} chunks, {m['count']} mmapped")
PY
then ok "chunks --json: per arena, fast and rest equal malloc_info; used + free + headers = system; mmapped = mp_"
else not_ok "chunks disagree with malloc_info"; fi
rc=0
"$HS" chunks --histogram "$TARGET_PID" >"$HS_TMP/h.txt" || rc=$?
[ "$rc" = 0 ] && grep -q '^SIZE CLASS' "$HS_TMP/h.txt" && ok "chunks --histogram" || not_ok "chunks --histogram exit $rc"
rc=0
"$HS" chunks --strings --top 3 --json "$TARGET_PID" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["top_strings"]' || rc=$?
[ "$rc" = 0 ] && ok "chunks --strings --top" || not_ok "chunks --strings --top"
check_untouched "$TARGET_PID" || not_ok "knownheap left traced or stopped"

# thread arenas that outgrew their first 64 MiB heap: the walk crosses
# the fencepost at the end of the full heap into the next one
start_target "$(target bigheap)" 2 400000
"$HS" chunks --histogram --json "$TARGET_PID" >"$HS_TMP/big.json"
"$HS" arenas --json "$TARGET_PID" >"$HS_TMP/bigarenas.json"
if python3 - "$HS_TMP/big.json" "$HS_TMP/bigarenas.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
heaps = {a["index"]: len(a["heaps"]) for a in json.load(open(sys.argv[2]))["arenas"]}
assert any(n > 1 for n in heaps.values()), heaps
for a in d["arenas"]:
    walked = sum(a[k]["bytes"] for k in ("used", "bin", "fastbin", "tcache", "top", "fencepost"))
    want = 0 if a["index"] == 0 else 0x8d0 + 0x30 * (heaps[a["index"]] - 1)
    assert not a["partial"] and a["system"] - walked == want, (a["index"], a["system"] - walked, want)
print(f"# heaps per arena: {heaps}")
PY
then ok "multi-heap arenas walked across their fenceposts, every byte accounted for"
else not_ok "multi-heap arenas"; fi
kill "$TARGET_PID"

# mmapped chunks merged by the kernel with their neighbours (a plain
# anonymous mmap placed below each): not at their mapping's start, still
# found, and the figures equal mallinfo2's hblks/hblkhd
start_target "$(target simple)" mmap-merge
rc=0
timeout -k 5 60 "$HS" chunks --json "$TARGET_PID" >"$HS_TMP/mm.json" 2>"$HS_TMP/err" || rc=$?
if [ "$rc" = 0 ] && python3 - "$HS_TMP/mm.json" "$TARGET_OUT" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["mmapped"]
line = [l for l in open(sys.argv[2]) if l.startswith("MMAPPED ")][0]
want = {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
assert want["hblks"] == 4 and (m["count"], m["bytes"]) == (want["hblks"], want["hblkhd"]), (m, want)
PY
then ok "mmapped chunks inside merged mappings: count and bytes equal mallinfo2's hblks/hblkhd"
else not_ok "mmapped chunks in merged mappings: exit $rc $(cat "$HS_TMP/err")"; fi
check_untouched "$TARGET_PID" || not_ok "mmap-merge target left traced or stopped"
kill "$TARGET_PID"

# bins lists exactly the chunks the target freed
start_target "$(target simple)" freed
"$HS" bins --json "$TARGET_PID" >"$HS_TMP/b.json"
if python3 - "$HS_TMP/b.json" "$TARGET_OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
freed = {int(x, 16) for x in open(sys.argv[2]).read().split("FREED", 1)[1].split("\n")[0].split()}
listed = set()
for a in d["arenas"]:
    for l in a["lists"]:
        listed |= {int(c["address"], 16) for c in l["chunks"]}
for t in d["tcaches"]:
    listed |= {int(c["address"], 16) for c in t["chunks"]}
assert listed == freed, (sorted(hex(x) for x in listed ^ freed))
print(f"# {len(freed)} freed chunks, all listed, nothing else")
PY
then ok "bins lists exactly the 14 chunks the target freed"; else not_ok "bins differ from what was freed"; fi

# corrupt heaps: named, with the address, exit 1, no hang
for mode in corrupt-size corrupt-fastbin-cycle corrupt-tcache; do
	start_target "$(target simple)" "$mode"
	for cmd in bins chunks arenas; do
		rc=0
		timeout -k 5 20 "$HS" "$cmd" "$TARGET_PID" >/dev/null 2>"$HS_TMP/err" || rc=$?
		if [ "$rc" = 1 ] && grep -Eq '0x[0-9a-f]+' "$HS_TMP/err"; then
			ok "$mode: $cmd exits 1: $(head -1 "$HS_TMP/err")"
		else
			not_ok "$mode: $cmd exit $rc: $(cat "$HS_TMP/err")"
		fi
	done
	check_untouched "$TARGET_PID" || not_ok "$mode target left traced or stopped"
done
# two corrupt lists in one arena (a fastbin cycle, a small-bin fd of
# 0xdeadbeef): both named, each by the chunk holding the bad pointer, and
# the cycle's repeat not counted
start_target "$(target simple)" corrupt-two-lists
rc=0
timeout -k 5 60 "$HS" bins --json "$TARGET_PID" >"$HS_TMP/two.json" 2>"$HS_TMP/err" || rc=$?
if [ "$rc" = 1 ] && grep -Eq 'chunk 0x[0-9a-f]+ in small bin 17 has fd 0xdeadbeef' "$HS_TMP/err" &&
	grep -Eq 'fastbin 1: cycle: chunk 0x[0-9a-f]+ has fd 0x[0-9a-f]+, a chunk already in the list' "$HS_TMP/err"; then
	ok "corrupt-two-lists: bins names both corrupt lists and the chunks holding the bad pointers"
else
	not_ok "corrupt-two-lists: bins exit $rc: $(cat "$HS_TMP/err")"
fi
if python3 - "$HS_TMP/two.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["arenas"][0]
fast = [l for l in a["lists"] if l["kind"] == "fastbin" and l["bin"] == 1]
small = [l for l in a["lists"] if l["kind"] == "small" and l["bin"] == 17]
assert fast and fast[0]["count"] == 2 and fast[0]["corrupt"], fast
assert small and small[0]["corrupt"], small
assert len(a["problems"]) == 2, a["problems"]
PY
then ok "corrupt-two-lists: the 2-chunk fastbin cycle counts 2 chunks; both lists marked corrupt in JSON"
else not_ok "corrupt-two-lists: JSON"; fi
check_untouched "$TARGET_PID" || not_ok "corrupt-two-lists target left traced or stopped"
kill "$TARGET_PID"

# house of botcake: a chunk in tcache that lies inside a free unsorted chunk
start_target "$(target simple)" botcake
for cmd in bins chunks; do
	rc=0
	timeout -k 5 60 "$HS" "$cmd" "$TARGET_PID" >/dev/null 2>"$HS_TMP/err" || rc=$?
	if [ "$rc" = 1 ] && grep -Eq "chunk 0x[0-9a-f]+ in thread [0-9]+'s tcache bin 15 lies inside free chunk 0x[0-9a-f]+ \(size 0x220\) in unsorted bin: freed twice" "$HS_TMP/err"; then
		ok "botcake: $cmd exits 1: $(head -1 "$HS_TMP/err")"
	else
		not_ok "botcake: $cmd exit $rc: $(cat "$HS_TMP/err")"
	fi
done
check_untouched "$TARGET_PID" || not_ok "botcake target left traced or stopped"
kill "$TARGET_PID"

# --histogram sums as it walks: the same figures, class by class and arena
# by arena, as the chunks the listing walk keeps, on heaps of tens of MiB
# (here the lists' walk reads most of each heap, so no copier thread runs:
# tests/live/chunks_threads.sh has the heaps the copier copies)
start_target "$(target bigheap)" 2 100000
rc=0
timeout -k 5 120 "$HS" chunks --json "$TARGET_PID" >"$HS_TMP/list.json" || rc=$?
timeout -k 5 120 "$HS" chunks --histogram --json "$TARGET_PID" >"$HS_TMP/hist.json" || rc=$?
if [ "$rc" = 0 ] && python3 - "$HS_TMP/list.json" "$HS_TMP/hist.json" <<'PY'
import json, sys
lst, hist = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def bin_index(sz):
    for shift, base, lim in ((4, 0, None), (6, 48, 48), (9, 91, 20), (12, 110, 10), (15, 119, 4), (18, 124, 2)):
        if (lim is None and sz < 0x400) or (lim is not None and (sz >> shift) <= lim):
            return base + (sz >> shift)
    return 126
want = {}
for c in lst["chunks"]:
    if c["state"] in ("top", "fencepost"):
        continue
    k = ("class", "mmapped") if c["state"] == "mmapped" else ("bin", bin_index(c["size"]))
    e = want.setdefault(k, {"min_size": c["size"], "max_size": c["size"], "used": 0, "used_bytes": 0, "free": 0, "free_bytes": 0})
    e["min_size"], e["max_size"] = min(e["min_size"], c["size"]), max(e["max_size"], c["size"])
    f = "free" if c["state"] in ("bin", "fastbin", "tcache") else "used"
    e[f] += 1
    e[f + "_bytes"] += c["size"]
got = {(("class", h.pop("class")) if "class" in h else ("bin", h.pop("bin"))): h for h in hist["histogram"]}
assert got == want, [(k, got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)][:4]
assert lst["arenas"] == hist["arenas"], "per-arena sums differ"
assert sum(a["used"]["count"] for a in hist["arenas"]) > 50000
print(f"# {len(lst['chunks'])} chunks, {len(got)} size classes")
PY
then ok "chunks --histogram: every class and every arena's sums equal the listing's"
else not_ok "chunks --histogram disagrees with the listing (exit $rc)"; fi
kill "$TARGET_PID"

# the copying thread on a heap that changes under it: 8 threads churning
# malloc, stopped for each look; every byte of each arena accounted for,
# the target released untraced, its blocks intact (its own check)
start_target "$(target churn)" 8
bad=
for i in 1 2 3 4 5; do
	rc=0
	timeout -k 5 60 "$HS" chunks --histogram --json "$TARGET_PID" >"$HS_TMP/ch.json" 2>"$HS_TMP/err" || rc=$?
	{ [ "$rc" = 0 ] || [ "$rc" = 1 ]; } || { bad="exit $rc: $(tail -1 "$HS_TMP/err")"; break; }
	python3 - "$HS_TMP/ch.json" <<'PY' || { bad="run $i: figures"; break; }
import json, sys
d = json.load(open(sys.argv[1]))
for a in d["arenas"]:
    if a["partial"]:
        continue
    walked = sum(a[k]["bytes"] for k in ("used", "bin", "fastbin", "tcache", "top", "fencepost"))
    over = a["system"] - walked
    # the main heap has no header; a thread heap's first holds heap_info
    # and the arena, each later one its heap_info
    assert over == 0 if a["index"] == 0 else (over >= 0x8d0 and (over - 0x8d0) % 0x30 == 0), (a["index"], over)
h = d["histogram"]
assert sum(c["used"] for c in h if "bin" in c) == sum(a["used"]["count"] for a in d["arenas"])
assert sum(c["free"] for c in h) == sum(a[k]["count"] for a in d["arenas"] for k in ("bin", "fastbin", "tcache"))
PY
	# its threads run (state R): not check_untouched, which wants them asleep
	if grep -q -E '^(TracerPid:[[:space:]]*[1-9]|State:[[:space:]]*[tT])' /proc/"$TARGET_PID"/task/*/status; then
		bad="run $i: target left traced or stopped"
		break
	fi
done
kill -USR1 "$TARGET_PID"
wait_target "$TARGET_PID" 30
if [ -z "$bad" ] && grep -q '^CHECK OK' "$TARGET_OUT"; then
	ok "chunks --histogram on a churning target: figures consistent, target released, its blocks intact"
else
	not_ok "chunks --histogram on a churning target: ${bad:-$(cat "$TARGET_OUT")}"
fi

# the target killed while its heaps are copied and walked: heapscope ends
# (its copying thread joined), never hangs; 0 when the walk was done first
for delay in 0.05 0.1 0.15 0.2; do
	start_target "$(target bigheap)" 4 100000
	rc=0
	timeout -k 5 60 "$HS" chunks --histogram "$TARGET_PID" >/dev/null 2>"$HS_TMP/err" &
	hs=$!
	sleep "$delay"
	kill -KILL "$TARGET_PID"
	wait "$hs" || rc=$?
	wait_target "$TARGET_PID"
	case $rc in
	0 | 1 | 2) ok "chunks --histogram, target killed after ${delay}s: exit $rc $(head -c 120 "$HS_TMP/err")" ;;
	*) not_ok "chunks --histogram, target killed after ${delay}s: exit $rc (124: it hung) $(tail -1 "$HS_TMP/err")" ;;
	esac
done

# a hostile arena list: 30000 fake arenas on main_arena.next.  The walk
# stops at glibc's own arena cap, the target is released, the result is
# partial and says what was cut.  (timeout is only the failure detector;
# the times are printed, not asserted.)
start_target "$(target simple)" hostile-arenas
cap=$(( 2 * 8 * $(getconf _NPROCESSORS_CONF) + 8 ))
for cmd in arenas bins chunks; do
	rc=0
	t0=$(date +%s%N)
	timeout -k 5 60 "$HS" "$cmd" --json "$TARGET_PID" >"$HS_TMP/host.json" 2>"$HS_TMP/err" || rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	if [ "$rc" = 1 ] && grep -q 'walk cut short: stopped after [0-9]* arenas: the arena list goes on past what glibc allows' "$HS_TMP/err" &&
		python3 - "$HS_TMP/host.json" "$cap" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = len(d["arenas"]) if "arenas" in d and isinstance(d["arenas"], list) else None
assert d["walk_cut"], d.get("walk_cut")
assert n is None or n <= int(sys.argv[2]), n
print(f"# {n} arenas in the output, target paused {d['pause_us']} us")
PY
	then
		ok "hostile-arenas: $cmd exits 1 in ${ms} ms, cut at the arena cap (at most $cap)"
	else
		not_ok "hostile-arenas: $cmd exit $rc after ${ms} ms: $(tail -2 "$HS_TMP/err")"
	fi
	check_untouched "$TARGET_PID" || not_ok "hostile-arenas target left traced or stopped after $cmd"
done
kill "$TARGET_PID"
[ "$failed" = 0 ] && echo "PASS: chunks.sh" || exit 1
