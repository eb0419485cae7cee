#!/bin/bash
# heapscope dump never keeps the target stopped while its output blocks:
# a range far larger than what is mapped in it (here [heap] plus 1 GiB of
# nothing) is captured while stopped, and written after the target runs.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
need_cmd pgrep

need_syscall_nrs

# one thread arena of about 40 MiB full of strings ("ZZZZ..."), far more
# than a pipe and stdio buffer hold; the range is its 64 MiB heap and the
# gaps and mappings in the GiB from there
start_target "$(target bigheap)" 1
P=$TARGET_PID
ptrace_ok "$P"
# (where mmap puts it depends on ASLR: 0x7f..., 0x7e..., lower with more bits)
s1=$(arena_heap_range "$P")
s1=${s1%-*}
[ -n "$s1" ] || framework_failure "no thread heap in $(cat /proc/"$P"/maps)"
range="$s1+1G"

for mode in raw strings plain; do
	args=("$P" "$range")
	[ "$mode" = strings ] && args=(--strings=1 "${args[@]}")
	# plain: strings(1)'s output, written from the bytes captured
	[ "$mode" = plain ] && args=(--strings=1 --no-address "${args[@]}")
	rm -f "$HS_TMP/fifo" && mkfifo "$HS_TMP/fifo"
	timeout -k 5 120 "$HS" dump "${args[@]}" >"$HS_TMP/fifo" 2>"$HS_TMP/err" &
	hspid=$!
	# the reader opens, reads nothing yet: heapscope's output blocks
	exec 3<"$HS_TMP/fifo"
	# the timeout's child is heapscope
	i=0
	hs=
	while [ $i -lt 300 ]; do
		hs=$(pgrep -P "$hspid" -x heapscope || true)
		[ -n "$hs" ] && in_write "/proc/$hs" && break
		i=$((i + 1))
		sleep 0.1
	done
	if [ -z "$hs" ] || ! in_write "/proc/$hs"; then
		not_ok "$mode: heapscope never blocked writing to the pipe"
	else
		bad=
		for task in /proc/"$P"/task/*; do
			tracer=$(sed -n 's/^TracerPid:[[:space:]]*//p' "$task/status")
			state=$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "$task/status")
			[ "$tracer" = 0 ] && [ "$state" != t ] && [ "$state" != T ] ||
				bad="thread ${task##*/} is in state $state, traced by $tracer"
		done
		if [ -z "$bad" ]; then
			ok "$mode: while heapscope's output blocks, the target runs untraced"
		else
			not_ok "$mode: while heapscope's output blocks, $bad"
		fi
	fi
	cat <&3 >"$HS_TMP/out"
	exec 3<&-
	rc=0
	wait "$hspid" || rc=$?
	if [ "$rc" = 1 ] && [ -s "$HS_TMP/out" ] && grep -q skipped "$HS_TMP/err"; then
		ok "$mode: the dump completes, gap reported (exit 1)"
	else
		not_ok "$mode: exit $rc: $(head -c 300 "$HS_TMP/err")"
	fi
	check_untouched "$P" || not_ok "$mode: target left traced or stopped"
done

# more mapped than one stop holds (320 MiB): read without a stop, and said so
start_target "$(target simple)" bigmap
P=$TARGET_PID
a=0x$(awk '$2 == "r--p" && $6 == "" { split($1, x, "-"); print x[1]; exit }' /proc/"$P"/maps)
rc=0
timeout -k 5 120 "$HS" dump --strings --json "$P" "$a" >"$HS_TMP/out" 2>"$HS_TMP/err" </dev/null || rc=$?
if [ "$rc" = 0 ] && grep -q 'not one consistent snapshot' "$HS_TMP/err" && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["bytes"] == 320 << 20 and d["pause_us"] == 0 and d["consistent"] is False, d' "$HS_TMP/out"; then
	ok "320 MiB mapped: read while the target runs, reported as not one snapshot"
else
	not_ok "320 MiB mapped: exit $rc, $(cat "$HS_TMP/err") $(tail -c 200 "$HS_TMP/out")"
fi
check_untouched "$P" || not_ok "bigmap: target left traced or stopped"
[ "$failed" = 0 ] && echo "PASS: dump_stop.sh" || exit 1
