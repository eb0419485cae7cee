#!/bin/bash
# How the walk reads the free lists while the target is stopped: chunk
# headers alone, gathered in batches ("lists"), or whole pages ("bulk"),
# chosen per arena by how dense its free chunks are.  Every mode gives the
# same figures, those of glibc's malloc_info, and the mode that ran is
# reported.  HEAPSCOPE_READ_MODE=lists|bulk forces one; =auto chooses per
# arena without the preload (the default, tests/live/preload.sh).
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3

# figures FILE: the JSON without what depends on the run
figures()
{
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("pause_us", "walk_us", "read_mode"):
    d.pop(k, None)
print(json.dumps(d, sort_keys=True))' "$1"
}
mode() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("read_mode"))' "$1"; }

start_target "$(target knownheap)" "$HS_TMP/mi.txt" 4
pid=$TARGET_PID
ptrace_ok "$pid"
timeout 60 "$HS" arenas "$pid" >/dev/null   # the layout cached first: the same "layout" for all
for m in lists bulk; do
	for c in arenas bins chunks; do
		HEAPSCOPE_READ_MODE=$m timeout 60 "$HS" "$c" --json "$pid" >"$HS_TMP/$c.$m.json"
	done
done
HEAPSCOPE_READ_MODE=auto timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/arenas.auto.json"
for c in arenas bins chunks; do
	if [ "$(figures "$HS_TMP/$c.lists.json")" = "$(figures "$HS_TMP/$c.bulk.json")" ]; then
		ok "knownheap: $c gives the same figures reading chunk headers and reading whole pages"
	else
		not_ok "knownheap: $c differs between HEAPSCOPE_READ_MODE=lists and bulk"
		diff <(figures "$HS_TMP/$c.lists.json" | python3 -m json.tool) \
			<(figures "$HS_TMP/$c.bulk.json" | python3 -m json.tool) | head -20 | sed 's/^/# /'
	fi
done
[ "$(figures "$HS_TMP/arenas.auto.json")" = "$(figures "$HS_TMP/arenas.bulk.json")" ] &&
	ok "knownheap: arenas' figures are the same with the mode chosen per arena" ||
	not_ok "knownheap: arenas differs between the chosen mode and bulk"
ml=$(mode "$HS_TMP/arenas.lists.json") mb=$(mode "$HS_TMP/arenas.bulk.json")
[ "$ml" = lists ] && [ "$mb" = bulk ] && ok "read_mode says lists and bulk when forced" ||
	not_ok "read_mode: forced lists gave '$ml', forced bulk '$mb'"
# The lists read by headers alone agree with malloc_info, arena by arena.
if arenas_match_malloc_info "$HS_TMP/arenas.lists.json" "$HS_TMP/mi.txt"
then ok "knownheap: the lists read by headers alone match malloc_info in every arena"
else not_ok "knownheap: the lists read by headers alone differ from malloc_info"; fi
check_untouched "$pid" || not_ok "knownheap left traced or stopped"
kill -USR1 "$pid"
for _ in $(seq 50); do grep -q '^CHECK ' "$TARGET_OUT" && break; sleep 0.1; done
grep -q '^CHECK OK' "$TARGET_OUT" && ok "knownheap's heap and chunks unchanged by the reads" ||
	not_ok "knownheap: $(grep '^CHECK' "$TARGET_OUT" || echo 'no CHECK line')"
wait_target "$pid" || true

# Sparse: 8192 free chunks spread over 64 MiB of live memory: headers.
start_target "$(target bigheap)" 2 8192 64
pid=$TARGET_PID
HEAPSCOPE_READ_MODE=auto timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/sparse.json"
HEAPSCOPE_READ_MODE=bulk timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/sparse.bulk.json"
m=$(mode "$HS_TMP/sparse.json")
[ "$m" = lists ] && ok "a sparse heap is read by chunk headers (read_mode lists)" ||
	not_ok "a sparse heap was read as '$m', not lists"
[ "$(figures "$HS_TMP/sparse.json")" = "$(figures "$HS_TMP/sparse.bulk.json")" ] &&
	ok "the sparse heap's figures are the same read whole" || not_ok "the sparse heap's figures differ read whole"
HEAPSCOPE_READ_MODE=auto timeout 60 "$HS" arenas "$pid" | grep -q '^target paused .* (read: lists)$' &&
	ok "the pause line names the mode" || not_ok "the pause line does not say '(read: lists)'"
check_untouched "$pid" || not_ok "bigheap left traced or stopped"
kill -TERM "$pid"
wait_target "$pid" || true

# Dense: every other chunk free, several per page: whole pages.
start_target "$(target bigheap)" 2 16384
pid=$TARGET_PID
HEAPSCOPE_READ_MODE=auto timeout 60 "$HS" arenas --json "$pid" >"$HS_TMP/dense.json"
m=$(mode "$HS_TMP/dense.json")
[ "$m" = bulk ] && ok "a dense heap is read in whole pages (read_mode bulk)" ||
	not_ok "a dense heap was read as '$m', not bulk"
kill -TERM "$pid"
wait_target "$pid" || true

[ "$failed" = 0 ] || exit 1
echo "PASS: read_mode.sh"
