#!/usr/bin/env bash
# run.sh — build p25 and run the whole service locally with demo data.
#
#   bash scripts/run.sh          build, start everything, print URLs and demo
#                                tokens, wait; Ctrl-C stops it all
#   bash scripts/run.sh stop     stop what an earlier run left running
#   P25_RUN_NO_WAIT=1 bash scripts/run.sh
#                                start and print, then return (services keep
#                                running until `run.sh stop`)
#
# Everything lives in .run/ (git-ignored) and is reused by the next run:
#   pg/            the project's own PostgreSQL 15 cluster (unix socket only)
#   auth.key       HS256 secret of the development identity provider (0600)
#   kek.hex        key-encryption key that seals the signing keys (0600)
#   dns/           the demo DNSBL zone files served by rbldnsd
#   env            the P25_* environment of the services (`. .run/env` to use
#                  p25ctl by hand)
#   tokens.env     the demo bearer tokens of the last run
#   *.log, *.pid   one per process
#
# Demo data: tenant `demo` (400 days old, verified, in good standing) holding
# 81.2.69.0/26 and 2a02:ff0:1::/48.  DNS: dnsmasq on loopback answers for
# demo.example and the reverse zones of the demo prefixes and forwards zen.demo
# to rbldnsd, the demo DNSBL.  Good to try:
#   81.2.69.5   PTR mail.demo.example, A back to it (forward-confirmed), clean
#   81.2.69.6   generic PTR (81-2-69-6.cust.demo-cloud.example)
#   81.2.69.7   PTR whose name does not resolve (not forward-confirmed)
#   81.2.69.9   no PTR at all
#   81.2.69.40  listed in zen.demo as SBL (127.0.0.2)
#   81.2.69.41  listed as PBL (127.0.0.10)
#   81.2.69.42  DNSBL error answer (127.255.255.254): "unknown", never a pass
#   sender domain demo.example has SPF and DMARC records.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
run=$root/.run
build=$root/build/debug
cd "$root"

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

# ---------------------------------------------------------------- processes

# running NAME PID: PID is a live (not zombie) process of the program NAME
# stands for (guards against a recycled pid).
running() {
	local want=$1 stat comm
	case "$1" in api) want=p25-api ;; worker) want=p25-worker ;; esac
	read -r stat comm < <(ps -o stat=,comm= -p "$2" 2>/dev/null) || return 1
	[ "${stat:0:1}" != Z ] && [ "$comm" = "$want" ]
}

# alive NAME: the process recorded in .run/NAME.pid is running.
alive() {
	[ -f "$run/$1.pid" ] && running "$1" "$(cat "$run/$1.pid")"
}

# stop_proc NAME: SIGTERM, up to 10 s for a clean exit, then SIGKILL.
stop_proc() {
	local pid i
	if alive "$1"; then
		pid=$(cat "$run/$1.pid")
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 100); do
			running "$1" "$pid" || break
			sleep 0.1
		done
		if running "$1" "$pid"; then
			say "run.sh: $1 did not stop in 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		say "stopped $1"
	fi
	rm -f "$run/$1.pid"
}

stop_services() {
	stop_proc api
	stop_proc worker
	stop_proc dnsmasq
	stop_proc rbldnsd
}

stop_all() {
	stop_services
	if [ -f "$run/pg/data/PG_VERSION" ]; then
		bash scripts/testpg.sh stop "$run/pg"
		say "stopped postgresql"
	fi
}

# start_bg NAME CMD...: runs CMD in its own session (a Ctrl-C reaches only
# this script, which then stops everything in order), output to NAME.log.
start_bg() {
	local name=$1
	shift
	setsid "$@" >"$run/$name.log" 2>&1 </dev/null &
	echo $! >"$run/$name.pid"
}

port_free() { # tcp|udp PORT
	local flag=t
	[ "$1" = udp ] && flag=u
	[ -z "$(ss -Hln"$flag" "sport = :$2" 2>/dev/null)" ]
}

# pick_port FIRST tcp [udp]: the first port from FIRST on that is free for
# every protocol named.
pick_port() {
	local p=$1 proto ok
	shift
	for p in $(seq "$p" $((p + 200))); do
		ok=1
		for proto in "$@"; do port_free "$proto" "$p" || ok=0; done
		[ $ok = 1 ] && { echo "$p"; return 0; }
	done
	die "no free port from $1 on"
}

random_hex() { # BYTES
	od -An -vtx1 -N"$1" /dev/urandom | tr -d ' \n'
}

if [ "${1:-}" = stop ]; then
	stop_all
	exit 0
elif [ -n "${1:-}" ]; then
	die "usage: run.sh [stop]"
fi

# ---------------------------------------------------------------- build
bash scripts/deps.sh
cmake --preset debug >/dev/null
cmake --build --preset debug -j 2

# ---------------------------------------------------------------- state
mkdir -p "$run"
chmod 755 "$run"
stop_services # an earlier run with P25_RUN_NO_WAIT=1 may still be up
# a failure from here on stops whatever was started
on_failure() {
	local rc=$?
	if [ $rc != 0 ]; then
		say "run.sh: failed; stopping what was started"
		stop_all
	fi
}
trap on_failure EXIT

for f in auth.key kek.hex; do
	if [ ! -s "$run/$f" ]; then
		n=32
		[ $f = auth.key ] && n=48
		(umask 077 && random_hex $n >"$run/$f" && echo >>"$run/$f")
		say "created .run/$f"
	fi
done

pgenv=$(bash scripts/testpg.sh start "$run/pg" --durable)
while IFS='=' read -r k v; do
	[ -n "$k" ] && export "$k=$v"
done <<<"$pgenv"

# ---------------------------------------------------------------- DNS
dns=$run/dns
mkdir -p "$dns"
cat >"$dns/zen.zone" <<'EOF'
$SOA 3600 ns.zen.demo. hostmaster.zen.demo. 0 600 300 86400 300
$NS 3600 ns.zen.demo.
$TTL 60
:127.0.0.2:Listed in the p25 demo SBL, see http://zen.demo/lookup?ip=$
127.0.0.2                                 # RFC 5782 test entry
81.2.69.40
81.2.69.41 :127.0.0.10:Demo PBL listing for $
81.2.69.42 :127.255.255.254:Demo DNSBL error answer
EOF
cat >"$dns/zen6.zone" <<'EOF'
$SOA 3600 ns.zen.demo. hostmaster.zen.demo. 0 600 300 86400 300
$NS 3600 ns.zen.demo.
$TTL 60
:127.0.0.2:Listed in the p25 demo SBL (IPv6)
::ffff:7f00:2                             # RFC 5782 test entry
2a02:ff0:1:66::/64
EOF
# rbldnsd runs as nobody: it must reach and read the zone files
chmod 755 "$dns"
chmod 644 "$dns"/*.zone
p=$(dirname "$dns")
while [ "$p" != / ]; do chmod o+x "$p" 2>/dev/null || true; p=$(dirname "$p"); done

rbl_port=$(pick_port 15354 udp tcp)
as_nobody=()
[ "$(id -u)" = 0 ] && as_nobody=(-u nobody)
start_bg rbldnsd rbldnsd -n "${as_nobody[@]}" -b "127.0.0.1/$rbl_port" -w "$dns" \
	zen.demo:ip4set:zen.zone zen.demo:ip6trie:zen6.zone

dns_port=$(pick_port 15353 udp tcp)
[ "$dns_port" = "$rbl_port" ] && dns_port=$(pick_port $((rbl_port + 1)) udp tcp)
as_nobody=()
[ "$(id -u)" = 0 ] && as_nobody=(--user=nobody --group=nogroup)
start_bg dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file \
	"${as_nobody[@]}" --port="$dns_port" --listen-address=127.0.0.1 --bind-interfaces \
	--no-resolv --no-hosts --log-facility=- --log-queries \
	--local=/demo.example/ --local=/69.2.81.in-addr.arpa/ \
	--local=/1.0.0.0.0.f.f.0.2.0.a.2.ip6.arpa/ \
	--host-record=mail.demo.example,81.2.69.5,2a02:ff0:1::25 \
	--host-record=81-2-69-6.cust.demo-cloud.example,81.2.69.6 \
	--ptr-record=7.69.2.81.in-addr.arpa,ghost.demo.example \
	--txt-record=demo.example,"v=spf1 ip4:81.2.69.0/26 ip6:2a02:ff0:1::/48 -all" \
	--txt-record=_dmarc.demo.example,"v=DMARC1; p=reject; rua=mailto:dmarc@demo.example" \
	--server="/zen.demo/127.0.0.1#$rbl_port"

# ---------------------------------------------------------------- config
if [ -n "${P25_LISTEN:-}" ]; then
	listen=$P25_LISTEN
else
	listen=127.0.0.1:$(pick_port 8025 tcp)
fi
cat >"$run/env" <<EOF
# written by scripts/run.sh: the environment p25-api, p25-worker and p25ctl run with
export P25_DATABASE_URL='$P25_DATABASE_URL'
export P25_MIGRATE_DATABASE_URL='$P25_MIGRATE_DATABASE_URL'
export P25_LISTEN='$listen'
export P25_AUTH_ALG=HS256
export P25_AUTH_KEY_FILE='$run/auth.key'
export P25_AUTH_ISSUER=p25-dev-idp
export P25_AUTH_AUDIENCE=p25
export P25_KEK_FILE='$run/kek.hex'
export P25_DEV_MODE=true
export P25_DNS_SERVERS='127.0.0.1:$dns_port'
export P25_DNSBL_ZONES=zen.demo
export P25_LOG_LEVEL='${P25_LOG_LEVEL:-info}'
EOF
# shellcheck source=/dev/null
. "$run/env"
ctl=$build/p25ctl

"$ctl" migrate

# one signing key, generated on the first run only
nkeys=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$P25_MIGRATE_DATABASE_URL" \
	-c 'SELECT count(*) FROM signing_keys' 2>/dev/null || echo unknown)
if [ "$nkeys" != unknown ] && [ "$nkeys" != 0 ]; then
	: # there is one already
elif ! "$ctl" keys generate; then
	say "run.sh: warning: no signing key (p25ctl keys generate failed): approvals cannot be signed"
fi

psql -X -q -v ON_ERROR_STOP=1 -d "$P25_MIGRATE_DATABASE_URL" <<'SQL'
INSERT INTO tenants (id, name, account_created_at, verified, standing)
VALUES ('demo', 'Demo Tenant', now() - interval '400 days', true, 'good')
ON CONFLICT DO NOTHING;
INSERT INTO tenant_addresses (tenant_id, prefix)
VALUES ('demo', '81.2.69.0/26'), ('demo', '2a02:ff0:1::/48')
ON CONFLICT DO NOTHING;
SQL

# ---------------------------------------------------------------- services
start_bg api "$build/p25-api"
start_bg worker "$build/p25-worker"

url=http://$listen
for i in $(seq 150); do
	curl -fsS -o /dev/null "$url/healthz" 2>/dev/null && break
	if ! alive api || [ "$i" = 150 ]; then
		say "run.sh: p25-api did not come up; the end of .run/api.log:"
		tail -n 30 "$run/api.log" >&2 || true
		exit 1
	fi
	sleep 0.2
done
for name in dnsmasq rbldnsd worker; do
	if ! alive $name; then
		say "run.sh: $name exited; the end of .run/$name.log:"
		tail -n 30 "$run/$name.log" >&2 || true
		exit 1
	fi
done

ttl=$((7 * 86400))
tok_tenant=$("$ctl" dev-token --sub demo-user --roles tenant --tenant demo --ttl $ttl)
tok_reviewer=$("$ctl" dev-token --sub demo-reviewer --roles reviewer --ttl $ttl)
tok_admin=$("$ctl" dev-token --sub demo-admin --roles admin --ttl $ttl)
tok_enforcer=$("$ctl" dev-token --sub demo-enforcer --roles enforcer --ttl $ttl)
(
	umask 077
	cat >"$run/tokens.env" <<EOF
DEMO_TOKEN_TENANT=$tok_tenant
DEMO_TOKEN_REVIEWER=$tok_reviewer
DEMO_TOKEN_ADMIN=$tok_admin
DEMO_TOKEN_ENFORCER=$tok_enforcer
EOF
)

cat <<EOF

p25 is running (logs in .run/*.log).

  tenant page   $url/
  console       $url/console
  API           $url/v1/
  OpenAPI       $url/openapi.yaml
  metrics       $url/metrics
  health        $url/healthz  $url/readyz
  DNS           127.0.0.1:$dns_port (demo.example; DNSBL zen.demo via rbldnsd on :$rbl_port)
  database      psql '$P25_MIGRATE_DATABASE_URL'
  p25ctl        . .run/env && build/debug/p25ctl --help

Demo bearer tokens, valid 7 days (also in .run/tokens.env):

  tenant (sub demo-user, tenant demo):
    $tok_tenant
  reviewer (sub demo-reviewer):
    $tok_reviewer
  admin (sub demo-admin):
    $tok_admin
  enforcer (sub demo-enforcer):
    $tok_enforcer

Try:
  . .run/tokens.env
  curl -s -H "Authorization: Bearer \$DEMO_TOKEN_TENANT" -H 'Content-Type: application/json' \\
    -d '{"addresses":["81.2.69.5"],"use_case":"transactional","description":"order mail",
         "sender_domains":["demo.example"],"expected_daily_volume":500,
         "contact_email":"ops@demo.example"}' $url/v1/requests

EOF

trap - EXIT
if [ -n "${P25_RUN_NO_WAIT:-}" ] && [ "${P25_RUN_NO_WAIT}" != 0 ]; then
	say "left running; stop with: bash scripts/run.sh stop"
	exit 0
fi

say "Ctrl-C stops everything."
sleeper=
on_signal() {
	[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
	say ""
	stop_all
	exit 0
}
trap on_signal INT TERM
while :; do
	sleep 2 &
	sleeper=$!
	wait "$sleeper" || true
	for name in api worker dnsmasq rbldnsd; do
		if ! alive $name; then
			say "run.sh: $name exited; the end of .run/$name.log:"
			tail -n 30 "$run/$name.log" >&2 || true
			stop_all
			exit 1
		fi
	done
done
