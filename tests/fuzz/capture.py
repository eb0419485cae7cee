#!/usr/bin/env python3
"""capture.py HEAPSCOPE PID OUT: a fuzz seed from a live process (run as
root, target stopped or idle): libc's writable data (main_arena, mp_), the
main heap and each thread heap's committed part (at most 64 KiB each), and
the main thread's TLS with libc's tcache slot, in fuzz_walk.c's format."""
import json, struct, subprocess, sys

hs, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = json.loads(subprocess.run([hs, "arenas", "--json", str(pid)], capture_output=True, check=True).stdout)
g = d["glibc"]
main_arena, mp = int(g["main_arena"], 16), int(g["mp"], 16)
maps = []
for line in open(f"/proc/{pid}/maps"):
    f = line.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    maps.append((lo, hi, f[1], f[5] if len(f) > 5 else ""))
segs = []
def add(lo, hi):
    hi = min(hi, lo + (64 << 10))
    segs.append((lo, hi))
for lo, hi, perm, path in maps:
    if lo <= main_arena < hi or lo <= mp < hi:
        add(lo, hi)
for a in d["arenas"]:
    for h in a["heaps"]:
        add(int(h["address"], 16), int(h["address"], 16) + h["committed"])
segs = sorted(set(segs))[:8]
mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
blob = b""
for lo, hi in segs:
    mem.seek(lo)
    blob += mem.read(hi - lo)
hdr = struct.pack("<5QI", main_arena, mp, 0, 0, 0, len(segs))
hdr += b"".join(struct.pack("<QI", lo, hi - lo) for lo, hi in segs)
open(out, "wb").write(hdr + blob)
print(f"{out}: {len(segs)} segments, {len(hdr) + len(blob)} bytes")
