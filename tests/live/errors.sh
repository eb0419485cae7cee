#!/bin/bash
# Bad input: heapscope must fail cleanly, with the documented exit status
# (0 ok, 1 partial, 2 fatal, 64 usage), one "heapscope: ..." line on stderr
# for fatal errors, {"error": ...} on stdout in --json mode, never hang on a
# corrupt heap, and leave every target untraced and running.
#
# Prints "ok - ..." / "not ok - ..." per check; exits 1 if any failed.
# Needs: HEAPSCOPE, TARGETS_DIR, python3.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3
need_cmd timeout
SIMPLE=$(target simple)

skip_check() { echo "ok - $* # SKIP"; }

# hs ARGS...: run heapscope, bounded; sets RC and files $OUT and $ERR.
# A hang is reported as RC=124 (a failure for every check below).
OUT=$HS_TMP/hs.out
ERR=$HS_TMP/hs.err
hs()
{
	RC=0
	timeout -k 5 20 "$HS" "$@" >"$OUT" 2>"$ERR" </dev/null || RC=$?
}

show()
{
	sed 's/^/#   stdout: /' "$OUT"
	sed 's/^/#   stderr: /' "$ERR"
}

# expect DESC STATUS: the last hs run exited with STATUS (returns 1 if not)
expect()
{
	if [ "$RC" = "$2" ]; then
		ok "$1"
	else
		not_ok "$1 (exit status $RC, expected $2)"
		show
		return 1
	fi
}

# expect_fatal DESC [ERE]: exit 2, exactly one stderr line starting
# "heapscope: ", which matches ERE (case-insensitive) if given
expect_fatal()
{
	local desc=$1 re=${2:-}

	if [ "$RC" != 2 ]; then
		not_ok "$desc (exit status $RC, expected 2)"
	elif [ "$(wc -l <"$ERR")" != 1 ] || ! head -n 1 "$ERR" | grep -q '^heapscope: '; then
		not_ok "$desc (stderr is not one 'heapscope: ...' line)"
	elif [ -n "$re" ] && ! grep -Eqi -- "$re" "$ERR"; then
		not_ok "$desc (stderr does not match /$re/)"
	else
		ok "$desc"
		sed 's/^/#   /' "$ERR"
		return 0
	fi
	show
}

untouched()
{
	if check_untouched "$1"; then
		ok "$2: target untraced and sleeping"
	else
		not_ok "$2: target not left untouched"
	fi
}

# --- may we ptrace at all?  (a refusal skips the whole test)
start_target "$SIMPLE" single
single=$TARGET_PID
ptrace_ok "$single"

hs arenas "$single"
expect "arenas on a single-threaded process" 0
untouched "$single" "single"

# --- usage errors (64) and help (0)
hs arenas notapid
expect "arenas notapid: usage error" 64
hs nosuchcmd
expect "unknown command: usage error" 64
hs arenas
expect "arenas without a pid: usage error" 64
hs
expect "no command at all: usage error" 64

for args in "--help" "arenas --help" "stats --help" "maps --help"; do
	# shellcheck disable=SC2086 # split on purpose
	hs $args
	if [ "$RC" = 0 ] && grep -qi usage "$OUT"; then
		ok "heapscope $args: exit 0, prints usage"
	else
		not_ok "heapscope $args: exit $RC, expected 0 and 'usage' on stdout"
		show
	fi
done
# the top-level usage names every exit status, refusal (75) included
hs --help
for st in 0 1 2 64 75; do
	if sed -n '/^Exit status:/,$p' "$OUT" | grep -qw "$st"; then
		ok "heapscope --help names exit status $st"
	else
		not_ok "heapscope --help does not name exit status $st"
		show
	fi
done
hs --version
if [ "$RC" = 0 ] && [ -s "$OUT" ]; then
	ok "heapscope --version: exit 0"
	sed 's/^/#   /' "$OUT"
else
	not_ok "heapscope --version: exit $RC, expected 0 and a version"
	show
fi

# --- a pid that does not exist: a child we have just reaped
sh -c 'exit 0' &
gone=$!
wait "$gone" || true
if [ -e "/proc/$gone" ]; then
	skip_check "nonexistent pid (pid $gone was reused at once)"
else
	for cmd in arenas stats maps; do
		hs "$cmd" "$gone"
		expect_fatal "$cmd on nonexistent pid $gone: exit 2"
	done
fi

# --- --json error mode
hs arenas --json 999999999
if [ "$RC" = 2 ] && python3 -m json.tool "$OUT" >/dev/null 2>&1 &&
   python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if isinstance(d, dict) and isinstance(d.get("error"), str) and d["error"] else 1)' "$OUT"; then
	ok "arenas --json 999999999: exit 2, {\"error\": ...} on stdout"
	sed 's/^/#   /' "$OUT"
else
	not_ok "arenas --json 999999999: exit $RC, expected 2 and {\"error\": \"...\"} on stdout"
	show
fi

# --- a failed attach with --json: one JSON document on stdout, whatever the
# command (dump used to print its head before the attach, then {"error"})
start_target "$SIMPLE" vfork
vf=$TARGET_PID
one_doc='import json, sys
d = json.loads(open(sys.argv[1]).read())
sys.exit(0 if isinstance(d, dict) else 1)'
for args in "arenas" "stats" "stats --malloc-info" "maps" "bins" "chunks" "trim" "mtrace start" \
	    "mtrace stop" "mtrace status" "dump --strings @[heap]" "dump --top 3 @[heap]" "dump --strings @arena:0"; do
	# shellcheck disable=SC2086 # split on purpose; @RANGE goes after the pid
	set -f; set -- ${args%% @*}; set +f
	range=; case $args in *@*) range=${args#*@} ;; esac
	hs "$@" --json "$vf" ${range:+"$range"}
	if python3 -c "$one_doc" "$OUT" 2>/dev/null; then
		ok "${args/@/} --json on a process no stop reaches: exit $RC, one JSON document"
	else
		not_ok "${args/@/} --json on a process no stop reaches: exit $RC, stdout is not one JSON document"
		show
	fi
done
kill -KILL "$vf" 2>/dev/null || true

# --- a kernel thread (kthreadd is pid 2 unless we are in a pid namespace)
kthread=
if [ "$(sed -n 's/^Name:[[:space:]]*//p' /proc/2/status 2>/dev/null)" = kthreadd ]; then
	kthread=2
fi
if [ -n "$kthread" ]; then
	hs arenas "$kthread"
	expect_fatal "arenas on kernel thread (pid $kthread): exit 2" 'kernel thread'
else
	skip_check "kernel thread (no kthreadd at pid 2: pid namespace?)"
fi

# --- a zombie: the child of a parent that does not reap it
python3 -c 'import os, sys, time
pid = os.fork()
if pid == 0:
    os._exit(0)
print(pid, flush=True)
time.sleep(600)' >"$HS_TMP/zombie.out" &
track_pid $!
zombie=
for _ in $(seq 300); do
	zombie=$(head -n 1 "$HS_TMP/zombie.out")
	[ -n "$zombie" ] && grep -q '^State:[[:space:]]*Z' "/proc/$zombie/status" 2>/dev/null && break
	zombie=
	sleep 0.1
done
if [ -n "$zombie" ]; then
	hs arenas "$zombie"
	expect_fatal "arenas on zombie pid $zombie: exit 2" zombie
else
	not_ok "zombie: could not make one (harness)"
fi

# --- a process traced by someone else
if command -v strace >/dev/null 2>&1; then
	strace -o /dev/null sleep 600 &
	stracer=$!
	track_pid "$stracer"
	traced=
	for _ in $(seq 50); do
		for s in /proc/[0-9]*/status; do
			if grep -q "^PPid:[[:space:]]*$stracer\$" "$s" 2>/dev/null &&
			   grep -q "^TracerPid:[[:space:]]*$stracer\$" "$s" 2>/dev/null &&
			   grep -q '^Name:[[:space:]]*sleep$' "$s" 2>/dev/null; then
				traced=${s#/proc/}
				traced=${traced%/status}
				break 2
			fi
		done
		sleep 0.1
	done
	if [ -n "$traced" ]; then
		track_pid "$traced"
		hs arenas "$traced"
		expect_fatal "arenas on pid $traced traced by strace: exit 2, names tracer $stracer" \
			"(^|[^0-9])$stracer([^0-9]|\$)"
		if grep -q "^TracerPid:[[:space:]]*$stracer\$" "/proc/$traced/status"; then
			ok "traced: still traced by strace only"
		else
			not_ok "traced: TracerPid changed"
		fi
		# strace exits when its child does (re-raising the child's signal)
		kill -KILL "$traced" 2>/dev/null || true
		wait "$stracer" 2>/dev/null || true
		untrack_pid "$stracer"
		untrack_pid "$traced"
	else
		skip_check "traced process (strace could not trace sleep)"
	fi
else
	skip_check "traced process (strace not installed)"
fi

# --- malloc never initialised: nothing to walk, which is not an error
start_target "$SIMPLE" nomalloc
hs arenas "$TARGET_PID"
if expect "arenas on a process that never called malloc: exit 0" 0; then
	show
fi
untouched "$TARGET_PID" "nomalloc"

# --- corrupt heaps: partial output (1), promptly, and no harm done
start_target "$SIMPLE" corrupt-fastbin-cycle
hs arenas "$TARGET_PID"
expect "arenas on a fastbin cycle: exit 1 (partial), no hang" 1
if grep -qi cycle "$OUT" "$ERR"; then
	ok "fastbin cycle: output mentions the cycle"
else
	not_ok "fastbin cycle: neither stdout nor stderr mentions 'cycle'"
	show
fi
untouched "$TARGET_PID" "corrupt-fastbin-cycle"

start_target "$SIMPLE" corrupt-size
hs arenas "$TARGET_PID"
if expect "arenas on a bogus chunk size in a small bin: exit 1 (partial), no hang" 1; then
	sed 's/^/#   /' "$ERR"
fi
untouched "$TARGET_PID" "corrupt-size"

# --- the target dies while heapscope looks: "pid N exited", not the error
# of the read that met its absence.  HEAPSCOPE_TEST_HOLD_MS holds it
# stopped; it is SIGKILLed once it is seen traced.
for cmd in arenas trim; do
	start_target "$SIMPLE" single
	victim=$TARGET_PID
	RC=0
	HEAPSCOPE_TEST_HOLD_MS=1500 timeout -k 5 20 "$HS" "$cmd" "$victim" >"$OUT" 2>"$ERR" </dev/null &
	hspid=$!
	for _ in $(seq 100); do
		grep -Eq '^TracerPid:[[:space:]]*[1-9]' "/proc/$victim/status" 2>/dev/null && break
		sleep 0.1
	done
	kill -KILL "$victim"
	wait "$hspid" || RC=$?
	expect_fatal "$cmd, target killed during the look: exit 2, says it exited" "pid $victim exited"
	wait "$victim" 2>/dev/null || :
	untrack_pid "$victim"
done

# --- a malformed RANGE, or a negative arena, is a usage error (64), found
# before the process is looked at
for range in arena:-1 arena:+1 0x10- zz 0x2000-0x1000 0x1000+0 heap:zz; do
	hs dump -o "$HS_TMP/never" "$single" "$range"
	expect "dump $range: usage error" 64 || :
done
[ ! -e "$HS_TMP/never" ] && ok "no dump file left behind" || not_ok "a dump file was left behind"
for cmd in chunks bins; do
	hs "$cmd" --arena -1 "$single"
	expect "$cmd --arena -1: usage error" 64 || :
done
untouched "$single" "after the usage errors"

# --- a reader that went away (heapscope chunks PID | head -1): exit 2 and
# a message, not death by SIGPIPE; the target released
start_target "$(target knownheap)" "$HS_TMP/kh.txt" 2
kh=$TARGET_PID
for cmd in chunks "chunks --json" bins arenas "dump --strings"; do
	range=
	[ "$cmd" = "dump --strings" ] && range='[heap]'
	RC=0
	# shellcheck disable=SC2086 # split on purpose
	python3 - "$HS" $cmd "$kh" $range >"$OUT" 2>"$ERR" <<'PY' || RC=$?
import os, subprocess, sys
r, w = os.pipe()
os.close(r)                  # nobody will ever read: every write is EPIPE
try:
    p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE, timeout=60)
except subprocess.TimeoutExpired:
    sys.exit(124)
sys.stderr.buffer.write(p.stderr)
# a signal shows as 128+N, as in the shell
sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)
PY
	expect_fatal "$cmd with its output closed (EPIPE): exit 2" "cannot write"
	untouched "$kh" "$cmd into a closed pipe"
done

# --- EPERM: the hint must fit who is refused.  Never the "same uid" hint
# to a process that has CAP_SYS_PTRACE (root), nor to one of the same uid.
capeff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
if [ -L /proc/1/exe ] && ! head -c 1 /proc/1/exe >/dev/null 2>&1 &&
   [ -n "$capeff" ] && [ $(( (0x$capeff >> 19) & 1 )) = 1 ]; then
	hs arenas 1
	if [ "$RC" = 2 ] && grep -q 'not permitted' "$ERR" && ! grep -q 'same uid' "$ERR" &&
	   grep -q CAP_SYS_PTRACE "$ERR"; then
		ok "pid 1 refused to a holder of CAP_SYS_PTRACE: a hint without 'same uid'"
		sed 's/^/#   /' "$ERR"
	else
		not_ok "pid 1 refused to a holder of CAP_SYS_PTRACE: exit $RC, hint: $(cat "$ERR")"
	fi
else
	skip_check "pid 1 refused to a holder of CAP_SYS_PTRACE (pid 1 is readable here, or no CAP_SYS_PTRACE)"
fi
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
   setpriv --inh-caps=-sys_ptrace --bounding-set=-sys_ptrace -- true 2>/dev/null; then
	nocap() { setpriv --inh-caps=-sys_ptrace --bounding-set=-sys_ptrace -- "$@"; }
	python3 -c 'import ctypes, os, sys, time
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)     # PR_SET_DUMPABLE 0
sys.stdout.write("READY %d\n" % os.getpid()); sys.stdout.flush()
time.sleep(600)' >"$HS_TMP/nodump.out" &
	nodump=$!
	track_pid "$nodump"
	for _ in $(seq 50); do grep -q READY "$HS_TMP/nodump.out" && break; sleep 0.1; done
	RC=0
	nocap timeout -k 5 20 "$HS" arenas "$nodump" >"$OUT" 2>"$ERR" </dev/null || RC=$?
	if [ "$RC" = 2 ] && grep -q 'not dumpable' "$ERR" && ! grep -q 'same uid or' "$ERR"; then
		ok "a non-dumpable process of the same uid: the hint says so"
		sed 's/^/#   /' "$ERR"
	else
		not_ok "a non-dumpable process of the same uid: exit $RC, hint: $(cat "$ERR")"
	fi
	setpriv --reuid 65534 --regid 65534 --clear-groups sleep 600 &
	other=$!
	track_pid "$other"
	sleep 0.2
	RC=0
	nocap timeout -k 5 20 "$HS" arenas "$other" >"$OUT" 2>"$ERR" </dev/null || RC=$?
	if [ "$RC" = 2 ] && grep -q 'runs as uid 65534' "$ERR"; then
		ok "a process of another uid, without CAP_SYS_PTRACE: the hint names its uid"
		sed 's/^/#   /' "$ERR"
	else
		not_ok "a process of another uid, without CAP_SYS_PTRACE: exit $RC, hint: $(cat "$ERR")"
	fi
else
	skip_check "hints without CAP_SYS_PTRACE (not root, or no setpriv)"
fi

if [ "$failed" != 0 ]; then
	echo "FAIL: $ME: some checks failed"
	exit 1
fi
echo "PASS: $ME"
