#!/bin/sh
# kpe-agent package: before unpacking (deb: install|upgrade, rpm: 1|2).
# Creates the system account kpe-agent and the group kpe-agent-api (the
# local API token's readers; the account is in it, to read the token)
# first, so that the package's directories unpack already owned by them.
set -e

case "$1" in
install | upgrade | 1 | 2) ;;
*) exit 0 ;;
esac

nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
if ! getent group kpe-agent >/dev/null; then
	groupadd --system kpe-agent
fi
if ! getent group kpe-agent-api >/dev/null; then
	groupadd --system kpe-agent-api
fi
if ! getent passwd kpe-agent >/dev/null; then
	useradd --system --gid kpe-agent --groups kpe-agent-api --home-dir /var/lib/kpe-agent --no-create-home \
		--shell "$nologin" --comment "KPE terminal agent" kpe-agent
fi
exit 0
