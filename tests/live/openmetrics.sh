#!/bin/bash
# arenas --openmetrics FILE: the per-process and per-arena figures in a
# file node_exporter's textfile collector reads.  It passes `promtool check
# metrics`, its figures equal those of `arenas --json` of the same run, and
# it is replaced atomically (rename: a reader holding the old file keeps the
# old content whole; no temporary file is left).
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3

start_target "$(target demo)" 3
ptrace_ok "$TARGET_PID"
P=$TARGET_PID
M=$HS_TMP/prom/heapscope.prom
mkdir -p "$HS_TMP/prom"
echo "old" >"$M"
ln "$M" "$HS_TMP/old.prom"
timeout 60 "$HS" arenas --json --no-verdict --openmetrics "$M" "$P" >"$HS_TMP/a.json" 2>"$HS_TMP/a.err" ||
	fail "arenas --openmetrics exit $?: $(cat "$HS_TMP/a.err")"
sed 's/^/# /' "$M" | head -n 12
[ "$(cat "$HS_TMP/old.prom")" = old ] || not_ok "the old file was written over in place, not replaced"
[ "$(ls "$HS_TMP/prom")" = heapscope.prom ] || not_ok "left behind: $(ls "$HS_TMP/prom")"
[ "$(stat -c %a "$M")" = 644 ] || not_ok "mode $(stat -c %a "$M"), not 644 (the collector runs as another user)"
if command -v promtool >/dev/null; then
	if promtool check metrics <"$M" >"$HS_TMP/promtool.out" 2>&1; then
		echo "ok - promtool check metrics: $(promtool --version 2>&1 | head -n 1)"
	else
		not_ok "promtool check metrics: $(cat "$HS_TMP/promtool.out")"
	fi
else
	echo "ok - promtool check metrics # SKIP promtool not installed (Debian: apt-get install prometheus)"
fi
if python3 - "$M" "$HS_TMP/a.json" "$P" <<'PY'; then
import json, re, sys
text = open(sys.argv[1]).read(); d = json.load(open(sys.argv[2])); pid = sys.argv[3]
got = {}
for line in text.splitlines():
    if line.startswith("#"):
        continue
    m = re.fullmatch(r'(\w+)\{([^}]*)\} (\d+)', line)
    assert m, line
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m[2]))
    assert labels["pid"] == pid and labels["comm"] == "demo", labels
    got[(m[1], labels.get("arena"))] = int(m[3])
keys = {"resident": "resident", "in_use": "in_use", "free": "free_total", "trimmable": "trimmable", "system": "system"}
t = d["total"]
assert got[("heapscope_malloc_arenas", None)] == len(d["arenas"]) == t["arenas"]
n = 1
for k, j in keys.items():
    assert got[(f"heapscope_malloc_{k}_bytes", None)] == t[j], (k, got[(f"heapscope_malloc_{k}_bytes", None)], t[j])
    for a in d["arenas"]:
        assert got[(f"heapscope_malloc_arena_{k}_bytes", str(a["index"]))] == a[j], (k, a["index"])
        n += 1
    n += 1
assert len(got) == n, (len(got), n)
print(f"ok - the metrics file's {n} series equal arenas --json (resident {t['resident']}, trimmable {t['trimmable']})")
PY
	:
else
	not_ok "metrics differ from arenas --json"
fi
check_untouched "$P" || not_ok "target left traced or stopped"
[ "$failed" = 0 ] && echo "PASS: openmetrics.sh" || exit 1
