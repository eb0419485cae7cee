#!/usr/bin/env bash
# make demo: start the bundled target that reproduces the field report (8
# threads, each on its own arena, whose freed memory stays resident inside
# malloc), show heapscope maps and arenas on it, then stop it.
set -euo pipefail
build=${1:-build}
hs=$build/cmd/heapscope
demo=$build/tests/demo
[ -x "$hs" ] && [ -x "$demo" ] || { echo "demo: build first (make build)" >&2; exit 2; }

out=$(mktemp)
"$demo" 8 >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -f "$out" "$out.maps"' EXIT
for _ in $(seq 100); do grep -q READY "$out" && break; sleep 0.1; done
grep -q READY "$out" || { echo "demo: target did not get ready" >&2; exit 2; }

echo "== the target: pid $pid, 8 threads that allocated ~40 MiB each and freed most of it"
grep VmRSS /proc/$pid/status
echo
echo "== heapscope maps $pid | head -14   (largest Rss first: the 64 MiB arena heaps are named)"
"$hs" maps "$pid" >"$out.maps"
head -14 "$out.maps"
echo
echo "== heapscope arenas $pid"
"$hs" arenas "$pid"
echo
echo "== the target is still running, untraced: $(grep TracerPid /proc/$pid/status | tr -s '\t' ' ')"
