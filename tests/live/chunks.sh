#!/bin/bash
# heapscope chunks and bins on real heaps: the linear walk agrees with
# glibc's own malloc_info per arena and accounts for every byte, bins lists
# exactly what the target freed, and corrupt heaps are named, not followed.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
failed=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failed=1; }

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
