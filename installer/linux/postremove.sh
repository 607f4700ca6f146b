#!/bin/sh
# kpe-agent package: after removal (deb: remove|purge|upgrade|..., rpm:
# 0 erase, 1 upgrade). Only purge (Debian) deletes the data: the outbox in
# /var/lib/kpe-agent (records not yet synced are lost), the logs, the API
# token, the kpe-agent account and the groups kpe-agent and kpe-agent-api. Other files in /etc/kpe-agent/secrets
# (SAM and TLS keys an operator put there) are kept. rpm has no purge:
# an erase keeps everything but the package's files.
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
purge)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	rm -rf /var/lib/kpe-agent /var/log/kpe-agent
	rm -f /etc/kpe-agent/secrets/api-token /etc/kpe-agent/secrets/.api-token.*
	rmdir /etc/kpe-agent/secrets 2>/dev/null || true
	rmdir /etc/kpe-agent 2>/dev/null || true
	if getent passwd kpe-agent >/dev/null; then
		userdel kpe-agent || echo "kpe-agent: could not delete the account kpe-agent" >&2
	fi
	for g in kpe-agent kpe-agent-api; do
		if getent group "$g" >/dev/null; then
			groupdel "$g" || echo "kpe-agent: could not delete the group $g" >&2
		fi
	done
	;;
esac
exit 0
