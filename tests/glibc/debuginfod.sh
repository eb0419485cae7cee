#!/bin/bash
# Debug info through debuginfod: a local server (elfutils' debuginfod) on
# 127.0.0.1 serves a directory holding trixie's libc6-dbg files; a target
# runs under trixie's glibc, whose debug info is nowhere on this machine's
# own paths.  heapscope must find it through DEBUGINFOD_URLS, say so, and
# report exactly what it reports with it installed; --no-debuginfod must
# not ask the server.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
need_cmd debuginfod
need_cmd curl
# shellcheck source=tests/glibc/lib.sh
. "$(dirname "$0")/lib.sh"
! "$HS" --help | grep -q 'debuginfod is not built in' || skip "heapscope was built without libdebuginfod"

root=$(setup trixie) || skip "cannot fetch trixie's libc6 packages: $(tail -1 "$WORK/dl/trixie.log")"
bin=$(build_target trixie 2.41 "$root") || fail "cannot build the target: $(head -3 "$WORK/build-2.41.log")"

# the server's files: the .debug files of trixie's libc6-dbg
mkdir -p "$HS_TMP/srv"
find "$root/usr/lib/debug/.build-id" -name '*.debug' -exec cp {} "$HS_TMP/srv/" \;
port=$((20000 + RANDOM % 20000))
debuginfod -F -p "$port" -d "$HS_TMP/db.sqlite" -t 0 -g 0 "$HS_TMP/srv" >"$HS_TMP/server.log" 2>&1 &
server=$!
track_pid "$server"

start_target "$bin" "$HS_TMP/mi.txt" 3
ptrace_ok "$TARGET_PID"
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["glibc"]["build_id"])' \
	< <("$HS" arenas --no-debuginfo --json "$TARGET_PID"))
# wait for the server to have scanned the directory
for _ in $(seq 150); do
	curl -sf -o /dev/null "http://127.0.0.1:$port/buildid/$id/debuginfo" && break
	sleep 0.2
done
curl -sf -o /dev/null "http://127.0.0.1:$port/buildid/$id/debuginfo" ||
	fail "the debuginfod server never served build-id $id: $(tail -3 "$HS_TMP/server.log")"

export DEBUGINFOD_URLS=http://127.0.0.1:$port DEBUGINFOD_CACHE_PATH=$HS_TMP/dcache
"$HS" arenas --json "$TARGET_PID" >"$HS_TMP/a.json"
from=$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["glibc"]; print(g["debuginfo_from"], g["symbols"], g["layout"])' "$HS_TMP/a.json")
case $from in
"debuginfod debuginfo dwarf"*) echo "ok - debug info found through debuginfod on 127.0.0.1:$port ($from)" ;;
*) fail "debug info not found through debuginfod: $from" ;;
esac
grep -v '^MALLINFO2 ' "$HS_TMP/mi.txt" >"$HS_TMP/want.xml"
"$HS" stats --malloc-info "$TARGET_PID" | cmp -s - "$HS_TMP/want.xml" ||
	fail "malloc_info with debuginfod's debug info differs from the target's own"
echo "ok - malloc_info byte-identical with it"
rm -rf "$HS_TMP/dcache"
"$HS" arenas --no-debuginfod --json "$TARGET_PID" >"$HS_TMP/b.json"
from=$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["glibc"]; print(g["debuginfo_from"], g["symbols"])' "$HS_TMP/b.json")
[ "$from" = "None signature" ] || fail "--no-debuginfod still found debug info: $from"
[ ! -e "$HS_TMP/dcache" ] || [ -z "$(ls -A "$HS_TMP/dcache")" ] || fail "--no-debuginfod asked the server"
echo "ok - --no-debuginfod: no server asked, found without symbols"
check_untouched "$TARGET_PID" || fail "target left traced or stopped"
echo "PASS: debuginfod.sh"
