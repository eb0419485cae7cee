#!/bin/bash
# The version matrix: knownheap built against and run under Debian's
# bullseye (glibc 2.31) and trixie (glibc 2.41) C libraries, fetched from
# Debian's archive and used through their own loader.  On each,
# stats --malloc-info must be byte-identical to the target's own
# malloc_info and mallinfo equal, with that suite's libc6-dbg and without;
# and the GOT slot finder (lib/got.c) sees every malloc-family slot bound.
# (The system's glibc, 2.36 on Debian 12, is the live-stats test.)
# A version whose packages cannot be fetched is skipped, and says so.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
# shellcheck source=tests/glibc/lib.sh
. "$(dirname "$0")/lib.sh"

ran=0

for spec in bullseye:2.31 trixie:2.41; do
	suite=${spec%%:*} ver=${spec#*:}
	if ! root=$(setup "$suite"); then
		echo "ok - glibc $ver # SKIP cannot fetch $suite's libc6 packages: $(tail -1 "$WORK/dl/$suite.log")"
		continue
	fi
	if ! bin=$(build_target "$suite" "$ver" "$root"); then
		not_ok "glibc $ver: cannot build the target: $(head -3 "$WORK/build-$ver.log")"
		continue
	fi
	start_target "$bin" "$HS_TMP/mi-$ver.txt" 3
	ptrace_ok "$TARGET_PID"
	ran=$((ran + 1))
	grep -q "libc[-.].*$ver\|root-$suite" "/proc/$TARGET_PID/maps" ||
		not_ok "glibc $ver: the target does not map $suite's libc"
	grep -v '^MALLINFO2 ' "$HS_TMP/mi-$ver.txt" >"$HS_TMP/want-$ver.xml"
	for mode in debuginfo no-debuginfo; do
		opt=
		[ "$mode" = no-debuginfo ] && opt=--no-debuginfo
		# shellcheck disable=SC2086
		HEAPSCOPE_DEBUG_DIRS=$root/usr/lib/debug "$HS" stats $opt --malloc-info "$TARGET_PID" >"$HS_TMP/got.xml"
		# shellcheck disable=SC2086
		HEAPSCOPE_DEBUG_DIRS=$root/usr/lib/debug "$HS" arenas $opt --json "$TARGET_PID" >"$HS_TMP/a.json"
		how=$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["glibc"]; print(g["version"], g["symbols"], g["layout"])' "$HS_TMP/a.json")
		if cmp -s "$HS_TMP/got.xml" "$HS_TMP/want-$ver.xml"; then
			ok "glibc $ver, $mode ($how): malloc_info byte-identical"
		else
			not_ok "glibc $ver, $mode ($how): malloc_info differs"
			diff -u "$HS_TMP/want-$ver.xml" "$HS_TMP/got.xml" | head -20 | sed 's/^/#   /'
		fi
		if python3 - "$HS_TMP/a.json" "$HS_TMP/mi-$ver.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
line = [l for l in open(sys.argv[2]) if l.startswith("MALLINFO2 ")][0]
want = {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
sys.exit(0 if d["mallinfo2"] == want else 1)
PY
		then ok "glibc $ver, $mode: mallinfo equal"; else not_ok "glibc $ver, $mode: mallinfo differs"; fi
	done
	# The GOT slot finder (lib/got.c) on this libc: libc found, every slot
	# of the malloc family bound to libc's definition or still lazy (2.41's
	# libc is BIND_NOW and linked -z mark-plt: non-zero JUMP_SLOT addends).
	if [ -x "${GOT_DUMP:-}" ]; then
		if "$GOT_DUMP" "$TARGET_PID" >"$HS_TMP/got-$ver.dump" 2>"$HS_TMP/got-$ver.err" &&
		   awk -F'\t' '$1 == "object" && $5 == "1" { libc = 1 }
			$1 == "slot" { n++; if ($11 != "libc" && $11 != "lazy") bad++ }
			END { exit !(libc && n > 0 && !bad) }' "$HS_TMP/got-$ver.dump"; then
			ok "glibc $ver: $(grep -c '^slot' "$HS_TMP/got-$ver.dump") GOT slots of the malloc family, each libc's or lazy"
		else
			not_ok "glibc $ver: GOT slots: $(cat "$HS_TMP/got-$ver.err")"
			sed 's/^/#   /' "$HS_TMP/got-$ver.dump"
		fi
	fi
	check_untouched "$TARGET_PID" || not_ok "glibc $ver: target left traced or stopped"
	kill -USR1 "$TARGET_PID"
	wait_target "$TARGET_PID"
	grep -q 'CHECK OK' "$TARGET_OUT" && ok "glibc $ver: the target's own check passes" ||
		not_ok "glibc $ver: target check: $(grep CHECK "$TARGET_OUT" || echo none)"
done
[ "$ran" -gt 0 ] || skip "no glibc version of the matrix could be fetched"
[ "$failed" = 0 ] && echo "PASS: matrix.sh ($ran versions)" || exit 1
