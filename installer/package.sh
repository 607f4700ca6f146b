#!/usr/bin/env bash
# make package: builds into $PKG_DIR (default build/pkg)
#   kpe-agent_<version>_amd64.deb and kpe-agent-<version>-1.x86_64.rpm
#     (nfpm, installer/nfpm.yaml; kpe-agent and kpectl for linux/amd64 with
#     cgo, as they link libpcsclite, and their man pages, gzipped, made by
#     their hidden `man` command)
#   kpe-agent-windows-amd64.zip
#     (kpe-agent.exe and kpectl.exe for windows/amd64 without cgo, agent.yaml
#     with Windows paths, install.ps1, uninstall.ps1, README-windows.txt,
#     and kpe-kiosk-edge.reg, the example Edge policies of a kiosk PC, which
#     install.ps1 does not apply)
# Environment: GO, NFPM (the nfpm command), PKG_DIR, KPE_AGENT_YAML (the
# configuration to ship), PKG_VERSION (default: installer/version.sh),
# PKG_MAINTAINER.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
NFPM=${NFPM:-$GO run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.43.0}
PKG_DIR=${PKG_DIR:-build/pkg}
KPE_AGENT_YAML=${KPE_AGENT_YAML:-configs/agent.yaml}
PKG_VERSION=${PKG_VERSION:-$(installer/version.sh)}
PKG_MAINTAINER=${PKG_MAINTAINER:-kpe-agent maintainers <kpe-agent@localhost>}

[ -f "$KPE_AGENT_YAML" ] || { echo "package: $KPE_AGENT_YAML is missing" >&2; exit 1; }
stage=$PKG_DIR/stage
rm -rf "$stage"
rm -f "$PKG_DIR"/kpe-agent_*.deb "$PKG_DIR"/kpe-agent-*.rpm "$PKG_DIR"/kpe-agent-windows-amd64.zip
mkdir -p "$stage/linux-amd64" "$stage/windows-amd64"

# The version and the build date (SOURCE_DATE_EPOCH when set, for a
# reproducible build) go into internal/buildinfo; the commit comes from Go's
# VCS stamp (-buildvcs=auto overrides a -buildvcs=false in GOFLAGS), and is
# set with -X too for a linked git worktree, which Go does not stamp.
buildinfo=kpe-agent/internal/buildinfo
build_date=$(date -u ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)
ldflags="-X $buildinfo.version=$PKG_VERSION -X $buildinfo.buildDate=$build_date"
if commit=$(git rev-parse HEAD 2>/dev/null); then
	ldflags="$ldflags -X $buildinfo.commit=$commit"
fi
echo ">> kpe-agent $PKG_VERSION: building linux/amd64 (cgo) and windows/amd64"
CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $GO build -buildvcs=auto -trimpath -ldflags "$ldflags" -o "$stage/linux-amd64/" ./cmd/kpe-agent ./cmd/kpectl
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $GO build -buildvcs=auto -trimpath -ldflags "$ldflags" -o "$stage/windows-amd64/" ./cmd/kpe-agent ./cmd/kpectl

# Man pages (section 1) of both binaries and each of their commands, gzipped
# as Debian policy wants (-n: no name or time stamp in the .gz). The linux
# binaries run here: building them with cgo already needs a linux/amd64 host.
# They run with an empty environment: flags whose defaults come from
# KPE_* variables would otherwise ship the packager's values; the page date
# is the commit's, so the pages are reproducible.
man=$stage/linux-amd64/man
mkdir -p "$man"
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
for bin in kpe-agent kpectl; do
	env -i PATH="$PATH" SOURCE_DATE_EPOCH="$epoch" "$stage/linux-amd64/$bin" man --dir "$man"
done
gzip -9n "$man"/*.1

export PKG_VERSION PKG_MAINTAINER KPE_AGENT_YAML KPE_STAGE="$stage/linux-amd64"
for p in deb rpm; do
  $NFPM package --config installer/nfpm.yaml --packager "$p" --target "$PKG_DIR/"
done

$GO run installer/winzip.go -o "$PKG_DIR/kpe-agent-windows-amd64.zip" -config "$KPE_AGENT_YAML" \
  "$stage/windows-amd64/kpe-agent.exe" "$stage/windows-amd64/kpectl.exe" \
  installer/windows/install.ps1 installer/windows/uninstall.ps1 installer/windows/README-windows.txt \
  installer/windows/kpe-kiosk-edge.reg LICENSE
rm -rf "$stage"
ls -l "$PKG_DIR"/kpe-agent_*.deb "$PKG_DIR"/kpe-agent-*.rpm "$PKG_DIR/kpe-agent-windows-amd64.zip"
