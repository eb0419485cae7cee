#!/bin/bash
# The C library's own locks a remote call may take (stdio's stream list
# lock, setenv's, pthread_atfork's: hs_inject_libc_locks, read from the
# first cmpxchg on a RIP-relative word of _IO_list_lock, clearenv and
# __register_atfork) must be found in every glibc, and be the right words:
# checked against libc6-dbg's symbols (list_all_lock, envlock,
# atfork_lock) for the glibc matrix's builds (2.31, 2.41; fetched by
# glibc-matrix into ${GLIBC_MATRIX_DIR:-TARGETS_DIR/glibc}), and for the
# system's libc only found.  glibc 2.31 takes each lock with a plain
# cmpxchg when the process has one thread (the locked one is further on).
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd nm
need_cmd readelf
[ -x "${LIBC_LOCKS:-}" ] || framework_failure "LIBC_LOCKS is not set (the libc-locks helper)"

# check WHAT ROOT BIN ARGS...: the target's three locks; with ROOT, each
# at its debug symbol's address
check()
{
	local what=$1 root=$2
	shift 2
	start_target "$@"
	local p=$TARGET_PID
	"$LIBC_LOCKS" "$p" >"$HS_TMP/locks" 2>&1 || not_ok "$what: libc-locks failed: $(cat "$HS_TMP/locks")"
	local n
	n=$(grep -c '^lock ' "$HS_TMP/locks" || true)
	[ "$n" = 3 ] && ok "$what: 3 locks found" ||
		not_ok "$what: $n locks found, not 3: $(tr '\n' ';' <"$HS_TMP/locks")"
	if [ -n "$root" ]; then
		local lib base id dbg want got
		lib=$(awk '$6 ~ /\/libc[.-][^\/]*so/ { print $6; exit }' "/proc/$p/maps")
		base=$(awk -v l="$lib" '$6 == l { split($1, a, "-"); print a[1]; exit }' "/proc/$p/maps")
		id=$(readelf -n "$lib" | awk '/Build ID/ { print $3 }')
		dbg=$root/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
		if [ -r "$dbg" ]; then
			want=$(nm "$dbg" | awk '$3 == "list_all_lock" || $3 == "envlock" || $3 == "atfork_lock" { print $1 }' | sort)
			got=$(while read -r _ a _; do printf '%016x\n' $((a - 0x$base)); done <"$HS_TMP/locks" | sort)
			[ -n "$want" ] && [ "$want" = "$got" ] && ok "$what: each is its libc6-dbg symbol's word" ||
				not_ok "$what: the words found ($(echo $got)) are not list_all_lock, envlock and atfork_lock ($(echo $want))"
		else
			echo "# $what: no debug file $dbg: words not checked"
		fi
	fi
	kill "$p"
}

# HS_LIBC_LOCKS_MATRIX=1 (the matrix suite's run, after glibc-matrix has
# fetched them): the matrix's glibcs only, skipped when none was fetched
[ -n "${HS_LIBC_LOCKS_MATRIX:-}" ] || check "system glibc" "" "$(target knownheap)" "$HS_TMP/mi" 3
dir=${GLIBC_MATRIX_DIR:-$TARGETS_DIR/glibc}
ran=0
for spec in bullseye:2.31 trixie:2.41; do
	suite=${spec%%:*} ver=${spec#*:}
	if [ -x "$dir/knownheap-$ver" ] && [ -e "$dir/root-$suite/.done" ]; then
		check "glibc $ver" "$dir/root-$suite" "$dir/knownheap-$ver" "$HS_TMP/mi-$ver" 3
		ran=$((ran + 1))
	else
		echo "# glibc $ver: not fetched (run glibc-matrix, or set GLIBC_MATRIX_DIR): skipped"
	fi
done
[ -z "${HS_LIBC_LOCKS_MATRIX:-}" ] || [ "$ran" != 0 ] || skip "neither glibc 2.31 nor 2.41 was fetched (see glibc-matrix)"
[ "$failed" = 0 ] && echo "PASS: libc_locks.sh (the system's glibc and $ran of the matrix's)" || exit 1
