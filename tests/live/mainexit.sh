#!/bin/bash
# A process whose main thread called pthread_exit while other threads run:
# its thread group leader is a zombie, and /proc/PID/maps, smaps, mem,
# pagemap and exe of it are empty or gone.  heapscope must read the
# process through a live thread (/proc/TID) and give the same figures as
# for any other process: malloc_info() byte for byte, mallinfo2() field for
# field; trim must work; the target must be left untouched.
#
# Needs: HEAPSCOPE, TARGETS_DIR, python3.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3
need_cmd timeout
KNOWNHEAP=$(target knownheap)
MI=$HS_TMP/mi.txt

# knownheap writes the file and READY only once its main thread is a zombie
# (start_target would take that zombie for a dead target)
MALLOC_PERTURB_=0 "$KNOWNHEAP" "$MI" 2 main-exits >"$HS_TMP/target.out" 2>&1 </dev/null &
pid=$!
leader=$pid
track_pid "$pid"
for _ in $(seq 100); do
	grep -q '^READY ' "$HS_TMP/target.out" && break
	[ -d "/proc/$pid/task" ] || framework_failure "target exited: $(cat "$HS_TMP/target.out")"
	sleep 0.1
done
grep -q "^READY $pid\$" "$HS_TMP/target.out" ||
	framework_failure "target not READY after 10 s: $(cat "$HS_TMP/target.out")"
# like check_untouched, for every thread but the zombie leader
live_untouched()
{
	local i task bad
	for i in $(seq 20); do
		bad=
		for task in /proc/"$leader"/task/*; do
			[ "${task##*/}" = "$leader" ] && continue
			grep -q '^TracerPid:[[:space:]]*0$' "$task/status" || bad="thread ${task##*/} traced"
			grep -q '^State:[[:space:]]*S' "$task/status" || bad="thread ${task##*/} not sleeping"
		done
		[ -z "$bad" ] && return 0
		sleep 0.1
	done
	echo "$bad" >&2
	return 1
}

# the probe's PTRACE_SEIZE of the zombie leader would fail (EPERM): probe
# a live thread, and check the live threads only
tid=
for t in /proc/"$pid"/task/*; do
	[ "${t##*/}" != "$pid" ] && { tid=${t##*/}; break; }
done
[ -n "$tid" ] || framework_failure "pid $pid has no live thread"
(
	check_untouched() { live_untouched; }
	trap - EXIT
	ptrace_ok "$tid"
) || exit $?
grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" ||
	framework_failure "pid $pid: the main thread is not a zombie"
[ ! -s "/proc/$pid/maps" ] ||
	echo "# note: /proc/$pid/maps of the zombie main thread is not empty on this kernel"
sed '/^MALLINFO2 /,$d' "$MI" >"$HS_TMP/expected.xml"
grep '^MALLINFO2 ' "$MI" >"$HS_TMP/expected.mallinfo2" ||
	framework_failure "$MI: no MALLINFO2 line"

# hs NAME ARGS...: run heapscope, bounded, into $HS_TMP/NAME.{out,err}; RC
hs()
{
	local name=$1
	shift
	RC=0
	timeout -k 5 60 "$HS" "$@" >"$HS_TMP/$name.out" 2>"$HS_TMP/$name.err" </dev/null || RC=$?
	if [ "$RC" != 0 ]; then
		sed 's/^/#   stderr: /' "$HS_TMP/$name.err"
	fi
}

untouched()
{
	if live_untouched; then
		ok "$1: target untraced and sleeping"
	else
		not_ok "$1: target not left untouched"
	fi
}

# same_mallinfo2 NAME KEY: the ten fields of the JSON in NAME.out (under
# KEY, or top level if KEY is empty) equal the target's mallinfo2()
same_mallinfo2()
{
	python3 - "$HS_TMP/$1.out" "$2" "$HS_TMP/expected.mallinfo2" <<'PY'
import json, sys
path, key, mi = sys.argv[1:4]
want = {k: int(v) for k, v in (kv.split("=") for kv in open(mi).read().split()[1:])}
doc = json.load(open(path))
got = doc[key] if key else doc
bad = [f"{k} = {got.get(k)!r}, expected {v}" for k, v in want.items() if got.get(k) != v]
for b in bad:
    print("#   mallinfo2." + b)
sys.exit(1 if bad else 0)
PY
}

hs mi stats --malloc-info "$pid"
if [ "$RC" = 0 ] && diff -u "$HS_TMP/expected.xml" "$HS_TMP/mi.out" >"$HS_TMP/mi.diff"; then
	ok "stats --malloc-info is byte-identical to malloc_info() with the main thread gone"
else
	head -n 50 "$HS_TMP/mi.diff" 2>/dev/null | sed 's/^/#   /'
	not_ok "stats --malloc-info (exit $RC) differs from malloc_info()"
fi
untouched "stats --malloc-info"

hs arenas arenas --json "$pid"
if [ "$RC" = 0 ] && same_mallinfo2 arenas mallinfo2; then
	ok "arenas --json: mallinfo2 equals mallinfo2() with the main thread gone"
else
	not_ok "arenas --json (exit $RC): mallinfo2 differs"
fi

hs mi2 stats --mallinfo2 --json "$pid"
if [ "$RC" = 0 ] && same_mallinfo2 mi2 ""; then
	ok "stats --mallinfo2 --json equals mallinfo2() with the main thread gone"
else
	not_ok "stats --mallinfo2 --json (exit $RC) differs"
fi

hs chunks chunks --json "$pid"
if [ "$RC" = 0 ] && python3 -m json.tool "$HS_TMP/chunks.out" >/dev/null; then
	ok "chunks --json: exit 0 with the main thread gone"
else
	not_ok "chunks --json (exit $RC)"
fi
untouched "chunks"

hs trim trim "$pid"
if [ "$RC" = 0 ]; then
	ok "trim: exit 0 with the main thread gone"
	sed 's/^/#   /' "$HS_TMP/trim.out"
else
	not_ok "trim (exit $RC)"
fi
untouched "trim"
hs after arenas "$pid"
if [ "$RC" = 0 ]; then ok "arenas after trim: exit 0"; else not_ok "arenas after trim (exit $RC)"; fi

# The zombie leader refuses PTRACE_SEIZE (EPERM) every time: tried once
# (and once more after the other threads), not again and again for 200 ms
# as if another heapscope held it
if command -v strace >/dev/null 2>&1; then
	timeout -k 5 60 strace -f -qq -e trace=ptrace -o "$HS_TMP/strace" "$HS" arenas "$pid" >/dev/null 2>&1 || true
	n=$(grep -c "PTRACE_SEIZE, $leader," "$HS_TMP/strace" || true)
	[ "$n" -ge 1 ] && [ "$n" -le 2 ] && ok "the zombie leader's seize tried $n times" ||
		not_ok "the zombie leader's seize tried $n times (at most 2 wanted)"
	untouched "arenas under strace"
else
	echo "# strace not found: the zombie leader's seize count not checked"
fi

if [ "$failed" != 0 ]; then
	echo "FAIL: $ME: some checks failed"
	exit 1
fi
echo "PASS: $ME"
