#!/bin/sh
# kpe-agent package: after unpacking (deb: configure, rpm: 1 install,
# 2 upgrade). Makes sure of the account, the groups and the ownership
# (the secrets split: the API token's readers, group kpe-agent-api, read
# the token and nothing else; the group kpe-agent is the service's own),
# creates the local API token when it is missing, and enables the service. Only when
# systemd is running: restarts the service when it is running (an
# upgrade), else starts it, in both cases only when kpe-agent
# check-config accepts the configuration (a fresh install ships no
# terminal.id or terminal.site: the technician sets them first; an
# upgrade may refuse a value the old version accepted). Never fails the
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
getent group kpe-agent-api >/dev/null || groupadd --system kpe-agent-api
getent passwd kpe-agent >/dev/null ||
	useradd --system --gid kpe-agent --groups kpe-agent-api --home-dir /var/lib/kpe-agent --no-create-home \
		--shell "$nologin" --comment "KPE terminal agent" kpe-agent
# The agent reads the token as a member of kpe-agent-api (an account made
# by an older version is not yet).
id -nG kpe-agent | tr ' ' '\n' | grep -qx kpe-agent-api || usermod -a -G kpe-agent-api kpe-agent

# Older versions told frontline applications to join the group kpe-agent
# to read the token; that group also reads the service's secrets and
# logs. Each such member moves to kpe-agent-api, which reads the token
# only.
members=$(getent group kpe-agent | cut -d: -f4 | tr ',' ' ')
for m in $members; do
	[ "$m" = kpe-agent ] && continue
	usermod -a -G kpe-agent-api "$m"
	gpasswd -d "$m" kpe-agent >/dev/null
	echo "kpe-agent: moved $m from the group kpe-agent to kpe-agent-api: it reads the local API token and no other secret (see /usr/share/doc/kpe-agent/install.md)"
done

for d in /var/lib/kpe-agent /var/log/kpe-agent; do
	mkdir -p "$d"
	chown kpe-agent:kpe-agent "$d"
	chmod 0750 "$d"
done
# The secrets directory: entered (not listed) by the token's readers and
# the agent (a member of kpe-agent-api); its files say who reads them.
mkdir -p /etc/kpe-agent/secrets
chown root:kpe-agent-api /etc/kpe-agent/secrets
chmod 0710 /etc/kpe-agent/secrets

# The local API's bearer token (api.token_file's default): 32 random
# bytes in hex, 0640 root:kpe-agent-api. An existing token is kept, and
# given that owner and mode (an older version made it root:kpe-agent).
token=/etc/kpe-agent/secrets/api-token
if [ -f "$token" ] && [ ! -L "$token" ]; then
	chown root:kpe-agent-api "$token"
	chmod 0640 "$token"
fi
if [ ! -e "$token" ]; then
	tmp=$(mktemp /etc/kpe-agent/secrets/.api-token.XXXXXX)
	chmod 0640 "$tmp"
	chown root:kpe-agent-api "$tmp"
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

# service_env prints the KPE_* and proxy assignments of the service's
# EnvironmentFile= files (see kpe-agent.service), one KEY=VALUE a line, in
# the unit's order, so a later one overrides an earlier one. The files are
# read as systemd reads them, not run by the shell: KEY=VALUE lines, blanks
# around the key and the value ignored, # and ; comments, the value
# optionally in single or double quotes (KPE_TERMINAL_SITE=RS (Umum) and
# KPE_READERS_CARD=ACS ACR39U* are plain values). Nothing is evaluated.
# (config.ServiceEnviron reads them the same way for kpectl; here they are
# read as root, as systemd does, while the check below runs as the
# service's account, which may not be able to read them.)
service_env() {
	for f in /etc/default/kpe-agent /etc/sysconfig/kpe-agent; do
		[ -r "$f" ] || continue
		sed -n -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^[#;]/d' \
			-e 's/^\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*=[[:space:]]*/\1=/p' "$f" |
			while IFS= read -r kv; do
				case ${kv%%=*} in
				KPE_* | HTTPS_PROXY | https_proxy | HTTP_PROXY | http_proxy | NO_PROXY | no_proxy) ;;
				*) continue ;;
				esac
				v=${kv#*=}
				case $v in
				\"*\" | \'*\')
					v=${v#?}
					v=${v%?}
					;;
				esac
				printf '%s=%s\n' "${kv%%=*}" "$v"
			done
	done
}

# as_agent prints the command prefix that runs a command as the service's
# account (User=kpe-agent in the unit), so that a file the agent could not
# read is caught; nothing (root) when the account or a tool to switch to
# it is missing.
as_agent() {
	getent passwd kpe-agent >/dev/null 2>&1 || return 0
	uid=$(id -u kpe-agent 2>/dev/null) && gid=$(id -g kpe-agent 2>/dev/null) || return 0
	if command -v setpriv >/dev/null 2>&1 &&
		setpriv --reuid="$uid" --regid="$gid" --init-groups -- true >/dev/null 2>&1; then
		echo "setpriv --reuid=$uid --regid=$gid --init-groups --"
	elif command -v runuser >/dev/null 2>&1 &&
		runuser -u kpe-agent -- true >/dev/null 2>&1; then
		echo "runuser -u kpe-agent --"
	fi
}

# check_config runs kpe-agent check-config on the configuration as the
# service would see it: as its account, from /, with the KPE_* and proxy
# variables of its EnvironmentFile= files and nothing from the package
# manager's environment. Its output is the agent's own messages.
check_config() {
	(
		set -f # the values are not patterns
		IFS='
'
		set --
		for kv in $(service_env); do
			set -- "$@" "$kv"
		done
		unset IFS
		cd /
		# $(as_agent) is split into its words on purpose
		# shellcheck disable=SC2046
		exec $(as_agent) env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" \
			/usr/bin/kpe-agent check-config --config /etc/kpe-agent/agent.yaml
	) 2>&1
}

# not_accepted prints check-config's output ($1), then what to do ($2).
not_accepted() {
	echo "$1" | sed 's/^/kpe-agent: /' >&2
	echo "kpe-agent: $2" >&2
}

if command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		systemctl enable kpe-agent.service || echo "kpe-agent: could not enable the service" >&2
		# Not "is this an upgrade" ($2): after apt remove, apt install
		# passes the old version too, with the service stopped.
		# Either way only when this version accepts the configuration:
		# a value an older version accepted may be refused now, and the
		# agent would exit 78, which the unit does not restart.
		if systemctl is-active --quiet kpe-agent.service; then
			if out=$(check_config); then
				systemctl try-restart kpe-agent.service || echo "kpe-agent: could not restart the service; see journalctl -u kpe-agent" >&2
			else
				not_accepted "$out" "this version does not accept the configuration, so the running service was NOT restarted: it keeps running the previous version until it stops, but it will not start again (at the next boot or restart it fails with status 78 and stays stopped) until the configuration is fixed. Fix /etc/kpe-agent/agent.yaml (or the KPE_* variables of /etc/default/kpe-agent), check it with kpe-agent check-config, then systemctl restart kpe-agent"
			fi
		elif out=$(check_config); then
			systemctl start kpe-agent.service || echo "kpe-agent: could not start the service; see journalctl -u kpe-agent" >&2
		else
			not_accepted "$out" "the service is enabled but not started: set terminal.id and terminal.site (and the SAM and sync settings) in /etc/kpe-agent/agent.yaml, check it with kpe-agent check-config, then systemctl start kpe-agent"
		fi
	else
		# No systemd running (a container, an image being built): enable
		# it for the next boot; systemctl does that offline.
		systemctl enable kpe-agent.service >/dev/null 2>&1 || true
		echo "kpe-agent: systemd is not running; the service is not started (run kpe-agent run --config /etc/kpe-agent/agent.yaml in the foreground)"
		if ! out=$(check_config); then
			not_accepted "$out" "set terminal.id and terminal.site (and the SAM and sync settings) in /etc/kpe-agent/agent.yaml before the service starts; kpe-agent check-config checks it"
		fi
	fi
fi
exit 0
