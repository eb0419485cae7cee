#!/bin/bash
# heapscope chunks copies a heap that the free lists' walk did not read with
# a second thread while the walk follows (lib/chunks.c's ring): it runs
# while the target is stopped, gives the figures one thread gives, and a
# target killed during the copy ends both threads: no hang.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_strace
need_cmd python3
[ "$(nproc)" -ge 2 ] || skip "one CPU: the walk copies by itself"

# textheap: 16 MiB of text lines in a thread arena, few free chunks, so the
# lists' walk reads little of the heap and the copier has it all to copy
start_target "$(target textheap)" 16
P=$TARGET_PID
ptrace_ok "$P"

# 1. between the attach and the detach, two threads of heapscope read
rc=0
timeout -k 5 120 strace -f -o "$HS_TMP/trace" -e trace=process_vm_readv,ptrace \
	"$HS" chunks --histogram --json "$P" >"$HS_TMP/two.json" 2>"$HS_TMP/err" || rc=$?
readers=$(awk -v p="$P" '
	/ptrace\(PTRACE_SEIZE/ { stopped = 1 }
	/ptrace\(PTRACE_DETACH/ { stopped = 0 }
	stopped && index($0, "process_vm_readv(" p ",") { t[$1] = 1 }
	END { n = 0; for (k in t) n++; print n }' "$HS_TMP/trace")
if [ "$rc" = 0 ] && [ "$readers" = 2 ]; then
	ok "chunks --histogram: the stop is read by 2 threads (the walk and its copier)"
else
	not_ok "chunks --histogram: the stop is read by $readers threads (exit $rc: $(head -c 300 "$HS_TMP/err"))"
fi
check_untouched "$P" || not_ok "target left traced or stopped"

# 2. the same figures with the copier and without it
rc=0
timeout -k 5 120 "$HS" chunks --histogram --json "$P" >"$HS_TMP/two.json" || rc=$?
HEAPSCOPE_CHUNKS_THREADS=1 timeout -k 5 120 "$HS" chunks --histogram --json "$P" >"$HS_TMP/one.json" || rc=$?
if [ "$rc" = 0 ] && python3 - "$HS_TMP/two.json" "$HS_TMP/one.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
for k in ("histogram", "arenas"):
    assert a[k] == b[k], (k, a[k], b[k])
assert a["histogram"], "empty histogram"
PY
then
	ok "chunks --histogram: the same classes and arena sums with the copier as with one thread"
else
	not_ok "chunks --histogram: the copier's figures differ from one thread's (exit $rc)"
fi

# 3. the target killed while the copier's reads are slowed: both threads end
# (timeout is only the failure detector)
rc=0
strace -f -o /dev/null -e trace=process_vm_readv -e inject=process_vm_readv:delay_enter=100000:when=20+ \
	timeout -k 5 60 "$HS" chunks --histogram "$P" >/dev/null 2>"$HS_TMP/err" &
hs=$!
sleep 1
kill -KILL "$P"
wait "$hs" || rc=$?
if [ "$rc" != 124 ] && [ "$rc" != 137 ]; then
	ok "target killed during the copy: heapscope ended (exit $rc: $(head -n 1 "$HS_TMP/err"))"
else
	not_ok "target killed during the copy: heapscope did not end (exit $rc)"
fi
wait_target "$P" 5 || true
[ "$failed" = 0 ] && echo "PASS: chunks_threads.sh" || exit 1
