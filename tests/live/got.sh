#!/bin/bash
# The GOT slot finder (lib/got.c) on live targets: gotuse built as a PIE with
# lazy binding, as a non-PIE executable (canonical PLT entries) and with
# BIND_NOW (its GOT read-only after start), each linked with zlib.  For each:
#   - the slots found are exactly those `readelf -rW` lists for each loaded
#     object (JUMP_SLOT, GLOB_DAT, R_X86_64_64 naming the malloc family at
#     libc's default version), at load base + r_offset, the base taken from
#     /proc/PID/maps and the file's first PT_LOAD;
#   - libc's address of each name equals libc's base + its `readelf
#     --dyn-syms` value, and each slot's value, read here again from
#     /proc/PID/mem, is that address (bound), the executable's canonical
#     PLT entry (non-PIE), or the slot's PLT stub inside its own .plt
#     (lazy, never called); nothing else;
#   - every object is there once (libz too, though the target also maps its
#     file as data), the vdso and a memfd of text are not;
#   - --exclude by soname drops an object, and bad inputs fail cleanly: an
#     object whose file cannot be opened (a doctored maps file), a pid gone;
#   - with libc_malloc_debug.so.0 dlopen()ed late: it is listed as defining
#     malloc, and its references to __malloc_hook & co are bound to libc's
#     compat variables, which hold NULL.
#
# Needs: GOT_DUMP, TARGETS_DIR, python3, readelf.
set -eu
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

need_cmd python3
need_cmd readelf
[ -x "${GOT_DUMP:-}" ] || framework_failure "GOT_DUMP is not set (path to the got-dump helper)"
[ -x "$TARGETS_DIR/gotuse" ] || skip "gotuse was not built (zlib1g-dev missing)"

# check PID DUMPFILE VARIANT: compare got-dump's view with readelf's and
# /proc/PID/mem's
check()
{
	python3 - "$1" "$2" "$3" <<'EOF'
import re, struct, subprocess, sys

pid, dump, variant = int(sys.argv[1]), sys.argv[2], sys.argv[3]
NAMES = ["malloc", "free", "calloc", "realloc", "memalign", "aligned_alloc", "posix_memalign", "valloc",
         "pvalloc", "malloc_usable_size", "free_sized", "free_aligned_sized"]
TYPES = {"R_X86_64_JUMP_SLOT": "JUMP_SLOT", "R_X86_64_GLOB_DAT": "GLOB_DAT", "R_X86_64_64": "64"}
err = []

def readelf(*args):
    return subprocess.run(["readelf", "-W"] + list(args), capture_output=True, text=True, check=True).stdout

# --- what got-dump says
targets, objects, slots = {}, {}, []
for line in open(dump):
    f = line.rstrip("\n").split("\t")
    if f[0] == "target":
        targets[f[1]] = dict(defined=f[2] == "1", version=f[3], libc=int(f[4], 16), canonical=int(f[5], 16))
    elif f[0] == "object":
        if f[1] in objects:
            err.append(f"object {f[1]} listed twice")
        objects[f[1]] = dict(base=int(f[2], 16), build_id=f[3], is_libc=f[4] == "1", bind_now=f[5] == "1",
                             relro=(int(f[6], 16), int(f[7], 16)), nslots=int(f[8]), skipped=f[10])
    elif f[0] == "slot":
        slots.append(dict(obj=f[1], sym=f[2], type=f[3], addr=int(f[4], 16), addend=int(f[5]),
                          version=f[6], relro=f[7] == "1", lazy=int(f[8], 16), value=int(f[9], 16),
                          state=f[10]))

# --- the loaded objects, from the maps: a file with an executable mapping;
# its base from the offset-0 mapping of the same inode just below it
maps = []
for line in open(f"/proc/{pid}/maps"):
    p = line.split(None, 5)
    lo, hi = (int(x, 16) for x in p[0].split("-"))
    maps.append(dict(lo=lo, hi=hi, perms=p[1], off=int(p[2], 16), inode=int(p[4]),
                     path=p[5].strip() if len(p) > 5 else ""))
loaded = {}
for m in maps:
    if "x" in m["perms"] and m["path"].startswith("/") and m["inode"]:
        firsts = [q for q in maps if q["inode"] == m["inode"] and q["path"] == m["path"] and q["off"] == 0
                  and q["lo"] <= m["lo"]]
        loaded[m["path"]] = max(firsts, key=lambda q: q["lo"])["lo"]
if set(loaded) != set(objects):
    err.append(f"objects: got-dump {sorted(objects)}, maps {sorted(loaded)}")
for bad in ("[vdso]", "memfd"):
    if any(bad in o for o in objects):
        err.append(f"{bad} listed as an object")
if sum(1 for o in objects if "/libz.so" in o) != 1:
    err.append("libz is not listed exactly once (its file is also mapped as data)")

def first_load_vaddr(path):
    for line in readelf("-l", path).splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            return int(f[2], 16) & ~0xfff
    raise SystemExit(f"#   no PT_LOAD in {path}")

def section(path, name):
    for line in readelf("-S", path).splitlines():
        m = re.search(r"\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m and m.group(1) == name:
            return int(m.group(2), 16), int(m.group(3), 16)
    return None

# --- libc's default version and address of each name (readelf --dyn-syms)
libc = [o for o in objects if objects[o]["is_libc"]]
if len(libc) != 1:
    raise SystemExit(f"#   libc objects: {libc}")
libc = libc[0]
libc_base = loaded[libc] - first_load_vaddr(libc)
want = {}
for line in readelf("--dyn-syms", libc).splitlines():
    m = re.match(r"\s*\d+:\s+([0-9a-f]+)\s+\d+\s+(\w+)\s+\w+\s+\w+\s+(\w+)\s+(\w+)@@(\S+)", line)
    if m and m.group(4) in NAMES and m.group(3) != "UND":
        want[m.group(4)] = (m.group(5), libc_base + int(m.group(1), 16))
for n in NAMES:
    t = targets.get(n)
    if n in want:
        if not t or t["version"] != want[n][0] or t["libc"] != want[n][1]:
            err.append(f"target {n}: got-dump {t}, readelf {want[n][0]} {want[n][1]:#x}")
    elif t and t["defined"]:
        err.append(f"target {n}: got-dump says libc defines it, readelf does not")

# --- every slot readelf -r lists, at base + r_offset
expected = set()
for path, start in loaded.items():
    base = start - first_load_vaddr(path)
    if abs(base - objects[path]["base"]) != 0:
        err.append(f"{path}: base {objects[path]['base']:#x}, expected {base:#x}")
    for line in readelf("-r", path).splitlines():
        f = line.split()
        if len(f) < 5 or f[2] not in TYPES:
            continue
        m = re.match(r"([^@\s]+)(@@?(\S+))?$", f[4])
        if not m or m.group(1) not in want:
            continue
        if m.group(3) and m.group(3) != want[m.group(1)][0]:
            continue
        addend = int(f[6]) if len(f) > 6 and f[5] == "+" else -int(f[6]) if len(f) > 6 else 0
        if f[2] != "R_X86_64_64":
            addend = 0      # ld.so stores S for JUMP_SLOT and GLOB_DAT (-z mark-plt: A is the PLT offset)
        expected.add((path, m.group(1), TYPES[f[2]], base + int(f[0], 16), addend))
got = {(s["obj"], s["sym"], s["type"], s["addr"], s["addend"]) for s in slots}
for x in sorted(expected - got):
    err.append(f"missing slot {x[0]} {x[1]} {x[2]} {x[3]:#x}")
for x in sorted(got - expected):
    err.append(f"extra slot {x[0]} {x[1]} {x[2]} {x[3]:#x}")
if len(got) != len(slots):
    err.append("a slot is listed twice")
if len(expected) < 10:
    err.append(f"only {len(expected)} slots expected: the target does not exercise enough")

# --- the values, read again here, and what they must be
exe = [o for o in objects if o.endswith("/" + variant)][0]
mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
canon = {n: t["canonical"] for n, t in targets.items() if t["canonical"]}
states = {}
for s in slots:
    mem.seek(s["addr"])
    v, = struct.unpack("<Q", mem.read(8))
    where = f"{s['obj']} {s['sym']} {s['type']} {s['addr']:#x}"
    if v != s["value"]:
        err.append(f"{where}: got-dump read {s['value']:#x}, /proc/PID/mem {v:#x}")
    libc_addr = want[s["sym"]][1] + s["addend"]
    if v == libc_addr:
        state = "libc"
    elif s["sym"] in canon and v == canon[s["sym"]] + s["addend"] and s["type"] != "JUMP_SLOT":
        state = "canonical"
    elif s["type"] == "JUMP_SLOT":
        base = objects[s["obj"]]["base"]
        plts = [x for x in (section(s["obj"], ".plt"), section(s["obj"], ".plt.sec")) if x]
        state = "lazy" if any(base + a <= v < base + a + n for a, n in plts) else "other"
    else:
        state = "other"
    if state != s["state"]:
        err.append(f"{where}: state {s['state']}, expected {state} (value {v:#x})")
    states[(s["obj"], s["sym"], s["type"])] = state
    if s["relro"] != (objects[s["obj"]]["relro"][0] <= s["addr"] < objects[s["obj"]]["relro"][1]):
        err.append(f"{where}: relro flag {s['relro']}")
# what the target did fixes what must be bound
called = ["malloc_usable_size", "calloc", "valloc", "memalign", "realloc", "posix_memalign", "aligned_alloc",
          "pvalloc"]
for n in called:
    if states.get((exe, n, "JUMP_SLOT")) != "libc":
        err.append(f"{exe}: {n} was called, its JUMP_SLOT is {states.get((exe, n, 'JUMP_SLOT'))}")
for s in slots:
    if "/libz.so" in s["obj"] and states[(s["obj"], s["sym"], s["type"])] != "libc":
        err.append(f"libz's {s['sym']} slot is not bound to libc (zlib called it)")
    if s["obj"] == exe and variant == "gotuse-now" and s["type"] != "64" and not s["relro"]:
        err.append(f"BIND_NOW: {s['sym']} {s['type']} not in RELRO")
if variant == "gotuse-nopie":
    if objects[exe]["base"] != 0:
        err.append(f"non-PIE executable with base {objects[exe]['base']:#x}")
    for n in ("malloc", "free"):
        if not canon.get(n) or states.get((libc, n, "GLOB_DAT")) != "canonical":
            err.append(f"non-PIE: libc's {n} GLOB_DAT should hold the executable's canonical PLT entry")
elif canon:
    err.append(f"canonical PLT entries in a PIE: {canon}")
if variant == "gotuse-now" and not objects[exe]["bind_now"]:
    err.append("gotuse-now is not reported BIND_NOW")
if "other" in states.values():
    err.append("a slot holds neither libc's address, a canonical PLT entry nor its PLT stub")
print(f"#   {len(slots)} slots in {len(objects)} objects: " +
      ", ".join(f"{k}={list(states.values()).count(k)}" for k in ("libc", "lazy", "canonical")))
for e in err:
    print("#   " + e)
sys.exit(1 if err else 0)
EOF
}

for variant in gotuse gotuse-nopie gotuse-now; do
	start_target "$TARGETS_DIR/$variant"
	pid=$TARGET_PID
	[ "$variant" != gotuse ] || ptrace_ok "$pid"
	rc=0
	"$GOT_DUMP" "$pid" >"$HS_TMP/$variant.dump" 2>"$HS_TMP/$variant.err" || rc=$?
	if [ "$rc" != 0 ]; then
		sed 's/^/#   /' "$HS_TMP/$variant.err"
		fail "$variant: got-dump exited with $rc"
	fi
	check "$pid" "$HS_TMP/$variant.dump" "$variant" || {
		sed 's/^/#   dump: /' "$HS_TMP/$variant.dump"
		fail "$variant: the slots found disagree with readelf and the target's memory"
	}
	echo "ok - $variant: slots as readelf lists them, values libc's, canonical or lazy"
	check_untouched "$pid" || fail "$variant: target not left untouched"

	if [ "$variant" = gotuse ]; then
		# --exclude by soname: libz is listed as excluded, with no slots
		"$GOT_DUMP" --exclude libz.so.1 "$pid" >"$HS_TMP/excl.dump" ||
			fail "got-dump --exclude libz.so.1 failed"
		grep -q '^object	[^	]*/libz\.so[^	]*	.*	excluded$' "$HS_TMP/excl.dump" ||
			fail "--exclude libz.so.1: libz not listed as excluded"
		! grep -q '^slot	[^	]*/libz\.so' "$HS_TMP/excl.dump" ||
			fail "--exclude libz.so.1: libz slots still listed"
		[ "$(grep -c '^slot' "$HS_TMP/excl.dump")" -gt 10 ] ||
			fail "--exclude libz.so.1 dropped other objects' slots"
		echo "ok - --exclude by soname"

		# An object whose file cannot be opened: the anonymous page holding
		# an ELF magic, given a file name that does not exist.
		elflike=$(sed -n 's/^ELFLIKE 0x\([0-9a-f]*\)$/\1/p' "$TARGET_OUT")
		[ -n "$elflike" ] || framework_failure "gotuse printed no ELFLIKE line"
		awk -v a="$elflike" '{ split($1, r, "-"); if (r[1] == a)
			{ $2 = "r-xp"; $5 = "4242"; $6 = "/nonexistent/libgone.so.1" } print }' "/proc/$pid/maps" >"$HS_TMP/maps.doctored"
		grep -q libgone "$HS_TMP/maps.doctored" || framework_failure "ELFLIKE page $elflike not in the maps"
		rc=0
		"$GOT_DUMP" --maps "$HS_TMP/maps.doctored" "$pid" >/dev/null 2>"$HS_TMP/gone.err" || rc=$?
		[ "$rc" = 2 ] || fail "unopenable object: exit $rc, expected 2"
		grep -q "/nonexistent/libgone.so.1 (mapped at 0x$elflike in pid $pid): cannot open it.*No such file" \
			"$HS_TMP/gone.err" || fail "unopenable object: message '$(cat "$HS_TMP/gone.err")'"
		"$GOT_DUMP" --skip-unusable --maps "$HS_TMP/maps.doctored" "$pid" >"$HS_TMP/skip.dump" ||
			fail "--skip-unusable with an unopenable object failed"
		grep -q '^object	/nonexistent/libgone.so.1	.*	cannot open it' "$HS_TMP/skip.dump" ||
			fail "--skip-unusable: the object is not listed with its reason"
		[ "$(grep -c '^slot' "$HS_TMP/skip.dump")" = "$(grep -c '^slot' "$HS_TMP/gotuse.dump")" ] ||
			fail "--skip-unusable: the other objects' slots changed"
		echo "ok - an object that cannot be opened: a clear error, or skipped with its reason"

		# The pid gone, its maps still in hand.
		cp "/proc/$pid/maps" "$HS_TMP/maps.saved"
		kill -KILL "$pid"
		wait_target "$pid"
		rc=0
		"$GOT_DUMP" --maps "$HS_TMP/maps.saved" "$pid" >/dev/null 2>"$HS_TMP/dead.err" || rc=$?
		if [ "$rc" != 2 ] || ! grep -q "pid $pid is gone" "$HS_TMP/dead.err"; then
			fail "pid gone: exit $rc, '$(cat "$HS_TMP/dead.err")'"
		fi
		rc=0
		"$GOT_DUMP" "$pid" >/dev/null 2>"$HS_TMP/dead2.err" || rc=$?
		if [ "$rc" != 2 ] || ! grep -q "$pid" "$HS_TMP/dead2.err"; then
			fail "pid gone (no maps): exit $rc, '$(cat "$HS_TMP/dead2.err")'"
		fi
		echo "ok - a pid gone: a clear error"
	fi
done

# libc_malloc_debug.so dlopen()ed late, as `mtrace start --inject` will: it
# is an object like any other (excluded by its soname), it defines malloc &
# co (as compat symbols), and its references to the __malloc_hook variables
# are bound to libc's own compat ones, all NULL: so its first call never
# runs generic_hook_ini (docs/INJECT.md).
if ! ldconfig -p 2>/dev/null | grep -q 'libc_malloc_debug\.so\.0 '; then
	echo "ok # SKIP libc_malloc_debug.so.0 is not installed"
	echo "PASS: $ME"
	exit 0
fi
start_target "$TARGETS_DIR/gotuse" debuglib
pid=$TARGET_PID
"$GOT_DUMP" "$pid" >"$HS_TMP/dbg.dump" || fail "got-dump with libc_malloc_debug.so loaded failed"
check "$pid" "$HS_TMP/dbg.dump" gotuse || fail "with libc_malloc_debug.so loaded: see above"
grep -q '^object	[^	]*/libc_malloc_debug\.so\.0	.*	malloc	-$' "$HS_TMP/dbg.dump" ||
	fail "libc_malloc_debug.so.0 is not listed as defining malloc"
"$GOT_DUMP" --exclude libc_malloc_debug.so.0 "$pid" >"$HS_TMP/dbgx.dump" || fail "got-dump --exclude failed"
grep -q '^object	[^	]*/libc_malloc_debug\.so\.0	.*	excluded$' "$HS_TMP/dbgx.dump" ||
	fail "--exclude libc_malloc_debug.so.0: not excluded"
hooks=__malloc_hook,__free_hook,__realloc_hook,__memalign_hook
"$GOT_DUMP" --any-version --names "$hooks" "$pid" >"$HS_TMP/hooks.dump" || fail "got-dump --any-version failed"
python3 - "$pid" "$HS_TMP/hooks.dump" <<'EOF' || fail "the debug library's hook slots: see above"
import re, struct, subprocess, sys
pid, dump = int(sys.argv[1]), sys.argv[2]
err = []
rows = [l.rstrip("\n").split("\t") for l in open(dump)]
objs = {r[1]: int(r[2], 16) for r in rows if r[0] == "object"}
libc = [r[1] for r in rows if r[0] == "object" and r[4] == "1"][0]
syms = subprocess.run(["readelf", "-W", "--dyn-syms", libc], capture_output=True, text=True).stdout
mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
for r in (r for r in rows if r[0] == "target"):
    name, addr, compat = r[1], int(r[4], 16), r[6]
    m = re.search(r":\s+([0-9a-f]+)\s+8\s+OBJECT\s+\w+\s+\w+\s+\d+\s+" + name + r"@GLIBC_2\.2\.5\n", syms)
    if not m or addr != objs[libc] + int(m.group(1), 16) or compat != "1":
        err.append(f"{name}: libc's compat variable is not at {addr:#x} (compat {compat})")
        continue
    mem.seek(addr)
    if struct.unpack("<Q", mem.read(8))[0] != 0:
        err.append(f"libc's {name} is not NULL")
    slots = [s for s in rows if s[0] == "slot" and s[2] == name]
    if len(slots) != 1 or "libc_malloc_debug" not in slots[0][1] or slots[0][3] != "GLOB_DAT" \
            or slots[0][10] != "libc" or int(slots[0][9], 16) != addr:
        err.append(f"{name}: slots {slots}, expected one GLOB_DAT in libc_malloc_debug.so bound to {addr:#x}")
for e in err:
    print("#   " + e)
sys.exit(1 if err else 0)
EOF
echo "ok - libc_malloc_debug.so loaded late: excluded by soname, defines malloc, its hooks bound to libc's NULL ones"

echo "PASS: $ME"
