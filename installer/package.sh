#!/usr/bin/env bash
# make package: builds into $PKG_DIR (default build/pkg)
#   kpe-agent_<version>_amd64.deb and kpe-agent-<version>-1.x86_64.rpm
#     (nfpm, installer/nfpm.yaml; kpe-agent and kpectl for linux/amd64 with
#     cgo, as they link libpcsclite)
#   kpe-agent-windows-amd64.zip
#     (kpe-agent.exe and kpectl.exe for windows/amd64 without cgo, agent.yaml
#     with Windows paths, install.ps1, uninstall.ps1, README-windows.txt)
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

ldflags="-X main.version=$PKG_VERSION"
echo ">> kpe-agent $PKG_VERSION: building linux/amd64 (cgo) and windows/amd64"
CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $GO build -trimpath -ldflags "$ldflags" -o "$stage/linux-amd64/" ./cmd/kpe-agent ./cmd/kpectl
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $GO build -trimpath -ldflags "$ldflags" -o "$stage/windows-amd64/" ./cmd/kpe-agent ./cmd/kpectl

export PKG_VERSION PKG_MAINTAINER KPE_AGENT_YAML KPE_STAGE="$stage/linux-amd64"
for p in deb rpm; do
  $NFPM package --config installer/nfpm.yaml --packager "$p" --target "$PKG_DIR/"
done

$GO run installer/winzip.go -o "$PKG_DIR/kpe-agent-windows-amd64.zip" -config "$KPE_AGENT_YAML" \
  "$stage/windows-amd64/kpe-agent.exe" "$stage/windows-amd64/kpectl.exe" \
  installer/windows/install.ps1 installer/windows/uninstall.ps1 installer/windows/README-windows.txt LICENSE
rm -rf "$stage"
ls -l "$PKG_DIR"/kpe-agent_*.deb "$PKG_DIR"/kpe-agent-*.rpm "$PKG_DIR/kpe-agent-windows-amd64.zip"
