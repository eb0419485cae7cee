#!/bin/bash
# heapscope profile must not harm the process it samples (tests/targets/
# profsafety.c): (a) a child the target forks while sampled inherits the
# routed slots but nobody drains its copy of the ring: its sampler is off
# (no samples taken, none dropped, no ring pages copied on write);
# (b) a thread whose seccomp filter kills the process on process_vm_readv
# (the sampler's stack copy): heapscope refuses, the target lives;
# (c) the same filter failing the call with EPERM instead: sampled.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
# json_field FILE KEY: a top-level field of a JSON document
json_field() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$1" "$2"; }
# wait_line FILE REGEX [TENTHS]
wait_line() {
	for _ in $(seq "${3:-300}"); do grep -Eq "$2" "$1" && return 0; sleep 0.1; done
	return 1
}

# ---- (a) fork ----
start_target "$(target profsafety)" fork
P=$TARGET_PID
ptrace_ok "$P"
timeout 120 "$HS" profile --rate 4096 --duration 60 -o /dev/null "$P" >"$HS_TMP/a.out" 2>"$HS_TMP/a.err" &
H=$!
if wait_line "$HS_TMP/a.err" "routed to|heapscope:.*(error|cannot|refused|never)" 300 && grep -q "routed to" "$HS_TMP/a.err"; then
	ok "profile started: $(head -1 "$HS_TMP/a.err")"
	kill -USR1 "$P"
	if wait_line "$TARGET_OUT" '^CHILD ' 600; then
		C=$(sed -n 's/^CHILD \([0-9]*\) .*/\1/p' "$TARGET_OUT" | head -1)
		track_pid "$C"
		n=$(sed -n 's/^CHILD [0-9]* taken \([0-9]*\)$/\1/p' "$TARGET_OUT" | head -1)
		[ "$n" = 0 ] && ok "the forked child's sampler took no sample of its 64 MiB" ||
			not_ok "the forked child's sampler took or dropped $n samples nobody will drain"
		timeout 30 "$HS" profile --status --json "$C" >"$HS_TMP/c.json" 2>"$HS_TMP/c.err" || true
		e=$(json_field "$HS_TMP/c.json" enabled 2>/dev/null || echo "?")
		[ "$e" = false ] && ok "the forked child's sampler is off (status: enabled $e)" ||
			not_ok "the forked child's sampler: enabled $e: $(cat "$HS_TMP/c.json" "$HS_TMP/c.err")"
		alive "$C" && ok "the child lives" || not_ok "the child died"
	else
		not_ok "no child: $(cat "$TARGET_OUT" "$TARGET_OUT.err")"
	fi
	kill -INT "$H" 2>/dev/null || true
else
	not_ok "profile did not start: $(cat "$HS_TMP/a.err")"
fi
rc=0
wait "$H" || rc=$?
[ "$rc" -le 1 ] && ok "profile of the parent ended (exit $rc)" || not_ok "profile: exit $rc: $(cat "$HS_TMP/a.err")"
alive "$P" && ok "the parent lives" || not_ok "the parent died"

# ---- (b) a seccomp filter that kills on process_vm_readv, (c) one that fails it ----
for m in kill errno; do
	start_target "$(target profsafety)" "seccomp-$m"
	P=$TARGET_PID
	if grep -q '^NOSECCOMP' "$TARGET_OUT"; then
		ok "# skip seccomp-$m: $(cat "$TARGET_OUT")"
		continue
	fi
	rc=0
	timeout 120 "$HS" profile --rate 4096 --duration 1 -o /dev/null "$P" >"$HS_TMP/$m.out" 2>"$HS_TMP/$m.err" || rc=$?
	sleep 0.5
	if [ $m = kill ]; then
		alive "$P" && ok "seccomp-kill: the target lives" ||
			not_ok "seccomp-kill: the target died ($(cat "$TARGET_OUT.err"))"
		[ "$rc" = 75 ] && grep -q "seccomp" "$HS_TMP/$m.err" && ok "seccomp-kill: refused: $(cat "$HS_TMP/$m.err")" ||
			not_ok "seccomp-kill: exit $rc: $(cat "$HS_TMP/$m.err")"
		st=$(timeout 30 "$HS" profile --status "$P" 2>&1) || true
		case $st in *"not loaded"*) ok "seccomp-kill: nothing loaded: $st" ;; *) not_ok "seccomp-kill: status: $st" ;; esac
	else
		alive "$P" && [ "$rc" -le 1 ] && ok "seccomp-errno: sampled (exit $rc), the target lives" ||
			not_ok "seccomp-errno: exit $rc, $(alive "$P" && echo alive || echo dead): $(cat "$HS_TMP/$m.err")"
	fi
done

[ "$failed" = 0 ]
