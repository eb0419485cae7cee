#!/bin/bash
# "trimmable" is a prediction of what malloc_trim(0) returns to the system.
# The demo target calls malloc_trim(0) itself on SIGUSR1 and reports how
# many resident bytes it lost; heapscope's total must equal that.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3

start_target "$(target demo)" 4
ptrace_ok "$TARGET_PID"
"$HS" arenas --json "$TARGET_PID" >"$HS_TMP/a.json"
"$HS" arenas --no-debuginfo --json "$TARGET_PID" >"$HS_TMP/b.json"
predicted=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["trimmable"])' "$HS_TMP/a.json")
predicted_nd=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["trimmable"])' "$HS_TMP/b.json")
[ "$predicted" = "$predicted_nd" ] || fail "trimmable differs without debug info: $predicted vs $predicted_nd"
check_untouched "$TARGET_PID" || fail "target left traced or stopped"
kill -USR1 "$TARGET_PID"
for _ in $(seq 50); do grep -q '^TRIMMED ' "$TARGET_OUT" && break; sleep 0.1; done
read -r _ trimmed ret _ < <(grep '^TRIMMED ' "$TARGET_OUT")
echo "# predicted $predicted bytes; malloc_trim(0) returned $ret and released $trimmed bytes"
[ "$ret" = 1 ] || fail "malloc_trim(0) returned $ret: the target had nothing to trim"
[ "$predicted" = "$trimmed" ] || fail "heapscope predicted $predicted trimmable bytes, malloc_trim released $trimmed"
# After the trim, nothing is left to trim.
"$HS" arenas --json "$TARGET_PID" >"$HS_TMP/c.json"
left=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["trimmable"])' "$HS_TMP/c.json")
[ "$left" = 0 ] || fail "after malloc_trim, heapscope still predicts $left trimmable bytes"
echo "ok - trimmable equals what malloc_trim(0) released ($trimmed bytes), and 0 afterwards"
echo "PASS: trimmable.sh"
