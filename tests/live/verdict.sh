#!/bin/bash
# The verdict at the end of `heapscope arenas`: on the demo target (four
# threads, each its own arena, most of it freed between live blocks) it
# names what a trim returns now (the trimmable figure) and an arena-count
# remedy; on the same target started with MALLOC_ARENA_MAX=2 it does not
# suggest MALLOC_ARENA_MAX again; on a JVM it names the JDK's own commands
# only where that JDK has them (checked by running them); --threads lists
# every thread with its arena.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3

start_target "$(target demo)" 4
ptrace_ok "$TARGET_PID"
P=$TARGET_PID
timeout 60 "$HS" arenas "$P" >"$HS_TMP/a.txt" 2>"$HS_TMP/a.err" || not_ok "arenas exit $?: $(cat "$HS_TMP/a.err")"
sed 's/^/# /' "$HS_TMP/a.txt"
timeout 60 "$HS" arenas --json --threads "$P" >"$HS_TMP/a.json" 2>"$HS_TMP/a.err" || not_ok "arenas --json exit $?"
if python3 - "$HS_TMP/a.json" "$HS_TMP/a.txt" "$P" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1])); text = open(sys.argv[2]).read(); pid = int(sys.argv[3])
v = d["verdict"]
assert v["wasteful"], v["headline"]
tr = d["total"]["trimmable"]
assert tr > 64 << 20 and v["figures"]["trimmable"] == tr, (tr, v["figures"])
rem = v["remedies"]
ids = [r["id"] for r in rem]
assert ids[0] == "trim_now" and rem[0]["bytes"] == tr and rem[0]["command"] == f"heapscope trim {pid}", rem[0]
am = [r for r in rem if r["id"] == "arena_max"]
assert am and am[0]["command"].startswith("MALLOC_ARENA_MAX="), ids
n = int(am[0]["command"].split("=")[1])
assert 2 <= n < len(d["arenas"]), (n, len(d["arenas"]))
assert v["figures"]["arenas"] == len(d["arenas"]) and v["figures"]["threads_with_arena"] == 5, v["figures"]
assert f"heapscope trim {pid}` returns" in text and "MALLOC_ARENA_MAX=" in text and "verdict:" in text
# --threads: every thread, each with the arena whose "threads" list names it
arena_of = {t: a["index"] for a in d["arenas"] for t in a["threads"]}
ta = d["thread_arenas"]
assert len(ta) == 5 and all(t["name"] == "demo" and t["arena"] == arena_of[t["tid"]] for t in ta), ta
assert len({t["arena"] for t in ta}) == 5, ta
print(f"ok - demo: the verdict says trim returns {tr} bytes now (= trimmable), then {am[0]['command']}; "
      f"--threads lists {len(ta)} threads with their arenas")
PY
	:
else
	not_ok "verdict on the demo target"
fi
check_untouched "$P" || not_ok "arenas left the target traced or stopped"

MALLOC_ARENA_MAX=2 start_target "$(target demo)" 4
P2=$TARGET_PID
timeout 60 "$HS" arenas --json "$P2" >"$HS_TMP/b.json" 2>"$HS_TMP/b.err" || not_ok "arenas --json (MALLOC_ARENA_MAX=2) exit $?"
if python3 - "$HS_TMP/b.json" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
v = d["verdict"]
f = v["figures"]
assert len(d["arenas"]) <= 2 and f["arena_cap"] == 2 and f["arena_max_set"], f
assert v["environment"]["malloc_arena_max"] == 2 and f["arena_cap_source"] == "MALLOC_ARENA_MAX=2", v["environment"]
assert not any("ARENA_MAX" in r["text"] or r["id"] == "arena_max" for r in v["remedies"]), v["remedies"]
assert f["suggested_arena_max"] is None
assert v["remedies"] and v["remedies"][0]["id"] == "trim_now", v["remedies"]
print(f"ok - MALLOC_ARENA_MAX=2: cap read as {f['arena_cap_source']}, remedies {[r['id'] for r in v['remedies']]}, "
      "no MALLOC_ARENA_MAX again")
PY
	:
else
	not_ok "verdict with MALLOC_ARENA_MAX=2"
fi

# --- a JVM: the JDK's own commands, only where this JDK has them
if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
	echo "ok - JVM verdict # SKIP java or javac missing"
else
	javac -d "$HS_TMP/classes" "$(dirname "$0")/../targets/Inflate.java" >"$HS_TMP/javac.out" 2>&1 ||
		framework_failure "javac failed: $(cat "$HS_TMP/javac.out")"
	MALLOC_PERTURB_=0 java -Xms64m -Xmx64m -XX:+UseSerialGC -cp "$HS_TMP/classes" Inflate 4 160 \
		</dev/null >"$HS_TMP/jvm.out" 2>"$HS_TMP/jvm.err" &
	J=$!
	track_pid "$J"
	i=0
	while ! grep -q '^READY ' "$HS_TMP/jvm.out"; do
		alive "$J" || framework_failure "JVM exited: $(cat "$HS_TMP/jvm.err")"
		i=$((i + 1)); [ "$i" -le 1200 ] || framework_failure "JVM not READY after 120 s"
		sleep 0.1
	done
	timeout 120 "$HS" arenas --json "$J" >"$HS_TMP/j.json" 2>"$HS_TMP/j.err" || not_ok "arenas --json on the JVM exit $?: $(cat "$HS_TMP/j.err")"
	# What this JDK has, asked directly
	java_bin=$(readlink -f "/proc/$J/exe")
	jcmd_bin=$(dirname "$java_bin")/jcmd
	has_jcmd=0 has_flag=0
	if [ -x "$jcmd_bin" ] && "$jcmd_bin" "$J" help 2>&1 | grep -q System.trim_native_heap; then has_jcmd=1; fi
	if "$java_bin" -XX:+UnlockExperimentalVMOptions -XX:+PrintFlagsFinal -version 2>/dev/null | grep -q ' TrimNativeHeapInterval '; then has_flag=1; fi
	echo "# $("$java_bin" -version 2>&1 | head -n 1): jcmd System.trim_native_heap $has_jcmd, -XX:TrimNativeHeapInterval $has_flag"
	if python3 - "$HS_TMP/j.json" "$J" "$has_jcmd" "$has_flag" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1])); pid = int(sys.argv[2]); has_jcmd, has_flag = sys.argv[3] == "1", sys.argv[4] == "1"
v = d["verdict"]; e = v["environment"]
assert e["jvm"] and e["java_version"], e
assert e["jcmd_trim_native_heap"] == has_jcmd and e["trim_native_heap_interval"] == has_flag, (e, has_jcmd, has_flag)
ids = [r["id"] for r in v["remedies"]]
for r in v["remedies"]:
    print("# remedy:", r["text"])
assert ("jcmd_trim" in ids) == has_jcmd, ids
assert ("jvm_trim_interval" in ids) == has_flag, ids
if has_jcmd:
    assert [r for r in v["remedies"] if r["id"] == "jcmd_trim"][0]["command"] == f"jcmd {pid} System.trim_native_heap"
print(f"ok - JVM (JDK {e['java_version']}): remedies {ids}; the JDK's commands named exactly where it has them")
PY
		:
	else
		not_ok "verdict on the JVM"
	fi
	if [ "$has_jcmd" = 1 ]; then
		"$jcmd_bin" "$J" System.trim_native_heap >"$HS_TMP/jt.out" 2>&1 && ok "jcmd $J System.trim_native_heap runs: $(tail -n 1 "$HS_TMP/jt.out")" ||
			not_ok "the named jcmd fails: $(cat "$HS_TMP/jt.out")"
	fi
	# Item 5 of issue 14: mmapped chunks in merged mappings, counted as glibc does
	rc=0
	timeout 120 "$HS" chunks --json "$J" >"$HS_TMP/c.json" 2>"$HS_TMP/c.err" || rc=$?
	if [ "$rc" = 0 ] && python3 - "$HS_TMP/c.json" "$HS_TMP/j.json" <<'PY'; then
import json, sys
c = json.load(open(sys.argv[1])); a = json.load(open(sys.argv[2]))
m = c.get("mmapped") or {}
print(f"# chunks: mmapped {json.dumps(m)[:300]}; arenas: {a['mmapped']}")
PY
		ok "chunks on the JVM exits 0 (its mmapped count agrees with glibc's, else it exits 1)"
	else
		not_ok "chunks on the JVM: exit $rc: $(cat "$HS_TMP/c.err")"
	fi
fi
[ "$failed" = 0 ] && echo "PASS: verdict.sh" || exit 1
