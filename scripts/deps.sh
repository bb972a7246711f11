#!/usr/bin/env bash
# deps.sh — install what p25 needs to build, run and test, on Debian 12.
#
#   bash scripts/deps.sh
#
# Idempotent and quick when everything is there: Debian packages are checked
# with one dpkg-query and only the missing ones are installed (apt-get update
# runs only then); the Node packages the tests use are installed with
# `npm ci` only when node_modules is missing or package.json /
# package-lock.json changed since the last install (a stamp in node_modules).
# An existing node/npm (for instance Node 20 from elsewhere) is kept: Debian's
# nodejs and npm are installed only when `node` / `npm` are not found.
# As root it installs directly; otherwise through sudo when there is one, and
# when there is not it lists what is missing and fails.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pkgs=(
	build-essential cmake pkg-config clang
	libmicrohttpd-dev libpq-dev libsodium-dev libjwt-dev libjansson-dev
	libc-ares-dev libcurl4-openssl-dev libcmocka-dev
	postgresql-15 postgresql-contrib
	rbldnsd dnsmasq-base nftables iproute2
	chromium curl wrk
)

say() { printf 'deps: %s\n' "$*" >&2; }

# Packages of $pkgs that dpkg does not know as installed.  One dpkg-query
# for all of them; unknown packages are simply absent from its answer.
missing=()
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null |
	awk '$2 == "installed" { print $1 }' || true)
for p in "${pkgs[@]}"; do
	grep -qxF "$p" <<<"$installed" || missing+=("$p")
done
# npm is asked for only once node is there: some node packages bring their own
command -v node >/dev/null 2>&1 || missing+=(nodejs)
if ! command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then missing+=(npm); fi

apt_install() {
	local sudo=()
	if [ "$(id -u)" != 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			say "missing Debian packages: $*"
			say "run as root:  apt-get update && apt-get install -y $*"
			exit 1
		fi
		sudo=(sudo)
	fi
	say "installing: $*"
	if [ -z "${updated:-}" ]; then
		"${sudo[@]}" apt-get update -q
		updated=1
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q -o Dpkg::Use-Pty=0 "$@"
}

if [ ${#missing[@]} -gt 0 ]; then
	apt_install "${missing[@]}"
fi
command -v npm >/dev/null 2>&1 || apt_install npm

# Node packages for the integration, contract and browser tests.
cd "$root"
[ -f package.json ] || exit 0
stamp=node_modules/.p25-deps-stamp
want=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	say "installing Node packages"
	export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
	if [ -f package-lock.json ]; then
		npm ci --no-progress
	else
		npm install --no-progress
	fi
	# npm install may have written the lock: hash what is there now
	cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1 >"$stamp"
fi
