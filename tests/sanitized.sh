#!/bin/bash
# sanitized.sh ASAN_BUILD_DIR: the unit, live and cli suites under
# AddressSanitizer/UBSan (make check's second pass).
#
# gcc 12's AddressSanitizer runtime crashes at random at start-up (SIGSEGV
# before main) when the kernel places mmaps with more than 28 bits of
# randomness (vm.mmap_rnd_bits=32, as some distributions' kernels set).  As
# root, the pass lowers it to 28 and puts it back after; otherwise it says
# so and runs anyway.
set -u
dir=$1
bits_file=/proc/sys/vm/mmap_rnd_bits
bits=$(cat "$bits_file" 2>/dev/null || echo 0)
restore=
if [ "$bits" -gt 28 ]; then
	if [ -w "$bits_file" ] && echo 28 >"$bits_file" 2>/dev/null; then
		echo "vm.mmap_rnd_bits was $bits: AddressSanitizer crashes at random above 28; 28 for this pass"
		restore=$bits
		trap 'echo "$restore" >"$bits_file"' EXIT
		trap 'exit 130' INT TERM
	else
		echo "warning: vm.mmap_rnd_bits=$bits: AddressSanitizer may crash at random at start-up (set it to 28 as root)"
	fi
fi
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1:allow_user_segv_handler=1 HS_SANITIZED=1 \
	${MESON:-meson} test -C "$dir" --print-errorlogs --timeout-multiplier 2 --suite unit --suite live --suite cli ||
	{ python3 "$(dirname "$0")/failed.py" "$dir"; exit 1; }
