#!/bin/sh
# Installs the peers of the side-by-side benchmark (bench/compare.ts) from Debian:
# Prosody and ejabberd (bookworm: prosody 0.12.3, ejabberd 23.01), and golang-go (Go 1.19,
# standard library only) for the Go login generator (bench/gen/login.go, `--generator go`,
# built by bench/lib/gogen.ts on first use). Idempotent; run as root:
#
#   sudo bench/peers/install.sh
#
# The packages would start their system daemons on 5222/5269/5280 (ejabberd also an epmd),
# the ports `npm start` and the project's tests use. The benchmark never uses those
# daemons: bench/peers/peers.ts starts each server in the foreground with its own
# configuration and data directory. So the install runs with a policy-rc.d that forbids
# every service start (exit 101, see /usr/share/doc/init-system-helpers/README.policy-rc.d),
# the one that was there before (if any) is put back afterwards, and anything the packages
# started anyway (processes of the users prosody and ejabberd) is stopped.
set -eu

if [ "$(id -u)" != 0 ]; then
	echo "install.sh: run as root (sudo $0)" >&2
	exit 1
fi

PACKAGES="prosody ejabberd golang-go"
POLICY=/usr/sbin/policy-rc.d
BACKUP=/usr/sbin/policy-rc.d.parley-bench-backup

installed() {
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || return 1
	done
	return 0
}

# Stops whatever the packages may have started: their daemons run as the users prosody and
# ejabberd (ejabberd's epmd too). Other epmd instances (RabbitMQ's, say) are left alone.
stop_daemons() {
	for u in prosody ejabberd; do
		if id "$u" >/dev/null 2>&1 && pgrep -u "$u" >/dev/null 2>&1; then
			echo "install.sh: stopping the processes of user $u"
			pkill -TERM -u "$u" || true
			i=0
			while pgrep -u "$u" >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
			pkill -KILL -u "$u" 2>/dev/null || true
		fi
	done
}

restore_policy() {
	if [ -e "$BACKUP" ]; then
		mv -f "$BACKUP" "$POLICY"
	else
		rm -f "$POLICY"
	fi
}

if installed; then
	echo "install.sh: $PACKAGES already installed"
else
	# Keep a policy-rc.d that was there before; ours forbids every start while we install.
	if [ -e "$POLICY" ] && [ ! -e "$BACKUP" ]; then
		cp -p "$POLICY" "$BACKUP"
	fi
	trap restore_policy EXIT
	trap 'exit 130' INT TERM
	printf '#!/bin/sh\n# bench/peers/install.sh: no service starts during the install\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"

	export DEBIAN_FRONTEND=noninteractive
	# The package lists may be missing or stale on a fresh machine.
	if ! apt-cache show $PACKAGES >/dev/null 2>&1; then
		apt-get update
	fi
	if ! apt-get install -y --no-install-recommends $PACKAGES; then
		apt-get update
		apt-get install -y --no-install-recommends $PACKAGES
	fi
	restore_policy
	trap - EXIT INT TERM
fi

# With or without an install just now: no system daemon of these packages may stay running
# (the benchmark starts its own; CI and `npm start` need 5222/5269/5280).
# (Their init scripts are asked first, only when something of theirs runs: `ejabberdctl
# stop` would otherwise start an Erlang node, and maybe an epmd, just to find nothing.)
for s in prosody ejabberd; do
	if [ -x "/etc/init.d/$s" ] && id "$s" >/dev/null 2>&1 && pgrep -u "$s" >/dev/null 2>&1; then
		timeout 30 "/etc/init.d/$s" stop >/dev/null 2>&1 || true
	fi
done
stop_daemons

prosody_version=$(dpkg-query -W -f='${Version}' prosody)
ejabberd_version=$(dpkg-query -W -f='${Version}' ejabberd)
go_version=$(dpkg-query -W -f='${Version}' golang-go)
echo "install.sh: prosody $prosody_version, ejabberd $ejabberd_version, golang-go $go_version; no daemon of theirs is running"
