#!/bin/bash
# Build a libFuzzer harness with clang (ASan + UBSan + coverage) and run it
# over its seed corpus for a fixed number of executions: the walker's
# (fuzz_walk.c, corpus/), or with HS_FUZZ_TARGET=mtrace_log the trace log
# parser's (fuzz_mtrace_log.c, corpus_mtrace_log/).
#
#   tests/fuzz/run.sh OUTDIR RUNS [libFuzzer options...]
#
# make check runs a short fixed run; long runs (10 million) are made by hand:
#   tests/fuzz/run.sh /tmp/fz 10000000 -jobs=2 -workers=2
# Exits 77 (skip) when clang cannot build a libFuzzer binary here.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: run.sh OUTDIR RUNS [options]}
runs=${2:?usage: run.sh OUTDIR RUNS [options]}
shift 2
mkdir -p "$out"
command -v clang >/dev/null || { echo "SKIP: clang is not installed"; exit 77; }
target=${HS_FUZZ_TARGET:-walk}
case $target in
walk) libsrc="err maps proc mem layout heap info chunks strtab"; seeds=corpus; max_len=262144 ;;
mtrace_log) libsrc="err mtrace_log"; seeds=corpus_mtrace_log; max_len=4096 ;;
*) echo "run.sh: unknown HS_FUZZ_TARGET $target"; exit 99 ;;
esac
bin=$out/fuzz_$target
if ! clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I "$src/lib" -o "$bin" "$src/tests/fuzz/fuzz_$target.c" \
	$(for f in $libsrc; do echo "$src/lib/$f.c"; done) 2>"$out/build_$target.log"; then
	if grep -q 'fuzzer' "$out/build_$target.log"; then
		echo "SKIP: clang cannot link libFuzzer here (libclang-rt-*-dev missing?)"
		cat "$out/build_$target.log"
		exit 77
	fi
	cat "$out/build_$target.log"
	exit 99
fi
# work on a copy: new inputs the fuzzer finds must not land in the tree
corpus=$out/corpus_$target
rm -rf "$corpus"
cp -r "$src/tests/fuzz/$seeds" "$corpus"
"$bin" "$corpus" -runs="$runs" -max_len=$max_len -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" \
	2>"$out/fuzz_$target.log" || { tail -40 "$out/fuzz_$target.log"; exit 1; }
grep -E 'stat::number_of_executed_units|Done' "$out/fuzz_$target.log" | tail -2
echo "fuzz $target: $runs runs without a crash, a leak or a hang"
