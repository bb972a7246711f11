#!/usr/bin/env bash
# monitor.sh — the issue 7 benchmark: watching after approval.
#
#   bash bench/monitor.sh
#
# Two measurements, one line per figure on stdout ("name value unit"),
# comment lines ("# ...") with the goals and the settings; progress on
# stderr.  See bench/MONITOR.md for what each figure means and the last
# figures measured.
#
#  1. Scheduled re-checks: BENCH_EXEMPTIONS (100,000) active exemptions are
#     inserted by SQL as the table owner, all due at once (next_check_at =
#     now()), BENCH_LISTED (100) of them listed in SBL.  One p25-worker with
#     P25_WORKER_THREADS=1 re-checks them against the loopback DNSBL
#     (rbldnsd, asked directly; BENCH_DNS=dnsmasq puts dnsmasq in front).
#     Timed until every next_check_at has moved into the future; the
#     worker's CPU time from /proc/PID/stat (utime + stime) and rbldnsd's own
#     query counters give the CPU share and the DNS queries per second.
#     Goal: 100,000 re-checked within one interval (an hour) using at most
#     one core.
#  2. Abuse report → revoke: BENCH_REPORTS (200) times, a long-poll
#     GET /v1/enforcement/feed?after=HEAD&wait=30 is held (p25_feed_held
#     says so) before a JSON abuse report (spam) is POSTed against an
#     exempted address; timed from sending the report to the long-poll's
#     answer carrying the revoke event.  Goal: p99 < 1 s.
#
# Environment:
#   P25_BUILD_DIR      use the binaries there instead of building the release preset
#   BENCH_EXEMPTIONS   exemptions re-checked (100000)
#   BENCH_LISTED       of them listed in SBL, so the suspension path runs too (100)
#   BENCH_REPORTS      abuse reports timed (200)
#   BENCH_DNS          rbldnsd (default: the worker asks rbldnsd) or dnsmasq
#   BENCH_WORKER_THREADS  the worker's P25_WORKER_THREADS (1: the goal is one core);
#                      with more, and a run longer than P25_JOB_LEASE, see
#                      monitor.moved_twice
#   BENCH_KEEP=1       keep the work folder (logs, cluster)
#   P25_DNS_MAX_INFLIGHT  the worker's DNS window (queries in flight per channel, 64);
#                      like any P25_* variable set here, passed on to the worker
#
# Everything runs on loopback in a throwaway folder under $TMPDIR: a durable
# PostgreSQL 15 cluster (fsync on: scripts/testpg.sh --durable), rbldnsd
# (and dnsmasq), p25-worker, p25-api.  An EXIT trap stops every process
# this script started and the cluster.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

n_ex=${BENCH_EXEMPTIONS:-100000}
n_listed=${BENCH_LISTED:-100}
n_reports=${BENCH_REPORTS:-200}
n_threads=${BENCH_WORKER_THREADS:-1}
dns_mode=${BENCH_DNS:-rbldnsd}
case "$dns_mode" in rbldnsd | dnsmasq) ;; *) echo "BENCH_DNS must be rbldnsd or dnsmasq" >&2; exit 64 ;; esac
[ "$n_listed" -lt "$n_ex" ] || { echo "BENCH_LISTED must be below BENCH_EXEMPTIONS" >&2; exit 64; }

say() { printf 'bench-monitor: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
fig() { printf '%s %s %s\n' "$1" "$2" "$3"; }
goal() { # VALUE OP TARGET TEXT
	local verdict
	verdict=$(awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (v == "" || v == "n/a") { print "not measured"; exit }
		ok = (op == "<") ? (v + 0 < t + 0) : (v + 0 <= t + 0)
		print ok ? "met" : "MISSED" }')
	printf '# goal: %s — %s\n' "$4" "$verdict"
}
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\\n\", $2 }"; }

for c in psql curl node rbldnsd ss; do command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || die "$c is missing"; done
RBLDNSD=$(command -v rbldnsd || echo /usr/sbin/rbldnsd)
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)

# ------------------------------------------------------------- build

if [ -n "${P25_BUILD_DIR:-}" ]; then
	build=$(realpath "$P25_BUILD_DIR")
else
	say "building the release preset"
	cmake --preset release >&2
	cmake --build --preset release -j 2 --target p25-api p25-worker p25ctl >&2
	build=$root/build/release
fi
for b in p25-api p25-worker p25ctl; do
	[ -x "$build/$b" ] || die "$build/$b is missing (build it, or unset P25_BUILD_DIR)"
done

# ------------------------------------------------------------- processes

work=$(mktemp -d "${TMPDIR:-/tmp}/p25-bench-mon.XXXXXX")
chmod 755 "$work"
declare -A pids=()

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"	# start NAME CMD..., stop NAME
cleanup() {
	local rc=$?
	set +e
	for name in "${!pids[@]}"; do stop "$name"; done
	[ -f "$work/pg/data/PG_VERSION" ] && bash scripts/testpg.sh stop "$work/pg"
	if [ -n "${BENCH_KEEP:-}" ]; then say "kept $work"; else rm -rf "$work"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { # a port free for TCP and UDP on 127.0.0.1
	local p
	for p in $(shuf -i 20000-60000 -n 200); do
		[ -z "$(ss -Hlntu "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
	done
	die "no free port"
}
# UDP datagrams the kernel dropped for a full socket receive buffer (all sockets)
udp_drops() { awk '$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
	$1 == "Udp:" { print $c["RcvbufErrors"] }' /proc/net/snmp; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

# ------------------------------------------------------------- cluster, config

say "durable PostgreSQL cluster in $work/pg"
while IFS= read -r line; do
	case "$line" in P25_*=*) export "${line?}" ;; esac
done < <(bash scripts/testpg.sh start "$work/pg" --durable)
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$P25_MIGRATE_DATABASE_URL" "$@"; }

head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/auth.key"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/kek.hex"
chmod 600 "$work/auth.key" "$work/kek.hex"
export P25_AUTH_ALG=HS256 P25_AUTH_KEY_FILE=$work/auth.key P25_AUTH_ISSUER=p25-bench P25_AUTH_AUDIENCE=p25 \
	P25_KEK_FILE=$work/kek.hex P25_DEV_MODE=true P25_LOG_LEVEL=warn P25_DNSBL_ZONES=zen.test
"$build/p25ctl" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate failed"; }

# ------------------------------------------------------------- DNS

zdir=$work/dns
mkdir -p "$zdir"
chmod 777 "$zdir"
{
	echo '$SOA 0 ns.zen.test. hostmaster.zen.test. 1 600 300 86400 0'
	echo '$NS 0 ns.zen.test.'
	echo '$TTL 0'
	echo ':127.0.0.2:Listed in zen.test, see http://zen.test/lookup?ip=$'
	echo '127.0.0.2'
	# the listed ones: the first BENCH_LISTED addresses of the range below
	awk -v n="$n_listed" 'BEGIN { for (i = 0; i < n; i++)
		printf "81.%d.%d.%d :127.0.0.2:SBL listing for $\n", 2 + int(i / 65536), int(i / 256) % 256, i % 256 }'
} >"$zdir/zen.test.zone"
chmod 644 "$zdir/zen.test.zone"
rbl_port=$(free_port)
rbl_user=()
[ "$(id -u)" = 0 ] && rbl_user=(-u nobody)
start rbldnsd "$RBLDNSD" -n "${rbl_user[@]}" -b "127.0.0.1/$rbl_port" -w "$zdir" -c 1 -s "$zdir/stats" \
	zen.test:ip4set:zen.test.zone
dns_server=127.0.0.1:$rbl_port
if [ "$dns_mode" = dnsmasq ]; then
	dm_port=$(free_port)
	dm_user=()
	[ "$(id -u)" = 0 ] && dm_user=(--user=nobody --group=nogroup)
	start dnsmasq "$DNSMASQ" --keep-in-foreground --conf-file=/dev/null --pid-file "${dm_user[@]}" \
		--port="$dm_port" --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
		--log-facility=- --cache-size=0 --dns-forward-max=4096 "--server=/zen.test/127.0.0.1#$rbl_port"
	dns_server=127.0.0.1:$dm_port
fi
export P25_DNS_SERVERS=$dns_server
node -e '
const { Resolver } = require("node:dns").promises;
const r = new Resolver({ timeout: 300, tries: 1 });
r.setServers([process.argv[1]]);
(async () => {
	for (let i = 0; i < 100; i++) {
		try { if ((await r.resolve4("2.0.0.127.zen.test")).includes("127.0.0.2")) return; } catch {}
		await new Promise((res) => setTimeout(res, 100));
	}
	process.exit(1);
})();' "$dns_server" || { cat "$work"/rbldnsd.log >&2; die "the DNSBL does not answer"; }
# queries rbldnsd has answered so far (its stats file, rewritten every second)
rbl_queries() {
	local f=$zdir/stats
	[ -f "$f" ] || { echo 0; return; }
	awk '{ for (i = 2; i <= NF; i++) { split($i, a, ":"); if (a[1] == "zen.test") q = a[2] } } END { print q + 0 }' "$f"
}

# ------------------------------------------------------------- 1. re-checks

say "inserting $n_ex active exemptions, all due now ($n_listed listed in SBL)"
t_ins0=$(now)
sql <<SQL
INSERT INTO tenants (id, name, account_created_at, verified, standing)
VALUES ('bench', 'Bench', now() - interval '400 days', true, 'good');
INSERT INTO tenant_addresses (tenant_id, prefix) VALUES ('bench', '81.0.0.0/8');
INSERT INTO requests (id, tenant_id, status, use_case, vetting_round)
VALUES ('00000000-0000-4000-8000-000000000001', 'bench', 'approved', 'transactional', 1);
INSERT INTO exemptions (tenant_id, request_id, prefix, expires_at, next_check_at)
SELECT 'bench', '00000000-0000-4000-8000-000000000001',
       format('81.%s.%s.%s/32', 2 + i / 65536, (i / 256) % 256, i % 256)::cidr,
       now() + interval '90 days', now()
  FROM generate_series(0, $n_ex - 1) i;
ANALYZE exemptions;
SQL
say "inserted in $(calc '%.1f' "$(now) - $t_ins0") s"
t_due=$(sql -c "SELECT now()")

q0=$(rbl_queries)
udp0=$(udp_drops)
t_w0=$(now)
P25_WORKER_THREADS=$n_threads start worker "$build/p25-worker"
wpid=${pids[worker]}
say "p25-worker $wpid ($n_threads thread(s)) started; its ticker queues the monitor within 10 s"
t_claim=
last_left=-1
while :; do
	kill -0 "$wpid" 2>/dev/null || { tail -20 "$work/worker.log" >&2; die "p25-worker died"; }
	read -r left running < <(sql -F ' ' -c "SELECT
		(SELECT count(*) FROM exemptions WHERE status = 'active' AND next_check_at <= '$t_due'),
		(SELECT count(*) FROM jobs WHERE kind = 'monitor' AND state IN ('running', 'done'))")
	if [ -z "$t_claim" ] && [ "$running" -gt 0 ]; then t_claim=$(now); fi
	if [ "$left" = 0 ]; then t_done=$(now); break; fi
	if [ "$left" != "$last_left" ]; then say "$left exemptions still due"; last_left=$left; fi
	[ "$(calc '%d' "$(now) - $t_w0")" -lt 3600 ] || die "not done after an hour"
	sleep 0.2
done
cpu=$(cpu_ticks "$wpid")
sleep 1.2 # rbldnsd writes its counters every second
q1=$(rbl_queries)
udp1=$(udp_drops)
[ -n "$t_claim" ] || t_claim=$t_w0
wall=$(calc '%.2f' "$t_done - $t_claim")
cpu_s=$(calc '%.2f' "$cpu / $hz")
share=$(calc '%.3f' "$cpu_s / $wall")
queries=$((q1 - q0))
suspended=$(sql -c "SELECT count(*) FROM exemptions WHERE status = 'suspended'")
errors=$(sql -c "SELECT count(*) FROM exemptions WHERE check_errors > 0")
spread=$(sql -c "SELECT round(extract(epoch FROM max(next_check_at) - min(next_check_at))::numeric, 1)
	FROM exemptions WHERE status = 'active'")
lease=$(grep -c '"job.lease' "$work/worker.log" || true)
# re-checked more than once by this run: moved on by more than one interval
# (the default policy: 3600 s) — two runs of the job over the same rows
twice=$(sql -c "SELECT count(*) FROM exemptions WHERE next_check_at > '$t_due'::timestamptz + interval '3600 s' + interval '5 minutes'
	OR check_errors > 1")

fig monitor.exemptions "$n_ex" exemptions
fig monitor.wall "$wall" s
fig monitor.wall_from_start "$(calc '%.2f' "$t_done - $t_w0")" s
fig monitor.rate "$(calc '%.0f' "$n_ex / $wall")" exemptions/s
fig monitor.cpu "$cpu_s" s
fig monitor.cpu_share "$share" cores
fig monitor.cpu_per_check "$(calc '%.1f' "$cpu_s / $n_ex * 1e6")" us
fig monitor.dns_queries "$queries" queries
fig monitor.dns_rate "$(calc '%.0f' "$queries / $wall")" queries/s
fig monitor.suspended "$suspended" exemptions
fig monitor.dns_errors "$errors" exemptions
fig monitor.moved_twice "$twice" exemptions
fig monitor.udp_rcvbuf_errors "$((udp1 - udp0))" datagrams
echo "# settings: $n_ex exemptions due at once, $n_listed listed (SBL), one zone, DNS via $dns_mode" \
	"($dns_server), P25_WORKER_THREADS=$n_threads, P25_JOB_LEASE=${P25_JOB_LEASE:-60}," \
	"P25_DNS_MAX_INFLIGHT=${P25_DNS_MAX_INFLIGHT:-64}, DNS timeout ${P25_DNS_TIMEOUT_MS:-1500} ms × ${P25_DNS_TRIES:-2} tries," \
	"durable cluster, $(nproc) CPUs"
echo "# load average at the end of the run: $(cut -d' ' -f1-3 /proc/loadavg) (wall times suffer from other load; CPU time does not)"
echo "# wall: from the monitor job's claim to the last next_check_at in the future" \
	"(wall_from_start adds the worker start and the ticker's first tick)"
echo "# next_check_at spread after the run: $spread s (each moves by exactly one interval: the phase is kept)"
[ "$errors" = 0 ] || echo "# NOTE: $errors exemptions ended the run with a DNS error (check_errors > 0):" \
	"lost UDP datagrams (udp_rcvbuf_errors counts every socket on the machine) time out"
[ "$lease" = 0 ] || echo "# NOTE: $lease job lease message(s) in the worker log: the run outlived P25_JOB_LEASE"
goal "$wall" "<" 3600 "$n_ex re-checks within one interval (3600 s)"
goal "$share" "<=" 1.0 "at most one core (worker CPU time / wall time)"
goal "$suspended" "<=" "$n_listed" "the $n_listed listed ones suspended, no other"
goal "$errors" "<=" 0 "no DNS errors against a healthy loopback DNSBL"
stop worker

# ------------------------------------------------------------- 2. abuse report → revoke

api_port=$(free_port)
start api env P25_LISTEN="127.0.0.1:$api_port" "$build/p25-api"
for i in $(seq 150); do
	curl -fsS -o /dev/null "http://127.0.0.1:$api_port/healthz" 2>/dev/null && break
	kill -0 "${pids[api]}" 2>/dev/null || { cat "$work/api.log" >&2; die "p25-api died"; }
	[ "$i" = 150 ] && die "p25-api did not come up"
	sleep 0.1
done
# the targets: active exemptions of the re-check run past the listed ones
reporter=$("$build/p25ctl" dev-token --sub bench-feed --roles reporter --ttl 3600)
enforcer=$("$build/p25ctl" dev-token --sub bench-node --roles enforcer --ttl 3600)
say "timing $n_reports abuse reports against a held long-poll"
cat >"$work/revoke.mjs" <<'JS'
// One report at a time: hold GET /v1/enforcement/feed?after=HEAD&wait=30,
// wait until the API says it holds it, POST the report, time until the
// long-poll answers with the revoke.
import http from 'node:http';
const [base, reporter, enforcer, n, first] = process.argv.slice(2);
const call = (method, path, token, body) => new Promise((resolve, reject) => {
	const data = body ? Buffer.from(JSON.stringify(body)) : null;
	const req = http.request(`${base}${path}`, { method, agent: false, headers: {
		...(token ? { Authorization: `Bearer ${token}` } : {}),
		...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}) } }, (res) => {
		const chunks = [];
		res.on('data', (c) => chunks.push(c));
		res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
	});
	req.on('error', reject);
	req.end(data);
});
const held = async () => {
	for (;;) {
		const m = await call('GET', '/metrics');
		const v = /^p25_feed_held (\d+)$/m.exec(m.text);
		if (v && Number(v[1]) >= 1) return;
		await new Promise((r) => setTimeout(r, 2));
	}
};
const ip = (i) => `81.${2 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
let seq = JSON.parse((await call('GET', '/v1/enforcement/snapshot', enforcer)).text).seq;
const lat = [], post = [];
for (let k = 0; k < Number(n); k++) {
	const addr = ip(Number(first) + k);
	const poll = call('GET', `/v1/enforcement/feed?after=${seq}&wait=30&limit=100`, enforcer);
	await held();
	const t0 = performance.now();
	const p = call('POST', '/v1/abuse-reports', reporter, { address: addr, source: 'bench', category: 'spam',
		report_id: `bench-${k}`, evidence: { bench: true } }).then((r) => {
		if (r.status !== 201) throw new Error(`report ${k}: ${r.status} ${r.text}`);
		post.push(performance.now() - t0);
	});
	const r = await poll;
	const t1 = performance.now();
	await p;
	const body = JSON.parse(r.text);
	if (!body.events.some((e) => e.type === 'revoke' && e.cidr === `${addr}/32`)) {
		throw new Error(`long-poll ${k} answered without the revoke of ${addr}: ${r.text.slice(0, 300)}`);
	}
	seq = body.next;
	lat.push(t1 - t0);
}
const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]; };
const f = (v) => (v / 1000).toFixed(4);
console.log(`revoke.p50 ${f(q(lat, 0.5))} s`);
console.log(`revoke.p99 ${f(q(lat, 0.99))} s`);
console.log(`revoke.max ${f(Math.max(...lat))} s`);
console.log(`revoke.report_answer_p50 ${f(q(post, 0.5))} s`);
console.log(`revoke.report_answer_p99 ${f(q(post, 0.99))} s`);
JS
out=$(node "$work/revoke.mjs" "http://127.0.0.1:$api_port" "$reporter" "$enforcer" "$n_reports" \
	"$((n_listed + 1))") || die "the abuse report run failed"
fig revoke.reports "$n_reports" reports
echo "$out"
p99=$(awk '$1 == "revoke.p99" { print $2 }' <<<"$out")
echo "# revoke: from sending POST /v1/abuse-reports to the held long-poll's answer with the revoke event;" \
	"one report at a time, durable commits"
goal "$p99" "<" 1 "abuse report → revoke on a held long-poll, p99 < 1 s"
