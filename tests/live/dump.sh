#!/bin/bash
# heapscope dump: the bytes equal gdb's dump memory of the same range, the
# strings equal strings(1) over those bytes, UTF-16LE strings are found,
# --top counts what the target allocated, and bad input fails cleanly.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
need_cmd strings

RC=0
hs() { RC=0; timeout -k 5 60 "$HS" "$@" >"$HS_TMP/out" 2>"$HS_TMP/err" </dev/null || RC=$?; }

# --- a 64 MiB thread-arena heap, byte for byte against gdb
start_target "$(target demo)" 2
DEMO=$TARGET_PID
ptrace_ok "$DEMO"
hs dump -o "$HS_TMP/hs.bin" "$DEMO" arena:1
[ "$RC" = 0 ] && ok "dump -o arena:1: $(cat "$HS_TMP/err")" || not_ok "dump -o arena:1 exit $RC: $(cat "$HS_TMP/err")"
[ "$(stat -c %a "$HS_TMP/hs.bin")" = 600 ] && ok "dump file is mode 0600" || not_ok "dump file mode $(stat -c %a "$HS_TMP/hs.bin")"
read -r start end < <("$HS" arenas --json "$DEMO" | python3 -c '
import json, sys
h = json.load(sys.stdin)["arenas"][1]["heaps"][0]
print(h["address"], hex(int(h["address"], 16) + h["committed"]))')
if command -v gdb >/dev/null; then
	gdb -batch -p "$DEMO" -ex "dump memory $HS_TMP/gdb.bin $start $end" >/dev/null 2>&1 || true
	if [ -s "$HS_TMP/gdb.bin" ] && cmp -s "$HS_TMP/hs.bin" "$HS_TMP/gdb.bin"; then
		ok "arena 1 heap $start-$end: $(stat -c %s "$HS_TMP/hs.bin") bytes identical to gdb's dump memory"
	else
		not_ok "arena 1 heap differs from gdb's dump memory ($(stat -c %s "$HS_TMP/gdb.bin" 2>/dev/null) bytes)"
	fi
else
	echo "ok - gdb comparison # SKIP gdb is not installed"
	cp "$HS_TMP/hs.bin" "$HS_TMP/gdb.bin"
fi
for n in 4 10; do
	strings -n "$n" "$HS_TMP/gdb.bin" >"$HS_TMP/want.$n"
	hs dump --strings="$n" --no-address "$DEMO" "$start-$end"
	if [ "$RC" = 0 ] && cmp -s "$HS_TMP/out" "$HS_TMP/want.$n"; then
		ok "dump --strings=$n --no-address equals strings -n $n ($(wc -l <"$HS_TMP/want.$n") strings)"
	else
		not_ok "dump --strings=$n differs from strings -n $n (exit $RC)"
		diff "$HS_TMP/out" "$HS_TMP/want.$n" | head -5 | cut -c1-120 | sed 's/^/#   /'
	fi
done
# with addresses: each line's address points at the string in the dump
hs dump --strings=10 "$DEMO" "$start-$end"
if python3 - "$HS_TMP/out" "$HS_TMP/gdb.bin" "$start" <<'PY'
import sys
data = open(sys.argv[2], "rb").read()
base = int(sys.argv[3], 16)
n = 0
for line in open(sys.argv[1], encoding="latin-1"):
    addr, s = line.rstrip("\n").split(" ", 1)
    off = int(addr, 16) - base
    assert data[off:off + len(s)] == s.encode("latin-1"), (addr, s[:40])
    n += 1
assert n > 0
PY
then ok "every --strings address points at its string"; else not_ok "--strings addresses are wrong"; fi
check_untouched "$DEMO" || not_ok "demo target left traced or stopped"

# --- UTF-16LE and --top
start_target "$(target simple)" utf16
hs dump --encoding=utf16le --strings "$TARGET_PID" '[heap]'
grep -q ' heapscope-utf16-marker$' "$HS_TMP/out" && ok "--encoding=utf16le finds the UTF-16LE string" ||
	not_ok "UTF-16LE string not found"
grep -q 'heapscope-ascii-marker' "$HS_TMP/out" && not_ok "utf16le mode printed an ASCII string" ||
	ok "utf16le mode ignores ASCII"
hs dump --encoding=all --grep 'marker$' --strings "$TARGET_PID" '[heap]'
[ "$(grep -c 'heapscope-.*-marker' "$HS_TMP/out")" = 2 ] && ok "--encoding=all --grep finds both" ||
	not_ok "--encoding=all --grep: $(cat "$HS_TMP/out")"

start_target "$(target simple)" strings
hs dump --top 3 --json "$TARGET_PID" '[heap]'
if python3 - "$HS_TMP/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
top = [(t["string"], t["count"], t["bytes"]) for t in d["top"]]
assert top[:3] == [("alpha-marker-string", 100, 1900), ("beta-marker-string-b", 50, 1000),
                   ("gamma-marker-string", 1, 19)], top
PY
then ok "--top 3 counts 100, 50 and 1 copies"; else not_ok "--top counts: $(head -c 400 "$HS_TMP/out")"; fi

# --- bad input: one line, exit 2 (64 for usage), file system left clean
P=$TARGET_PID
fatal() { # DESC ERE ARGS...
	local desc=$1 re=$2
	shift 2
	hs "$@"
	if [ "$RC" = 2 ] && [ "$(wc -l <"$HS_TMP/err")" = 1 ] && grep -Eq -- "$re" "$HS_TMP/err"; then
		ok "$desc: $(cat "$HS_TMP/err")"
	else
		not_ok "$desc: exit $RC, $(cat "$HS_TMP/err")"
	fi
}
fatal "range outside any mapping" "outside every mapping" dump -o "$HS_TMP/x" "$P" 0x10-0x20
# a malformed RANGE is a usage error (64), found before the process is read
usage() { # DESC ERE ARGS...
	local desc=$1 re=$2
	shift 2
	hs "$@"
	if [ "$RC" = 64 ] && grep -Eq -- "$re" "$HS_TMP/err"; then
		ok "$desc: exit 64: $(head -n 1 "$HS_TMP/err")"
	else
		not_ok "$desc: exit $RC (expected 64), $(cat "$HS_TMP/err")"
	fi
}
usage "reversed range" "not after the start" dump -o "$HS_TMP/x" "$P" 0x2000-0x1000
usage "overflowing range" "overflows" dump -o "$HS_TMP/x" "$P" 0xffffffffffffff00+1M
usage "length 0" "length is 0" dump -o "$HS_TMP/x" "$P" 0x1000+0
fatal "arena that does not exist" "no arena 99" dump -o "$HS_TMP/x" "$P" arena:99
fatal "file not mapped" "not mapped" dump -o "$HS_TMP/x" "$P" /no/such/file.so
fatal "no mapping starts there" "no mapping starts" dump -o "$HS_TMP/x" "$P" 0x1234000
[ ! -e "$HS_TMP/x" ] && ok "no output file left behind" || not_ok "an output file was left behind"
echo keep >"$HS_TMP/exists"
fatal "output file exists" "exists; use --force" dump -o "$HS_TMP/exists" "$P" '[heap]'
[ "$(cat "$HS_TMP/exists")" = keep ] && ok "existing file untouched" || not_ok "existing file changed"
ln -s "$HS_TMP/exists" "$HS_TMP/link"
fatal "output is a symlink" "symbolic link" dump -o "$HS_TMP/link" --force "$P" '[heap]'
mkdir "$HS_TMP/ro" && chmod 0500 "$HS_TMP/ro"
if [ "$(id -u)" != 0 ]; then
	fatal "unwritable directory" "cannot create.*Permission denied" dump -o "$HS_TMP/ro/x" "$P" '[heap]'
elif mount -t tmpfs -o ro,size=64k tmpfs "$HS_TMP/ro" 2>/dev/null; then
	# root writes into any directory: a read-only file system says no
	fatal "unwritable directory" "cannot create.*Read-only file system" dump -o "$HS_TMP/ro/x" "$P" '[heap]'
	umount "$HS_TMP/ro"
else
	echo "ok - unwritable directory # SKIP running as root and cannot mount a read-only tmpfs"
fi
hs dump -o "$HS_TMP/y" --force "$P" '[heap]'
[ "$RC" = 0 ] && ok "--force writes a new file" || not_ok "--force: exit $RC"
hs dump "$P" '[heap]'
[ "$RC" = 0 ] && [ -s "$HS_TMP/out" ] && ok "raw dump to a pipe" || not_ok "raw dump to a pipe: exit $RC"
hs dump --json "$P" '[heap]'
[ "$RC" = 64 ] && ok "--json without --strings is a usage error" || not_ok "--json raw: exit $RC"
# a range across a gap: what is mapped, what was skipped, exit 1
read -r s1 < <(awk '$6 == "[heap]" { split($1, a, "-"); print "0x" a[1] }' /proc/"$P"/maps)
hs dump "$P" "$s1-0x$(printf '%x' $((s1 + 0x40000000)))"
if [ "$RC" = 1 ] && grep -q 'skipped' "$HS_TMP/err"; then ok "range over a gap: partial, skipped part named"; else
	not_ok "range over a gap: exit $RC $(cat "$HS_TMP/err")"; fi
hs dump --strings --json "$P" "$s1-0x$(printf '%x' $((s1 + 0x40000000)))"
if [ "$RC" = 1 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert 0 < d["bytes"] < 2**40 and d["bytes"] + d["skipped"] == 0x40000000, d' "$HS_TMP/out"; then
	ok "range over a gap, --json: bytes read + skipped = the range"
else
	not_ok "range over a gap, --json: exit $RC, $(tail -c 200 "$HS_TMP/out")"
fi
# a full disk
mkdir "$HS_TMP/small"
if mount -t tmpfs -o size=64k tmpfs "$HS_TMP/small" 2>/dev/null; then
	fatal "full disk" "No space left.*partial file was removed" dump -o "$HS_TMP/small/d" "$DEMO" arena:1
	[ ! -e "$HS_TMP/small/d" ] && ok "partial dump removed" || not_ok "partial dump left on the full disk"
	umount "$HS_TMP/small"
else
	echo "ok - full disk # SKIP cannot mount a small tmpfs here"
fi
check_untouched "$P" || not_ok "target left traced or stopped"
[ "$failed" = 0 ] && echo "PASS: dump.sh" || exit 1
