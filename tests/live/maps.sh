#!/bin/bash
# heapscope maps: classify the mappings of knownheap (4 threads, so 4 thread
# arenas, 4 thread stacks and mmapped chunks besides the main heap), in text
# and JSON, and leave the target untouched.
#
# Needs: HEAPSCOPE, TARGETS_DIR, python3.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3
KNOWNHEAP=$(target knownheap)

start_target "$KNOWNHEAP" "$HS_TMP/mi.txt" 4
pid=$TARGET_PID
ptrace_ok "$pid"

# --- human output
rc=0
timeout -k 5 60 "$HS" maps "$pid" >"$HS_TMP/maps.txt" 2>"$HS_TMP/maps.err" || rc=$?
if [ "$rc" != 0 ]; then
	sed 's/^/#   stderr: /' "$HS_TMP/maps.err"
	fail "heapscope maps exited with $rc (124: timed out)"
fi
sed 's/^/#   /' "$HS_TMP/maps.txt"
# a header: the first line names columns, it does not start with an address
header=$(head -n 1 "$HS_TMP/maps.txt")
if [ -z "$header" ] || printf '%s\n' "$header" | grep -Eq '^[[:space:]]*(0x)?[0-9a-fA-F]{6,}'; then
	fail "maps: the first line is not a header: '$header'"
fi
printf '%s\n' "$header" | grep -q '[A-Za-z]' || fail "maps: header has no column names"
[ "$(wc -l <"$HS_TMP/maps.txt")" -gt 1 ] || fail "maps: no mapping lines after the header"
echo "ok - maps: text output with a header"
check_untouched "$pid" || fail "target not left untouched after maps"

# --- JSON output
rc=0
timeout -k 5 60 "$HS" maps --json "$pid" >"$HS_TMP/maps.json" 2>"$HS_TMP/maps.err" || rc=$?
if [ "$rc" != 0 ]; then
	sed 's/^/#   stderr: /' "$HS_TMP/maps.err"
	fail "heapscope maps --json exited with $rc (124: timed out)"
fi
python3 - "$HS_TMP/maps.json" "$pid" <<'EOF' || fail "maps --json: see above"
import collections, json, re, sys
path, pid = sys.argv[1], int(sys.argv[2])
try:
    doc = json.load(open(path))
except ValueError as e:
    sys.exit(f"#   not valid JSON: {e}")
err = []
if doc.get("pid") != pid:
    err.append(f"pid is {doc.get('pid')!r}, expected {pid}")
maps = doc.get("mappings")
if not isinstance(maps, list) or not maps:
    sys.exit("#   'mappings' is not a non-empty list")
KINDS = {"main_heap", "arena_heap", "thread_stack", "mmap_chunk", "file", "anon", "other"}
isint = lambda v: isinstance(v, int) and not isinstance(v, bool)
kinds = collections.Counter()
arenas = set()
for i, m in enumerate(maps):
    where = f"mappings[{i}]"
    for key in ("start", "end", "size", "rss", "perms", "kind"):
        if key not in m:
            err.append(f"{where}: no {key!r}")
    start, end = m.get("start"), m.get("end")
    if not (isinstance(start, str) and re.fullmatch(r"0x[0-9a-f]+", start)
            and isinstance(end, str) and re.fullmatch(r"0x[0-9a-f]+", end)):
        err.append(f"{where}: start/end {start!r}/{end!r} are not \"0x...\" strings")
    elif m.get("size") != int(end, 16) - int(start, 16):
        err.append(f"{where}: size {m.get('size')!r} is not end - start")
    if not isint(m.get("rss")) or m["rss"] < 0:
        err.append(f"{where}: rss {m.get('rss')!r} is not an integer >= 0")
    if not (isinstance(m.get("perms"), str) and re.fullmatch(r"[r-][w-][x-][ps]", m["perms"])):
        err.append(f"{where}: perms {m.get('perms')!r}")
    kind = m.get("kind")
    if kind not in KINDS:
        err.append(f"{where}: unknown kind {kind!r}")
    kinds[kind] += 1
    if kind == "arena_heap":
        if not isint(m.get("arena")):
            err.append(f"{where}: arena_heap without an integer 'arena'")
        else:
            arenas.add(m["arena"])
    elif kind == "main_heap":
        # the spec puts "arena" on arena_heap only; main_arena's index
        # (0) on the main heap is a harmless extra, but it must be 0
        if "arena" in m and m["arena"] != 0:
            err.append(f"{where}: main_heap with arena {m['arena']!r}, expected 0 or none")
    elif "arena" in m:
        err.append(f"{where}: 'arena' on a {kind} mapping")
print("#   kinds: " + ", ".join(f"{k}={n}" for k, n in sorted(kinds.items())))
if kinds["arena_heap"] < 4:
    err.append(f"{kinds['arena_heap']} arena_heap mappings, expected >= 4 (4 thread arenas)")
if len(arenas) < 4:
    err.append(f"arena_heap mappings name {len(arenas)} distinct arenas, expected >= 4")
if kinds["main_heap"] != 1:
    err.append(f"{kinds['main_heap']} main_heap mappings, expected exactly 1")
if kinds["thread_stack"] < 4:
    err.append(f"{kinds['thread_stack']} thread_stack mappings, expected >= 4")
if kinds["mmap_chunk"] < 1:
    err.append("no mmap_chunk mapping (each thread keeps mmapped chunks)")
for e in err:
    print("#   " + e)
sys.exit(1 if err else 0)
EOF
echo "ok - maps --json: valid, arena heaps, main heap, thread stacks, mmapped chunks"
check_untouched "$pid" || fail "target not left untouched after maps --json"
echo "ok - target untraced and sleeping"

echo "PASS: $ME"
