#!/bin/bash
# heapscope trim: malloc_trim called inside the target returns what the
# target's own malloc_trim returns; the call is refused, never forced, when
# a thread is inside malloc; a heapscope killed during a call leaves the
# target running with its registers intact; 200 trims of a target churning
# malloc in 8 threads corrupt nothing.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
anon() { sed -n 's/^RssAnon:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

# --- twins: heapscope trim on one, the target's own malloc_trim(0) on the other
start_target "$(target demo)" 4
A=$TARGET_PID A_OUT=$TARGET_OUT
ptrace_ok "$A"
start_target "$(target demo)" 4
B=$TARGET_PID B_OUT=$TARGET_OUT
"$HS" trim --dry-run --json "$A" >"$HS_TMP/dry.json"
before=$(anon "$A")
"$HS" trim --json "$A" >"$HS_TMP/t.json" || not_ok "trim exit $?"
after=$(anon "$A")
kill -USR1 "$B"
for _ in $(seq 50); do grep -q '^TRIMMED ' "$B_OUT" && break; sleep 0.1; done
read -r _ own _ < <(grep '^TRIMMED ' "$B_OUT")
ours=$(((before - after) * 1024))
python3 - "$HS_TMP/dry.json" "$HS_TMP/t.json" "$ours" "$own" <<'PY' && ok "trim returned $ours bytes, the twin's own malloc_trim $own" || not_ok "trim: $ours bytes against $own"
import json, sys
dry, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ours, own = int(sys.argv[3]), int(sys.argv[4])
assert dry["dry_run"] and "returned" not in dry, dry
assert t["called"] and t["return_value"] == 1, t
assert own > 0 and ours >= 0.9 * own, (ours, own)
print(f"# predicted {t['trimmable']}, returned (resident before - after) {t['returned']}; "
      f"paused {t['pause_us']} us, the call {t['call_us']} us")
PY
check_untouched "$A" || not_ok "trimmed target left traced or stopped"
# the target's own code still runs as before: its SIGUSR1 handler answers
kill -USR1 "$A"
for _ in $(seq 50); do grep -q '^TRIMMED ' "$A_OUT" && break; sleep 0.1; done
grep -q '^TRIMMED ' "$A_OUT" && ok "the trimmed target still runs its own code" || not_ok "trimmed target does not answer"

# --- a target with its own SIGSEGV handler keeps it (a JVM needs its own)
start_target "$(target simple)" segv-handler
cgt() { sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$1/status"; }
before=$(cgt "$TARGET_PID")
"$HS" trim "$TARGET_PID" >/dev/null 2>&1 || not_ok "trim of the segv-handler target failed"
after=$(cgt "$TARGET_PID")
if [ "$before" = "$after" ] && [ $((0x$after & 0x400)) != 0 ]; then
	ok "the target's SIGSEGV handler survives the call (SigCgt $after)"
else
	not_ok "SigCgt changed from $before to $after"
fi

# --- never safe: the one thread blocked inside malloc_info; refused, exit 75
start_target "$(target simple)" in-malloc
rc=0
"$HS" trim --wait 300 "$TARGET_PID" >/dev/null 2>"$HS_TMP/err" || rc=$?
if [ "$rc" = 75 ] && grep -q 'not safe to call malloc_trim within 300 ms: thread [0-9]* is .*malloc.*(nothing was called)' "$HS_TMP/err" &&
	check_untouched "$TARGET_PID"; then
	ok "refused while a thread is inside malloc (exit 75): $(cat "$HS_TMP/err")"
else
	not_ok "in-malloc: exit $rc: $(cat "$HS_TMP/err")"
fi
rc=0
"$HS" trim --json --wait 100 "$TARGET_PID" >"$HS_TMP/out" 2>/dev/null || rc=$?
[ "$rc" = 75 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "not safe" in d["error"]' "$HS_TMP/out" &&
	ok "refusal in JSON: an error object, exit 75" || not_ok "JSON refusal: exit $rc: $(cat "$HS_TMP/out")"

# --- killed during a call: usleep(3 s) stands in for a long malloc_trim.
# SIGINT and SIGTERM wait for the call; SIGKILL cannot: the thread finishes
# the call and returns through its signal frames by itself.
for sig in INT TERM KILL; do
	start_target "$(target demo)" 2
	P=$TARGET_PID P_OUT=$TARGET_OUT
	env --default-signal "$HS" trim --test-function usleep --pad 3000000 --timeout 20000 "$P" >/dev/null 2>&1 &
	hs=$!
	sleep 0.8
	kill -s "$sig" "$hs"
	rc=0
	wait "$hs" || rc=$?
	if check_untouched "$P"; then
		kill -USR1 "$P"
		for _ in $(seq 50); do grep -q '^TRIMMED ' "$P_OUT" && break; sleep 0.1; done
		grep -q '^TRIMMED ' "$P_OUT" && ok "SIG$sig during a call (status $rc): target untraced, running, registers intact" ||
			not_ok "SIG$sig during a call: the target does not answer"
	else
		not_ok "SIG$sig during a call: target left traced or stopped"
	fi
done

# --- registers, vector registers included, come back exactly: a thread
# spinning with known values checks them; heapscope trims it (restored by
# ptrace), then is SIGKILLed during a call (restored by the thread's own
# rt_sigreturn).  regs-nocue catches the signals that cue a call's end
# and runs with SIGINT and SIGQUIT at their defaults (a shell's background
# job ignores them, which would make them cues), so its calls run under
# PTRACE_SYSCALL.  Both return through frame B: its extended state must be
# sized as the kernel's signal frame (not ptrace's regset, larger with
# AMX) or rt_sigreturn restores x87/SSE only and the vector registers'
# upper halves (ymm0, zmm16 checked) are lost; and the thread's own
# signal mask comes back with it.
nocue_env=()
if env --default-signal=INT true 2>/dev/null; then nocue_env=(env --default-signal=INT,QUIT); fi
# start_regs MODE OUT: a register-checking target, ready; its pid in R
start_regs() {
	local run=("$(target simple)")
	[ "$1" = regs-nocue ] && run=("${nocue_env[@]}" "$(target simple)")
	"${run[@]}" "$1" >"$2" 2>&1 &
	R=$!
	track_pid "$R"
	for _ in $(seq 50); do grep -q '^READY' "$2" && break; sleep 0.1; done
}
for mode in regs regs-nocue; do
	start_regs "$mode" "$HS_TMP/$mode.out"
	for _ in 1 2 3; do "$HS" trim "$R" >/dev/null 2>"$HS_TMP/err" || not_ok "$mode: trim failed: $(cat "$HS_TMP/err")"; done
	for _ in 1 2 3; do
		"$HS" trim --test-function usleep --pad 700000 --timeout 20000 "$R" >/dev/null 2>&1 &
		hs=$!
		sleep 0.35
		kill -KILL "$hs"
		wait "$hs" 2>/dev/null || :
		sleep 0.6
	done
	tracer=$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$R/status")
	kill -USR1 "$R"
	wait "$R" 2>/dev/null && st=0 || st=$?
	if [ "$st" = 0 ] && [ "$tracer" = 0 ] && grep -q '^REGS OK' "$HS_TMP/$mode.out"; then
		ok "$mode: registers intact after 3 trims and 3 SIGKILLed calls: $(grep REGS "$HS_TMP/$mode.out")"
	else
		not_ok "$mode: status $st, TracerPid $tracer: $(cat "$HS_TMP/$mode.out")"
	fi
done

# --- heapscope SIGKILLed at each of its ptrace calls in turn (strace's
# fault injection): whichever call it dies at, the thread's registers,
# vector registers and signal mask stay right, and it is left running and
# untraced.  The call starts with one PTRACE_SETREGS (an rt_sigreturn into
# a frame with the call's registers and mask) and ends in frame B's
# rt_sigreturn, so no moment has half of the thread set.
if ! command -v strace >/dev/null; then
	echo "# skip: SIGKILL at each ptrace call: strace is not installed"
elif ! strace -qq -o /dev/null -e trace=ptrace -e inject=ptrace:signal=SIGKILL:when=1000 true 2>/dev/null; then
	echo "# skip: SIGKILL at each ptrace call: this strace cannot inject signals"
else
	for mode in regs regs-nocue; do
		start_regs "$mode" "$HS_TMP/k$mode.out"
		strace -qq -o "$HS_TMP/count" -e trace=ptrace "$HS" trim "$R" >/dev/null 2>&1 || :
		calls=$(grep -c '^ptrace(' "$HS_TMP/count" || :)
		bad=""
		for n in $(seq "$calls"); do
			timeout -k 5 60 strace -qq -o /dev/null -e trace=ptrace -e inject=ptrace:signal=SIGKILL:when="$n" \
				"$HS" trim "$R" >/dev/null 2>&1 || :
			# the thread finishes a call by itself: wait until it is out
			for _ in $(seq 100); do
				grep -q '^TracerPid:[[:space:]]*0$' "/proc/$R/status" 2>/dev/null &&
					! grep -q '^State:[[:space:]]*[tT]' "/proc/$R/status" && break
				sleep 0.05
			done
			if ! kill -0 "$R" 2>/dev/null; then bad="died after SIGKILL at ptrace call $n"; break; fi
			if grep -q '^State:[[:space:]]*[tT]' "/proc/$R/status" ||
				! grep -q '^TracerPid:[[:space:]]*0$' "/proc/$R/status"; then
				bad="left stopped or traced after SIGKILL at ptrace call $n"; break
			fi
			if [ "$(sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$R/status")" = ffffffffffffffff ] ||
				grep -q 'REGS BAD' "$HS_TMP/k$mode.out"; then
				bad="state wrong after SIGKILL at ptrace call $n: $(cat "$HS_TMP/k$mode.out")"; break
			fi
		done
		# a whole spin with every register checked after the last one
		sleep 1
		kill -USR1 "$R"
		wait "$R" 2>/dev/null && st=0 || st=$?
		untrack_pid "$R"
		if [ -z "$bad" ] && [ "$calls" -gt 10 ] && [ "$st" = 0 ] && grep -q '^REGS OK' "$HS_TMP/k$mode.out"; then
			ok "$mode: SIGKILL at each of trim's $calls ptrace calls: registers, vector registers and mask intact: $(grep REGS "$HS_TMP/k$mode.out")"
		else
			not_ok "$mode: ${bad:-status $st after $calls calls}: $(cat "$HS_TMP/k$mode.out")"
		fi
	done
fi

# --- 200 trims of 8 threads churning malloc: trimmed or refused, nothing
# broken (50 under the sanitizers, whose heapscope is many times slower:
# the point of that run is heapscope's own memory errors)
rounds=200
[ -n "${HS_SANITIZED:-}" ] && rounds=50
start_target "$(target churn)" 8
C=$TARGET_PID
trimmed=0 refused=0 partial=0 released=0
for _ in $(seq "$rounds"); do
	rc=0
	timeout -k 5 30 "$HS" trim --json --wait 300 "$C" >"$HS_TMP/trim.json" 2>"$HS_TMP/err" || rc=$?
	case $rc in
	0) trimmed=$((trimmed + 1)) ;;
	1) trimmed=$((trimmed + 1)) partial=$((partial + 1)) ;;  # trimmed; the look after it refused
	75) refused=$((refused + 1)) ;;
	*) not_ok "trim exit $rc: $(cat "$HS_TMP/err")"; break ;;
	esac
	# a call that waited on a lock a stopped thread held (past --timeout
	# the others were let go): the safety check let an unsafe call through
	grep -Eq '"threads_released": ?true' "$HS_TMP/trim.json" && released=$((released + 1))
done
if [ "$released" = 0 ]; then
	ok "churn: no call waited for a stopped thread (none needed its threads let go)"
else
	not_ok "churn: $released of $rounds calls waited past --timeout for a lock a stopped thread held"
fi
# busy threads run (R) or sleep: none may be traced or stopped
if grep -H -E '^(TracerPid:[[:space:]]*[1-9]|State:[[:space:]]*[tT])' /proc/"$C"/task/*/status; then
	not_ok "churn target left traced or stopped"
else
	ok "churn target: no thread traced or stopped"
fi
kill -USR1 "$C"
wait_target "$C" 30
if grep -q '^CHECK OK' "$TARGET_OUT" && [ "$TARGET_STATUS" = 0 ]; then
	ok "$rounds trims of a churning target: $trimmed trimmed ($partial without the look after), $refused refused as unsafe; $(grep CHECK "$TARGET_OUT")"
else
	not_ok "churn target: $(cat "$TARGET_OUT") (status $TARGET_STATUS)"
fi
[ "$failed" = 0 ] && echo "PASS: trim.sh" || exit 1
