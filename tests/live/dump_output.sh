#!/bin/bash
# heapscope dump -o FILE --force: the file is replaced by a new one of ours
# (mode 0600), whoever owned the old one; a FIFO, a device or a symlink at
# the path is refused without being opened (no hang); on a full disk the
# old file is kept and the temporary one removed.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

RC=0
hs() { RC=0; timeout -k 2 20 "$HS" "$@" >"$HS_TMP/out" 2>"$HS_TMP/err" </dev/null || RC=$?; }
# fatal DESC ERE ARGS...: exit 2, one line on stderr matching ERE
fatal() {
	local desc=$1 re=$2
	shift 2
	hs "$@"
	if [ "$RC" = 2 ] && [ "$(wc -l <"$HS_TMP/err")" = 1 ] && grep -Eq -- "$re" "$HS_TMP/err"; then
		ok "$desc: $(cat "$HS_TMP/err")"
	else
		not_ok "$desc: exit $RC, $(cat "$HS_TMP/err")"
	fi
}
# no temporary file left in DIR
no_tmp() {
	local left
	left=$(find "$1" -maxdepth 1 -name '.heapscope-dump.*')
	if [ -n "$left" ]; then
		not_ok "$2: a temporary file was left: $left"
	else
		ok "$2: no temporary file left"
	fi
}

start_target "$(target simple)" single
P=$TARGET_PID
ptrace_ok "$P"
D=$HS_TMP/d
mkdir "$D"

# an existing file of someone else's, mode 0644
echo old >"$D/owned"
chmod 0644 "$D/owned"
if [ "$(id -u)" = 0 ] && chown nobody "$D/owned" 2>/dev/null; then
	hs dump -o "$D/owned" --force "$P" '[heap]'
	got="$(stat -c '%u %a' "$D/owned")"
	if [ "$RC" = 0 ] && [ "$got" = "$(id -u) 600" ] && [ "$(cat "$D/owned")" != old ]; then
		ok "--force over nobody's 0644 file: a new file of ours, mode 0600"
	else
		not_ok "--force over nobody's 0644 file: exit $RC, uid and mode now $got: $(cat "$HS_TMP/err")"
	fi
	no_tmp "$D" "--force"
else
	echo "ok - --force over another user's file # SKIP not root, or cannot chown to nobody"
fi
echo old >"$D/mine" && chmod 0644 "$D/mine"
hs dump -o "$D/mine" --force "$P" '[heap]'
[ "$RC" = 0 ] && [ "$(stat -c %a "$D/mine")" = 600 ] && ok "--force over our 0644 file: mode 0600" ||
	not_ok "--force over our 0644 file: exit $RC, mode $(stat -c %a "$D/mine")"

# a FIFO: no hang, a clear error, with --force and without
mkfifo "$D/fifo"
fatal "--force onto a FIFO" "fifo is not a regular file" dump -o "$D/fifo" --force "$P" '[heap]'
fatal "onto a FIFO" "fifo exists; use --force" dump -o "$D/fifo" "$P" '[heap]'
[ -p "$D/fifo" ] && ok "the FIFO is still there" || not_ok "the FIFO was replaced"
# a device
fatal "--force onto /dev/null" "is not a regular file" dump -o /dev/null --force "$P" '[heap]'

# a symlink: refused, never followed, the link and its target kept
echo keep >"$D/victim"
ln -s "$D/victim" "$D/link"
ln -s "$D/nowhere" "$D/dangling"
fatal "--force onto a symlink" "symbolic link" dump -o "$D/link" --force "$P" '[heap]'
fatal "onto a symlink" "exists" dump -o "$D/link" "$P" '[heap]'
fatal "onto a dangling symlink" "exists" dump -o "$D/dangling" "$P" '[heap]'
[ -L "$D/link" ] && [ "$(cat "$D/victim")" = keep ] && [ ! -e "$D/nowhere" ] &&
	ok "symlinks kept, nothing written through them" || not_ok "a symlink was followed or replaced"
no_tmp "$D" "refusals"

# a full disk: the old file kept, the temporary one removed
mkdir "$HS_TMP/small"
if mount -t tmpfs -o size=64k tmpfs "$HS_TMP/small" 2>/dev/null; then
	start_target "$(target simple)" sparse    # a 48 MiB [heap]
	echo old >"$HS_TMP/small/f"
	# --no-freeze: no stop whose time limit a slow (ASan) run could reach,
	# which would add its warning to the one line checked
	fatal "--force on a full disk" "No space left.*partial file was removed" \
		dump -o "$HS_TMP/small/f" --force --no-freeze "$TARGET_PID" '[heap]'
	[ "$(cat "$HS_TMP/small/f")" = old ] && ok "full disk: the old file is kept" ||
		not_ok "full disk: the old file was changed ($(stat -c %s "$HS_TMP/small/f") bytes)"
	no_tmp "$HS_TMP/small" "full disk"
	umount "$HS_TMP/small"
else
	echo "ok - full disk # SKIP cannot mount a small tmpfs here"
fi
check_untouched "$P" || not_ok "target left traced or stopped"
[ "$failed" = 0 ] && echo "PASS: dump_output.sh" || exit 1
