#!/usr/bin/env python3
"""failed.py BUILD_DIR: after a failed `meson test`, what each failing test
said last, a few short lines apiece.

meson's --print-errorlogs prints whole logs, ahead of its summary: where
only the tail of a CI log is kept, the reason for a red run is cut off.
This goes last, and short.
"""
import json
import os
import sys

LINES = 4
WIDTH = 240

path = os.path.join(sys.argv[1], "meson-logs", "testlog.json")
try:
    runs = [json.loads(line) for line in open(path)]
except OSError as e:
    sys.exit(f"failed.py: {path}: {e.strerror}")
bad = [r for r in runs if r.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL")]
if not bad:
    sys.exit(0)
print(f"--- {len(bad)} failed, last lines of each:")
for r in bad:
    print(f"{r['name']}: {r['result']}, exit {r.get('returncode')}")
    text = (r.get("stdout") or "") + (r.get("stderr") or "")
    out = [l for l in text.splitlines() if l.strip()]
    # the reason: a test's not ok and framework lines first, then its tail
    why = [l for l in out if l.startswith(("not ok", "FAIL:", "Bail out")) or
           "harness error" in l or "runtime error" in l or "Sanitizer" in l]
    seen = set()
    lines = [l for l in (why or out) if not (l in seen or seen.add(l))]
    for line in lines[-LINES:]:
        print("  " + (line if len(line) <= WIDTH else line[:WIDTH] + "..."))
