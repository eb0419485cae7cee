#!/bin/bash
# Read-only means read-only: after arenas, stats and maps, every page of
# the target's anonymous memory, read-write or PROT_NONE (a thread heap's
# reserve), is present exactly when it was before: reading a never-touched
# page would map the zero page into it.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3


present()
{
	python3 - "$TARGET_PID" <<'PY'
import struct, sys
pid = sys.argv[1]
pm = open(f"/proc/{pid}/pagemap", "rb", buffering=0)
n = 0
for line in open(f"/proc/{pid}/maps"):
    f = line.split()
    if f[1] not in ("rw-p", "---p") or (len(f) > 5 and f[5] != "[heap]"):
        continue
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    pm.seek(lo // 4096 * 8)
    data = pm.read((hi - lo) // 4096 * 8)
    n += sum(1 for (e,) in struct.iter_unpack("<Q", data) if e >> 63)
print(n)
PY
}

# simple sparse: free chunks whose insides were never touched (main heap);
# knownheap: thread heaps with PROT_NONE reserves after their ends.
for t in "simple sparse" "knownheap $HS_TMP/mi.txt 4"; do
	# shellcheck disable=SC2086
	start_target "$(target ${t%% *})" ${t#* }
	ptrace_ok "$TARGET_PID"
	before=$(present)
	for cmd in "arenas" "arenas --no-debuginfo" "stats --malloc-info" "maps" "arenas --json"; do
		# shellcheck disable=SC2086
		"$HS" $cmd "$TARGET_PID" >/dev/null
	done
	after=$(present)
	if [ "$before" = "$after" ]; then
		echo "ok - ${t%% *}: present pages in anonymous memory unchanged: $before"
	else
		fail "${t%% *}: present pages changed from $before to $after: heapscope faulted pages into the target"
	fi
	check_untouched "$TARGET_PID" || fail "target left traced or stopped"
done
echo "PASS: readonly.sh"
