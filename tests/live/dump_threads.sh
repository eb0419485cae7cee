#!/bin/bash
# heapscope dump reads a range of 8 MiB or more with two threads while the
# target is stopped, each into its part of the capture; the output stays
# strings(1)'s.  A target killed during the read, or a read past the stop's
# limit, ends both threads: no hang, the target left as it was.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_strace
need_cmd strings
[ "$(nproc)" -ge 2 ] || skip "one CPU: the stop is read by one thread"

start_textheap

# 1. while the target is stopped (between the attach and the detach), two
# threads of heapscope read it
rc=0
timeout -k 5 120 strace -f -o "$HS_TMP/trace" -e trace=process_vm_readv,ptrace \
	"$HS" dump --strings=10 --no-address "$P" "$range" >"$HS_TMP/out" 2>"$HS_TMP/err" || rc=$?
readers=$(awk -v p="$P" '
	/ptrace\(PTRACE_SEIZE/ { stopped = 1 }
	/ptrace\(PTRACE_DETACH/ { stopped = 0 }
	stopped && index($0, "process_vm_readv(" p ",") { t[$1] = 1 }
	END { n = 0; for (k in t) n++; print n }' "$HS_TMP/trace")
if [ "$rc" = 0 ] && [ "$readers" = 2 ]; then
	ok "the stop is read by 2 threads"
else
	not_ok "the stop is read by $readers threads (exit $rc: $(head -c 300 "$HS_TMP/err"))"
fi
cmp -s "$HS_TMP/out" "$HS_TMP/expect" && ok "two threads: the output is strings -n 10's" ||
	not_ok "two threads: the output differs from strings -n 10's"
check_untouched "$P" || not_ok "target left traced or stopped"

# 2. past the stop's limit (1 s): each thread's third read delayed by 1.1 s;
# the rest is read while the target runs, and said so
rc=0
timeout -k 5 120 strace -f -o /dev/null -e trace=process_vm_readv \
	-e inject=process_vm_readv:delay_enter=1100000:when=3 \
	"$HS" dump --strings=10 --no-address "$P" "$range" >"$HS_TMP/out" 2>"$HS_TMP/err" || rc=$?
if [ "$rc" = 0 ] && grep -q 'the stop reached its limit' "$HS_TMP/err" && cmp -s "$HS_TMP/out" "$HS_TMP/expect"; then
	ok "a stop past its limit: the rest read after it, the output is strings -n 10's"
else
	not_ok "a stop past its limit: exit $rc, $(head -c 300 "$HS_TMP/err")"
fi
check_untouched "$P" || not_ok "stop past its limit: target left traced or stopped"

# 4. the second thread blocks every signal (SIGINT, SIGTERM, SIGALRM at
# least): heapscope's handlers, which release the target, and the attach's
# timer run on the thread that traces it.  Reads from the third on delayed
# by 0.3 s; its threads looked at while the target is traced, then
# heapscope is sent SIGTERM: the target is released.
strace -f -o /dev/null -e trace=process_vm_readv -e inject=process_vm_readv:delay_enter=300000:when=3+ \
	"$HS" dump --strings=10 --no-address "$P" "$range" >/dev/null 2>"$HS_TMP/err" &
tracer=$!
hs=0 seen= unblocked=
i=0
while [ $i -lt 1500 ] && [ -z "$seen" ]; do
	i=$((i + 1))
	hs=$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$P/status" 2>/dev/null)
	if [ "${hs:-0}" != 0 ]; then
		for task in /proc/"$hs"/task/*; do
			[ "${task##*/}" != "$hs" ] || continue
			blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' "$task/status" 2>/dev/null) || continue
			[ -n "$blk" ] || continue
			seen=${task##*/}
			[ $((0x$blk & 0x6002)) = $((0x6002)) ] || unblocked="thread $seen blocks only $blk"
		done
	fi
	[ -n "$seen" ] || sleep 0.02
done
[ "${hs:-0}" != 0 ] && kill -TERM "$hs" 2>/dev/null || true
wait_or_kill "$tracer" || true
if [ -z "$seen" ]; then
	not_ok "no second heapscope thread seen while the target was stopped"
elif [ -n "$unblocked" ]; then
	not_ok "the second thread does not block every signal: $unblocked"
else
	ok "the second thread (tid $seen) blocks SIGINT, SIGTERM and SIGALRM"
fi
check_untouched "$P" || not_ok "SIGTERM during the stop: target left traced or stopped"

# 3. the target killed while both threads read it: each read from the third
# on delayed by 0.3 s, the target killed once it is traced
strace -f -o /dev/null -e trace=process_vm_readv -e inject=process_vm_readv:delay_enter=300000:when=3+ \
	"$HS" dump --strings=10 --no-address "$P" "$range" >"$HS_TMP/out" 2>"$HS_TMP/err" &
tracer=$!
wait_traced "$P" 1000 || true
kill -KILL "$P"
# both threads end within a delayed read or two, not after the 12 s all
# the delays would take
if ! wait_or_kill "$tracer"; then
	not_ok "target killed during the read: heapscope still runs after 30 s"
elif [ "$RC" = 2 ] && grep -q 'exited during the dump' "$HS_TMP/err" && [ ! -s "$HS_TMP/out" ]; then
	ok "target killed during the read: $(cat "$HS_TMP/err")"
else
	not_ok "target killed during the read: exit $RC, $(head -c 300 "$HS_TMP/err")"
fi
wait_target "$P"

[ "$failed" = 0 ] && echo "PASS: dump_threads.sh" || exit 1
