#!/bin/bash
# heapscope profile's analysis half (lib/profile_report.c, pprof.c,
# flame.c) on samples a live target recorded as the sampler records them
# (registers from a non-inlined capture function, 16 KiB of stack copied
# from its rsp; tests/targets/profsampler.c), run by the profile-analyze
# helper while the target is still alive.  For the target built plain,
# with -O2 -fomit-frame-pointer (stacks from CFI only) and stripped with
# its debug info in a separate file found through .gnu_debuglink:
#   - each thread's stack names its chain innermost first (the sampler's
#     frames dropped, so malloc's caller is first), one in a shared
#     library and one a demangled C++ member of a class template, not
#     truncated, down to the thread's start;
#   - at rate 1 every sample stands for itself: alloc and in-use bytes and
#     objects are exactly what the target allocated and kept; per thread
#     (named from /proc) and per arena (thread arenas, not main);
#   - the folded output parses as flamegraph.pl's input, outer frame
#     first, with the same figures; the SVG is well-formed XML (xmllint
#     when present) with a titled rectangle per chain giving exact bytes;
#   - the pprof file is gzipped protobuf that decodes (a small decoder
#     here) to the same stacks, and `go tool pprof -top/-traces` shows
#     them when go is installed.
# And: a JIT frame (anonymous code) ends a stack as "[unknown, JIT?]",
# truncated; named from /tmp/perf-PID.map it is walked past by its frame
# pointer; --max-frames 2 marks stacks truncated; without debug info the
# stripped target's static functions have no names (so the names above
# came from the separate debug file).
#
# Needs: PROFILE_ANALYZE, TARGETS_DIR, python3; objcopy/strip for the
# stripped part, go for the pprof tool part.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# The stand-in sampler shares the real one's name (the analysis drops that
# object's frames): the targets must find the stand-in, in the tests'
# build directory, before the real one that meson's path may list first.
export LD_LIBRARY_PATH="$TARGETS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

need_cmd python3
[ -x "${PROFILE_ANALYZE:-}" ] || framework_failure "PROFILE_ANALYZE is not set (path to the profile-analyze helper)"
[ -x "$TARGETS_DIR/profiled" ] || skip "the profiled target was not built (no C++ compiler)"

# check PREFIX VARIANT: the analysis' outputs against what the target did
check()
{
	python3 - "$1" "$2" <<'EOF'
import gzip, json, re, sys

prefix, variant = sys.argv[1], sys.argv[2]
d = json.load(open(prefix + ".json"))
bad = []

CHAINS = {
    "hs-alpha": (["alpha_leaf", "alpha_mid", "alpha_outer"], 6, 40000, 6),
    "hs-beta": (["lib_beta_leaf", "lib_beta_mid", "beta_outer"], 8, 24000, 4),
    "hs-gamma": (["hsprof::Builder<long>::make(unsigned long)", "gamma_cxx", "gamma_outer"], 5, 8000, 0),
}

def fname(f):
    return re.sub(r"\+0x[0-9a-f]+$", "", f["name"])

threads = {t["name"]: t for t in d["threads"]}
for tname, (chain, n, size, kept) in CHAINS.items():
    t = threads.get(tname)
    if not t:
        bad.append("no thread %s in %s" % (tname, sorted(threads)))
        continue
    if len(t["stacks"]) != 1:
        bad.append("%s: %d stacks, want 1" % (tname, len(t["stacks"])))
        continue
    s = d["stacks"][t["stacks"][0]]
    names = [fname(f) for f in s["frames"]]
    if names[:3] != chain:
        bad.append("%s: innermost frames %s, want %s" % (tname, names[:4], chain))
    if s["truncated"]:
        bad.append("%s: stack truncated: %s" % (tname, names))
    if "start_thread" not in names:
        bad.append("%s: the unwind did not reach start_thread: %s" % (tname, names))
    if any("sampler" in (f["object"] or "") for f in s["frames"]):
        bad.append("%s: the sampler's frames are left: %s" % (tname, names))
    want = (n * size, n, kept * size, kept)
    got = (s["alloc_bytes"], s["alloc_objects"], s["inuse_bytes"], s["inuse_objects"])
    if got != want:
        bad.append("%s: alloc/inuse bytes/objects %s, want %s" % (tname, got, want))
    if (t["alloc_bytes"], t["inuse_bytes"]) != (n * size, kept * size):
        bad.append("%s: thread totals %s %s" % (tname, t["alloc_bytes"], t["inuse_bytes"]))
    if s["frames"][0]["file"] is None or not s["frames"][0]["file"].split(":")[-1].isdigit():
        bad.append("%s: no file:line for %s" % (tname, s["frames"][0]))
    if tname == "hs-beta" and not (s["frames"][0]["object"] or "").endswith("libhsprof.so"):
        bad.append("%s: innermost frame's object %s" % (tname, s["frames"][0]["object"]))
    # the live blocks are in the thread's own arena
    if kept:
        ar = [a for a in d["arenas"] if t["stacks"][0] in a["stacks"]]
        if len(ar) != 1 or ar[0]["kind"] != "thread" or ar[0]["index"] < 1 or ar[0]["inuse_bytes"] != kept * size:
            bad.append("%s: arenas holding it: %s" % (tname, ar))
if d["samples"] != 19 or d["frees"] != 9:
    bad.append("samples %d frees %d, want 19 and 9" % (d["samples"], d["frees"]))
totals = d["totals"]
if totals["alloc_bytes"] != 6 * 40000 + 8 * 24000 + 5 * 8000 or totals["inuse_bytes"] != 6 * 40000 + 4 * 24000:
    bad.append("totals %s" % totals)

# folded: "outer;...;inner VALUE", the same figures
for kind, key in ((".folded", "alloc_bytes"), (".inuse.folded", "inuse_bytes")):
    lines = open(prefix + kind).read().splitlines()
    want = {tuple(reversed([f["name"] for f in s["frames"]])): s[key] for s in d["stacks"] if s[key]}
    got = {}
    for l in lines:
        m = re.fullmatch(r"(\S.*) (\d+)", l)
        if not m:
            bad.append("%s: bad line %r" % (kind, l))
            continue
        got[tuple(m.group(1).split(";"))] = int(m.group(2))
    if got != want:
        bad.append("%s: %s, want %s" % (kind, got, want))

# SVG: a titled rectangle for each chain's innermost frame with its bytes
svg = open(prefix + ".svg").read()
for tname, (chain, n, size, kept) in CHAINS.items():
    inner = [f["name"] for f in d["stacks"][threads[tname]["stacks"][0]]["frames"]][0]
    esc = inner.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "<title>%s (%d bytes" % (esc, n * size) not in svg:
        bad.append("svg: no title for %s with %d bytes" % (inner, n * size))

# pprof: gunzip, decode the protobuf, rebuild each sample's function names
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7f) << s; s += 7
        if not c & 0x80:
            return v, i

def fields(b):
    i, out = 0, []
    while i < len(b):
        k, i = varint(b, i)
        f, w = k >> 3, k & 7
        if w == 0:
            v, i = varint(b, i)
        elif w == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
        else:
            raise ValueError("wire type %d" % w)
        out.append((f, w, v))
    return out

def packed(v, w):
    if w == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i); out.append(x)
    return out

p = fields(gzip.decompress(open(prefix + ".pb.gz", "rb").read()))
strings = [v.decode() for f, w, v in p if f == 6]
if not strings or strings[0] != "":
    bad.append("pprof: string table does not start with \"\"")
types = []
for f, w, v in p:
    if f == 1:
        vt = dict((ff, vv) for ff, ww, vv in fields(v))
        types.append((strings[vt.get(1, 0)], strings[vt.get(2, 0)]))
if types != [("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"), ("inuse_space", "bytes")]:
    bad.append("pprof: sample types %s" % types)
funcs = {}
for f, w, v in p:
    if f == 5:
        fn = dict((ff, vv) for ff, ww, vv in fields(v))
        funcs[fn[1]] = strings[fn.get(2, 0)]
locs = {}
for f, w, v in p:
    if f == 4:
        lf = fields(v)
        lid = [vv for ff, ww, vv in lf if ff == 1][0]
        lines = [dict((a, c) for a, b, c in fields(vv)) for ff, ww, vv in lf if ff == 4]
        locs[lid] = funcs[lines[0][1]]
samples = {}
for f, w, v in p:
    if f == 2:
        sf = fields(v)
        ids = sum((packed(vv, ww) for ff, ww, vv in sf if ff == 1), [])
        vals = sum((packed(vv, ww) for ff, ww, vv in sf if ff == 2), [])
        samples[tuple(locs[x] for x in ids)] = vals
period = [v for f, w, v in p if f == 12]
if period != [1]:
    bad.append("pprof: period %s, want [1]" % period)
for tname, (chain, n, size, kept) in CHAINS.items():
    c = tuple(re.sub(r"\+0x[0-9a-f]+$", "", x) for x in chain)
    got = [v for k, v in samples.items() if k[:3] == c]
    if got != [[n, n * size, kept, kept * size]]:
        bad.append("pprof: %s: %s" % (tname, got))

for b in bad:
    print("%s: %s" % (variant, b))
sys.exit(1 if bad else 0)
EOF
}

# run VARIANT CMD...: start the target, analyse its samples while it lives
run()
{
	local variant=$1
	shift
	rm -f "$HS_TMP/samples"
	# the stand-in sampler, not the real one meson may put first in
	# LD_LIBRARY_PATH (both are libheapscope-sampler.so)
	HS_TEST_SAMPLES=$HS_TMP/samples LD_LIBRARY_PATH=$TARGETS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} start_target "$@"
	local pid=$TARGET_PID
	# shellcheck disable=SC2086 # EXTRA is options, split on purpose
	timeout 120 "$PROFILE_ANALYZE" "$pid" 1 "$HS_TMP/samples" "$HS_TMP/$variant" ${EXTRA:-} ||
		fail "$variant: profile-analyze failed"
	kill "$pid"
}

for v in profiled profiled-o2; do
	run "$v" "$(target "$v")"
	check "$HS_TMP/$v" "$v" || fail "$v: the analysis is wrong (above)"
	echo "ok - $v: three chains unwound and counted exactly (json, folded, svg, pprof)"
done

# the plain build's files in other tools
if command -v xmllint >/dev/null; then
	for f in profiled.svg profiled.inuse.svg; do
		xmllint --noout "$HS_TMP/$f" || fail "$f is not well-formed XML"
	done
	echo "ok - the SVG flame graphs pass xmllint"
else
	python3 -c 'import sys, xml.dom.minidom as m; [m.parse(f) for f in sys.argv[1:]]' \
		"$HS_TMP/profiled.svg" "$HS_TMP/profiled.inuse.svg" || fail "the SVG is not well-formed XML"
	echo "ok - the SVG flame graphs parse as XML (# xmllint not found: python's parser used)"
fi
if command -v go >/dev/null && HOME=$HS_TMP GOCACHE=$HS_TMP/gocache timeout 120 go tool pprof -top \
	-sample_index=alloc_space "$HS_TMP/profiled.pb.gz" >"$HS_TMP/top" 2>&1; then
	HOME=$HS_TMP GOCACHE=$HS_TMP/gocache timeout 120 go tool pprof -traces -sample_index=inuse_space \
		"$HS_TMP/profiled.pb.gz" >"$HS_TMP/traces" 2>&1 || fail "go tool pprof -traces: $(cat "$HS_TMP/traces")"
	python3 - "$HS_TMP/top" "$HS_TMP/traces" <<'EOF' || fail "go tool pprof disagrees (above)"
import re, sys
top = open(sys.argv[1]).read()
# flat figures of the innermost frames, in kB as pprof prints them
want = [("alpha_leaf", 240000), ("lib_beta_leaf", 192000), ("hsprof::Builder::make", 40000)]
rows = [l.split() for l in top.splitlines() if re.match(r"\s*[\d.]+[kMG]?B\s", l)]
flat = [(r[-1], r[0]) for r in rows if r[0] != "0"]
if [f for f, _ in flat] != [w for w, _ in want]:
    sys.exit("top: %s, want %s\n%s" % (flat, want, top))
for (name, v), (_, kb) in zip(want, flat):
    if abs(float(kb[:-2]) - v / 1024) > 0.01:
        sys.exit("top: %s %s, want %.2fkB" % (name, kb, v / 1024))
traces = open(sys.argv[2]).read()
blocks = [b.split() for b in traces.split("-----------+")]
ok = 0
for b in blocks:
    if "alpha_leaf" in b and b[b.index("alpha_leaf"):b.index("alpha_leaf") + 3] == ["alpha_leaf", "alpha_mid", "alpha_outer"]:
        ok += 1
    if "lib_beta_leaf" in b and b[b.index("lib_beta_leaf"):b.index("lib_beta_leaf") + 3] == ["lib_beta_leaf", "lib_beta_mid", "beta_outer"]:
        ok += 1
if ok != 2:
    sys.exit("traces: the chains are not there in order\n" + traces)
EOF
	echo "ok - go tool pprof -top and -traces show the same stacks and bytes"
else
	echo "# skip: go tool pprof: go is not installed (apt-get install golang-go) or cannot run"
fi

# a short --max-frames: every stack cut, and said so
EXTRA="--max-frames 2" run short "$(target profiled)"
python3 - "$HS_TMP/short.json" <<'EOF' || fail "--max-frames 2: stacks not cut and marked"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["stacks"] and all(len(s["frames"]) == 2 and s["truncated"] for s in d["stacks"]), d["stacks"]
EOF
echo "ok - --max-frames 2 cuts stacks and marks them truncated"

# JIT code (anonymous executable memory): the unwind ends there, said so;
# named from /tmp/perf-PID.map, and walked past by its frame pointer
HS_TEST_JIT=1 run jit "$(target profiled)"
HS_TEST_JIT=1 HS_TEST_PERFMAP=1 run perfmap "$(target profiled)"
rm -f "/tmp/perf-$TARGET_PID.map"
python3 - "$HS_TMP/jit.json" "$HS_TMP/perfmap.json" <<'EOF' || fail "JIT frames wrong (above)"
import json, re, sys
def jit_stack(path):
    d = json.load(open(path))
    t = [t for t in d["threads"] if t["name"] == "hs-jit"][0]
    s = [d["stacks"][i] for i in t["stacks"] if d["stacks"][i]["frames"][0]["name"].startswith("jit_leaf+")]
    assert len(s) == 1, s
    return s[0], [re.sub(r"\+0x[0-9a-f]+$", "", f["name"]) for f in s[0]["frames"]]
s, names = jit_stack(sys.argv[1])
assert names == ["jit_leaf", "[unknown, JIT?]"] and s["truncated"] and s["alloc_bytes"] == 48000, (names, s)
s, names = jit_stack(sys.argv[2])
assert names[:3] == ["jit_leaf", "hsjit::stub", "jit_outer"] and "start_thread" in names and not s["truncated"], names
EOF
echo "ok - a JIT frame ends the stack as [unknown, JIT?]; with a perf map it is named and walked past"

# stripped, the debug info apart: names from it, and none without it
if command -v objcopy >/dev/null && command -v strip >/dev/null; then
	D=$HS_TMP/strip
	mkdir -p "$D"
	objcopy --only-keep-debug "$(target profiled)" "$D/profiled-stripped.debug"
	strip -s -o "$D/profiled-stripped" "$(target profiled)"
	objcopy --add-gnu-debuglink="$D/profiled-stripped.debug" "$D/profiled-stripped"
	if readelf -S "$D/profiled-stripped" | grep -q '\.symtab'; then
		fail "strip left a .symtab"
	fi
	export LD_LIBRARY_PATH=$TARGETS_DIR
	run stripped "$D/profiled-stripped"
	check "$HS_TMP/stripped" stripped || fail "stripped: the analysis is wrong (above)"
	echo "ok - stripped target: stacks complete, names from the separate debug file"
	EXTRA=--no-debuginfo run nodebug "$D/profiled-stripped"
	python3 - "$HS_TMP/nodebug.json" <<'EOF' || fail "--no-debuginfo: static functions still named"
import json, sys
d = json.load(open(sys.argv[1]))
names = [f["name"] for s in d["stacks"] for f in s["frames"]]
assert not any(n.startswith(("alpha_leaf", "alpha_mid", "alpha_outer")) for n in names), names
assert any(n.startswith("profiled-stripped+0x") for n in names), names
EOF
	echo "ok - without debug info the stripped target's static functions are unnamed"
else
	echo "# skip: stripped target: objcopy or strip not found"
fi
