#!/bin/sh
# kpe-agent package: before removal (deb: remove|upgrade|deconfigure|
# failed-upgrade, rpm: 0 erase, 1 upgrade). Stops and disables the service
# when the package goes away; an upgrade restarts it in postinstall.
set -e

case "$1" in
remove | deconfigure | 0) ;;
*) exit 0 ;;
esac

if command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ]; then
		systemctl stop kpe-agent.service || true
	fi
	systemctl disable kpe-agent.service >/dev/null 2>&1 || true
fi
exit 0
