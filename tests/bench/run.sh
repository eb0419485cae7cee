#!/bin/bash
# Benchmark, not a test: how long heapscope and gdb take on a big heap, and
# how long each keeps the target stopped.  Nothing here asserts on times.
#
#   HEAPSCOPE=build/heapscope TARGETS_DIR=build/tests/targets tests/bench/run.sh
#
# 1. bigheap (8 threads, 8 arenas, ~1M chunks, ~0.5M of them in bins):
#    heapscope arenas (5 runs, median wall time; pause_us from its --json)
#    vs gdb -batch -p PID -ex 'print main_arena' -ex 'print mp_' (3 runs).
#    gdb stops every thread from attach to detach, so its pause is measured as
#    the time the target shows a TracerPid (sampled every 0.2 ms), or, if
#    that cannot be sampled, approximated by its wall time.
# 2. demo (8 threads x 40 MiB, fragmented) and textheap (40 MiB of text
#    lines): gdb dumping one arena heap and strings(1) over it, against
#    heapscope dump --strings=10, and against process_vm_readv alone.
#
# Builds nothing.  Needs HEAPSCOPE, TARGETS_DIR, python3; gdb optional.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3
BIGHEAP=$(target bigheap)
DEMO=$(target demo)
TEXTHEAP=$(target textheap)

# stamp VAR: microseconds now, into VAR, without a fork (a $(date) is a fork
# and an exec, ~1-2 ms, which the timed command's wall time would carry).
stamp() { printf -v "$1" '%s' "${EPOCHREALTIME/./}"; }

# BENCH_ONLY="strings chunks": only those parts (arenas strings chunks pause
# trim mtrace); all by default.  pause: bigheap with 0, 0.7 and 3.8 GB of
# live ballast (needs about 6 GB free).
want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }

median()
{
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# traced_window PID CMD...: run CMD (output to $HS_TMP/cmd.out) while
# sampling /proc/PID/status; sets WALL_US (CMD's wall time) and TRACED_US (how
# long PID had a tracer: first to last sample with TracerPid != 0, "" if
# never seen, e.g. shorter than the sampling interval)
traced_window()
{
	local pid=$1 sampler t0 t1
	shift
	python3 - "$pid" "$HS_TMP/sampler.ready" >"$HS_TMP/sampler.out" <<'EOF' &
import sys, time
pid, ready = sys.argv[1], sys.argv[2]
path = f"/proc/{pid}/status"
def tracer():
    with open(path) as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0
open(ready, "w").close()
first = last = None
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    t = time.monotonic()
    if tracer():
        first = first or t
        last = t
    elif first is not None:
        break
    time.sleep(0.0002)
print(int((last - first) * 1e6) if first is not None else "")
EOF
	sampler=$!
	while [ ! -e "$HS_TMP/sampler.ready" ]; do sleep 0.01; done
	rm -f "$HS_TMP/sampler.ready"
	stamp t0
	"$@" >"$HS_TMP/cmd.out" 2>&1 || true
	stamp t1
	WALL_US=$((t1 - t0))
	sleep 0.05
	kill "$sampler" 2>/dev/null || true # it stops by itself if it saw a tracer
	wait "$sampler" 2>/dev/null || true
	TRACED_US=$(cat "$HS_TMP/sampler.out")
}

ms() { [ -n "$1" ] && awk -v us="$1" 'BEGIN { printf "%.1f ms", us / 1000 }' || echo "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && [ "$2" -gt 0 ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }' || echo "n/a"; }

# strings_bench NAME TARGET [ARGS]: the first arena heap of TARGET (a
# 64 MiB-aligned rw-p anonymous mapping), as gdb dump memory + strings -n 10
# (3 runs) and as heapscope dump --strings=10 (5 runs), each tool's runs
# together after an untimed one, medians, in one run, writing to /dev/null;
# and heapscope end to end against process_vm_readv alone (rawread, 5 runs).
# The outputs are compared apart.
strings_bench()
{
	local name=$1 heap
	shift
	echo
	echo "== $name: the strings of a fragmented arena heap (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	start_target "$@"
	pid=$TARGET_PID
	echo "target pid $pid: $(sed -n 's/^VmRSS:[[:space:]]*//p' "/proc/$pid/status") resident"
	heap=$(awk '$2 == "rw-p" && NF == 5 {
			split($1, a, "-")
			n = length(a[1])
			if (n > 7 && substr(a[1], n - 5) == "000000" &&
			    index("048c", substr(a[1], n - 6, 1))) { print a[1], a[2]; exit }
		}' "/proc/$pid/maps")
	if [ -z "$heap" ]; then
		echo "no 64 MiB-aligned arena heap found in /proc/$pid/maps"
	elif ! command -v gdb >/dev/null 2>&1; then
		echo "gdb not installed: no dump comparison"
	else
		# shellcheck disable=SC2086 # "start end": split on purpose
		set -- $heap
		local g=() gp=() h=() nf=() r=() f=() fw=() ff=() t0 t1 t2 floor_ms bytes k
		# Each tool in turn, untimed runs first (w), then timed ones: a
		# process started right after another tool's pays for what that
		# one left (here, after gdb, heapscope's first run took 12-15 ms
		# and its next 9-10), and on this VM memory just freed and taken
		# again costs more until it has gone round a few times (six runs
		# of dump --strings in a row: 15, 12.6, 12.1, 11.0, 11.3, 7.6 ms),
		# so no tool follows another in the timings, each is timed warm.
		for k in 0 1 2 3; do
			traced_window "$pid" gdb -nx -batch -p "$pid" -ex "dump memory $HS_TMP/heap.bin 0x$1 0x$2"
			stamp t0; strings -n 10 "$HS_TMP/heap.bin" >/dev/null; stamp t1
			[ "$k" = 0 ] && continue
			g+=($((WALL_US + t1 - t0)))
			gp+=("${TRACED_US:-$WALL_US}")
		done
		for k in w w 1 2 3 4 5; do
			stamp t0
			"$HS" dump --strings=10 --no-address "$pid" "0x$1-0x$2" >/dev/null
			stamp t1
			[ "$k" = w ] || h+=($((t1 - t0)))
		done
		for k in w w 1 2 3 4 5; do
			stamp t0
			"$HS" dump --no-freeze --strings=10 --no-address "$pid" "0x$1-0x$2" >/dev/null
			stamp t1
			[ "$k" = w ] || nf+=($((t1 - t0)))
		done
		for k in w w 1 2 3 4 5; do
			stamp t0; "$HS" dump "$pid" "0x$1-0x$2" >/dev/null 2>&1; stamp t2
			[ "$k" = w ] || r+=($((t2 - t0)))
		done
		if [ -x "${RAWREAD:-}" ]; then
			# its copy timed inside, and the whole process timed as
			# heapscope's is (exec to exit)
			for k in w w 1 2 3 4 5; do
				stamp t0; "$RAWREAD" "$pid" "0x$1" "0x$2" >"$HS_TMP/raw.out"; stamp t1
				[ "$k" = w ] && continue
				fw+=($((t1 - t0)))
				read -r floor_ms bytes <"$HS_TMP/raw.out"
				f+=("$(awk -v m="$floor_ms" 'BEGIN { printf "%d", m * 1000 }')")
			done
			for k in w w 1 2 3 4 5; do
				read -r floor_ms bytes < <("$RAWREAD" "$pid" "0x$1" "0x$2" fresh)
				[ "$k" = w ] || ff+=("$(awk -v m="$floor_ms" 'BEGIN { printf "%d", m * 1000 }')")
			done
		fi
		# the output, apart from the timed runs (which write to /dev/null)
		strings -n 10 "$HS_TMP/heap.bin" >"$HS_TMP/gdb.strings"
		"$HS" dump --strings=10 --no-address "$pid" "0x$1-0x$2" >"$HS_TMP/hs.strings"
		local same="identical to strings -n 10"
		cmp -s "$HS_TMP/gdb.strings" "$HS_TMP/hs.strings" || same="DIFFERENT from strings -n 10"
		"$HS" dump --strings=10 --json "$pid" "0x$1-0x$2" >"$HS_TMP/s.json" 2>/dev/null
		local hp
		hp=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pause_us"])' "$HS_TMP/s.json")
		python3 - "$(median "${g[@]}")" "$(median "${gp[@]}")" "$(median "${h[@]}")" "$hp" \
			"$(median "${r[@]}")" "$( [ "${#f[@]}" = 0 ] && echo 0 || median "${f[@]}")" \
			"$((0x$2 - 0x$1))" "$(wc -c <"$HS_TMP/hs.strings")" "$same" \
			"$( [ "${#ff[@]}" = 0 ] && echo 0 || median "${ff[@]}")" \
			"$( [ "${#fw[@]}" = 0 ] && echo 0 || median "${fw[@]}")" "$(median "${nf[@]}")" <<'PY'
import sys
g, gp, h, hp, raw, floor, size, out = (float(x) for x in sys.argv[1:9])
same = sys.argv[9]
fresh, whole, nofreeze = float(sys.argv[10]), float(sys.argv[11]), float(sys.argv[12])
mib = size / 2**20
print(f"{mib:.0f} MiB heap, {out / 1e6:.1f} MB of strings ({same}); medians (gdb 3 runs after 1 untimed, the others 5 after 2)")
print(f"  gdb dump memory + strings -n 10   {g / 1e3:8.1f} ms wall, target paused {gp / 1e3:.1f} ms")
print(f"  heapscope dump --strings=10       {h / 1e3:8.1f} ms wall, target paused {hp / 1e3:.1f} ms")
print(f"  ... --no-freeze (read ahead, no stop) {nofreeze / 1e3:6.1f} ms wall")
print(f"  heapscope dump (raw, /dev/null)   {raw / 1e3:8.1f} ms wall")
if floor:
    print(f"  process_vm_readv alone           {floor / 1e3:8.1f} ms (into one hot 1 MiB buffer; the copy timed inside)")
if whole:
    print(f"  ... the same program, exec to exit {whole / 1e3:6.1f} ms (timed as heapscope is)")
if fresh:
    print(f"  process_vm_readv, fresh buffer   {fresh / 1e3:8.1f} ms (into new pages the kernel zeroes)")
print(f"ratio gdb+strings / heapscope --strings=10: {g / h:.1f}x wall, {gp / max(hp, 1):.1f}x pause")
if floor:
    print(f"bandwidth: heapscope --strings=10 end to end {mib / (h / 1e6):.0f} MiB/s, raw {mib / (raw / 1e6):.0f} MiB/s, "
          f"process_vm_readv alone {mib / (floor / 1e6):.0f} MiB/s: heapscope --strings=10 at {100 * floor / h:.0f}% of it")
if whole:
    print(f"  against that program timed exec to exit as heapscope is ({mib / (whole / 1e6):.0f} MiB/s): {100 * whole / h:.0f}%")
if floor and nofreeze:
    print(f"  --no-freeze end to end {mib / (nofreeze / 1e6):.0f} MiB/s: {100 * floor / nofreeze:.0f}% of process_vm_readv alone, "
          f"{100 * whole / nofreeze:.0f}% timed exec to exit")
if fresh:
    print(f"  against process_vm_readv into a fresh buffer ({mib / (fresh / 1e6):.0f} MiB/s): {100 * fresh / h:.0f}%")
PY
		rm -f "$HS_TMP/heap.bin" "$HS_TMP/gdb.strings" "$HS_TMP/hs.strings"
	fi
	kill -TERM "$pid"
	wait_target "$pid"
}

if want arenas; then
echo "== bigheap: heapscope arenas vs gdb"
start_target "$BIGHEAP"
pid=$TARGET_PID
ptrace_ok "$pid"
echo "target pid $pid: $(grep -c '' "/proc/$pid/maps") mappings, $(sed -n 's/^VmRSS:[[:space:]]*//p' "/proc/$pid/status") resident"

hs_wall=() hs_pause=() hs_traced=()
for _ in 1 2 3 4 5; do
	traced_window "$pid" "$HS" arenas "$pid"
	hs_wall+=("$WALL_US")
	[ -z "$TRACED_US" ] || hs_traced+=("$TRACED_US")
done
for _ in 1 2 3 4 5; do
	"$HS" arenas --json "$pid" >"$HS_TMP/arenas.json" 2>"$HS_TMP/arenas.err" || true
	p=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pause_us"])' \
		"$HS_TMP/arenas.json" 2>/dev/null) || p=
	[ -z "$p" ] || hs_pause+=("$p")
done
HS_WALL=$(median "${hs_wall[@]}")
HS_PAUSE=
[ "${#hs_pause[@]}" = 0 ] || HS_PAUSE=$(median "${hs_pause[@]}")
HS_TRACED=
[ "${#hs_traced[@]}" = 0 ] || HS_TRACED=$(median "${hs_traced[@]}")
[ -n "$HS_PAUSE" ] || echo "note: no pause_us in 'heapscope arenas --json' output: $(head -c 300 "$HS_TMP/arenas.err")"
check_untouched "$pid" || echo "WARNING: heapscope left the target traced or stopped"

GDB_WALL='' GDB_PAUSE='' gdb_note=''
if command -v gdb >/dev/null 2>&1; then
	gdb_wall=() gdb_pause=()
	for _ in 1 2 3; do
		traced_window "$pid" gdb -nx -batch -p "$pid" -ex 'print main_arena' -ex 'print mp_'
		gdb_wall+=("$WALL_US")
		gdb_pause+=("${TRACED_US:-$WALL_US}")
		[ -n "$TRACED_US" ] || gdb_note="gdb pause approximated by its wall time"
	done
	GDB_WALL=$(median "${gdb_wall[@]}")
	GDB_PAUSE=$(median "${gdb_pause[@]}")
	if grep -q 'No symbol' "$HS_TMP/cmd.out"; then
		gdb_note="gdb found no main_arena symbol: install libc6-dbg (its times are not comparable)"
	fi
	check_untouched "$pid" || echo "WARNING: gdb left the target traced or stopped"
else
	gdb_note="gdb not installed: no comparison"
fi

printf '\n%-40s %14s %16s\n' "bigheap, median" "wall" "target paused"
printf '%-40s %14s %16s\n' "heapscope arenas (5 runs)" "$(ms "$HS_WALL")" "$(ms "$HS_PAUSE")"
printf '%-40s %14s %16s\n' "  traced window, sampled" "" "$(ms "$HS_TRACED")"
printf '%-40s %14s %16s\n' "gdb print main_arena, mp_ (3 runs)" "$(ms "$GDB_WALL")" "$(ms "$GDB_PAUSE")"
printf '%-40s %14s %16s\n' "ratio gdb / heapscope" "$(ratio "$GDB_WALL" "$HS_WALL")" "$(ratio "$GDB_PAUSE" "$HS_PAUSE")"
[ -z "$gdb_note" ] || echo "note: $gdb_note"
kill -TERM "$pid"
wait_target "$pid"

fi

if want strings; then
echo
echo "== demo: the arenas of a fragmented heap"
start_target "$DEMO"
pid=$TARGET_PID
timeout 60 "$HS" arenas "$pid" 2>&1 | sed 's/^/  /' || true
kill -TERM "$pid"
wait_target "$pid"
strings_bench "demo (8 threads x 40 MiB of 1-4 KiB chunks)" "$DEMO"
strings_bench "textheap (40 MiB of chunks full of text lines)" "$TEXTHEAP"
fi

if want chunks; then
echo
echo "== chunks --histogram: every chunk of 4 arenas, about a million"
start_target "$BIGHEAP" 4 262144
pid=$TARGET_PID
walls=()
for _ in 1 2 3; do
	stamp t0; "$HS" chunks --histogram "$pid" >/dev/null; stamp t1
	walls+=($((t1 - t0)))
done
wall=$(median "${walls[@]}")
"$HS" chunks --histogram --json "$pid" >"$HS_TMP/ch.json"
python3 - "$HS_TMP/ch.json" "$wall" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
wall = int(sys.argv[2])
n = sum(a[k]["count"] for a in d["arenas"] for k in ("used", "bin", "fastbin", "tcache", "top", "fencepost"))
print(f"{n} chunks in {len(d['arenas'])} arenas: wall {wall / 1000:.1f} ms (median of 3), "
      f"target paused {d['pause_us'] / 1000:.1f} ms, {n / (wall / 1e6) / 1e6:.2f} M chunks/s")
PY
kill -TERM "$pid"
wait_target "$pid"

fi
if want pause; then
echo
echo "== pause against resident bytes: bigheap's ~522k free chunks in heaps of 0.3, 1 and 4 GB (load: $(cut -d' ' -f1-3 /proc/loadavg))"
# The same free chunks (8 threads x 131072 small chunks, every other one
# freed), with BALLAST_MIB of live memory spread evenly between them.
# Medians of 3; arenas also with HEAPSCOPE_READ_MODE=bulk and =lists, and
# with --no-freeze (stopped only for registers; its wall time beside).
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$@"; }
printf '%-8s %10s %22s %14s %14s %14s %14s %24s\n' "ballast" "resident" "arenas (mode)" "arenas bulk" "arenas lists" \
	"bins" "chunks" "arenas --no-freeze (wall)"
declare -A ARENAS_PAUSE
for ballast in 0 700 3800; do
	start_target "$BIGHEAP" 8 131072 "$ballast"
	pid=$TARGET_PID
	rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status")
	a=() ab=() al=() b=() c=() nf=() nfw=() mode=
	for _ in 1 2 3; do
		"$HS" arenas --json "$pid" >"$HS_TMP/p.json" 2>/dev/null || true
		a+=("$(json_field "$HS_TMP/p.json" pause_us)")
		mode=$(json_field "$HS_TMP/p.json" read_mode)
		HEAPSCOPE_READ_MODE=bulk "$HS" arenas --json "$pid" >"$HS_TMP/p.json" 2>/dev/null || true
		ab+=("$(json_field "$HS_TMP/p.json" pause_us)")
		HEAPSCOPE_READ_MODE=lists "$HS" arenas --json "$pid" >"$HS_TMP/p.json" 2>/dev/null || true
		al+=("$(json_field "$HS_TMP/p.json" pause_us)")
		"$HS" bins --json "$pid" >"$HS_TMP/p.json" 2>/dev/null || true
		b+=("$(json_field "$HS_TMP/p.json" pause_us)")
		stamp t0
		"$HS" arenas --no-freeze --json "$pid" >"$HS_TMP/p.json" 2>/dev/null || true
		stamp t1
		nf+=("$(json_field "$HS_TMP/p.json" pause_us)")
		nfw+=($((t1 - t0)))
	done
	for _ in 1 2 3; do
		"$HS" chunks --histogram --json "$pid" >"$HS_TMP/p.json" 2>/dev/null || true
		c+=("$(json_field "$HS_TMP/p.json" pause_us)")
	done
	ARENAS_PAUSE[$ballast]=$(median "${a[@]}")
	printf '%-8s %10s %22s %14s %14s %14s %14s %24s\n' "${ballast}M" "$(awk -v k="$rss" 'BEGIN { printf "%.2f GB", k * 1024 / 1e9 }')" \
		"$(ms "${ARENAS_PAUSE[$ballast]}") ($mode)" "$(ms "$(median "${ab[@]}")")" "$(ms "$(median "${al[@]}")")" \
		"$(ms "$(median "${b[@]}")")" "$(ms "$(median "${c[@]}")")" \
		"$(ms "$(median "${nf[@]}")") ($(ms "$(median "${nfw[@]}")"))"
	kill -TERM "$pid"
	wait_target "$pid"
done
echo "arenas pause, 4 GB / 0.3 GB: $(ratio "${ARENAS_PAUSE[3800]}" "${ARENAS_PAUSE[0]}") (aim <= 3x)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

fi
if want trim; then
echo
echo "== trim: the target's pause for heapscope trim, beside malloc_trim itself"
start_target "$DEMO" 8
A=$TARGET_PID
start_target "$DEMO" 8
B=$TARGET_PID B_OUT=$TARGET_OUT
stamp t0
"$HS" trim --json "$A" >"$HS_TMP/trim.json"
stamp t1
kill -USR1 "$B"
for _ in $(seq 100); do grep -q '^TRIMMED ' "$B_OUT" && break; sleep 0.1; done
read -r _ own_bytes _ own_us < <(grep '^TRIMMED ' "$B_OUT")
python3 - "$HS_TMP/trim.json" "$((t1 - t0))" "$own_bytes" "$own_us" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
wall, own_bytes, own_us = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"heapscope trim: wall {wall / 1000:.1f} ms, target paused {t['pause_us'] / 1000:.1f} ms, "
      f"of which the call {t['call_us'] / 1000:.1f} ms; returned {t['returned'] / 2**20:.1f} MiB")
print(f"the twin's own malloc_trim(0): {own_us / 1000:.1f} ms, released {own_bytes / 2**20:.1f} MiB; "
      f"pause / malloc_trim = {t['pause_us'] / max(own_us, 1):.2f}x")
PY
kill -TERM "$A" "$B"
wait_target "$A"
wait_target "$B"

fi
if want mtrace; then
echo
echo "== mtrace: the cost of a malloc + free pair in the target, while traced"
# pairs (tests/bench/pairs.c) times N pairs itself: untraced; with glibc's
# tracer injected by heapscope mtrace start --inject; with the tracer
# preloaded (LD_PRELOAD=libc_malloc_debug.so.0, started by heapscope mtrace
# start); under heaptrack's preload mode (heaptrack PROGRAM), if installed.
PAIRS=$(realpath "${PAIRS:-$(dirname "$HS")/../tests/pairs}")
N=2000000
plain=$("$PAIRS" "$N" | awk '{ print $3 }')
traced_pairs()   # traced_pairs [ENV...]: pairs started waiting, traced by heapscope
{
	local out=$HS_TMP/pairs.out p
	env "$@" "$PAIRS" "$N" wait >"$out" 2>&1 &
	p=$!
	for _ in $(seq 50); do grep -q READY "$out" && break; sleep 0.1; done
	"$HS" mtrace start $INJECT --file "$HS_TMP/pairs.log" "$p" >/dev/null
	kill -USR2 "$p"
	for _ in $(seq 600); do grep -q '^PAIRS' "$out" && break; sleep 0.1; done
	"$HS" mtrace stop "$p" >/dev/null
	kill -TERM "$p"
	wait "$p" 2>/dev/null || :
	echo "$(awk '/^PAIRS/ { print $3 }' "$out") $(grep -c '' "$HS_TMP/pairs.log")"
	rm -f "$HS_TMP/pairs.log"
}
DBG=$(ls /lib/x86_64-linux-gnu/libc_malloc_debug.so.0 /usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0 2>/dev/null | head -1)
INJECT=--inject
read -r injected injected_lines < <(traced_pairs)
INJECT=
read -r preloaded _ < <(traced_pairs LD_PRELOAD="$DBG")
echo "untraced:                    $plain ns per pair"
echo "mtrace --inject (heapscope): $injected ns per pair ($injected_lines log lines); $(awk -v a="$injected" -v b="$plain" 'BEGIN { printf "%.0fx", a / b }') untraced"
echo "mtrace, preloaded:           $preloaded ns per pair; injected / preloaded = $(awk -v a="$injected" -v b="$preloaded" 'BEGIN { printf "%.2fx", a / b }')"
if command -v heaptrack >/dev/null; then
	ht=$(cd "$HS_TMP" && heaptrack -o "$HS_TMP/ht" "$PAIRS" "$N" 2>/dev/null | awk '/^PAIRS/ { print $3 }')
	echo "heaptrack (preload mode):    $ht ns per pair; mtrace --inject / heaptrack = $(awk -v a="$injected" -v b="$ht" 'BEGIN { printf "%.2fx", a / b }')"
else
	echo "heaptrack: not installed (apt-get install heaptrack)"
fi

echo
echo "== profile: the cost of a malloc + free pair while sampled (heapscope profile, 512 KiB)"
profiled_pairs()
{
	local out=$HS_TMP/pairs.out p h
	"$PAIRS" "$N" wait >"$out" 2>&1 &
	p=$!
	for _ in $(seq 50); do grep -q READY "$out" && break; sleep 0.1; done
	"$HS" profile --rate 512K --raw "$HS_TMP/pairs.raw" "$p" >/dev/null 2>"$HS_TMP/profile.err" &
	h=$!
	for _ in $(seq 100); do grep -q "routed to" "$HS_TMP/profile.err" && break; sleep 0.1; done
	kill -USR2 "$p"
	for _ in $(seq 600); do grep -q '^PAIRS' "$out" && break; sleep 0.1; done
	kill -INT "$h"
	wait "$h" 2>/dev/null || :
	kill -TERM "$p"
	wait "$p" 2>/dev/null || :
	echo "$(awk '/^PAIRS/ { print $3 }' "$out") $(grep -c '^[0-9]' "$HS_TMP/pairs.raw")"
}
# several rounds, each untraced then profiled, alternating (the machine's
# load moves between rounds); medians, and each round's own ratio
plains=() profs=() rs=()
for _ in 1 2 3 4 5; do
	u=$("$PAIRS" "$N" | awk '{ print $3 }')
	read -r pr psamples < <(profiled_pairs)
	plains+=("$u") profs+=("$pr")
	rs+=("$(awk -v a="$pr" -v b="$u" 'BEGIN { printf "%.2f", a / b }')")
done
plain=$(median "${plains[@]}")
profiled=$(median "${profs[@]}")
echo "rounds (untraced / profile ns per pair): $(for i in 0 1 2 3 4; do printf '%s/%s=%sx ' "${plains[$i]}" "${profs[$i]}" "${rs[$i]}"; done)"
echo "untraced:                    $plain ns per pair (median of 5)"
echo "profile (512 KiB):           $profiled ns per pair (median of 5, $psamples samples in the last); median ratio $(median "${rs[@]}")x untraced"
echo "mtrace --inject:             $injected ns per pair; $(awk -v a="$injected" -v b="$profiled" 'BEGIN { printf "%.0fx", a / b }') profile"
[ -z "${ht:-}" ] || echo "heaptrack (preload mode):    $ht ns per pair; $(awk -v a="$ht" -v b="$profiled" 'BEGIN { printf "%.0fx", a / b }') profile"

echo
echo "== profile: the demo target's pause at start and at stop (5 profiles of 0.5 s)"
start_target "$DEMO"
pid=$TARGET_PID
for _ in 1 2 3 4 5; do
	timeout 60 "$HS" profile --duration 0.5 "$pid" 2>/dev/null | sed -n 's/.*start paused \(.*\), stop \(.*\)$/  start paused \1, stop paused \2/p'
done
kill -TERM "$pid"
wait_target "$pid"
fi
