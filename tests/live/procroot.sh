#!/bin/bash
# Files of a target in a container are opened inside its root: an absolute
# symlink there that points at a host path (here a FIFO, whose open would
# block) is never followed to the host.  And mtrace status, looking for the
# target's trace file among its open fds, never opens a FIFO it holds.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
need_cmd chroot

# watch FIFO: report in $HS_TMP/watch.FIFO every open of FIFO (inotify
# IN_OPEN: any path to its inode), until unwatch
watch() {
	local f=$1 out=$HS_TMP/watch.${1##*/}
	rm -f "$out" "$out.stop"
	python3 - "$f" "$out" <<'PY' &
import ctypes, os, select, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
IN_OPEN = 0x20
if fd < 0 or libc.inotify_add_watch(fd, sys.argv[1].encode(), IN_OPEN) < 0:
    sys.exit(2)
out = open(sys.argv[2], "w")
out.write("WATCHING\n"); out.flush()
while True:
    stop = os.path.exists(sys.argv[2] + ".stop")
    select.select([fd], [], [], 0.1)
    try:
        if os.read(fd, 4096):
            out.write("OPENED\n"); out.flush()
    except BlockingIOError:
        pass
    if stop:
        break
PY
	_watcher=$!
	track_pid "$_watcher"
	local i=0
	until grep -q WATCHING "$out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || framework_failure "inotify watcher did not start"
		sleep 0.1
	done
}
# unwatch FIFO: stop the watcher; true if FIFO was never opened
unwatch() {
	local out=$HS_TMP/watch.${1##*/}
	: >"$out.stop"
	wait "$_watcher" || true
	untrack_pid "$_watcher"
	! grep -q OPENED "$out"
}

# --- a container root: the target, its libc (with a build-id of its own,
# so that no debug file of the host's matches it and heapscope looks in
# the container) and ld.so, chrooted
[ "$(id -u)" = 0 ] || skip "chroot needs root"
LIBC=$(ldd "$(target simple)" | awk '$1 == "libc.so.6" { print $3 }')
INTERP=$(readelf -l "$(target simple)" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
[ -n "$LIBC" ] && [ -n "$INTERP" ] || skip "cannot find the target's libc and ld.so"
LIBC=$(readlink -f "$LIBC")
R=$HS_TMP/root
mkdir -p "$R/$(dirname "$LIBC")" "$R/$(dirname "$INTERP")"
cp "$(target simple)" "$R/simple"
cp "$(readlink -f "$INTERP")" "$R/$INTERP"
cp "$LIBC" "$R/$LIBC"
# the build-id note's bytes, changed
newid=$(python3 - "$R/$LIBC" <<'PY'
import subprocess, sys
p = sys.argv[1]
out = subprocess.run(["readelf", "-n", p], capture_output=True, text=True).stdout
old = bytes.fromhex([l.split()[-1] for l in out.splitlines() if "Build ID" in l][0])
data = bytearray(open(p, "rb").read())
i = data.find(b"GNU\0" + old)
assert i > 0
new = bytes(b ^ 0x5a for b in old)
data[i + 4:i + 4 + len(old)] = new
open(p, "wb").write(data)
print(new.hex())
PY
) || skip "cannot change the build-id of a copy of $LIBC"
start_target chroot "$R" /simple single
P=$TARGET_PID
ptrace_ok "$P"
grep -q "$LIBC" /proc/"$P"/maps || framework_failure "the target does not map $LIBC"

# On the host, a FIFO; in the container, absolute symlinks to its host path
# where heapscope looks for libc's debug info and the libc itself.
mkfifo "$HS_TMP/hostfifo"
mkdir -p "$R/usr/lib/debug/.build-id/${newid:0:2}"
ln -s "$HS_TMP/hostfifo" "$R/usr/lib/debug/.build-id/${newid:0:2}/${newid:2}.debug"
link=$(readelf -p .gnu_debuglink "$LIBC" 2>/dev/null | sed -n 's/.*\]  *//p' | head -n 1)
if [ -n "$link" ]; then
	ln -s "$HS_TMP/hostfifo" "$R/$(dirname "$LIBC")/$link"
	mkdir -p "$R/usr/lib/debug/$(dirname "$LIBC")"
	ln -s "$HS_TMP/hostfifo" "$R/usr/lib/debug/$(dirname "$LIBC")/$link"
fi
# the libc replaced, after it was mapped, by such a symlink
rm "$R/$LIBC"
ln -s "$HS_TMP/hostfifo" "$R/$LIBC"

watch "$HS_TMP/hostfifo"
rc=0
timeout -k 2 30 "$HS" arenas "$P" >"$HS_TMP/out" 2>"$HS_TMP/err" </dev/null || rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	not_ok "arenas in a container root: hung (killed by timeout)"
elif [ "$rc" = 0 ] || { [ "$rc" = 2 ] && [ "$(wc -l <"$HS_TMP/err")" = 1 ]; }; then
	ok "arenas in a container root: exit $rc, no hang $(head -n 1 "$HS_TMP/err")"
else
	not_ok "arenas in a container root: exit $rc: $(cat "$HS_TMP/err")"
fi
if unwatch "$HS_TMP/hostfifo"; then
	ok "the host FIFO behind the container's symlinks was never opened"
else
	not_ok "the host FIFO behind the container's symlinks was opened"
fi
check_untouched "$P" || not_ok "target left traced or stopped"

# --- mtrace status: a target holding a FIFO open (no writer: a blocking
# open for reading would wait)
mkfifo "$HS_TMP/held"
start_target "$(target simple)" single 3<>"$HS_TMP/held"
P=$TARGET_PID
exec 3>&-
watch "$HS_TMP/held"
rc=0
timeout -k 2 30 "$HS" mtrace status "$P" >"$HS_TMP/out" 2>"$HS_TMP/err" </dev/null || rc=$?
[ "$rc" != 124 ] && [ "$rc" != 137 ] && ok "mtrace status: exit $rc, no hang" || not_ok "mtrace status hung"
if unwatch "$HS_TMP/held"; then
	ok "mtrace status did not open the FIFO the target holds"
else
	not_ok "mtrace status opened the FIFO the target holds"
fi
check_untouched "$P" || not_ok "target left traced or stopped"
[ "$failed" = 0 ] && echo "PASS: procroot.sh" || exit 1
