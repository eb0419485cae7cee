#!/bin/bash
# A real JVM: two identical OpenJDK processes (tests/targets/Inflate.java)
# whose threads inflated and deflated through java.util.zip, so that zlib's
# native memory fills glibc arenas and is freed into their bins, and which
# keep a thread spinning in compiled code and a thread causing frequent GCs
# (so safepoints stop the spinning thread through the SIGSEGV of its polling
# page all along).  heapscope arenas lists the JVM's arenas; heapscope trim
# on one returns at least 90% of what the JVM's own
# `jcmd PID System.trim_native_heap` returns on the other; afterwards the
# trimmed JVM is untraced, its threads still spin and collect, its kept
# Inflaters/Deflaters still round-trip, and it answers jcmd.
#
# Skips when java, javac or jcmd is missing, when ptrace is not permitted,
# or when the JVM has no System.trim_native_heap (JDK 18 added it; later
# JDK 17 updates have it too).
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
for c in java javac jcmd python3; do need_cmd "$c"; done

NTHREADS=8 PER_THREAD=160       # about 40 MiB of zlib state freed per thread
# A small, pre-touched Java heap: its RSS does not move during the
# comparison, and the churn thread fills it (a GC) several times a second.
JAVA_OPTS=(-Xms64m -Xmx64m -XX:+AlwaysPreTouch -XX:+UseG1GC)

# ptrace_ok wants every thread of its probe asleep, and a JVM's busy thread
# runs: probe a child that sleeps instead (the JVMs are children too).
sleep 300 >/dev/null 2>&1 &
track_pid $!
ptrace_ok $!

src=$(dirname "$0")/../targets/Inflate.java
javac -d "$HS_TMP/classes" "$src" >"$HS_TMP/javac.out" 2>&1 ||
	framework_failure "javac $src failed: $(cat "$HS_TMP/javac.out")"

# start_jvm NAME FD: a JVM reading requests from a fifo held open on FD, its
# output in $HS_TMP/NAME.out; JVM_PID is set.  The two are started together
# and waited for by wait_ready.
start_jvm()
{
	local name=$1 fd=$2
	mkfifo "$HS_TMP/$name.in"
	MALLOC_PERTURB_=0 java "${JAVA_OPTS[@]}" "-Xlog:safepoint:file=$HS_TMP/$name.safepoints" \
		"-XX:ErrorFile=$HS_TMP/hs_err_pid%p.log" \
		-cp "$HS_TMP/classes" Inflate "$NTHREADS" "$PER_THREAD" \
		<"$HS_TMP/$name.in" >"$HS_TMP/$name.out" 2>"$HS_TMP/$name.err" &
	JVM_PID=$!
	track_pid "$JVM_PID"
	eval "exec $fd>\"\$HS_TMP/\$name.in\""
}

# wait_ready NAME PID: up to 120 s for "READY PID"
wait_ready()
{
	local i=0
	while ! grep -q '^READY ' "$HS_TMP/$1.out"; do
		alive "$2" || framework_failure "JVM $1 exited before READY: $(cat "$HS_TMP/$1.out" "$HS_TMP/$1.err")"
		i=$((i + 1))
		[ "$i" -le 1200 ] || framework_failure "JVM $1 not READY after 120 s"
		sleep 0.1
	done
	grep -q "^READY $2 " "$HS_TMP/$1.out" ||
		framework_failure "JVM $1 is pid $2 but says $(grep '^READY' "$HS_TMP/$1.out")"
}

# ask NAME FD REQUEST: send one line, print the JVM's answer (10 s at most)
ask()
{
	local n i=0
	n=$(wc -l <"$HS_TMP/$1.out")
	echo "$3" >&"$2"
	while [ "$(wc -l <"$HS_TMP/$1.out")" -le "$n" ]; do
		i=$((i + 1))
		[ "$i" -le 100 ] || { echo "no answer"; return 1; }
		sleep 0.1
	done
	tail -n 1 "$HS_TMP/$1.out"
}

# released PID: no thread traced or stopped (the busy thread runs: R is fine)
released()
{
	local s
	s=$(grep -H -E '^(TracerPid:[[:space:]]*[1-9]|State:[[:space:]]*[tTZ])' /proc/"$1"/task/*/status 2>&1) || return 0
	echo "$s" >&2
	return 1
}

rss_swap() { awk '/^(VmRSS|VmSwap):/ { k += $2 } END { print k * 1024 }' "/proc/$1/status"; }
safepoints() { grep -c 'Safepoint "' "$HS_TMP/$1.safepoints" 2>/dev/null || echo 0; }

start_jvm a 3
A=$JVM_PID
start_jvm b 4
B=$JVM_PID
wait_ready a "$A"
wait_ready b "$B"
echo "# $(java -version 2>&1 | head -n 1); pids $A (heapscope trim) and $B (jcmd); $(grep '^READY' "$HS_TMP/a.out")"

# The attach listener of both JVMs started the same way, before anything is
# measured; and is the JDK's trim there?
jcmd "$A" help >"$HS_TMP/a.help" 2>&1 || framework_failure "jcmd $A help: $(cat "$HS_TMP/a.help")"
jcmd "$B" help >"$HS_TMP/b.help" 2>&1 || framework_failure "jcmd $B help: $(cat "$HS_TMP/b.help")"
grep -q "System.trim_native_heap" "$HS_TMP/b.help" ||
	skip "this JVM has no System.trim_native_heap ($(java -version 2>&1 | head -n 1))"

# Let compilation and the first collections settle; the spinning and the
# collections must be going on.
# ping NAME FD: set SPINS and GCS from the JVM's answer to PING
ping()
{
	local reply
	reply=$(ask "$1" "$2" PING) || return 1
	read -r pong SPINS GCS <<<"$reply"
	[ "$pong" = PONG ] && [ -n "$GCS" ]
}

sleep 2
ping a 3 || framework_failure "JVM $A does not answer PING"
spins0=$SPINS gcs0=$GCS
sleep 1
ping a 3 || framework_failure "JVM $A does not answer PING"
spins1=$SPINS gcs1=$GCS
sp1=$(safepoints a)
if [ "$spins1" -le "$spins0" ] || [ "$gcs1" -le "$gcs0" ]; then
	framework_failure "JVM $A is not busy: spins $spins0 -> $spins1, GCs $gcs0 -> $gcs1"
fi
echo "# JVM $A before: spin rounds $spins1, GCs $gcs1, safepoints $sp1"

# --- heapscope arenas: the JVM's arenas, the zlib memory free in them
"$HS" arenas "$A" >"$HS_TMP/arenas.txt" 2>"$HS_TMP/arenas.err" || not_ok "arenas exit $?: $(cat "$HS_TMP/arenas.err")"
sed 's/^/# /' "$HS_TMP/arenas.txt"
if "$HS" arenas --json "$A" >"$HS_TMP/arenas.json" 2>"$HS_TMP/arenas.err" &&
	python3 - "$HS_TMP/arenas.json" "$NTHREADS" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
n, threads = len(d["arenas"]), int(sys.argv[2])
kinds = [a["kind"] for a in d["arenas"]]
t = d["total"]
assert kinds[0] == "main" and kinds.count("thread") >= threads // 2, kinds
assert not any(a["partial"] for a in d["arenas"]), "an arena is partial"
assert t["free_bins"] >= 100 << 20 and t["trimmable"] >= 100 << 20, t
print(f"ok - arenas: {n} arenas ({kinds.count('thread')} thread arenas), {t['resident']} bytes resident, "
      f"{t['free_bins']} free in bins, {t['trimmable']} trimmable; paused {d['pause_us']} us")
PY
	:
else
	not_ok "arenas --json: $(cat "$HS_TMP/arenas.err")"
fi
released "$A" || not_ok "arenas left JVM $A traced or stopped"

# --- the twins: heapscope trim on A, the JVM's own trim on B, back to back
before=$(rss_swap "$A")
rc=0
"$HS" trim --json --wait 10000 "$A" >"$HS_TMP/trim.json" 2>"$HS_TMP/trim.err" || rc=$?
after=$(rss_swap "$A")
jcmd "$B" System.trim_native_heap >"$HS_TMP/jcmd.out" 2>&1 || not_ok "jcmd $B System.trim_native_heap: $(cat "$HS_TMP/jcmd.out")"
sed 's/^/# jcmd: /' "$HS_TMP/jcmd.out"
if [ "$rc" != 0 ]; then
	not_ok "heapscope trim $A: exit $rc: $(cat "$HS_TMP/trim.err")"
elif python3 - "$HS_TMP/trim.json" "$HS_TMP/jcmd.out" "$before" "$after" <<'PY'; then
import json, re, sys
t = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
before, after = int(sys.argv[3]), int(sys.argv[4])
unit = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
# "RSS+Swap: 445M->131M (-314M)" in newer JDKs; "RSS before: 466616k,
# after: 137363k, (-329253k)" in the first ones
m = re.search(r"RSS\+Swap: ([\d.]+)([BKMG])->([\d.]+)([BKMG]) \(([-+]?[\d.]+)([BKMG])\)", text)
if m:
    jb, ja = (float(m[i]) * unit[m[i + 1]] for i in (1, 3))
    says = m[5] + m[6]
else:
    m = re.search(r"RSS before: (\d+)k, after: (\d+)k, \(([-+]?\d+)k\)", text)
    assert m, f"cannot read jcmd's figures in: {text!r}"
    jb, ja = int(m[1]) << 10, int(m[2]) << 10
    says = m[3] + "k"
jcmd = int(jb - ja)
ours = t["returned"]
print(f"# heapscope trim: returned {ours} bytes (predicted {t['trimmable']}), process RSS+Swap {before} -> {after} "
      f"({before - after} less); malloc_trim returned {t['return_value']} in thread {t['thread']}, "
      f"{t['attempts']} attempt(s), paused {t['pause_us']} us, the call {t['call_us']} us")
print(f"# jcmd System.trim_native_heap: {int(jb)} -> {int(ja)} ({jcmd} returned; it says {says})")
assert t["called"] and t["java"], t
assert jcmd >= 100 << 20, f"the JVM's own trim returned only {jcmd} bytes: nothing to compare"
assert ours >= 0.9 * jcmd, f"heapscope returned {ours} bytes, {100 * ours / jcmd:.1f}% of jcmd's {jcmd}"
print(f"ok - heapscope trim returned {ours} bytes, {100 * ours / jcmd:.1f}% of the {jcmd} returned by the "
      f"JVM's own trim on its twin")
PY
	:
else
	not_ok "heapscope trim against jcmd System.trim_native_heap (figures above)"
fi

# --- afterwards: the trimmed JVM is released, keeps working and answers
if released "$A"; then
	ok "JVM $A: no thread traced or stopped"
else
	not_ok "JVM $A left traced or stopped"
fi
sleep 1.5
if ping a 3; then
	spins2=$SPINS gcs2=$GCS sp2=$(safepoints a)
	if [ "$spins2" -gt "$spins1" ] && [ "$gcs2" -gt "$gcs1" ] && [ "$sp2" -gt "$sp1" ]; then
		ok "JVM $A runs on: spin rounds $spins1 -> $spins2, GCs $gcs1 -> $gcs2, safepoints $sp1 -> $sp2"
	else
		not_ok "JVM $A stalled: spin rounds $spins1 -> $spins2, GCs $gcs1 -> $gcs2, safepoints $sp1 -> $sp2"
	fi
else
	not_ok "JVM $A does not answer PING after the trim"
fi
check=$(ask a 3 CHECK) || true
case $check in
"CHECK OK "*) ok "JVM $A: its kept Inflaters and Deflaters still round-trip (${check#CHECK OK } pairs)" ;;
*) not_ok "JVM $A: $check" ;;
esac
if jcmd "$A" VM.uptime >"$HS_TMP/uptime" 2>&1; then
	ok "JVM $A answers jcmd: uptime $(tail -n 1 "$HS_TMP/uptime")"
else
	not_ok "jcmd $A VM.uptime: $(cat "$HS_TMP/uptime")"
fi
# --- glibc's tracer injected around a burst of Inflater work (glibc 2.34+):
# the blocks still allocated at stop are named in zlib and in the JDK's
# libzip or libjvm, and the JVM runs on
ver=$(ldd --version | sed -n '1s/.* \([0-9]*\.[0-9]*\)$/\1/p')
case $ver in
2.[0-9] | 2.[12][0-9] | 2.3[0-3]) echo "ok - mtrace --inject on a JVM # SKIP glibc $ver needs no injection" ;;
*)
	LOG=$HS_TMP/jvm.mtrace
	rc=0
	"$HS" mtrace start --inject --wait 10000 --file "$LOG" "$A" >"$HS_TMP/mt.out" 2>&1 || rc=$?
	sed 's/^/# /' "$HS_TMP/mt.out"
	burst=$(ask a 3 "BURST 64") || true
	rc2=0
	"$HS" mtrace stop --wait 10000 "$A" >"$HS_TMP/mt.out" 2>&1 || rc2=$?
	sed 's/^/# /' "$HS_TMP/mt.out"
	"$HS" mtrace report --pid "$A" --json "$LOG" >"$HS_TMP/report.json" 2>"$HS_TMP/report.err" || true
	"$HS" mtrace report --pid "$A" --top 8 "$LOG" 2>/dev/null | sed 's/^/# /'
	if [ "$rc" = 0 ] && [ "$rc2" = 0 ] && [ "$burst" = "BURST OK 4" ] && python3 - "$HS_TMP/report.json" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
callers = d["callers"]
def named(pred):
    return [c for c in callers if c.get("object") and pred(c["object"]) and c.get("function")]
z = named(lambda o: "/libz.so" in o)
j = named(lambda o: "/libzip.so" in o or "/libjvm.so" in o)
assert z and j, [(c.get("object"), c.get("function")) for c in callers[:10]]
print(f"ok - mtrace --inject on the JVM around BURST 64: {d['not_freed']} blocks not freed; zlib: "
      f"{z[0]['function']} ({z[0]['count']} blocks), JDK: {j[0]['function']} in {j[0]['object'].rsplit('/', 1)[1]}")
PY
		:
	else
		not_ok "mtrace --inject on the JVM: start $rc, stop $rc2, $burst; $(cat "$HS_TMP/report.err")"
	fi
	released "$A" || not_ok "mtrace left JVM $A traced or stopped"
	check=$(ask a 3 CHECK) || true
	case $check in
	"CHECK OK "*) ok "JVM $A after the injected trace: ${check#CHECK OK } pairs round-trip" ;;
	*) not_ok "JVM $A after the injected trace: $check" ;;
	esac
	;;
esac

# --- heapscope profile around a burst of Inflater work: stacks from malloc
# through zlib and libzip's JNI functions (then JIT or interpreter code,
# unnamed without a perf map), per thread name; the JVM runs on after
sp3=$(safepoints a)
rc=0
timeout 120 "$HS" profile --rate 16384 --wait 10000 --json -o "$HS_TMP/prof.json" "$A" >/dev/null 2>"$HS_TMP/prof.err" &
H=$!
for _ in $(seq 200); do grep -q "routed to" "$HS_TMP/prof.err" && break; sleep 0.1; done
sed 's/^/# /' "$HS_TMP/prof.err"
burst=$(ask a 3 "BURST 64") || true
kill -INT "$H"
wait "$H" || rc=$?
if { [ "$rc" = 0 ] || [ "$rc" = 1 ]; } && [ "$burst" = "BURST OK 4" ] && python3 - "$HS_TMP/prof.json" <<'PY'; then
import json, re, sys
d = json.load(open(sys.argv[1]))
names = {}
for t in d["threads"]:
    for x in t["stacks"]:
        names.setdefault(x, set()).add(t["name"])
hits = []
for st in d["stacks"]:
    fr = [re.sub(r"\+0x[0-9a-f]+$", "", f["name"]) for f in st["frames"]]
    z = [i for i, n in enumerate(fr) if n in ("inflateInit2_", "deflateInit2_")]
    j = [i for i, n in enumerate(fr) if re.match(r"Java_java_util_zip_(Inflater|Deflater)_init$", n)]
    if z and j and z[0] < j[0]:
        hits.append((st, fr[: j[0] + 2], sorted(names.get(st["index"], ()))))
assert hits, [[f["name"] for f in st["frames"]][:8] for st in d["stacks"][:6]]
st, fr, thr = hits[0]
assert thr, "no thread name"
print(f"ok - profile on the JVM around BURST 64: {len(hits)} stacks through zlib to the JNI boundary, e.g. "
      f"{' <- '.join(fr)} (threads {', '.join(thr)}; {d['samples']} samples)")
PY
	:
else
	not_ok "profile on the JVM: exit $rc, $burst: $(cat "$HS_TMP/prof.err")"
fi
released "$A" || not_ok "profile left JVM $A traced or stopped"
check=$(ask a 3 CHECK) || true
case $check in
"CHECK OK "*) ok "JVM $A after the profile: ${check#CHECK OK } pairs round-trip" ;;
*) not_ok "JVM $A after the profile: $check" ;;
esac
sleep 1.5
sp4=$(safepoints a)
if jcmd "$A" VM.version >"$HS_TMP/version" 2>&1 && [ "$sp4" -gt "$sp3" ]; then
	ok "JVM $A after the profile: safepoints $sp3 -> $sp4, jcmd VM.version answers"
else
	not_ok "JVM $A after the profile: safepoints $sp3 -> $sp4, jcmd: $(cat "$HS_TMP/version")"
fi

check=$(ask b 4 CHECK) || true
case $check in *"CHECK OK "*) ;; *) not_ok "twin JVM $B after its own trim: $check" ;; esac
for p in "$A" "$B"; do
	alive "$p" || not_ok "JVM $p died: $(cat "$HS_TMP"/*.err)"
done
! ls "$HS_TMP"/hs_err_pid* 2>/dev/null || not_ok "a JVM wrote a crash report"
[ "$failed" = 0 ] && echo "PASS: jvm.sh" || exit 1
