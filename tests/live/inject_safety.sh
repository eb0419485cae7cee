#!/bin/bash
# heapscope mtrace start --inject must never harm its target, nor trust
# what the target or others control:
#  - a signal that kills heapscope in the middle of the GOT writes (strace
#    injects it at the Nth pwrite64) leaves a record that stop puts every
#    slot back from (SIGTERM: held until the writes are done), or the
#    slots already back (SIGSEGV: the emergency path undoes them);
#  - a thread holding the thread stacks' lock (_dl_stack_cache_lock, which
#    the injected dlopen needs) makes it wait and refuse (75), not freeze;
#  - a forged record's slots are never written; a group-writable or
#    symlinked state directory is refused;
#  - the default log is in a private directory: a symlink or a FIFO planted
#    at the old /tmp/mtrace.PID.log changes nothing; an explicit --file that
#    is a symlink or a FIFO is refused;
#  - a user's heapscope on its own process (no CAP_SYS_ADMIN: no
#    /proc/PID/map_files) injects, or refuses before calling anything.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
GOT_DUMP=${GOT_DUMP:?}
ver=$(ldd --version | sed -n '1s/.* \([0-9]*\.[0-9]*\)$/\1/p')
case $ver in 2.[0-9] | 2.[12][0-9] | 2.3[0-3]) skip "glibc $ver keeps mtrace in libc.so.6: nothing to inject" ;; esac
CHURN=$(target churn)

slots() { "$GOT_DUMP" "$1" | awk -F'\t' '$1 == "slot" { print $5, $10, $11 }' | sort; }
# same_slots BEFORE AFTER: equal, or a lazy slot bound by ld.so since
same_slots() {
	python3 - "$1" "$2" <<'PY'
import sys
b = {l.split()[0]: l.split()[1:] for l in open(sys.argv[1])}
a = {l.split()[0]: l.split()[1:] for l in open(sys.argv[2])}
assert b.keys() == a.keys(), "different slots"
bad = [k for k in b if b[k] != a[k] and not (b[k][1] == "lazy" and a[k][1] == "libc")]
assert not bad, bad
PY
}
# peek PID ADDR: the 8-byte word at ADDR, in hex
peek() {
	python3 -c 'import sys; f = open("/proc/%s/mem" % sys.argv[1], "rb"); f.seek(int(sys.argv[2], 16)); print(hex(int.from_bytes(f.read(8), "little")))' "$1" "$2"
}
# untraced PID: no thread traced or stopped (churn's threads run: not check_untouched)
untraced() {
	! grep -q -E '^(TracerPid:[[:space:]]*[1-9]|State:[[:space:]]*[tT])' /proc/"$1"/task/*/status
}
# finish PID: the churn target checks its blocks and exits
finish() {
	kill -USR1 "$1"
	wait_target "$1" 30
	grep -q '^CHECK OK' "$TARGET_OUT" && [ "$TARGET_STATUS" = 0 ]
}

# --- 5. a thread holds the thread stacks' lock
start_target "$(target stacklock)"
S=$TARGET_PID
ptrace_ok "$S"
if grep -q NOTLOCK "$TARGET_OUT"; then
	echo "ok - stack cache lock # SKIP $(cat "$TARGET_OUT")"
else
	rc=0
	timeout -k 5 120 "$HS" mtrace start --inject --wait 300 --file "$HS_TMP/sl.log" "$S" >/dev/null 2>"$HS_TMP/err" || rc=$?
	if [ "$rc" = 75 ] && grep -q "_dl_stack_cache_lock) is held" "$HS_TMP/err" && ! grep -q libc_malloc_debug "/proc/$S/maps" &&
		check_untouched "$S"; then
		ok "refused while a thread holds the thread stacks' lock (75), nothing loaded: $(cat "$HS_TMP/err")"
	else
		not_ok "stack cache lock held: exit $rc: $(cat "$HS_TMP/err")"
	fi
	kill -USR1 "$S"
	for _ in $(seq 100); do grep -q '^RELEASED' "$TARGET_OUT" && break; sleep 0.1; done
	rc=0 src=0
	timeout -k 5 60 "$HS" mtrace start --inject --wait 5000 --file "$HS_TMP/sl.log" "$S" >/dev/null 2>"$HS_TMP/err" || rc=$?
	timeout -k 5 60 "$HS" mtrace stop --wait 5000 "$S" >/dev/null 2>>"$HS_TMP/err" || src=$?
	kill -USR1 "$S"
	wait_target "$S" 30
	if [ "$rc" = 0 ] && [ "$src" = 0 ] && grep -q '^DONE 100' "$TARGET_OUT"; then
		ok "the lock free again: start and stop work, the target creates threads"
	else
		not_ok "after the lock: start $rc, stop $src: $(cat "$HS_TMP/err" "$TARGET_OUT")"
	fi
fi

# --- 4. a signal at the 3rd slot write
if command -v strace >/dev/null && strace -o /dev/null -e inject=write:signal=SIGUSR2:when=1000 true 2>/dev/null; then
	for sig in TERM SEGV; do
		start_target "$CHURN" 4
		C=$TARGET_PID
		slots "$C" >"$HS_TMP/before"
		rc=0
		timeout -k 5 60 strace -f -o "$HS_TMP/strace" -e trace=pwrite64 -e inject=pwrite64:signal=SIG$sig:when=3 \
			"$HS" mtrace start --inject --file "$HS_TMP/sig.log" "$C" >"$HS_TMP/out" 2>&1 || rc=$?
		n=$(grep -c 'pwrite64(.*= 8$' "$HS_TMP/strace" || true)
		rec=$(ls "$HEAPSCOPE_STATE_DIR"/mtrace."$C".* 2>/dev/null | head -1)
		untouched=1
		untraced "$C" || untouched=0
		src=0
		timeout -k 5 60 "$HS" mtrace stop --wait 10000 "$C" >"$HS_TMP/stop" 2>&1 || src=$?
		slots "$C" >"$HS_TMP/after"
		# heapscope dies of the signal once its handler has put the slots
		# back; under ASan the handler it restores first is ASan's, which
		# reports the SEGV and exits 1 instead
		killed=0
		grep -q "killed by SIG$sig" "$HS_TMP/strace" && killed=1
		[ -n "${HS_SANITIZED:-}" ] && [ "$sig" = SEGV ] && grep -q 'AddressSanitizer:DEADLYSIGNAL' "$HS_TMP/out" && killed=1
		if [ "$rc" != 0 ] && [ "$killed" = 1 ] && [ "$untouched" = 1 ] && [ -n "$rec" ] &&
			[ "$src" = 0 ] && same_slots "$HS_TMP/before" "$HS_TMP/after" && tail -1 "$HS_TMP/sig.log" | grep -q '^= End' &&
			finish "$C"; then
			ok "SIG$sig at the 3rd slot write ($n writes): a record was there, stop put every slot back, the target checks its blocks"
		else
			not_ok "SIG$sig at the 3rd write: start exit $rc, record '$rec', stop exit $src: $(cat "$HS_TMP/out" "$HS_TMP/stop"); slots: $(diff "$HS_TMP/before" "$HS_TMP/after" | tr '\n' ' ')"
		fi
		rm -f "$HS_TMP/sig.log"
	done
else
	echo "ok - signal during the slot writes # SKIP strace cannot inject here"
fi

# --- 8. forged records, untrusted state directories
start_target "$CHURN" 4
C=$TARGET_PID
rc=0
"$HS" mtrace start --inject --file "$HS_TMP/f.log" "$C" >/dev/null 2>"$HS_TMP/err" || rc=$?
rec=$(ls "$HEAPSCOPE_STATE_DIR"/mtrace."$C".* 2>/dev/null | head -1)
if [ "$rc" = 0 ] && [ -n "$rec" ]; then
	cp "$rec" "$HS_TMP/genuine"
	read -r _ addr old new < <(grep '^slot ' "$rec" | head -1)
	# the last word of the executable's data (its .bss), not a slot
	end=$(awk -v p="$CHURN" '$6 == p && $2 ~ /^rw/ { split($1, a, "-"); e = a[2] } END { print e }' "/proc/$C/maps")
	data=$(printf '0x%x' $((0x$end - 8)))
	dval=$(peek "$C" "$data")
	for forge in "slot $addr 0x4141414141414141 $new" "slot $data 0x4141414141414141 $dval" "slot $addr $old 0x4141414141414141"; do
		{ grep -v '^slot ' "$HS_TMP/genuine"; echo "$forge"; } >"$rec"
		chmod 600 "$rec"
		rc=0
		"$HS" mtrace stop "$C" >/dev/null 2>"$HS_TMP/err" || rc=$?
		if [ "$rc" = 2 ] && grep -q "refused, nothing written" "$HS_TMP/err" && [ "$(peek "$C" "$addr")" = "$(printf '0x%x' "$new")" ] &&
			[ "$(peek "$C" "$data")" = "$dval" ]; then
			ok "forged record ($forge): $(cat "$HS_TMP/err")"
		else
			not_ok "forged record ($forge): exit $rc: $(cat "$HS_TMP/err"); slot $(peek "$C" "$addr"), data $(peek "$C" "$data")"
		fi
	done
	cp "$HS_TMP/genuine" "$rec"
	chmod g+w "$HEAPSCOPE_STATE_DIR"
	rc=0
	"$HS" mtrace stop "$C" >/dev/null 2>"$HS_TMP/err" || rc=$?
	if [ "$rc" = 2 ] && grep -q "state directory .* is group- or other-writable" "$HS_TMP/err" &&
		[ "$(peek "$C" "$addr")" = "$(printf '0x%x' "$new")" ]; then
		ok "group-writable state directory refused: $(cat "$HS_TMP/err")"
	else
		not_ok "group-writable state directory: exit $rc: $(cat "$HS_TMP/err")"
	fi
	chmod g-w "$HEAPSCOPE_STATE_DIR"
	ln -s "$HEAPSCOPE_STATE_DIR" "$HS_TMP/statelink"
	rc=0
	HEAPSCOPE_STATE_DIR=$HS_TMP/statelink "$HS" mtrace stop "$C" >/dev/null 2>"$HS_TMP/err" || rc=$?
	if [ "$rc" = 2 ] && grep -q "state directory .* is a symlink" "$HS_TMP/err" &&
		[ "$(peek "$C" "$addr")" = "$(printf '0x%x' "$new")" ]; then
		ok "symlinked state directory refused: $(cat "$HS_TMP/err")"
	else
		not_ok "symlinked state directory: exit $rc: $(cat "$HS_TMP/err")"
	fi
	rc=0
	"$HS" mtrace stop "$C" >/dev/null 2>"$HS_TMP/err" || rc=$?
	[ "$rc" = 0 ] && finish "$C" && ok "the genuine record stops it; the target checks its blocks" ||
		not_ok "genuine stop: exit $rc: $(cat "$HS_TMP/err")"
else
	not_ok "start for the forged records: exit $rc: $(cat "$HS_TMP/err")"
fi

# --- 9. the trace log's path
start_target "$CHURN" 4
C=$TARGET_PID
echo precious >"$HS_TMP/victim"
mkfifo "$HS_TMP/fifo"
old=/tmp/mtrace.$C.log
for kind in symlink fifo; do
	rm -f "$old"
	if [ "$kind" = symlink ]; then ln -s "$HS_TMP/victim" "$old"; else mkfifo "$old"; fi
	rc=0
	timeout -k 5 60 "$HS" mtrace start --inject --json "$C" >"$HS_TMP/start.json" 2>"$HS_TMP/err" || rc=$?
	log=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["file"])' "$HS_TMP/start.json" 2>/dev/null || true)
	src=0
	timeout -k 5 60 "$HS" mtrace stop "$C" >/dev/null 2>>"$HS_TMP/err" || src=$?
	if [ "$rc" = 0 ] && [ "$src" = 0 ] && [ "$(cat "$HS_TMP/victim")" = precious ] && [ -f "$log" ] && [ ! -L "$log" ] &&
		[ "$(stat -c %a "$(dirname "$log")")" = 700 ] && case $log in /tmp/heapscope-mtrace.*/mtrace.$C.log) true ;; *) false ;; esac; then
		ok "a $kind at the old default $old: untouched, the log is $log"
	else
		not_ok "$kind at $old: start $rc, stop $src, log '$log': $(cat "$HS_TMP/err"); victim: $(cat "$HS_TMP/victim")"
	fi
	[ -n "$log" ] && rm -rf "$(dirname "$log")"
	rm -f "$old"
done
ln -s "$HS_TMP/victim" "$HS_TMP/link.log"
for f in "$HS_TMP/link.log" "$HS_TMP/fifo"; do
	rc=0
	timeout -k 5 60 "$HS" mtrace start --inject --file "$f" "$C" >/dev/null 2>"$HS_TMP/err" || rc=$?
	if [ "$rc" = 2 ] && grep -q "is a \(symlink\|FIFO\).*refused" "$HS_TMP/err" && [ "$(cat "$HS_TMP/victim")" = precious ] &&
		"$HS" mtrace status "$C" | grep -q "is not tracing"; then
		ok "--file $(basename "$f"): $(cat "$HS_TMP/err")"
	else
		not_ok "--file $f: exit $rc: $(cat "$HS_TMP/err")"
	fi
done
finish "$C" && ok "the target checks its blocks after the planted logs" || not_ok "target: $(cat "$TARGET_OUT")"

# --- 12. a user's heapscope on its own process
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null || ! id nobody >/dev/null 2>&1; then
	echo "ok - non-root inject # SKIP needs root to run as nobody (and setpriv)"
else
	grp=$(id -gn nobody)
	NB=(setpriv --reuid=nobody --regid="$grp" --clear-groups)
	chmod 711 "$HS_TMP"
	mkdir "$HS_TMP/nb"
	chown nobody "$HS_TMP/nb"
	if ! "${NB[@]}" test -x "$HS" -a -x "$CHURN" -a -w "$HS_TMP/nb"; then
		echo "ok - non-root inject # SKIP nobody cannot run the build's programs here"
	else
		start_target "${NB[@]}" "$CHURN" 4
		C=$TARGET_PID
		slots "$C" >"$HS_TMP/before"
		nbenv=(env HEAPSCOPE_STATE_DIR="$HS_TMP/nb/state" XDG_CACHE_HOME="$HS_TMP/nb/cache")
		rc=0
		timeout -k 5 60 "${NB[@]}" "${nbenv[@]}" "$HS" mtrace start --inject --file "$HS_TMP/nb/t.log" "$C" >"$HS_TMP/out" 2>&1 || rc=$?
		if [ "$rc" = 0 ]; then
			src=0
			timeout -k 5 60 "${NB[@]}" "${nbenv[@]}" "$HS" mtrace stop "$C" >>"$HS_TMP/out" 2>&1 || src=$?
			slots "$C" >"$HS_TMP/after"
			if [ "$src" = 0 ] && same_slots "$HS_TMP/before" "$HS_TMP/after" && tail -1 "$HS_TMP/nb/t.log" | grep -q '^= End' && finish "$C"; then
				ok "as nobody on nobody's process: start and stop work, slots back: $(head -1 "$HS_TMP/out")"
			else
				not_ok "as nobody: stop exit $src: $(cat "$HS_TMP/out")"
			fi
		elif ! grep -q libc_malloc_debug "/proc/$C/maps" && untraced "$C"; then
			ok "as nobody: refused before any call (exit $rc), nothing loaded: $(cat "$HS_TMP/out")"
		else
			not_ok "as nobody: exit $rc after loading the library: $(cat "$HS_TMP/out")"
		fi
	fi
fi
[ "$failed" = 0 ] && echo "PASS: inject_safety.sh" || exit 1
