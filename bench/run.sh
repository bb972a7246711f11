#!/usr/bin/env bash
# run.sh — the p25 benchmark: one runner, one line per figure.
#
#   bash bench/run.sh            full run: 3 rounds of 10 s per measurement
#   bash bench/run.sh --quick    1 round of 5 s
#
# stdout carries only figures and comments:
#   name value unit        a measurement
#   name.ratio value       a measurement divided by its floor, both measured
#                          in this run on this machine
#   # ...                  the goal next to each figure, met or MISSED; the
#                          settings used
# Progress goes to stderr.  A missed goal does not fail the run: these are
# numbers, not timed tests.  The exit status is non-zero only when the run
# itself could not happen.  See bench/README.md for what each figure means.
#
# Environment:
#   P25_BUILD_DIR      use the binaries there (p25-api, p25ctl, bench/bench-*)
#                      instead of building the release preset
#   P25_DB_POOL_SIZE   p25-api's database pool (default 8, p25's default)
#   P25_HTTP_THREADS   epoll threads of p25-api and of the hello floor (2)
#   BENCH_DURATION     seconds per measurement (10; 5 with --quick)
#   BENCH_ROUNDS       rounds of floor + subject, back to back (3; 1 with
#                      --quick); figures are medians over the rounds
#   BENCH_TENANTS      tenants the submit/get runs spread over (24000)
#   P25_AUTH_CACHE_SIZE  p25-api's token cache (32768 here: above the tenants'
#                      tokens, so the rotation over them does not evict)
#   BENCH_DIAG=1       also sample what PostgreSQL backends wait on during
#                      the insert, submit and get runs (comment lines)
#   BENCH_KEEP=1       keep the work folder (logs, cluster) for a post-mortem
#
# Everything runs on loopback in a throwaway folder under $TMPDIR: a durable
# PostgreSQL 15 cluster (fsync on — see README), p25-api, the floors.  An
# EXIT trap stops every process this script started and the cluster.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

usage() { echo "usage: bash bench/run.sh [--quick]"; }
quick=0
case "${1:-}" in
--quick) quick=1 ;;
"") ;;
-h | --help) usage; exit 0 ;;
*) usage >&2; exit 64 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 64; }

# Only the settings named above come from the caller's environment: a
# P25_CONFIG_FILE or a stray P25_* (say from `. .run/env`) must not change
# what is measured.
for v in $(compgen -e); do
	case "$v" in
	P25_BUILD_DIR | P25_DB_POOL_SIZE | P25_HTTP_THREADS) ;;
	P25_*) unset "$v" ;;
	esac
done

dur=${BENCH_DURATION:-$([ $quick = 1 ] && echo 5 || echo 10)}
rounds=${BENCH_ROUNDS:-$([ $quick = 1 ] && echo 1 || echo 3)}
conns=64
ntenants=${BENCH_TENANTS:-24000}
for v in dur:BENCH_DURATION:1:3600 rounds:BENCH_ROUNDS:1:100 ntenants:BENCH_TENANTS:1:60000; do
	IFS=: read -r n env lo hi <<<"$v"
	[[ ${!n} =~ ^[0-9]+$ ]] && [ "${!n}" -ge "$lo" ] && [ "${!n}" -le "$hi" ] ||
		{ echo "bench: $env must be a whole number from $lo to $hi" >&2; exit 64; }
done
export P25_DB_POOL_SIZE=${P25_DB_POOL_SIZE:-8}
export P25_HTTP_THREADS=${P25_HTTP_THREADS:-2}
export P25_AUTH_CACHE_SIZE=${P25_AUTH_CACHE_SIZE:-32768}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# ------------------------------------------------------------- figures

# fig NAME VALUE [UNIT]
fig() {
	if [ -n "${3:-}" ]; then
		printf '%s %s %s\n' "$1" "$2" "$3"
	else
		printf '%s %s\n' "$1" "$2"
	fi
}

# goal VALUE OP TARGET TEXT: prints "# goal: TEXT — met|MISSED"
goal() {
	local verdict
	verdict=$(awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (v == "" || v == "n/a") { print "not measured"; exit }
		ok = (op == ">=") ? (v + 0 >= t + 0) : (op == "<") ? (v + 0 < t + 0) : (v + 0 <= t + 0)
		print ok ? "met" : "MISSED" }')
	printf '# goal: %s — %s\n' "$4" "$verdict"
}

ratio() { # A B → A/B with 3 decimals ("n/a" when B is 0 or missing)
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.3f\n", a / b; else print "n/a" }'
}

int() { awk -v a="$1" 'BEGIN { printf "%.0f\n", a }'; }

# ------------------------------------------------------------- tools

need() { # COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" = 0 ]; then
		say "installing $2"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2; }
	fi
	command -v "$1" >/dev/null 2>&1 || die "$1 is missing (Debian package $2)"
}
need wrk wrk
need psql postgresql-client-15
need curl curl
[ -x "$PGBIN/pgbench" ] || die "$PGBIN/pgbench is missing (Debian package postgresql-15)"

# ------------------------------------------------------------- build

if [ -n "${P25_BUILD_DIR:-}" ]; then
	build=$(realpath "$P25_BUILD_DIR")
else
	say "building the release preset"
	cmake --preset release >&2
	cmake --build --preset release -j 2 --target p25-api p25ctl bench-hello bench-loadgen >&2
	build=$root/build/release
fi
for b in p25-api p25ctl bench/bench-hello bench/bench-loadgen; do
	[ -x "$build/$b" ] || die "$build/$b is missing (build it, or unset P25_BUILD_DIR)"
done

# ------------------------------------------------------------- processes

work=$(mktemp -d "${TMPDIR:-/tmp}/p25-bench.XXXXXX")
declare -A pids=()

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"	# start NAME CMD..., stop NAME, median VALUES...

cleanup() {
	local rc=$?
	set +e
	for name in sampler hello api; do stop "$name"; done
	for name in "${!pids[@]}"; do stop "$name"; done
	if [ -f "$work/pg/data/PG_VERSION" ]; then
		bash scripts/testpg.sh stop "$work/pg"
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		say "kept $work"
	else
		rm -rf "$work"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
pick_port() {
	local p
	for p in $(seq "$1" $(($1 + 500))); do
		port_free "$p" && { echo "$p"; return 0; }
	done
	die "no free TCP port from $1 on"
}

wait_http() { # URL NAME
	local i
	for i in $(seq 150); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		kill -0 "${pids[$2]}" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$work/$2.log" >&2 || true
	die "$2 did not come up"
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# ------------------------------------------------------------- measuring

# CPU time (user + system, in clock ticks) a process has used so far
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# wrk_run NAME URL [wrk args...] [-- script args...]: closed-loop run with
# $conns connections; sets RPS, NON2XX (non-2xx/3xx answers), SOCKERR
# (connect/read/write/timeout errors) and LUAERR (answers the Lua script did
# not expect; 0 without one).  With cpu_pid=PID set, also CPU_US: the CPU
# time that process spent per request over the run, in microseconds.
# settle: a CHECKPOINT before each measurement.  checkpoint_timeout is
# 5 min and a full run takes about 8, so a timed checkpoint used to land in
# the middle of some measurement or other — a floor, a round, a p99 run —
# and after it every first change of a page writes the whole page to the
# WAL (full_page_writes): a submit p99 run that overlapped one could not
# keep up with its rate (p99 1 s).  Now every measurement, floor or
# p25, starts just after a checkpoint, and the next timed one is 5 min away.
settle() {
	psql -X -q -h "$pghost" -U postgres -d postgres -c CHECKPOINT >/dev/null ||
		echo "# warning: CHECKPOINT failed before a measurement"
}

wrk_run() {
	local name=$1 url=$2 out=$work/wrk.$1.txt a
	local -a opts=() sargs=()
	shift 2
	while [ $# -gt 0 ]; do
		a=$1
		shift
		if [ "$a" = -- ]; then
			sargs=(-- "$@")
			break
		fi
		opts+=("$a")
	done
	settle
	say "wrk $name: $conns connections, ${dur} s"
	cpu0=
	[ -z "${cpu_pid:-}" ] || cpu0=$(cpu_ticks "$cpu_pid")
	wrk -t2 -c"$conns" -d"${dur}s" --timeout 10s "${opts[@]}" "$url" "${sargs[@]}" \
		>"$out" 2>&1 || { cat "$out" >&2; die "wrk $name failed"; }
	RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
	CPU_US=
	if [ -n "${cpu_pid:-}" ] && [ -n "${cpu0:-}" ]; then
		CPU_US=$(awk -v c0="$cpu0" -v c1="$(cpu_ticks "$cpu_pid")" -v hz="$(getconf CLK_TCK)" \
			'/ requests in / { n = $1 } END { if (n > 0) printf "%.1f\n", (c1 - c0) / hz / n * 1e6 }' "$out")
	fi
	NON2XX=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
	NON2XX=${NON2XX:-0}
	SOCKERR=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
	SOCKERR=${SOCKERR:-0}
	LUAERR=$(awk '/^lua.errors / { print $2 }' "$out")
	LUAERR=${LUAERR:-0}
	grep '^lua.status' "$out" | sed 's/^/# '"$name"' unexpected /' || true
	[ -n "$RPS" ] || { cat "$out" >&2; die "wrk $name printed no rate"; }
}

# pgb NAME DB [pgbench args...]: sets TPS, the mean of pgbench's per-second
# progress over the last $dur seconds of a ($dur + 10) s run.  pgbench counts
# the time its clients take to connect inside -T, and 64 backends forking on
# a loaded 2-CPU machine can take seconds (5-6 s seen): its own "tps =" line
# would then rest on a fraction of the period.  The extra 10 s absorb the
# connecting.
pgb() {
	local name=$1 db=$2 out=$work/pgbench.$1.txt conn
	shift 2
	settle
	say "pgbench $name: $conns clients, ${dur} s (+10 s to connect)"
	"$PGBIN/pgbench" -h "$pghost" -U p25_owner -n -M prepared -c "$conns" -j 2 \
		-T $((dur + 10)) -P 1 "$@" "$db" >"$out" 2>&1 ||
		{ cat "$out" >&2; die "pgbench $name failed"; }
	TPS=$(awk '/^progress: / { t[++n] = $4 } END {
		if (n < 1) exit
		from = n > d ? n - d + 1 : 1
		for (i = from; i <= n; i++) { s += t[i]; k++ }
		printf "%.1f\n", s / k }' d="$dur" "$out")
	[ -n "$TPS" ] || { cat "$out" >&2; die "pgbench $name printed no progress"; }
	conn=$(awk '/^initial connection time = / { printf "%.0f", $5 }' "$out")
	if [ "${conn:-0}" -gt 10000 ]; then
		echo "# warning: pgbench $name took ${conn} ms to connect: its figure covers less than ${dur} s"
	fi
}

# With BENCH_DIAG=1, what the database backends of a client (application
# name p25-api or pgbench) wait on during a run: pg_stat_activity sampled
# every 200 ms, printed as a comment ("CPU" = active, waiting on nothing).
waits_sampler() { # APPLICATION_NAME
	while :; do
		psql -X -At -h "$pghost" -U postgres -d p25 -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity WHERE application_name = '$1' AND state = 'active' AND pid <> pg_backend_pid()" 2>/dev/null || true
		sleep 0.2
	done
}
diag_start() { # NAME APPLICATION_NAME
	[ -n "${BENCH_DIAG:-}" ] || return 0
	diag_name=$1 diag_app=$2
	start "diag.$1" waits_sampler "$2"
}
diag_stop() {
	[ -n "${BENCH_DIAG:-}" ] || return 0
	stop "diag.$diag_name"
	printf '# %s: waits of active %s backends (200 ms samples): %s\n' "$diag_name" "$diag_app" \
		"$(sort "$work/diag.$diag_name.log" | uniq -c | sort -rn | head -n 6 |
			awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')"
}

# loadgen NAME RATE FILE: open loop at RATE req/s; sets P50 P99 LGERR
# (non-2xx + connection errors + unfinished) and LGRATE (achieved rate)
loadgen() {
	local name=$1 rate=$2 file=$3 out=$work/loadgen.$1.txt
	settle
	say "loadgen $name: $rate req/s over $conns connections, 2 s warm-up + ${dur} s"
	"$build/bench/bench-loadgen" --port "$api_port" --rate "$rate" --duration "$dur" \
		--warmup 2 --connections "$conns" --requests "$file" --timeline "$out.timeline" \
		>"$out" 2>"$out.err" || { cat "$out" "$out.err" >&2; die "loadgen $name failed"; }
	P50=$(awk '$1 == "p50_ms" { print $2 }' "$out")
	P99=$(awk '$1 == "p99_ms" { print $2 }' "$out")
	LGRATE=$(awk '$1 == "achieved_rps" { print $2 }' "$out")
	LGERR=$(awk '$1 == "non2xx" || $1 == "errors" || $1 == "unfinished" { n += $2 } END { print n + 0 }' "$out")
	grep '^status\.' "$out" | grep -v '^status\.2' | sed 's/^/# '"$name"' /' || true
	awk -v n="$name" '$1 == "warmup_max_ms" { printf "# %s warm-up: 2 s at the rate first, not in the percentiles; largest latency %.0f ms\n", n, $2 }' "$out"
	# where in the run the latency grew: the largest latency of each
	# second of due time (the timeline has it per 100 ms)
	awk -v n="$name" '!/^#/ { s = int($1 / 1000); if ($3 > m[s]) m[s] = $3; if (s > last) last = s }
		END { printf "# %s largest latency (ms) per second of the run:", n
		      for (i = 0; i <= last; i++) printf " %.0f", m[i]; print "" }' "$out.timeline"
}

# ------------------------------------------------------------- PostgreSQL

say "starting PostgreSQL (durable: fsync on) in $work/pg"
pgenv=$(bash scripts/testpg.sh start "$work/pg" --durable)
while IFS='=' read -r k v; do
	[ -n "$k" ] && export "$k=$v"
done <<<"$pgenv"
pghost=$P25_PGHOST
owner_url=$P25_MIGRATE_DATABASE_URL
psql_owner() { psql -X -q -v ON_ERROR_STOP=1 -d "$owner_url" "$@"; }

(umask 077 && od -An -vtx1 -N48 /dev/urandom | tr -d ' \n' >"$work/auth.key" && echo >>"$work/auth.key")
export P25_AUTH_ALG=HS256 P25_AUTH_KEY_FILE=$work/auth.key
export P25_AUTH_ISSUER=p25-dev-idp P25_AUTH_AUDIENCE=p25 P25_DEV_MODE=true
export P25_LOG_LEVEL=warn

"$build/p25ctl" migrate >&2

say "creating $ntenants tenants, each holding a /24"
psql_owner -v n="$ntenants" -f bench/tenants.sql
psql -X -q -v ON_ERROR_STOP=1 -h "$pghost" -U postgres -d postgres \
	-c 'CREATE DATABASE pgbench OWNER p25_owner'
say "initialising the pgbench database (scale 1)"
"$PGBIN/pgbench" -h "$pghost" -U p25_owner -i -s 1 -q pgbench >"$work/pgbench.init.txt" 2>&1 ||
	{ cat "$work/pgbench.init.txt" >&2; die "pgbench -i failed"; }

say "minting $ntenants tenant tokens"
# tokens.tsv: tenant <TAB> token <TAB> address prefix without the last octet
"$build/p25ctl" dev-token --sub bench-user- --roles tenant --tenant bt --ttl 86400 \
	--count "$ntenants" >"$work/tokens.txt" || die "p25ctl dev-token failed"
awk -v OFS='\t' '{ print "bt" NR, $0, "81." (2 + int((NR - 1) / 256)) "." ((NR - 1) % 256) }' \
	"$work/tokens.txt" >"$work/tokens.tsv"
[ "$(wc -l <"$work/tokens.tsv")" -eq "$ntenants" ] || die "minted $(wc -l <"$work/tokens.tsv") tokens, not $ntenants"
token1=$(awk -F'\t' 'NR == 1 { print $2 }' "$work/tokens.tsv")

# submit.req: POST /v1/requests rotating over the tenants and the hosts of
# their /24s; one address per request, the fields of a typical request.  At
# least 20000 lines, a whole number of rounds over the tenants.  Each wrk and
# bench-loadgen run starts again at the file's first line (wrk's second
# thread at its middle), so the first tenants of the file file a few more
# than the rest: with 24000 tenants the busiest stays well under the
# default cap of 20 open requests on a fast machine; a 409 would show in
# submit.errors or submit.p99_errors.
awk -F'\t' -v OFS='\t' '{ tok[NR] = $2; pre[NR] = $3 } END {
	lines = NR * int((20000 + NR - 1) / NR)
	for (i = 0; i < lines; i++) {
		t = i % NR + 1
		printf "POST\t/v1/requests\t%s\t{\"addresses\":[\"%s.%d\"],\"use_case\":\"transactional\",\"description\":\"bench\",\"sender_domains\":[\"example.com\"],\"expected_daily_volume\":5000,\"contact_email\":\"ops@example.com\"}\n", tok[t], pre[t], i % 254 + 1
	} }' "$work/tokens.tsv" >"$work/submit.req"

cat <<EOF
# p25 benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) CPUs, $(awk '/^MemTotal:/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo) RAM; git $(git rev-parse --short HEAD 2>/dev/null || echo -)$( [ -n "$(git status --porcelain 2>/dev/null | head -1)" ] && echo +dirty)
# settings: ${dur} s per measurement, $rounds round(s), $conns connections (wrk -t2; pgbench -j2 -M prepared), $ntenants tenants
# p25-api: P25_HTTP_THREADS=$P25_HTTP_THREADS P25_DB_POOL_SIZE=$P25_DB_POOL_SIZE P25_AUTH_CACHE_SIZE=$P25_AUTH_CACHE_SIZE P25_LOG_LEVEL=warn, P25_RATE_LIMIT and P25_MAX_OPEN_REQUESTS at their defaults; binaries from $build
# PostgreSQL 15, one cluster for floors and p25: fsync on, synchronous_commit on, full_page_writes on, shared_buffers 128MB, unix socket
EOF

# ------------------------------------------------------------- HTTP floor

hello_port=$(pick_port 18026)
say "starting bench-hello on 127.0.0.1:$hello_port"
P25_LISTEN=127.0.0.1:$hello_port start hello "$build/bench/bench-hello"
wait_http "http://127.0.0.1:$hello_port/" hello
hello_url=http://127.0.0.1:$hello_port

api_port=$(pick_port $((hello_port + 1)))
export P25_LISTEN=127.0.0.1:$api_port
api_url=http://127.0.0.1:$api_port
say "starting p25-api on $P25_LISTEN"
start api "$build/p25-api"
wait_http "$api_url/healthz" api
api_pid=${pids[api]}
sleep 1
rss_idle=$(rss_kib "$api_pid")

# RSS sampler: every 100 ms from here on, while 64 connections hammer
# p25-api (between runs it idles, which cannot raise the maximum)
sampler() {
	while kill -0 "$api_pid" 2>/dev/null; do
		rss_kib "$api_pid"
		sleep 0.1
	done
}
start sampler sampler

# Rounds: the floor and what is compared to it run back to back, round after
# round, so a burst of foreign load on the shared machine hits one round of
# each rather than all of one.  X.rps is the median over the rounds, X.ratio
# the median of the per-round ratios.
hello_l=() healthz_l=() whoami_l=() healthz_rl=() whoami_rl=()
hello_cl=() healthz_cl=() whoami_cl=()
hello_err=0 healthz_err=0 whoami_err=0
for round in $(seq "$rounds"); do
	say "HTTP round $round/$rounds"
	cpu_pid=${pids[hello]} wrk_run hello "$hello_url/healthz"
	hello_l+=("$RPS"); hello_cl+=("$CPU_US"); hello_err=$((hello_err + NON2XX + SOCKERR)); h=$RPS
	cpu_pid=$api_pid wrk_run healthz "$api_url/healthz"
	healthz_l+=("$RPS"); healthz_cl+=("$CPU_US"); healthz_err=$((healthz_err + NON2XX + SOCKERR))
	healthz_rl+=("$(ratio "$RPS" "$h")")
	cpu_pid=$api_pid wrk_run whoami "$api_url/v1/whoami" -H "Authorization: Bearer $token1"
	whoami_l+=("$RPS"); whoami_cl+=("$CPU_US"); whoami_err=$((whoami_err + NON2XX + SOCKERR))
	whoami_rl+=("$(ratio "$RPS" "$h")")
done
stop hello
echo "# rounds (req/s): hello ${hello_l[*]}; healthz ${healthz_l[*]}; whoami ${whoami_l[*]}"
echo "# rounds (server CPU µs per request): hello ${hello_cl[*]}; healthz ${healthz_cl[*]}; whoami ${whoami_cl[*]}"
fig hello.rps "$(median "${hello_l[@]}")" req/s
fig hello.errors "$hello_err" count
fig healthz.rps "$(median "${healthz_l[@]}")" req/s
fig healthz.errors "$healthz_err" count
r=$(median "${healthz_rl[@]}")
fig healthz.ratio "$r"
goal "$r" '>=' 0.8 "healthz.ratio >= 0.8 (GET /healthz vs the hello floor)"
fig whoami.rps "$(median "${whoami_l[@]}")" req/s
fig whoami.errors "$whoami_err" count
r=$(median "${whoami_rl[@]}")
fig whoami.ratio "$r"
goal "$r" '>=' 0.5 "whoami.ratio >= 0.5 (authenticated GET /v1/whoami, one repeated token, vs the hello floor)"
# CPU per request moves much less with foreign load than req/s does: the
# cost side of the same comparison (floor's CPU / p25-api's CPU)
hc=$(median "${hello_cl[@]}") zc=$(median "${healthz_cl[@]}") wc=$(median "${whoami_cl[@]}")
fig hello.cpu_per_req "$hc" us
fig healthz.cpu_per_req "$zc" us
fig whoami.cpu_per_req "$wc" us
echo "# CPU cost relative to the floor (hello CPU / p25-api CPU per request): healthz $(ratio "$hc" "$zc"), whoami $(ratio "$hc" "$wc")"
fig api.rss_idle_kib "$rss_idle" KiB
goal "$rss_idle" '<' 20480 "api.rss_idle_kib < 20480 (20 MiB)"

# ------------------------------------------------------------- submit

say "warming up the submit path (2 s, then one submit per tenant; not measured)"
wrk -t2 -c"$conns" -d2s --timeout 10s -s bench/requests.lua "$api_url" \
	-- "$work/submit.req" 202 >"$work/wrk.submit-warmup.txt" 2>&1 || true
# one submit for every tenant (the file's first $ntenants lines), so every
# token is in p25-api's token cache before rss_start: the cache fills as
# tokens are first seen, and filling it is not the growth "RSS flat" is
# about (with 24000 tenants, 2 s of wrk reach a quarter of them)
"$build/bench/bench-loadgen" --port "$api_port" --rate 2500 --connections "$conns" \
	--duration "$(awk -v n="$ntenants" 'BEGIN { d = n / 2500; printf "%.4f", d < 0.1 ? 0.1 : d }')" \
	--requests "$work/submit.req" >"$work/loadgen.submit-warmup.txt" 2>&1 || true
rss_start=$(rss_kib "$api_pid")
insert_l=() submit_l=() submit_rl=() submit_err=0
for round in $(seq "$rounds"); do
	say "submit round $round/$rounds"
	diag_start insert.r$round pgbench
	pgb insert p25 -D ntenants="$ntenants" -f bench/pgbench-insert.sql
	diag_stop
	insert_l+=("$TPS")
	diag_start submit.r$round p25-api
	wrk_run submit "$api_url" -s bench/requests.lua -- "$work/submit.req" 202
	diag_stop
	submit_l+=("$RPS"); submit_err=$((submit_err + LUAERR + SOCKERR))
	submit_rl+=("$(ratio "$RPS" "$TPS")")
done
rss_end=$(rss_kib "$api_pid")
echo "# rounds: pgbench insert (tx/s) ${insert_l[*]}; submit (req/s) ${submit_l[*]}"
fig pgbench.insert.tps "$(median "${insert_l[@]}")" tx/s
submit_rps=$(median "${submit_l[@]}")
fig submit.rps "$submit_rps" req/s
fig submit.errors "$submit_err" count
r=$(median "${submit_rl[@]}")
fig submit.ratio "$r"
goal "$r" '>=' 0.5 "submit.ratio >= 0.5 (POST /v1/requests vs pgbench insert of a request-shaped row, 64 clients each)"
fig api.rss_start_kib "$rss_start" KiB
fig api.rss_end_kib "$rss_end" KiB
grow=$(ratio "$rss_end" "$rss_start")
goal "$grow" '<=' 1.10 "RSS flat across the submit runs: end/start = $grow <= 1.10"

# ------------------------------------------------------------- get

# the submits left some 60,000 new rows: vacuum them now rather than let
# autovacuum wake in the middle of one of the rounds below
say "VACUUM ANALYZE after the submits"
psql -X -q -h "$pghost" -U postgres -d p25 -c "VACUUM ANALYZE" >&2

# get.req: GET /v1/requests/{id} over created ids, each with its owner's token
psql_owner -At -F $'\t' -c "SELECT tenant_id, id FROM requests ORDER BY random() LIMIT 20000" \
	>"$work/ids.tsv"
awk -F'\t' -v OFS='\t' 'NR == FNR { tok[$1] = $2; next } { print "GET", "/v1/requests/" $2, tok[$1] }' \
	"$work/tokens.tsv" "$work/ids.tsv" >"$work/get.req"
[ -s "$work/get.req" ] || die "no requests were created: nothing to GET"
select_l=() get_l=() get_rl=() get_err=0
for round in $(seq "$rounds"); do
	say "get round $round/$rounds"
	pgb select pgbench -S
	select_l+=("$TPS")
	diag_start get.r$round p25-api
	wrk_run get "$api_url" -s bench/requests.lua -- "$work/get.req" 200
	diag_stop
	get_l+=("$RPS"); get_err=$((get_err + LUAERR + SOCKERR))
	get_rl+=("$(ratio "$RPS" "$TPS")")
done
echo "# rounds: pgbench -S (tx/s) ${select_l[*]}; get (req/s) ${get_l[*]}"
fig pgbench.select.tps "$(median "${select_l[@]}")" tx/s
get_rps=$(median "${get_l[@]}")
fig get.rps "$get_rps" req/s
fig get.errors "$get_err" count
r=$(median "${get_rl[@]}")
fig get.ratio "$r"
goal "$r" '>=' 0.5 "get.ratio >= 0.5 (GET /v1/requests/{id} vs pgbench -S -M prepared, 64 clients each)"

# ------------------------------------------------------------- latency

# Rounds, as above: one submit run and one get run per round, alternating,
# so a burst of foreign load (or an autovacuum of the tables the submits
# grow) lands in one round of each; X.p99_ms and X.p50_ms are the medians
# over the rounds, the per-round values a comment.
submit_rate=$(int "$(awk -v r="$submit_rps" 'BEGIN { print r * 0.7 }')")
[ "$submit_rate" -ge 1 ] || submit_rate=1
get_rate=$(int "$(awk -v r="$get_rps" 'BEGIN { print r * 0.7 }')")
[ "$get_rate" -ge 1 ] || get_rate=1
sp50=() sp99=() sach=() serr=0 gp50=() gp99=() gach=() gerr=0
for round in $(seq "$rounds"); do
	say "latency round $round/$rounds"
	loadgen submit.r$round "$submit_rate" "$work/submit.req"
	sp50+=("$P50"); sp99+=("$P99"); sach+=("$LGRATE"); serr=$((serr + LGERR))
	loadgen get.r$round "$get_rate" "$work/get.req"
	gp50+=("$P50"); gp99+=("$P99"); gach+=("$LGRATE"); gerr=$((gerr + LGERR))
done
echo "# rounds: submit p50 (ms) ${sp50[*]}; submit p99 (ms) ${sp99[*]}; achieved (req/s) ${sach[*]}"
fig submit.p99_rate "$submit_rate" req/s
fig submit.p50_ms "$(median "${sp50[@]}")" ms
P99=$(median "${sp99[@]}")
fig submit.p99_ms "$P99" ms
fig submit.p99_errors "$serr" count
goal "$P99" '<' 50 "submit.p99_ms < 50 at 70 % of submit.rps (open loop, $submit_rate req/s; median of $rounds round(s))"
echo "# rounds: get p50 (ms) ${gp50[*]}; get p99 (ms) ${gp99[*]}; achieved (req/s) ${gach[*]}"
fig get.p99_rate "$get_rate" req/s
fig get.p50_ms "$(median "${gp50[@]}")" ms
P99=$(median "${gp99[@]}")
fig get.p99_ms "$P99" ms
fig get.p99_errors "$gerr" count
goal "$P99" '<' 50 "get.p99_ms < 50 at 70 % of get.rps (open loop, $get_rate req/s; median of $rounds round(s))"

curl -fsS "$api_url/metrics" 2>/dev/null | awk '
	$1 == "p25_auth_cache_hits_total" { h = $2 } $1 == "p25_auth_cache_misses_total" { m = $2 }
	END { if (h + m > 0) printf "# p25-api auth cache over the whole run: %d hits, %d misses (full verifications)\n", h, m }' || true

stop sampler
rss_max=$(sort -n "$work/sampler.log" | tail -n 1)
fig api.rss_64conn_kib "${rss_max:-0}" KiB
goal "${rss_max:-0}" '<' 65536 "api.rss_64conn_kib < 65536 (64 MiB; max of 100 ms samples over every 64-connection run)"
