#!/bin/bash
# heapscope dump --no-freeze reads a range of 4 MiB or more with a second
# thread ahead of the one that scans and writes (hs_stream_range_ahead):
# the same output as a stopped read's; never a ptrace call; a reader gone
# away (EPIPE) ends the read at once, not at the end of the range; the
# target killed during the read ends both threads with "exited".
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_strace
need_cmd strings
need_cmd python3
[ "$(nproc)" -ge 2 ] || skip "one CPU: the range is read by one thread"

start_textheap
blocks=$(( ($(stat -c %s "$HS_TMP/raw") + 1048575) / 1048576 ))

# 1. two threads read, none of them with ptrace; the output is strings(1)'s
# (textheap no longer changes), with and without addresses
rc=0
timeout -k 5 120 strace -f -o "$HS_TMP/trace" -e trace=execve,process_vm_readv,ptrace \
	"$HS" dump --no-freeze --strings=10 --no-address "$P" "$range" >"$HS_TMP/out" 2>"$HS_TMP/err" || rc=$?
# the first thread is the one that execve()d; the range's reads
# are another one's
main=$(awk '/execve\(/ { print $1; exit }' "$HS_TMP/trace")
ahead=$(awk -v p="$P" -v m="$main" '$1 != m && index($0, "process_vm_readv(" p ",") { n++ }
	END { print n + 0 }' "$HS_TMP/trace")
mine=$(awk -v p="$P" -v m="$main" '$1 == m && index($0, "process_vm_readv(" p ",") { n++ }
	END { print n + 0 }' "$HS_TMP/trace")
if [ "$rc" = 0 ] && [ "$ahead" -ge $((blocks - 1)) ] && [ "$mine" = 0 ] && ! grep -q 'ptrace(' "$HS_TMP/trace"; then
	ok "--no-freeze: the range read by a second thread ($ahead reads), none by the first; no ptrace"
else
	not_ok "--no-freeze: exit $rc, reads by the second thread $ahead, by the first $mine ($blocks MiB);" \
		"ptrace calls $(grep -c 'ptrace(' "$HS_TMP/trace") ($(head -c 300 "$HS_TMP/err"))"
fi
cmp -s "$HS_TMP/out" "$HS_TMP/expect" && ok "--no-freeze: the output is strings -n 10's" ||
	not_ok "--no-freeze: the output differs from strings -n 10's"
timeout -k 5 60 "$HS" dump --strings=4 "$P" "$range" >"$HS_TMP/frozen"
timeout -k 5 60 "$HS" dump --no-freeze --strings=4 "$P" "$range" >"$HS_TMP/ahead"
cmp -s "$HS_TMP/frozen" "$HS_TMP/ahead" && ok "--no-freeze --strings=4 with addresses: the stopped read's output" ||
	not_ok "--no-freeze --strings=4 with addresses differs from the stopped read's"
timeout -k 5 60 "$HS" dump --no-freeze "$P" "$range" | cmp -s - "$HS_TMP/raw" && ok "--no-freeze raw bytes: the stopped read's" ||
	not_ok "--no-freeze raw bytes differ from the stopped read's"
check_untouched "$P" || not_ok "target left traced or stopped"

# 2. a reader gone away: every write is EPIPE; heapscope says so (exit 2)
# after a block or two, not after reading all $blocks
rc=0
strace -f -o "$HS_TMP/trace" -e trace=process_vm_readv python3 - "$HS" dump --no-freeze --strings=10 \
	--no-address "$P" "$range" 2>"$HS_TMP/err" <<'PY' || rc=$?
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE, timeout=60)
sys.stderr.buffer.write(p.stderr)
sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)
PY
reads=$(grep -c "process_vm_readv($P," "$HS_TMP/trace" || true)
if [ "$rc" = 2 ] && grep -q 'cannot write' "$HS_TMP/err" && [ "$reads" -le 8 ]; then
	ok "output closed: exit 2 after $reads reads of $blocks blocks"
else
	not_ok "output closed: exit $rc after $reads reads of $blocks blocks ($(head -c 300 "$HS_TMP/err"))"
fi

# 3. the target killed during the read: each read from the third on
# delayed by 0.3 s; the target killed once the trace shows the first two
# (not after a fixed time: heapscope may not have opened the target yet
# on a loaded machine, and would fail with "no process")
: >"$HS_TMP/trace"
strace -f -o "$HS_TMP/trace" -e trace=process_vm_readv -e inject=process_vm_readv:delay_enter=300000:when=3+ \
	"$HS" dump --no-freeze --strings=10 --no-address "$P" "$range" >"$HS_TMP/out" 2>"$HS_TMP/err" &
tracer=$!
i=0
while [ "$(grep -c "process_vm_readv($P," "$HS_TMP/trace")" -lt 2 ] &&
	kill -0 "$tracer" 2>/dev/null && [ $i -lt 300 ]; do
	i=$((i + 1))
	sleep 0.1
done
kill -KILL "$P"
if ! wait_or_kill "$tracer"; then
	not_ok "target killed during the read: heapscope still runs after 30 s"
elif [ "$RC" = 2 ] && grep -q 'exited during the dump' "$HS_TMP/err"; then
	ok "target killed during the read: $(cat "$HS_TMP/err")"
else
	not_ok "target killed during the read: exit $RC, $(head -c 300 "$HS_TMP/err")"
fi
wait_target "$P"

[ "$failed" = 0 ] && echo "PASS: dump_ahead.sh" || exit 1
