#!/bin/bash
# A target that execve()s itself in a loop, its threads churning malloc:
# read-only commands must never hang (an execve waits in de_thread for the
# threads heapscope seized and must reap, while heapscope waits in
# PTRACE_SEIZE for the execve), must exit 0, 1 or 2 with a clear message
# (an exec'd process is named as such, never walked with the old maps),
# and must never leave the target stopped, stuck or traced.
#
# Needs: HEAPSCOPE, TARGETS_DIR, timeout.  HS_EXECLOOP_NOASLR=1: the target
# runs without address randomisation (execloop_noaslr.sh).
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd timeout
EXECLOOP=$(target execloop)
ROUNDS=${HS_EXECLOOP_ROUNDS:-30}

if [ -n "${HS_EXECLOOP_NOASLR:-}" ]; then
	need_cmd setarch
	start_target setarch "$(uname -m)" -R "$EXECLOOP"
else
	start_target "$EXECLOOP"
fi
pid=$TARGET_PID
ptrace_ok "$pid"

# released PID: no thread traced or stopped, none stuck in D (an execve
# passes through D briefly: wait up to 5 s for it to leave)
released()
{
	local i task bad
	for i in $(seq 50); do
		bad=
		for task in /proc/"$1"/task/*; do
			grep -q '^TracerPid:[[:space:]]*0$' "$task/status" 2>/dev/null ||
				{ [ -e "$task/status" ] && bad="thread ${task##*/} traced"; }
			case $(sed -n 's/^State:[[:space:]]*//p' "$task/status" 2>/dev/null) in
			t*|T*|D*) bad="thread ${task##*/} in state $(sed -n 's/^State:[[:space:]]*//p' "$task/status")" ;;
			esac
		done
		[ -z "$bad" ] && return 0
		sleep 0.1
	done
	echo "# $bad"
	return 1
}

hangs=0 bad_status=0 unclear=0 stuck=0 okruns=0 execd=0
for round in $(seq "$ROUNDS"); do
	for cmd in arenas chunks stats bins; do
		rc=0
		timeout -k 5 20 "$HS" "$cmd" "$pid" >"$HS_TMP/out" 2>"$HS_TMP/err" </dev/null || rc=$?
		[ -d "/proc/$pid/task" ] || fail "the target died (round $round, $cmd)"
		case $rc in
		0|1) okruns=$((okruns + 1)) ;;
		2)
			if [ "$(wc -l <"$HS_TMP/err")" = 1 ] &&
			   grep -Eq "^heapscope: $cmd: pid $pid (exec'd|is starting)" "$HS_TMP/err"; then
				execd=$((execd + 1))
			else
				unclear=$((unclear + 1))
				sed "s/^/#   round $round $cmd: /" "$HS_TMP/err"
			fi ;;
		124|137)
			hangs=$((hangs + 1))
			echo "#   round $round: heapscope $cmd $pid hung (killed by timeout)" ;;
		*)
			bad_status=$((bad_status + 1))
			echo "#   round $round: heapscope $cmd $pid exited $rc"
			sed 's/^/#   /' "$HS_TMP/err" ;;
		esac
		if ! released "$pid"; then
			stuck=$((stuck + 1))
			echo "#   round $round: after $cmd the target was not released"
		fi
	done
done
echo "# $okruns runs walked a heap, $execd saw the process exec"

if [ "$hangs" = 0 ]; then ok "no run hung"; else not_ok "$hangs run(s) hung"; fi
if [ "$bad_status" = 0 ]; then ok "every run exited 0, 1 or 2"; else not_ok "$bad_status run(s) exited otherwise"; fi
if [ "$unclear" = 0 ]; then
	ok "every failure said the process exec'd"
else
	not_ok "$unclear failure(s) with another message"
fi
if [ "$stuck" = 0 ]; then ok "the target was released after every run"; else not_ok "$stuck run(s) left it stuck"; fi

if [ "$failed" != 0 ]; then
	echo "FAIL: $ME: some checks failed"
	exit 1
fi
echo "PASS: $ME"
