#!/bin/bash
# heapscope map --svg: a valid SVG (xmllint) whose pages per class, summed
# from its squares, agree with /proc/PID/pagemap read here independently:
# in each heap the pages drawn in use or free-and-resident are the present
# (or swapped) ones, the pages drawn returned or never touched the others.
# On the demo target as it is (much free and resident), and after it ran
# malloc_trim(0) itself (SIGUSR1: the free pages returned).
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3

start_target "$(target demo)" 2
P=$TARGET_PID
ptrace_ok "$P"
check()
{
	local what=$1 svg=$HS_TMP/$1.svg
	timeout 60 "$HS" map --svg "$svg" "$P" >"$HS_TMP/$what.txt" 2>"$HS_TMP/$what.err" ||
		{ not_ok "$what: map exit $?: $(cat "$HS_TMP/$what.err")"; return; }
	head -n 6 "$HS_TMP/$what.txt" | sed 's/^/# /'
	if command -v xmllint >/dev/null; then
		xmllint --noout "$svg" 2>"$HS_TMP/xmllint.err" && echo "ok - $what: xmllint --noout accepts the SVG" ||
			not_ok "$what: xmllint: $(head -c 500 "$HS_TMP/xmllint.err")"
	else
		echo "ok - $what: xmllint # SKIP not installed (apt-get install libxml2-utils)"
	fi
	python3 - "$svg" "$P" "$what" <<'PY' || not_ok "$what: page counts differ from pagemap"
import os, struct, sys, xml.etree.ElementTree as ET
svg, pid, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(svg).getroot()
ps = os.sysconf("SC_PAGE_SIZE")
classes = ("in_use", "free_resident", "free_returned", "untouched")
total = dict.fromkeys(classes, 0)
with open(f"/proc/{pid}/pagemap", "rb") as pm:
    heaps = [g for g in root.iter(ns + "g") if g.get("class") == "heap"]
    assert heaps
    for g in heaps:
        start, end = int(g.get("data-start"), 16), int(g.get("data-end"), 16)
        n = dict.fromkeys(classes, 0)
        for r in g.iter(ns + "rect"):
            n[r.get("class")] += int(r.get("data-pages"))
        pm.seek(start // ps * 8)
        raw = pm.read((end - start) // ps * 8)
        held = sum(1 for (v,) in struct.iter_unpack("<Q", raw) if v >> 62)
        pages = (end - start) // ps
        assert sum(n.values()) == pages, (hex(start), n, pages)
        assert n["in_use"] + n["free_resident"] == held, (hex(start), n, held)
        assert n["free_returned"] + n["untouched"] == pages - held, (hex(start), n, pages - held)
        for c in classes:
            total[c] += n[c]
legend = {t.get("data-class"): int(t.get("data-pages")) for t in root.iter(ns + "text") if t.get("data-class")}
assert legend == total, (legend, total)
if what == "fresh":
    assert total["free_resident"] > total["in_use"], total
else:
    assert total["free_returned"] > total["free_resident"], total
print(f"ok - {what}: {len(heaps)} heaps, pages {total} agree with pagemap, the legend too")
PY
}
check fresh
kill -USR1 "$P"
for _ in $(seq 50); do grep -q '^TRIMMED ' "$TARGET_OUT" && break; sleep 0.1; done
grep -q '^TRIMMED ' "$TARGET_OUT" || framework_failure "the target did not trim"
check trimmed
check_untouched "$P" || not_ok "target left traced or stopped"
[ "$failed" = 0 ] && echo "PASS: map.sh" || exit 1
