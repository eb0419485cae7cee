#!/bin/bash
# Acceptance test: heapscope rebuilds glibc's own malloc_info() XML and
# mallinfo2() of a live process exactly, with and without libc debug info,
# and leaves the process untouched.
#
# knownheap (4 threads, 5 arenas) writes malloc_info(0) and a MALLINFO2 line
# to a file and then blocks without allocating, so the file is the truth about
# the heap heapscope reads.  On SIGUSR1 knownheap checks that its heap and its
# mallinfo2() are unchanged and that malloc still works, and says CHECK OK.
#
# Needs: HEAPSCOPE, TARGETS_DIR, python3.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3
KNOWNHEAP=$(target knownheap)
MI=$HS_TMP/mi.txt

start_target "$KNOWNHEAP" "$MI" 4
pid=$TARGET_PID
ptrace_ok "$pid"

# --- the truth: split knownheap's file into the XML and the MALLINFO2 line
[ "$(grep -c '^MALLINFO2 ' "$MI")" = 1 ] ||
	framework_failure "$MI: expected exactly one MALLINFO2 line"
tail -n 1 "$MI" | grep -q '^MALLINFO2 ' ||
	framework_failure "$MI: the MALLINFO2 line is not the last line"
sed '/^MALLINFO2 /,$d' "$MI" >"$HS_TMP/expected.xml"
grep '^MALLINFO2 ' "$MI" >"$HS_TMP/expected.mallinfo2"
nheaps=$(grep -c '^<heap nr=' "$HS_TMP/expected.xml")
echo "# target pid $pid, $nheaps arenas; expected:"
sed 's/^/#   /' "$HS_TMP/expected.mallinfo2"

# --- is there debug info for the target's libc?  Without it the default
# run takes the same no-symbol path as --no-debuginfo.
libc=$(awk '$6 ~ /\/libc[.-][^\/]*so/ { print $6; exit }' "/proc/$pid/maps")
debuginfo=unknown
if [ -z "$libc" ]; then
	echo "# note: no libc mapping found in /proc/$pid/maps"
elif ! command -v readelf >/dev/null 2>&1; then
	echo "# note: readelf not found, cannot tell whether $libc has debug info"
else
	buildid=$(readelf -n "/proc/$pid/root$libc" 2>/dev/null |
		sed -n 's/^[[:space:]]*Build ID: \([0-9a-f]*\)$/\1/p' | head -n 1)
	dbg=/usr/lib/debug/.build-id/${buildid:0:2}/${buildid:2}.debug
	if [ -z "$buildid" ]; then
		echo "# note: $libc has no build-id note"
	elif [ -r "$dbg" ]; then
		debuginfo=present
		echo "# libc $libc build-id $buildid: debug info present ($dbg)"
	else
		debuginfo=absent
		echo "# note: libc $libc build-id $buildid: debug info ABSENT ($dbg);"
		echo "# note: the default runs below test only the no-symbol path"
	fi
fi

# run_hs NAME ARGS...: run heapscope (bounded) into $HS_TMP/NAME.{out,err};
# anything but exit 0 fails the test
run_hs()
{
	local name=$1 rc=0
	shift
	timeout -k 5 60 "$HS" "$@" >"$HS_TMP/$name.out" 2>"$HS_TMP/$name.err" || rc=$?
	if [ "$rc" != 0 ]; then
		sed 's/^/#   stderr: /' "$HS_TMP/$name.err"
		fail "heapscope $* exited with $rc (124: timed out)"
	fi
	check_untouched "$pid" || fail "target not left untouched after heapscope $*"
}

# check_mallinfo2 NAME WHERE: compare the ten mallinfo2 fields of the JSON in
# $HS_TMP/NAME.out (WHERE=arenas: its top-level "mallinfo2" object, also
# sanity-check the other top-level keys; WHERE=stats: the top-level object)
check_mallinfo2()
{
	python3 - "$HS_TMP/$1.out" "$2" "$HS_TMP/expected.mallinfo2" "$pid" "$nheaps" <<'EOF'
import json, sys
path, where, mi_path, pid, nheaps = sys.argv[1:6]
FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
want = dict(kv.split("=") for kv in open(mi_path).read().split()[1:])
want = {k: int(v) for k, v in want.items()}
assert sorted(want) == sorted(FIELDS), want
try:
    doc = json.load(open(path))
except ValueError as e:
    sys.exit(f"output is not valid JSON: {e}")
errors = []
if where == "arenas":
    for key in ("pid", "pause_us", "arenas", "total", "mallinfo2", "glibc"):
        if key not in doc:
            errors.append(f"top-level key {key!r} missing")
    if doc.get("pid") != int(pid):
        errors.append(f"pid is {doc.get('pid')!r}, expected {pid}")
    pu = doc.get("pause_us")
    if not isinstance(pu, int) or isinstance(pu, bool) or pu < 0:
        errors.append(f"pause_us is {pu!r}, expected an integer >= 0")
    if not isinstance(doc.get("arenas"), list) or len(doc["arenas"]) != int(nheaps):
        n = len(doc["arenas"]) if isinstance(doc.get("arenas"), list) else None
        errors.append(f"arenas: {n} entries, malloc_info has {nheaps} heaps")
    if not isinstance(doc.get("glibc"), dict):
        errors.append("glibc is not an object")
    got = doc.get("mallinfo2")
else:
    got = doc
if not isinstance(got, dict):
    errors.append(f"mallinfo2 object missing (got {type(got).__name__})")
    got = {}
for k in FIELDS:
    v = got.get(k)
    if not isinstance(v, int) or isinstance(v, bool):
        errors.append(f"mallinfo2.{k} = {v!r}, expected integer {want[k]}")
    elif v != want[k]:
        errors.append(f"mallinfo2.{k} = {v}, expected {want[k]} (diff {v - want[k]:+d})")
for e in errors:
    print("#   " + e)
sys.exit(1 if errors else 0)
EOF
}

# --- the comparisons, with debug info (if any) and without
for mode in default no-debuginfo; do
	if [ "$mode" = default ]; then opt=; else opt=--no-debuginfo; fi
	o=${opt:+$opt }  # for messages

	run_hs "mi-$mode" stats $opt --malloc-info "$pid"
	if ! diff -u "$HS_TMP/expected.xml" "$HS_TMP/mi-$mode.out" >"$HS_TMP/mi-$mode.diff"; then
		head -n 200 "$HS_TMP/mi-$mode.diff"
		fail "stats $o--malloc-info differs from the target's malloc_info()"
	fi
	echo "ok - stats $o--malloc-info is byte-identical to malloc_info() ($mode)"

	run_hs "arenas-$mode" arenas $opt --json "$pid"
	check_mallinfo2 "arenas-$mode" arenas ||
		fail "arenas $o--json: mallinfo2 differs from the target's mallinfo2()"
	echo "ok - arenas $o--json: mallinfo2 equals mallinfo2() ($mode)"

	run_hs "mi2-$mode" stats $opt --mallinfo2 --json "$pid"
	check_mallinfo2 "mi2-$mode" stats ||
		fail "stats $o--mallinfo2 --json differs from the target's mallinfo2()"
	echo "ok - stats $o--mallinfo2 --json equals mallinfo2() ($mode)"
done

check_untouched "$pid" || fail "target not left untouched"
echo "ok - target untraced and sleeping"

# --- the target checks itself: heap unchanged, malloc still works
kill -USR1 "$pid"
wait_target "$pid" 30
if [ "$TARGET_STATUS" != 0 ] || ! grep -q '^CHECK OK$' "$TARGET_OUT"; then
	sed 's/^/#   target: /' "$TARGET_OUT" "$TARGET_OUT.err"
	fail "target self-check failed (exit status $TARGET_STATUS)"
fi
echo "ok - target self-check: CHECK OK"

echo "PASS: $ME: malloc_info and mallinfo2 rebuilt exactly (libc debug info: $debuginfo)"
