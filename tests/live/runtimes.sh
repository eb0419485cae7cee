#!/bin/bash
# Other runtimes: a static glibc binary (main_arena in the executable) is
# read exactly; jemalloc preloaded and musl are recognised and named;
# jemalloc merely dlopen()ed is not taken for the process's malloc.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3

# --- static glibc: malloc_info and mallinfo2 equal the target's own; the
# tcaches hold what the target's frees put there (its TCACHE line), found
# from the symbol, from the TLS block without symbols, and in a stripped
# copy; the version is the system's glibc, read from the file.
STATIC=$(target knownheap-static)
WANT_VER=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed -n 's/^glibc //p')
start_target "$STATIC" "$HS_TMP/mi.txt" 3
ptrace_ok "$TARGET_PID"
grep -v '^MALLINFO2 ' "$HS_TMP/mi.txt" >"$HS_TMP/want.xml"
TC_LINE=$(grep '^TCACHE ' "$TARGET_OUT")
# static_tcache DESC [OPT]: arenas' tcache figures and version
static_tcache()
{
	# shellcheck disable=SC2086
	"$HS" arenas ${2:-} --json "$TARGET_PID" >"$HS_TMP/t.json" 2>"$HS_TMP/err" || true
	if python3 - "$HS_TMP/t.json" "$TC_LINE" "$WANT_VER" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = {k: int(v) for k, v in (f.split("=") for f in sys.argv[2].split()[1:])}
got = {"count": sum(a["tcache_chunks"] for a in d["arenas"]),
       "bytes": sum(a["free_tcache"] for a in d["arenas"])}
assert want["count"] > 0 and got == want, (got, want)
assert not sys.argv[3] or d["glibc"]["version"] == sys.argv[3], (d["glibc"]["version"], sys.argv[3])
print(f"# tcache {got}, glibc {d['glibc']['version']}")
PY
	then ok "$1: tcache equals what the target freed ($TC_LINE), version ${WANT_VER:-?}"
	else not_ok "$1: tcache or version differ"; sed 's/^/#   /' "$HS_TMP/err"; fi
}
static_tcache "static binary (symtab)"
static_tcache "static binary --no-debuginfo" --no-debuginfo
for opt in "" --no-debuginfo; do
	rc=0
	# shellcheck disable=SC2086
	"$HS" stats $opt --malloc-info "$TARGET_PID" >"$HS_TMP/got.xml" 2>"$HS_TMP/err" || rc=$?
	if [ "$rc" = 0 ] && cmp -s "$HS_TMP/want.xml" "$HS_TMP/got.xml"; then
		ok "static binary ${opt:-(symtab)}: malloc_info byte-identical"
	else
		not_ok "static binary ${opt:-(symtab)}: malloc_info differs (exit $rc)"
		diff -u "$HS_TMP/want.xml" "$HS_TMP/got.xml" | head -20 | sed 's/^/#   /'
		sed 's/^/#   /' "$HS_TMP/err"
	fi
	# shellcheck disable=SC2086
	"$HS" arenas $opt --json "$TARGET_PID" >"$HS_TMP/a.json" || true
	if python3 - "$HS_TMP/a.json" "$HS_TMP/mi.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
line = [l for l in open(sys.argv[2]) if l.startswith("MALLINFO2 ")][0]
want = {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
sys.exit(0 if d["mallinfo2"] == want and d["glibc"]["static"] else 1)
PY
	then ok "static binary ${opt:-(symtab)}: mallinfo2 equal"
	else not_ok "static binary ${opt:-(symtab)}: mallinfo2 differs"; fi
done
check_untouched "$TARGET_PID" && ok "static target untouched" || not_ok "static target left traced or stopped"

if command -v strip >/dev/null; then
	strip -o "$HS_TMP/knownheap-stripped" "$STATIC"
	start_target "$HS_TMP/knownheap-stripped" "$HS_TMP/mi2.txt" 3
	TC_LINE=$(grep '^TCACHE ' "$TARGET_OUT")
	static_tcache "stripped static binary"
	check_untouched "$TARGET_PID" || not_ok "stripped static target left traced or stopped"
else
	echo "ok - stripped static binary # SKIP strip is not installed"
fi

# expect_named PID WORD DESC: arenas refuses PID, exit 2, naming WORD
expect_named()
{
	sleep 0.3
	rc=0
	"$HS" arenas "$1" >/dev/null 2>"$HS_TMP/err" || rc=$?
	if [ "$rc" = 2 ] && grep -q "$2" "$HS_TMP/err"; then
		ok "$3: named, exit 2: $(cat "$HS_TMP/err")"
	else
		not_ok "$3: exit $rc, $(cat "$HS_TMP/err")"
	fi
}

# --- jemalloc preloaded
JE=$(ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 2>/dev/null || true)
if [ -n "$JE" ]; then
	LD_PRELOAD=$JE sleep 60 &
	je=$!
	track_pid "$je"
	expect_named "$je" jemalloc "jemalloc preloaded"
	LD_PRELOAD=$JE "$(target simple)" single >/dev/null &
	je=$!
	track_pid "$je"
	expect_named "$je" jemalloc "jemalloc preloaded, malloc called"
	# dlopen()ed, RTLD_LOCAL: mapped, but the program's malloc is glibc's.
	# jemalloc's initial-exec TLS needs room in the static TLS block.
	GLIBC_TUNABLES=glibc.rtld.optional_static_tls=65536 start_target "$(target simple)" dlopen-heap "$JE"
	rc=0
	timeout -k 5 60 "$HS" arenas --json "$TARGET_PID" >"$HS_TMP/dl.json" 2>"$HS_TMP/err" || rc=$?
	if [ "$rc" = 0 ] && python3 - "$HS_TMP/dl.json" "$TARGET_OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
line = [l for l in open(sys.argv[2]) if l.startswith("MALLINFO2 ")][0]
want = {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
assert d["mallinfo2"] == want, (d["mallinfo2"], want)
assert want["arena"] > 60 << 20
PY
	then ok "jemalloc dlopen()ed RTLD_LOCAL: glibc's 64M heap read, mallinfo2 equal"
	else not_ok "jemalloc dlopen()ed: exit $rc, $(cat "$HS_TMP/err")"; fi
	check_untouched "$TARGET_PID" || not_ok "dlopen-heap target left traced or stopped"
else
	echo "ok - jemalloc preloaded # SKIP libjemalloc2 is not installed"
fi

# --- musl
if command -v musl-gcc >/dev/null; then
	printf '#include <stdlib.h>\n#include <unistd.h>\nint main(void){void*volatile p=malloc(100);(void)p;pause();return 0;}\n' >"$HS_TMP/m.c"
	musl-gcc -o "$HS_TMP/musl" "$HS_TMP/m.c"
	"$HS_TMP/musl" &
	mu=$!
	track_pid "$mu"
	expect_named "$mu" musl "musl process"
else
	echo "ok - musl process # SKIP musl-tools is not installed"
fi

[ "$failed" = 0 ] && echo "PASS: runtimes.sh" || exit 1
