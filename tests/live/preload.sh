#!/bin/bash
# The preload: the lists are walked once while the target runs, to learn
# which bytes the walk reads, and those are read first once it is stopped;
# the stopped walk decides every figure.  A heap that changes between the
# two walks (a test hook holds heapscope there) must still give glibc's own
# figures for the heap as it was while stopped, and the mode is reported.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
mode() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("read_mode"))' "$1"; }
# matches JSON MALLOC_INFO: the main arena's fastbins and bins as malloc_info says
matches()
{
	python3 - "$1" "$2" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
body = re.search(r'<heap nr="0">(.*?)</heap>', open(sys.argv[2]).read(), re.S).group(1)
fast = [int(x) for x in re.search(r'<total type="fast" count="(\d+)" size="(\d+)"/>', body).groups()]
rest = [int(x) for x in re.search(r'<total type="rest" count="(\d+)" size="(\d+)"/>', body).groups()]
a = d["arenas"][0]
got = [a["fastbin_chunks"], a["free_fastbins"], a["bin_chunks"] + 1]
sys.exit(0 if got == fast + rest[:1] else f"heapscope {got}, malloc_info {fast + rest[:1]}")
PY
}

start_target "$(target shiftheap)" "$HS_TMP/mi.txt"
pid=$TARGET_PID
ptrace_ok "$pid"
timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/before.json"
m=$(mode "$HS_TMP/before.json")
[ "$m" = preload ] && ok "read_mode says preload" || not_ok "read_mode is '$m', not preload"
timeout 60 "$HS" arenas "$pid" | grep -q '^target paused .* (read: preload)$' &&
	ok "the pause line names the preload" || not_ok "the pause line does not say '(read: preload)'"
matches "$HS_TMP/before.json" "$HS_TMP/mi.txt" && ok "preloaded figures match malloc_info" ||
	not_ok "preloaded figures differ from malloc_info"

# The heap changes after the walk of the running target, before the stop.
rm -f "$HS_TMP/go" "$HS_TMP/go.planned"
HEAPSCOPE_TEST_PRELOAD_WAIT=$HS_TMP/go timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/after.json" &
hs=$!
for _ in $(seq 600); do [ -e "$HS_TMP/go.planned" ] && break; sleep 0.05; done
kill -USR2 "$pid"
for _ in $(seq 600); do grep -q '^CHANGED' "$TARGET_OUT" && break; sleep 0.05; done
touch "$HS_TMP/go"
wait "$hs" || not_ok "heapscope arenas failed across the change"
grep -q '^CHANGED' "$TARGET_OUT" || not_ok "shiftheap did not change its heap"
if cmp -s "$HS_TMP/mi.txt" "$HS_TMP/mi.txt.2"; then
	not_ok "malloc_info did not change: the test shows nothing"
fi
m=$(mode "$HS_TMP/after.json")
[ "$m" = preload ] && ok "read_mode is preload across the change" || not_ok "read_mode across the change is '$m'"
matches "$HS_TMP/after.json" "$HS_TMP/mi.txt.2" &&
	ok "lists changed between the two walks: the figures are those of the stopped heap (malloc_info)" ||
	not_ok "lists changed between the two walks: figures differ from malloc_info of the stopped heap"
HEAPSCOPE_READ_MODE=bulk timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/bulk.json"
strip() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [d.pop(k, None) for k in ("pause_us","walk_us","read_mode")]; print(json.dumps(d, sort_keys=True))' "$1"; }
[ "$(strip "$HS_TMP/after.json")" = "$(strip "$HS_TMP/bulk.json")" ] &&
	ok "the same figures as reading whole pages" || not_ok "figures differ from HEAPSCOPE_READ_MODE=bulk"
check_untouched "$pid" || not_ok "shiftheap left traced or stopped"
kill -TERM "$pid"
wait_target "$pid" || true

# Pages the plan read, dropped by the target before the stop (malloc_trim
# after every chunk is freed, tcache off so that they all merge): the
# stopped read must not read them back (that would map the zero page into
# the target), whether pagemap is checked with PAGEMAP_SCAN or read.
present()
{
	python3 - "$1" <<'PY'
import struct, sys
pid = sys.argv[1]
pm = open(f"/proc/{pid}/pagemap", "rb", buffering=0)
n = 0
for line in open(f"/proc/{pid}/maps"):
    f = line.split()
    if len(f) > 5 and f[5] == "[heap]":
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        pm.seek(lo // 4096 * 8)
        n += sum(1 for (e,) in struct.iter_unpack("<Q", pm.read((hi - lo) // 4096 * 8)) if e >> 63)
print(n)
PY
}
for how in scan read; do
	GLIBC_TUNABLES=glibc.malloc.tcache_count=0 start_target "$(target shiftheap)" "$HS_TMP/mi.$how.txt"
	pid=$TARGET_PID
	rm -f "$HS_TMP/go" "$HS_TMP/go.planned"
	extra=(HEAPSCOPE_TEST_PRELOAD_WAIT="$HS_TMP/go")
	[ "$how" = scan ] || extra+=(HEAPSCOPE_NO_PAGEMAP_SCAN=1)
	env "${extra[@]}" HEAPSCOPE_TEST_PRELOAD_WAIT="$HS_TMP/go" \
		timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/trim.json" &
	hs=$!
	for _ in $(seq 600); do [ -e "$HS_TMP/go.planned" ] && break; sleep 0.05; done
	kill -USR1 "$pid"
	for _ in $(seq 600); do grep -q '^TRIMMED' "$TARGET_OUT" && break; sleep 0.05; done
	before=$(present "$pid")
	touch "$HS_TMP/go"
	wait "$hs" || not_ok "$how: heapscope arenas failed across the trim"
	after=$(present "$pid")
	[ "$(mode "$HS_TMP/trim.json")" = preload ] || not_ok "$how: read_mode is not preload"
	if ! grep -q '^TRIMMED' "$TARGET_OUT" || [ "$before" -ge "$(python3 -c 'print(3000 * 550 // 4096 // 2)')" ]; then
		not_ok "$how: shiftheap did not drop its pages ($before present): the test shows nothing"
	elif [ "$before" = "$after" ]; then
		ok "pagemap checked when stopped ($how): pages dropped after the plan stay absent ($before present)"
	else
		not_ok "pagemap checked when stopped ($how): present heap pages went from $before to $after"
	fi
	check_untouched "$pid" || not_ok "shiftheap left traced or stopped"
	kill -TERM "$pid"
	wait_target "$pid" || true
done
[ "$failed" = 0 ] || exit 1
echo "PASS: preload.sh"
