#!/bin/bash
# heapscope profile with the real sampler on hard binaries: a target built
# -O2 -fomit-frame-pointer (tests/targets/profchains.c), and a stripped copy
# of it with its debug info in a separate file (--only-keep-debug +
# --add-gnu-debuglink).  Its three threads allocate through known chains
# (three deep; one in a shared library; one in C++) and keep every other
# block: each chain's functions are named in order (unwound from CFI: no
# frame pointer to follow), each chain's allocated and live bytes within
# 20% of what the target says it allocated and still holds, each under its
# thread's name.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
need_cmd python3
need_cmd objcopy
BIN=$(target profchains)
RATE=32768

# profile VARIANT CMD...: one burst of the target, profiled; checks the report
profile()
{
	local v=$1 rc=0 h
	shift
	start_target "$@"
	local pid=$TARGET_PID
	ptrace_ok "$pid"
	timeout 120 "$HS" profile --rate $RATE --json -o "$HS_TMP/$v.json" "$pid" >/dev/null 2>"$HS_TMP/$v.err" &
	h=$!
	for _ in $(seq 100); do grep -q "routed to" "$HS_TMP/$v.err" && break; sleep 0.1; done
	grep -q "routed to" "$HS_TMP/$v.err" || not_ok "$v: profile did not start: $(cat "$HS_TMP/$v.err")"
	kill -USR2 "$pid"
	for _ in $(seq 600); do grep -q '^BURST 1' "$TARGET_OUT" && break; sleep 0.1; done
	kill -INT "$h"
	wait "$h" || rc=$?
	[ "$rc" = 0 ] && ok "$v: profile ended on SIGINT" || not_ok "$v: profile exit $rc: $(cat "$HS_TMP/$v.err")"
	if python3 - "$HS_TMP/$v.json" "$TARGET_OUT" "$v" <<'PY'
import json, re, sys
rep = json.load(open(sys.argv[1]))
m = re.search(r"BURST 1 alpha=(\d+)/(\d+) beta=(\d+)/(\d+) gamma=(\d+)/(\d+)", open(sys.argv[2]).read())
truth = {"alpha": (int(m.group(1)), int(m.group(2))), "beta": (int(m.group(3)), int(m.group(4))),
         "gamma": (int(m.group(5)), int(m.group(6)))}
want = {"alpha": ["alpha_leaf", "alpha_mid", "alpha_outer"],
        "beta": ["lib_beta_leaf", "lib_beta_mid", "beta_outer"],
        "gamma": ["hsprof::Builder<long>::make", "gamma_cxx", "gamma_outer"]}
got = {k: [0, 0] for k in want}
idx = {k: set() for k in want}
for i, st in enumerate(rep["stacks"]):
    names = [re.sub(r"\+0x[0-9a-f]+$", "", f["name"]) for f in st["frames"]]
    names = [re.sub(r"\(.*\)$", "", n) for n in names]
    for k, w in want.items():
        if names[:3] == w:
            got[k][0] += st["alloc_bytes"]
            got[k][1] += st["inuse_bytes"]
            idx[k].add(st["index"])
bad = 0
for k in want:
    a, l = truth[k]
    ra, rl = got[k][0] / a, got[k][1] / l
    thr = [t["name"] for t in rep["threads"] if idx[k] & set(t["stacks"])]
    print(f"# {sys.argv[3]}: {' <- '.join(want[k])}: allocated {got[k][0]} of {a} ({ra:.3f}), "
          f"live {got[k][1]} of {l} ({rl:.3f}), threads {thr}, dropped {rep['dropped']}")
    if not (0.8 <= ra <= 1.2 and 0.8 <= rl <= 1.2) or thr != ["hs-" + k]:
        bad = 1
if bad:
    for st in rep["stacks"][:8]:
        print("# stack:", " <- ".join(f["name"] for f in st["frames"]))
sys.exit(bad)
PY
	then
		ok "$v: each chain named in order from CFI, its allocated and live bytes within 20%, under its thread's name"
	else
		not_ok "$v: the report does not match the target (above)"
	fi
	check_untouched "$pid" || not_ok "$v: target left traced or stopped"
	alive "$pid" && ok "$v: the target runs on" || not_ok "$v: the target died"
	kill -TERM "$pid"
	wait_target "$pid"
}

if objdump -d --no-show-raw-insn "$BIN" | awk '/<alpha_mid>:/,/ret/' | grep -q 'push *%rbp'; then
	not_ok "profchains keeps frame pointers: built without -fomit-frame-pointer?"
fi
profile o2-omit-frame-pointer "$BIN"

D=$HS_TMP/stripped
mkdir -p "$D"
objcopy --only-keep-debug "$BIN" "$D/profchains.debug"
strip -s -o "$D/profchains" "$BIN"
objcopy --add-gnu-debuglink="$D/profchains.debug" "$D/profchains"
readelf -S "$D/profchains" | grep -q '\.symtab' && not_ok "strip left a .symtab"
LD_LIBRARY_PATH=$TARGETS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} profile stripped "$D/profchains"
exit $failed
