#!/bin/sh
# kpe-agent package: after unpacking (deb: configure, rpm: 1 install,
# 2 upgrade). Makes sure of the account and the ownership, creates the
# local API token when it is missing, and enables the service. Only when
# systemd is running: restarts the service when it is running (an
# upgrade), else starts it, but only when kpe-agent check-config accepts
# the configuration (a fresh install ships no terminal.id or
# terminal.site: the technician sets them first). Never fails the
# installation because of the service.
set -e

case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;;
esac

# The account (preinstall created it; this covers a package manager that
# skipped preinstall, e.g. dpkg --unpack on a machine without it).
nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
getent group kpe-agent >/dev/null || groupadd --system kpe-agent
getent passwd kpe-agent >/dev/null ||
	useradd --system --gid kpe-agent --home-dir /var/lib/kpe-agent --no-create-home \
		--shell "$nologin" --comment "KPE terminal agent" kpe-agent

for d in /var/lib/kpe-agent /var/log/kpe-agent; do
	mkdir -p "$d"
	chown kpe-agent:kpe-agent "$d"
	chmod 0750 "$d"
done
mkdir -p /etc/kpe-agent/secrets
chown root:kpe-agent /etc/kpe-agent/secrets
chmod 0750 /etc/kpe-agent/secrets

# The local API's bearer token (api.token_file's default): 32 random
# bytes in hex, 0640 root:kpe-agent. An existing token is kept.
token=/etc/kpe-agent/secrets/api-token
if [ ! -e "$token" ]; then
	tmp=$(mktemp /etc/kpe-agent/secrets/.api-token.XXXXXX)
	chmod 0640 "$tmp"
	chown root:kpe-agent "$tmp"
	od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$tmp"
	echo >>"$tmp"
	if [ "$(tr -d '\n' <"$tmp" | wc -c)" -ne 64 ]; then
		rm -f "$tmp"
		echo "kpe-agent: could not create the API token $token" >&2
		exit 1
	fi
	mv "$tmp" "$token"
	echo "kpe-agent: created the local API token $token"
fi

# check_config runs kpe-agent check-config on the configuration as the
# service would see it: with the KPE_* variables of its EnvironmentFile=
# (see kpe-agent.service) and nothing from the package manager's
# environment. Its output is the agent's own messages.
check_config() {
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c '
		set -a
		for f in /etc/default/kpe-agent /etc/sysconfig/kpe-agent; do
			if [ -r "$f" ]; then . "$f"; fi
		done
		set +a
		exec /usr/bin/kpe-agent check-config -config /etc/kpe-agent/agent.yaml
	' 2>&1
}

if command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		systemctl enable kpe-agent.service || echo "kpe-agent: could not enable the service" >&2
		# Not "is this an upgrade" ($2): after apt remove, apt install
		# passes the old version too, with the service stopped.
		if systemctl is-active --quiet kpe-agent.service; then
			systemctl try-restart kpe-agent.service || echo "kpe-agent: could not restart the service; see journalctl -u kpe-agent" >&2
		elif out=$(check_config); then
			systemctl start kpe-agent.service || echo "kpe-agent: could not start the service; see journalctl -u kpe-agent" >&2
		else
			echo "$out" | sed 's/^/kpe-agent: /' >&2
			echo "kpe-agent: the service is enabled but not started: set terminal.id and terminal.site (and the SAM and sync settings) in /etc/kpe-agent/agent.yaml, check it with kpe-agent check-config, then systemctl start kpe-agent" >&2
		fi
	else
		# No systemd running (a container, an image being built): enable
		# it for the next boot; systemctl does that offline.
		systemctl enable kpe-agent.service >/dev/null 2>&1 || true
		echo "kpe-agent: systemd is not running; the service is not started (run kpe-agent run -config /etc/kpe-agent/agent.yaml in the foreground)"
		if ! out=$(check_config); then
			echo "$out" | sed 's/^/kpe-agent: /' >&2
			echo "kpe-agent: set terminal.id and terminal.site (and the SAM and sync settings) in /etc/kpe-agent/agent.yaml before the service starts; kpe-agent check-config checks it" >&2
		fi
	fi
fi
exit 0
