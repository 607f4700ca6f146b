#!/bin/sh
# Prints the package version, valid for Debian and RPM: from the newest
# v* tag (v1.2.3 -> 1.2.3, v1.2.3-4-gabcdef0-dirty -> 1.2.3+4.gabcdef0.dirty,
# v1.2.3-rc1 -> 1.2.3~rc1), else 0.0.0~git<short hash>[.dirty].
set -eu
cd "$(dirname "$0")/.."
if d=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null); then
	echo "${d#v}" | sed -e 's/-dirty$/.dirty/' -e 's/-\([0-9][0-9]*\)-g\([0-9a-f][0-9a-f]*\)/+\1.g\2/' -e 's/-/~/g'
	exit 0
fi
h=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=
if [ "$h" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null; then
	dirty=.dirty
fi
echo "0.0.0~git$h$dirty"
