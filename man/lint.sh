#!/bin/sh
# Lint man pages with mandoc: any message at warning level or above fails.
# Usage: lint.sh PAGE...
if ! command -v mandoc >/dev/null 2>&1; then
	echo "SKIP: mandoc not found"
	exit 77
fi
status=0
for page in "$@"; do
	out=$(mandoc -T lint -W warning "$page" 2>&1)
	rc=$?
	if [ -n "$out" ] || [ "$rc" -ne 0 ]; then
		printf '%s\n' "$out"
		echo "FAIL: $page (mandoc exit status $rc)"
		status=1
	else
		echo "ok: $page"
	fi
done
exit $status
