#!/bin/bash
# heapscope mtrace report names the callers.  Targets that leak from known
# functions (tests/targets/leaky*.c*, built with -g: a PIE and a non-PIE
# executable, a shared library, libc's strdup, C++ templates) trace
# themselves under libc_malloc_debug.so.  Checked:
#  - the blocks not freed are exactly those glibc's mtrace script lists, and
#    each caller's blocks share one of its callers;
#  - each leaking function is named, with the count and bytes it leaked,
#    and the file:line of its "LEAK name" marker; the line agrees with
#    addr2line's, the demangled name with c++filt's;
#  - libc's strdup named, with its file:line when libc's debug file is here;
#  - --pid: a binary deleted after it started, run by a relative argv[0],
#    is named from the process's mappings (and not without --pid), the
#    target left untraced; a bare [0xADDR] caller is named too; a process
#    that does not map the log's objects gets a warning and exit status 1;
#  - a stripped copy is named from its separate debug file, by
#    .gnu_debuglink, by build-id under HEAPSCOPE_DEBUG_DIRS, and from a
#    local debuginfod server; not at all with --no-debuginfo, and without
#    asking the server with --no-debuginfod.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
need_malloc_debug
SRC=$(cd "$(dirname "$0")/../targets" && pwd)
# No debuginfod but the local one below: objects without local debug info
# (libstdc++) would otherwise be fetched from wherever the profile points.
unset DEBUGINFOD_URLS
skip_check() { echo "ok - $* # SKIP"; }
RC=0
hs() { RC=0; timeout -k 5 60 "$HS" "$@" >"$HS_TMP/out" 2>"$HS_TMP/err" </dev/null || RC=$?; }
# check MODE ARGS...: the Python checks below; they print ok/not ok lines
check() { python3 "$HS_TMP/check.py" "$@" || failed=1; }

# the line of a "LEAK name" marker in a source file
marker() { grep -nF "LEAK $2" "$SRC/$1" | head -1 | cut -d: -f1; }

# traced FILE LOG PROG ARGS...: run a leaky target tracing itself into LOG
traced() {
	local log=$1
	shift
	rm -f "$log"
	MALLOC_PERTURB_=0 LD_LIBRARY_PATH=$TARGETS_DIR LD_PRELOAD=$DBG MALLOC_TRACE=$log "$@" </dev/null
}

cat >"$HS_TMP/check.py" <<'PY'
import json, os, re, subprocess, sys

def load(p):
    with open(p) as f:
        return json.load(f)

def say(good, msg):
    print(("ok - " if good else "not ok - ") + msg)
    return good

def base(p):
    return os.path.basename(p) if p else None

mode = sys.argv[1]
good = True
if mode == "names":
    # names JSON SPEC: each SPEC line "function|count|bytes|file|line";
    # file "-": none expected; "?": not checked; line 0: not checked
    d = load(sys.argv[2])
    for spec in open(sys.argv[3]).read().splitlines():
        fn, cnt, byt, fil, line = spec.split("|")
        m = [c for c in d["callers"] if c["function"] == fn or (fn.startswith("~") and c["function"] and re.search(fn[1:], c["function"]))]
        if not say(len(m) == 1, "%s: one caller named %s (%d: %s)" % (sys.argv[4], fn, len(m), [c["caller"] for c in m])):
            good = False
            continue
        c = m[0]
        good &= say(c["count"] == int(cnt) and c["bytes"] == int(byt),
                    "%s: %s leaked %s blocks, %s bytes (report: %d, %d)" % (sys.argv[4], fn, cnt, byt, c["count"], c["bytes"]))
        if fil == "-":
            good &= say(c["file"] is None and c["line"] is None, "%s: %s has no file:line (%s:%s)" % (sys.argv[4], fn, c["file"], c["line"]))
        elif fil != "?":
            good &= say(base(c["file"]) == fil and (line == "0" or c["line"] == int(line)),
                        "%s: %s at %s:%s (report: %s:%s)" % (sys.argv[4], fn, fil, line, c["file"], c["line"]))
elif mode == "script":
    # script JSON SCRIPT_OUTPUT: the same blocks as glibc's mtrace script,
    # and each of our callers' blocks under one of its callers
    d = load(sys.argv[2])
    theirs = {}
    for l in open(sys.argv[3]):
        m = re.match(r"^(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+at (.*)$", l.strip())
        if m:
            theirs[int(m.group(1), 16)] = (int(m.group(2), 16), m.group(3))
    ours = {int(b["address"], 16): (b["size"], c["caller"]) for c in d["callers"] for b in c["blocks"]}
    good &= say(len(ours) == d["not_freed"], "%s: --blocks lists all %d blocks (%d)" % (sys.argv[4], d["not_freed"], len(ours)))
    same = set(ours) == set(theirs) and all(ours[a][0] == theirs[a][0] for a in ours)
    good &= say(same, "%s: %d blocks not freed, addresses and sizes as glibc's mtrace script lists them (%d)"
                % (sys.argv[4], len(ours), len(theirs)))
    groups = {}
    for a, (size, caller) in ours.items():
        groups.setdefault(caller, set()).add(theirs.get(a, (0, None))[1])
    good &= say(all(len(g) == 1 for g in groups.values()),
                "%s: each caller's blocks are under one caller of the script's" % sys.argv[4])
elif mode == "addr2line":
    # addr2line JSON: every file:line we give is addr2line's for the call
    # (the return address - 1) in the same file; function names too for C
    d = load(sys.argv[2])
    n = 0
    for c in d["callers"]:
        if not c["file"]:
            continue
        elf = c["debuginfo"] or c["object"]
        out = subprocess.run(["addr2line", "-f", "-e", elf, "%x" % (int(c["elf_address"], 16) - 1)],
                             capture_output=True, text=True).stdout.split("\n")
        fl = re.sub(r" \(discriminator \d+\)$", "", out[1]) if len(out) > 1 else ""
        want = "%s:%d" % (base(c["file"]), c["line"])
        good &= say(base(fl.rsplit(":", 1)[0]) + ":" + fl.rsplit(":", 1)[-1] == want,
                    "%s: %s: addr2line says %s, report %s" % (sys.argv[3], c["caller"], fl, want))
        if not c["symbol"].startswith("_Z") and c["debuginfo"] is None:
            good &= say(out[0] == c["symbol"], "%s: addr2line's function %s, report %s" % (sys.argv[3], out[0], c["symbol"]))
        n += 1
    good &= say(n > 0, "%s: %d callers checked against addr2line" % (sys.argv[3], n))
elif mode == "cxxfilt":
    # cxxfilt JSON: demangled as c++filt demangles
    d = load(sys.argv[2])
    for c in d["callers"]:
        if c["symbol"] and c["symbol"].startswith("_Z"):
            want = subprocess.run(["c++filt", c["symbol"]], capture_output=True, text=True).stdout.strip()
            good &= say(c["function"] == want, "%s is %s, as c++filt says (report: %s)" % (c["symbol"], want, c["function"]))
elif mode == "field":
    # field JSON CALLER_FUNCTION KEY: print one field of one caller
    d = load(sys.argv[2])
    for c in d["callers"]:
        if c["function"] == sys.argv[3]:
            print(c[sys.argv[4]])
    sys.exit(0)
sys.exit(0 if good else 1)
PY

LEAKY=$(target leaky)
C_SPEC="leak_small|10|240|leaky.c|$(marker leaky.c leak_small)
leak_big|3|12288|leaky.c|$(marker leaky.c leak_big)
leak_realloc|4|800|leaky.c|$(marker leaky.c leak_realloc)
lib_leak|5|500|leaky_lib.c|$(marker leaky_lib.c lib_leak)"
# libc's strdup: its file:line only when libc's debug file is installed
LIBC=$(ldd "$LEAKY" | sed -n 's/.*libc\.so\.6 => \([^ ]*\) .*/\1/p')
LIBC_ID=$(readelf -n "$LIBC" 2>/dev/null | sed -n 's/.*Build ID: //p')
if [ -n "$LIBC_ID" ] && [ -e "/usr/lib/debug/.build-id/${LIBC_ID:0:2}/${LIBC_ID:2}.debug" ]; then
	STRDUP="~strdup|2|34|strdup.c|0"
else
	STRDUP="~strdup|2|34|?|0"
fi

# --- each target, the log read from the files it names
TARGETS="leaky leaky-nopie"
[ -x "$TARGETS_DIR/leaky-cxx" ] && TARGETS="$TARGETS leaky-cxx" || skip_check "C++ target not built (no C++ compiler)"
for t in $TARGETS; do
	LOG=$HS_TMP/$t.log
	traced "$LOG" "$(target "$t")" exit || { not_ok "$t exited with status $?"; continue; }
	hs mtrace report --json --blocks --top 1000 "$LOG"
	[ "$RC" = 0 ] || { not_ok "$t: report exit $RC: $(cat "$HS_TMP/err")"; continue; }
	cp "$HS_TMP/out" "$HS_TMP/$t.json"
	if [ "$t" = leaky-cxx ]; then
		if [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["demangler"])' "$HS_TMP/$t.json")" = None ]; then
			SPEC="_ZN6hsleak4PoolINS_4NodeEE4growEm|6|288|leaky_cxx.cc|$(marker leaky_cxx.cc 'hsleak::Pool<hsleak::Node>::grow')
_ZN6hsleak4makeIiEEPT_i|4|256|leaky_cxx.cc|$(marker leaky_cxx.cc 'hsleak::make<int>')
_Znwm|2|48|?|0"
		else
			SPEC="hsleak::Pool<hsleak::Node>::grow(unsigned long)|6|288|leaky_cxx.cc|$(marker leaky_cxx.cc 'hsleak::Pool<hsleak::Node>::grow')
int* hsleak::make<int>(int)|4|256|leaky_cxx.cc|$(marker leaky_cxx.cc 'hsleak::make<int>')
operator new(unsigned long)|2|48|?|0"
			if command -v c++filt >/dev/null; then
				check cxxfilt "$HS_TMP/$t.json"
			else
				skip_check "c++filt comparison: no c++filt"
			fi
		fi
	else
		SPEC="$C_SPEC
$STRDUP"
	fi
	printf '%s\n' "$SPEC" >"$HS_TMP/spec"
	check names "$HS_TMP/$t.json" "$HS_TMP/spec" "$t"
	if command -v mtrace >/dev/null; then
		mtrace "$(target "$t")" "$LOG" >"$HS_TMP/script.out" 2>/dev/null || true
		check script "$HS_TMP/$t.json" "$HS_TMP/script.out" "$t"
	else
		skip_check "$t: glibc's mtrace script (libc-devtools is not installed)"
	fi
	if command -v addr2line >/dev/null; then
		check addr2line "$HS_TMP/$t.json" "$t"
	else
		skip_check "$t: addr2line comparison: no addr2line"
	fi
done

# text: the same names, and --top
hs mtrace report --top 2 "$HS_TMP/leaky.log"
if [ "$RC" = 0 ] && grep -q "leak_big+0x[0-9a-f]* at .*/leaky.c:$(marker leaky.c leak_big)\$" "$HS_TMP/out" &&
	[ "$(grep -cE '^ +[0-9]+ +[0-9]+  ' "$HS_TMP/out")" = 2 ]; then
	ok "text: two callers, the first leak_big+OFF at leaky.c:LINE"
else
	not_ok "text (exit $RC): $(cat "$HS_TMP/out" "$HS_TMP/err")"
fi

# --no-debuginfo: names from the symbol tables, no file:line anywhere
hs mtrace report --json --no-debuginfo "$HS_TMP/leaky.log"
printf '%s\n' "leak_small|10|240|-|0" "lib_leak|5|500|-|0" "~strdup|2|34|-|0" >"$HS_TMP/spec"
if [ "$RC" = 0 ]; then check names "$HS_TMP/out" "$HS_TMP/spec" "--no-debuginfo"; else not_ok "--no-debuginfo: exit $RC"; fi

# --- --pid: a copy run as ./leaky-copy, deleted once it runs
mkdir "$HS_TMP/bin"
cp "$LEAKY" "$HS_TMP/bin/leaky-copy"
LOG=$HS_TMP/pid.log
(cd "$HS_TMP/bin" && MALLOC_TRACE=$LOG LD_PRELOAD=$DBG LD_LIBRARY_PATH=$TARGETS_DIR exec ./leaky-copy wait) >"$HS_TMP/pid.out" 2>&1 &
P=$!
track_pid "$P"
for _ in $(seq 100); do grep -q '^READY' "$HS_TMP/pid.out" && break; sleep 0.1; done
grep -q '^READY' "$HS_TMP/pid.out" || framework_failure "leaky-copy not READY: $(cat "$HS_TMP/pid.out")"
rm "$HS_TMP/bin/leaky-copy"
grep -q '^@ \./leaky-copy:\[0x' "$LOG" && ok "the log names the executable by its argv[0], ./leaky-copy" ||
	not_ok "the log's callers: $(grep -m1 leaky-copy "$LOG")"
hs mtrace report --json "$LOG"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(any(c["function"] == "leak_small" for c in d["callers"]))' "$HS_TMP/out" &&
	ok "without --pid, the deleted ./leaky-copy is not named" || not_ok "without --pid, a deleted ./leaky-copy was named"
hs mtrace report --json --pid "$P" "$LOG"
cp "$HS_TMP/out" "$HS_TMP/pid.json"
printf '%s\n' "$C_SPEC" "$STRDUP" >"$HS_TMP/spec"
if [ "$RC" = 0 ]; then
	check names "$HS_TMP/pid.json" "$HS_TMP/spec" "--pid, deleted ./leaky-copy"
else
	not_ok "--pid: exit $RC: $(cat "$HS_TMP/err")"
fi
obj=$(check field "$HS_TMP/pid.json" leak_small object)
addr=$(check field "$HS_TMP/pid.json" leak_small address)
[ "$obj" = "$HS_TMP/bin/leaky-copy" ] && ok "--pid: the object is the mapped $obj" || not_ok "--pid: object '$obj'"
# the runtime address, given bare as "[0xADDR]", names the same function
printf '= Start\n@ [%s] + 0x7f0000001000 0x40\n= End\n' "$addr" >"$HS_TMP/bare.log"
hs mtrace report --json --pid "$P" "$HS_TMP/bare.log"
printf '%s\n' "leak_small|1|64|leaky.c|$(marker leaky.c leak_small)" >"$HS_TMP/spec"
if [ "$RC" = 0 ]; then check names "$HS_TMP/out" "$HS_TMP/spec" "--pid, bare [$addr]"; else not_ok "--pid, bare address: exit $RC"; fi
hs mtrace report "$HS_TMP/bare.log"
grep -qF "[$addr]" "$HS_TMP/out" && ok "without --pid, a bare address stays as the log has it" || not_ok "bare address: $(cat "$HS_TMP/out")"
check_untouched "$P" && ok "--pid: pid $P untraced and running" || not_ok "--pid left pid $P traced or stopped"
# a process that does not map the log's objects: a warning, exit 1
start_target "$(target simple)" single
hs mtrace report --pid "$TARGET_PID" "$HS_TMP/leaky.log"
[ "$RC" = 1 ] && grep -q "is not mapped in pid $TARGET_PID" "$HS_TMP/err" && grep -q leak_small "$HS_TMP/out" &&
	ok "another process's pid: exit 1, warned, still named from disk: $(head -1 "$HS_TMP/err")" ||
	not_ok "another process's pid: exit $RC: $(cat "$HS_TMP/err")"
hs mtrace report --pid 2147483647 "$HS_TMP/leaky.log"
[ "$RC" = 2 ] && grep -q 'no process 2147483647' "$HS_TMP/err" && ok "no such pid: exit 2: $(cat "$HS_TMP/err")" ||
	not_ok "no such pid: exit $RC: $(cat "$HS_TMP/err")"

# --- separate debug info for a stripped copy: .gnu_debuglink, then build-id
if command -v objcopy >/dev/null && command -v strip >/dev/null; then
	D=$HS_TMP/strip
	mkdir -p "$D"
	objcopy --only-keep-debug "$LEAKY" "$D/leaky-stripped.debug"
	strip -s -o "$D/leaky-stripped" "$LEAKY"
	objcopy --add-gnu-debuglink="$D/leaky-stripped.debug" "$D/leaky-stripped"
	LOG=$HS_TMP/strip.log
	traced "$LOG" "$D/leaky-stripped" exit
	printf '%s\n' "$C_SPEC" >"$HS_TMP/spec"
	hs mtrace report --json "$LOG"
	check names "$HS_TMP/out" "$HS_TMP/spec" "stripped, .gnu_debuglink"
	[ "$(check field "$HS_TMP/out" leak_small debuginfo)" = "$D/leaky-stripped.debug" ] &&
		ok "stripped: debug info from $D/leaky-stripped.debug" || not_ok "stripped: debuginfo $(check field "$HS_TMP/out" leak_small debuginfo)"
	id=$(readelf -n "$D/leaky-stripped" | sed -n 's/.*Build ID: //p')
	mkdir -p "$D/dirs/.build-id/${id:0:2}"
	mv "$D/leaky-stripped.debug" "$D/dirs/.build-id/${id:0:2}/${id:2}.debug"
	RC=0
	HEAPSCOPE_DEBUG_DIRS=$D/dirs "$HS" mtrace report --json "$LOG" >"$HS_TMP/out" 2>"$HS_TMP/err" || RC=$?
	check names "$HS_TMP/out" "$HS_TMP/spec" "stripped, build-id in HEAPSCOPE_DEBUG_DIRS"
	[ "$(check field "$HS_TMP/out" leak_small debuginfo)" = "$D/dirs/.build-id/${id:0:2}/${id:2}.debug" ] &&
		ok "stripped: debug info by build-id from HEAPSCOPE_DEBUG_DIRS" ||
		not_ok "stripped: debuginfo $(check field "$HS_TMP/out" leak_small debuginfo)"
	RC=0
	HEAPSCOPE_DEBUG_DIRS=$D/dirs "$HS" mtrace report --json --no-debuginfo "$LOG" >"$HS_TMP/out" 2>"$HS_TMP/err" || RC=$?
	[ "$RC" = 0 ] && [ -z "$(check field "$HS_TMP/out" leak_small function)" ] &&
		grep -q '"caller": ".*leaky-stripped:\[0x' "$HS_TMP/out" &&
		ok "stripped, --no-debuginfo: leak_small not named (no symbols without its debug file)" ||
		not_ok "stripped, --no-debuginfo: exit $RC, $(grep -m1 leak_small "$HS_TMP/out")"
	# the same debug file served by a local debuginfod, and only when allowed
	if command -v debuginfod >/dev/null && command -v curl >/dev/null &&
		! "$HS" --help | grep -q 'debuginfod is not built in'; then
		mkdir -p "$D/srv"
		mv "$D/dirs/.build-id/${id:0:2}/${id:2}.debug" "$D/srv/"
		port=$((20000 + RANDOM % 20000))
		debuginfod -F -p "$port" -d "$HS_TMP/db.sqlite" -t 0 -g 0 "$D/srv" >"$HS_TMP/server.log" 2>&1 &
		track_pid $!
		for _ in $(seq 150); do
			curl -sf -o /dev/null "http://127.0.0.1:$port/buildid/$id/debuginfo" && break
			sleep 0.2
		done
		RC=0
		DEBUGINFOD_URLS=http://127.0.0.1:$port DEBUGINFOD_CACHE_PATH=$HS_TMP/dcache \
			"$HS" mtrace report --json --no-debuginfod "$LOG" >"$HS_TMP/out" 2>"$HS_TMP/err" || RC=$?
		[ "$RC" = 0 ] && [ -z "$(check field "$HS_TMP/out" leak_small function)" ] &&
			{ [ ! -e "$HS_TMP/dcache" ] || [ -z "$(ls -A "$HS_TMP/dcache")" ]; } &&
			ok "stripped, --no-debuginfod: the server not asked, leak_small not named" ||
			not_ok "stripped, --no-debuginfod: exit $RC, $(grep -m1 leak_small "$HS_TMP/out"), cache: $(ls "$HS_TMP/dcache" 2>&1)"
		RC=0
		DEBUGINFOD_URLS=http://127.0.0.1:$port DEBUGINFOD_CACHE_PATH=$HS_TMP/dcache \
			"$HS" mtrace report --json "$LOG" >"$HS_TMP/out" 2>"$HS_TMP/err" || RC=$?
		check names "$HS_TMP/out" "$HS_TMP/spec" "stripped, debuginfod on 127.0.0.1:$port"
		case $(check field "$HS_TMP/out" leak_small debuginfo) in
		"$HS_TMP/dcache/"*) ok "stripped: debug info from debuginfod's cache" ;;
		*) not_ok "stripped: debuginfo $(check field "$HS_TMP/out" leak_small debuginfo) (server: $(tail -2 "$HS_TMP/server.log"))" ;;
		esac
	else
		skip_check "debuginfod: no debuginfod or curl, or heapscope built without libdebuginfod"
	fi
else
	skip_check "separate debug info: objcopy/strip not installed"
fi

[ "$failed" = 0 ] && echo "PASS: mtrace_report.sh" || exit 1
