#!/bin/bash
# Two heapscope runs on one target at once (an exporter's scrape and an
# engineer's command): the one that comes second waits for the first's
# stop, milliseconds, and succeeds, instead of failing with a wrong reason
# ("a security module") or "already traced"; a tracer that is not heapscope
# (strace, gdb) still fails at once (tests/live/errors.sh).
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

start_target "$(target knownheap)" "$HS_TMP/kh.txt" 2
P=$TARGET_PID
ptrace_ok "$P"

# 1. two loops of 20 runs each, at once: every run exits 0
loop()
{
	local k=$1 i
	for i in $(seq 20); do
		case $((i % 3)) in
		0) timeout -k 5 60 "$HS" arenas "$P" ;;
		1) timeout -k 5 60 "$HS" chunks --histogram "$P" ;;
		2) timeout -k 5 60 "$HS" dump --strings --top 1 "$P" '[heap]' ;;
		esac >/dev/null 2>>"$HS_TMP/err.$k" || echo "exit $?" >>"$HS_TMP/err.$k"
	done
}
: >"$HS_TMP/err.1"
: >"$HS_TMP/err.2"
loop 1 &
a=$!
loop 2 &
b=$!
wait "$a" "$b"
if [ ! -s "$HS_TMP/err.1" ] && [ ! -s "$HS_TMP/err.2" ]; then
	ok "two loops of 20 runs at once: all 40 exit 0"
else
	not_ok "two loops at once: $(sort "$HS_TMP/err.1" "$HS_TMP/err.2" | uniq -c | head -5 | tr '\n' ';')"
fi
check_untouched "$P" || not_ok "loops: target left traced or stopped"

# 2. a run that starts while another holds the target for a while (a
# dump whose reads, all made while the target is stopped, are delayed by
# 0.2 s under strace, 3 of them): it waits, then succeeds
need_strace
strace -f -o /dev/null -e trace=process_vm_readv -e inject=process_vm_readv:delay_enter=200000:when=1..3 \
	"$HS" dump "$P" '[heap]' >/dev/null 2>"$HS_TMP/holder.err" &
holder=$!
if ! wait_traced "$P"; then
	not_ok "the first run never held the target (harness)"
else
	rc=0
	timeout -k 5 60 "$HS" arenas "$P" >/dev/null 2>"$HS_TMP/second.err" || rc=$?
	if [ "$rc" = 0 ]; then
		ok "a run started while another heapscope held the target waited and succeeded"
	else
		not_ok "a run started while another held the target: exit $rc, $(head -c 300 "$HS_TMP/second.err")"
	fi
fi
rc=0
wait "$holder" || rc=$?
[ "$rc" = 0 ] && ok "the first run succeeded too" || not_ok "the first run: exit $rc, $(head -c 300 "$HS_TMP/holder.err")"
check_untouched "$P" || not_ok "holder: target left traced or stopped"

[ "$failed" = 0 ] && echo "PASS: concurrent.sh" || exit 1
