#!/usr/bin/env bash
# Runs `go test -v` with the given arguments, keeps the full log in
# build/test.log, and prints what matters: package results, the integration
# banners (proof that pcscd was really used), skips, failures, and a closing
# "N passed, N failed, N skipped" line.
set -uo pipefail
mkdir -p build
log=build/test.log
go test -v "$@" >"$log" 2>&1
rc=$?
grep -E '^(ok|FAIL|---|\?)|^\s+--- (FAIL|SKIP)|INTEGRATION' "$log" | grep -vE -- '--- PASS' || true
if [ $rc -ne 0 ]; then
  echo
  echo "==== failures (full log: $log) ===="
  grep -nE -B2 -A25 -- '--- FAIL|^panic:|race detected|build failed|\[setup failed\]' "$log" | head -400 || true
fi
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
echo
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [ $rc -ne 0 ] && [ "$failed" = 0 ]; then echo "go test exited $rc (build or setup failure, see $log)"; fi
exit $rc
