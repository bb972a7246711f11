#!/usr/bin/env bash
# enforce.sh — the issue 5 benchmark: enforcement at scale.
#
#   bash bench/enforce.sh
#
# One line per figure on stdout ("name value unit"), comment lines
# ("# ...") with the goals and the settings; progress on stderr.  See
# bench/ENFORCE.md for what each figure means and the last figures measured.
#
#  1. Verification rate (no stack): BENCH_TOKENS (100,000) tokens of p25's
#     shape are minted with a fresh key (bench-tokens mint); bench-tokens
#     rate times, on one thread and on the same tokens, raw
#     crypto_sign_verify_detached (the floor) and p25_token_verify (the
#     library the agent uses).  Goal: library ≥ 0.9 × raw.
#  2. Snapshot served: the same tokens are loaded into a throwaway database
#     (their key in signing_keys, one exemption and one current token each);
#     GET /v1/enforcement/snapshot is timed with curl, BENCH_SNAPSHOTS (3)
#     times: the first builds the body (cold), the others are answered from
#     p25-api's snapshot cache (the same feed position).  Then a feed event
#     that changes no token (a renew carrying the current token) moves the
#     position, and BENCH_SNAP_PAR (8) fetches start at once: one build.
#     Goal: < 1 s.
#  3. Snapshot applied by the agent (verify + render, not the nft load):
#       cold  p25-enforcer --print against the API: its own timings
#             (snapshot_timing, render_timing at --log-level debug);
#       warm  p25-enforcer --apply --nft /bin/true (loads nothing) after a
#             SIGHUP: re-read keys, full snapshot, render — the path of the
#             hourly resync and of a key change, with the tokens unchanged.
#     Goal: < 2 s.  The cold figure has a floor: every token's signature,
#     tokens × verify.raw_us / CPUs.
#  4. Long-polls: BENCH_POLLS (2,000) GET /v1/enforcement/feed?after=HEAD&wait=60
#     held by one p25-api (bench-longpoll, one epoll loop); once p25_feed_held
#     says all are held, one exemption is revoked (POST
#     /v1/exemptions/{id}/revoke) and every answer is timed from just before
#     the POST.  VmRSS of p25-api before and while they are held gives the
#     memory per held connection.  Goals: p99 < 1 s; < 32 KiB per connection.
#
# Environment:
#   P25_BUILD_DIR    use the binaries there instead of building the release preset
#   BENCH_TOKENS     tokens (100000)
#   BENCH_POLLS      long-polls held at once (2000)
#   BENCH_SNAPSHOTS  snapshot fetches timed one after the other (3; the first is cold)
#   BENCH_SNAP_PAR   snapshot fetches at once at a new position (8; 0: none)
#   BENCH_ROUNDS     verification-rate rounds (5)
#   P25_HTTP_THREADS, P25_DB_POOL_SIZE   p25-api's (its defaults when unset)
#   BENCH_KEEP=1     keep the work folder (logs, tokens, cluster)
#
# Everything runs on loopback in a throwaway folder under $TMPDIR: a durable
# PostgreSQL 15 cluster (scripts/testpg.sh --durable), p25-api, the agent.
# The open-file limit is raised to what BENCH_POLLS needs (both p25-api and
# bench-longpoll inherit it).  An EXIT trap stops every process this script
# started and the cluster.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

n_tok=${BENCH_TOKENS:-100000}
n_polls=${BENCH_POLLS:-2000}
n_snap=${BENCH_SNAPSHOTS:-3}
n_par=${BENCH_SNAP_PAR:-8}
n_rounds=${BENCH_ROUNDS:-5}
iss=p25-bench

say() { printf 'bench-enforce: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
fig() { printf '%s %s %s\n' "$1" "$2" "$3"; }
goal() { # VALUE OP TARGET TEXT
	local verdict
	verdict=$(awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (v == "" || v == "n/a") { print "not measured"; exit }
		ok = (op == "<") ? (v + 0 < t + 0) : (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0)
		print ok ? "met" : "MISSED" }')
	printf '# goal: %s — %s\n' "$4" "$verdict"
}
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\\n\", $2 }"; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
# a field of the last JSON log line of EVENT in FILE
logfield() { grep "\"event\":\"$2\"" "$1" | tail -1 | sed -n "s/.*\"$3\":\([0-9]*\).*/\1/p"; }

for c in psql curl ss; do command -v "$c" >/dev/null || die "$c is missing"; done

# ------------------------------------------------------------- limits

need=$((n_polls + 256))
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$need" ]; then
	hard=$(ulimit -Hn)
	if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then
		ulimit -Sn "$need"
	else
		ulimit -Hn "$need" 2>/dev/null && ulimit -Sn "$need" ||
			die "the open-file limit ($hard) is below the $need BENCH_POLLS needs"
	fi
fi

# ------------------------------------------------------------- build

targets=(p25-api p25ctl p25-enforcer bench-tokens bench-longpoll)
if [ -n "${P25_BUILD_DIR:-}" ]; then
	build=$(realpath "$P25_BUILD_DIR")
else
	say "building the release preset"
	cmake --preset release >&2
	cmake --build --preset release -j 2 --target "${targets[@]}" >&2
	build=$root/build/release
fi
for b in p25-api p25ctl p25-enforcer bench/bench-tokens bench/bench-longpoll; do
	[ -x "$build/$b" ] || die "$build/$b is missing (build it, or unset P25_BUILD_DIR)"
done

# ------------------------------------------------------------- processes

work=$(mktemp -d "${TMPDIR:-/tmp}/p25-bench-enf.XXXXXX")
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

free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 200); do
		[ -z "$(ss -Hlnt "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
	done
	die "no free port"
}

echo "# machine: $(nproc) CPUs, $(uname -r); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (modified tree)')"
echo "# settings: $n_tok tokens, $n_polls long-polls, $n_snap snapshot fetches, $n_rounds verify rounds," \
	"P25_HTTP_THREADS=${P25_HTTP_THREADS:-default} P25_DB_POOL_SIZE=${P25_DB_POOL_SIZE:-default}," \
	"open files $(ulimit -Sn); build $build"
echo "# load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------- 1. verify rate

tok=$work/tok
mkdir -p "$tok"
say "minting $n_tok tokens"
"$build/bench/bench-tokens" mint "$n_tok" "$tok" "$iss"
say "verification rate: raw crypto_sign_verify_detached vs p25_token_verify, $n_rounds rounds"
vout=$("$build/bench/bench-tokens" rate "$tok" "$iss" "$n_rounds" 2>"$work/rate.log") ||
	{ cat "$work/rate.log" >&2; die "bench-tokens rate failed"; }
echo "$vout"
raw_us=$(awk '$1 == "verify.raw_us" { print $2 }' <<<"$vout")
goal "$(awk '$1 == "verify.ratio" { print $2 }' <<<"$vout")" ">=" 0.9 \
	"p25_token_verify ≥ 0.9 × raw crypto_sign_verify_detached (per-token CPU time)"

# ------------------------------------------------------------- the stack

say "durable PostgreSQL cluster in $work/pg"
while IFS= read -r line; do
	case "$line" in P25_*=*) export "${line?}" ;; esac
done < <(bash scripts/testpg.sh start "$work/pg" --durable)
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$P25_MIGRATE_DATABASE_URL" "$@"; }

head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/auth.key"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/kek.hex"
chmod 600 "$work/auth.key" "$work/kek.hex"
export P25_AUTH_ALG=HS256 P25_AUTH_KEY_FILE=$work/auth.key P25_AUTH_ISSUER=p25-bench-idp P25_AUTH_AUDIENCE=p25 \
	P25_KEK_FILE=$work/kek.hex P25_DEV_MODE=true P25_LOG_LEVEL=warn P25_TOKEN_ISSUER=$iss
"$build/p25ctl" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate failed"; }

say "loading $n_tok exemptions and their tokens"
read -r kid pkhex <"$tok/key.txt"
t_ins0=$(now)
sql <<SQL
INSERT INTO tenants (id, name, account_created_at, verified, standing)
VALUES ('bench', 'Bench', now() - interval '400 days', true, 'good');
INSERT INTO requests (id, tenant_id, status, use_case, vetting_round)
VALUES ('00000000-0000-4000-8000-000000000001', 'bench', 'approved', 'transactional', 1);
-- the bench key: public part only (nothing here signs; the agent pins jwks.json)
INSERT INTO signing_keys (kid, public_key, sealed_private, nonce, status, retired_at, verify_until)
VALUES ('$kid', decode('$pkhex', 'hex'), '\\x00', '\\x00', 'retiring', now(), now() + interval '31 days');
CREATE TEMP TABLE bt (id uuid, cidr cidr, jws text);
\\copy bt FROM '$tok/tokens.tsv'
INSERT INTO exemptions (id, tenant_id, request_id, prefix, expires_at)
SELECT id, 'bench', '00000000-0000-4000-8000-000000000001', cidr, now() + interval '30 days' FROM bt;
INSERT INTO tokens (exemption_id, tenant_id, kid, jws, issued_at, expires_at)
SELECT id, 'bench', '$kid', jws, now(), now() + interval '30 days' FROM bt;
ANALYZE exemptions;
ANALYZE tokens;
SQL
say "loaded in $(calc '%.1f' "$(now) - $t_ins0") s"

api_port=$(free_port)
start api env P25_LISTEN="127.0.0.1:$api_port" "$build/p25-api"
api=http://127.0.0.1:$api_port
for i in $(seq 150); do
	curl -fsS -o /dev/null "$api/healthz" 2>/dev/null && break
	kill -0 "${pids[api]}" 2>/dev/null || { cat "$work/api.log" >&2; die "p25-api died"; }
	[ "$i" = 150 ] && die "p25-api did not come up"
	sleep 0.1
done
apid=${pids[api]}
enforcer=$("$build/p25ctl" dev-token --sub bench-node --roles enforcer --ttl 7200)
reviewer=$("$build/p25ctl" dev-token --sub bench-reviewer --roles reviewer --ttl 7200)
printf '%s\n' "$enforcer" >"$work/enforcer.token"
chmod 600 "$work/enforcer.token"

# ------------------------------------------------------------- 2. snapshot served

say "timing GET /v1/enforcement/snapshot ($n_snap times)"
# CPU time (ticks) of p25-api and of every PostgreSQL process of the cluster
hz=$(getconf CLK_TCK)
pm=$(head -1 "$work/pg/data/postmaster.pid")
stack_ticks() {
	local p t=0
	for p in "$apid" "$pm" $(ps -o pid= --ppid "$pm"); do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
api_ticks() { awk '{ print $14 + $15 }' "/proc/$apid/stat"; }
snap_times=()
snap_ticks=()
snap_api_ticks=()
for i in $(seq "$n_snap"); do
	ticks0=$(stack_ticks)
	aticks0=$(api_ticks)
	out=$(curl -sS -o "$work/snapshot.json" -w '%{http_code} %{time_total} %{size_download}' \
		-H "Authorization: Bearer $enforcer" "$api/v1/enforcement/snapshot")
	snap_ticks+=($(($(stack_ticks) - ticks0)))
	snap_api_ticks+=($(($(api_ticks) - aticks0)))
	read -r code t size <<<"$out"
	[ "$code" = 200 ] || die "snapshot answered $code"
	snap_times+=("$t")
done
n_in_snap=$(grep -o '"ey' "$work/snapshot.json" | wc -l)
[ "$n_in_snap" = "$n_tok" ] || die "the snapshot holds $n_in_snap tokens, not $n_tok"
median() { sort -g | awk '{ a[NR] = $1 } END { print NR ? a[int((NR + 1) / 2)] : "n/a" }'; }
snap_cold=${snap_times[0]}
snap_cold_cpu=$(calc '%.3f' "${snap_ticks[0]} / $hz")
fig snapshot.tokens "$n_in_snap" tokens
fig snapshot.bytes "$size" bytes
fig snapshot.cold "$snap_cold" s
fig snapshot.cold_cpu "$snap_cold_cpu" s
fig snapshot.cold_cpu_api "$(calc '%.3f' "${snap_api_ticks[0]} / $hz")" s
if [ "$n_snap" -gt 1 ]; then
	snap_med=$(printf '%s\n' "${snap_times[@]:1}" | median)
	snap_cached_cpu=$(calc '%.3f' "($(printf '%s+' "${snap_ticks[@]:1}")0) / $hz / ($n_snap - 1)")
	fig snapshot.served "$snap_med" s
	fig snapshot.cpu "$snap_cached_cpu" s
fi
echo "# snapshot: curl time_total (request to last byte) of GET /v1/enforcement/snapshot, one after" \
	"the other: ${snap_times[*]} s; the first built the body (snapshot.cold), the others were" \
	"answered from p25-api's cache at the same position (snapshot.served: their median);" \
	"*cpu: CPU time of p25-api and the PostgreSQL processes per fetch (ticks of 1/$hz s)"
if [ "$n_par" -gt 0 ]; then
	# a new position, the same tokens: a renew event carrying an exemption's current token
	sql -c "INSERT INTO feed_events (type, exemption_id, tenant_id, prefix, token)
		SELECT 'renew', e.id, e.tenant_id, e.prefix, t.jws FROM exemptions e
		JOIN tokens t ON t.exemption_id = e.id AND t.current ORDER BY e.id LIMIT 1" >/dev/null
	ticks0=$(stack_ticks)
	t0=$(now)
	par_pids=()
	for i in $(seq "$n_par"); do
		curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $enforcer" \
			"$api/v1/enforcement/snapshot" >"$work/par.$i" &
		par_pids+=($!)
	done
	wait "${par_pids[@]}"
	par_wall=$(calc '%.3f' "$(now) - $t0")
	par_cpu=$(calc '%.3f' "($(stack_ticks) - $ticks0) / $hz")
	par_times=$(cat "$work"/par.* | awk '$1 == 200 { print $2 } $1 != 200 { print "failed" }')
	grep -q failed <<<"$par_times" && die "a concurrent snapshot fetch failed"
	fig snapshot.par_fetches "$n_par" fetches
	fig snapshot.par_last "$(sort -g <<<"$par_times" | tail -1)" s
	fig snapshot.par_median "$(median <<<"$par_times")" s
	fig snapshot.par_cpu "$par_cpu" s
	echo "# snapshot.par: $n_par fetches started at once at a new feed position (nothing cached for" \
		"it): one builds, the others wait for that build; last = the slowest answer (wall for all:" \
		"$par_wall s), cpu = p25-api + PostgreSQL for all $n_par"
fi
goal "$snap_cold" "<" 1 "snapshot of $n_tok active tokens served < 1 s, cold (the body built)"
[ "$n_snap" -gt 1 ] && goal "$snap_med" "<" 1 "snapshot of $n_tok active tokens served < 1 s, from the cache"

# ------------------------------------------------------------- 3. the agent

agent_args=(--api "$api" --token-file "$work/enforcer.token" --jwks-pin "$tok/jwks.json"
	--issuer "$iss" --node bench-node --log-level debug)
say "p25-enforcer --print (cold: every token verified)"
t0=$(now)
"$build/p25-enforcer" --print "${agent_args[@]}" --state-dir "$work/enf-print" \
	>"$work/ruleset.nft" 2>"$work/print.log" || { tail -5 "$work/print.log" >&2; die "p25-enforcer --print failed"; }
print_wall=$(calc '%.3f' "$(now) - $t0")
fetch_ms=$(logfield "$work/print.log" snapshot_timing fetch_ms)
parse_ms=$(logfield "$work/print.log" snapshot_timing parse_ms)
verify_ms=$(logfield "$work/print.log" snapshot_timing verify_ms)
render_ms=$(logfield "$work/print.log" render_timing ms)
cold_cpu=$(( $(logfield "$work/print.log" snapshot_timing parse_cpu_ms) + $(logfield "$work/print.log" snapshot_timing verify_cpu_ms) + $(logfield "$work/print.log" render_timing cpu_ms) ))
elements=$(grep -c ' timeout [0-9]*s' "$work/ruleset.nft" || true)
cold=$(calc '%.3f' "($parse_ms + $verify_ms + $render_ms) / 1000")
floor=$(calc '%.3f' "$n_tok * $raw_us / 1e6 / $(nproc)")
fig agent.cold.wall "$print_wall" s
fig agent.cold.fetch "$(calc '%.3f' "$fetch_ms / 1000")" s
fig agent.cold.parse "$(calc '%.3f' "$parse_ms / 1000")" s
fig agent.cold.verify "$(calc '%.3f' "$verify_ms / 1000")" s
fig agent.cold.render "$(calc '%.3f' "$render_ms / 1000")" s
fig agent.cold.applied "$cold" s
fig agent.cold.cpu "$(calc '%.3f' "$cold_cpu / 1000")" s
fig agent.verify_floor "$floor" s
fig agent.set_elements "$elements" elements
echo "# agent.cold: p25-enforcer --print (a node with no state), parse + verify + render from its" \
	"debug log; wall adds the process start, the fetch and writing the rule set"
echo "# agent.verify_floor: $n_tok × verify.raw_us ($raw_us us) / $(nproc) CPUs — the signatures alone"
goal "$cold" "<" 2 "cold: snapshot of $n_tok applied by the agent (parse + verify + render) < 2 s"

say "p25-enforcer --apply --nft /bin/true, then SIGHUP (warm: tokens held and verified)"
# the n-th snapshot_timing line of the agent's log
nth_timing() { grep '"event":"snapshot_timing"' "$work/agent.log" | sed -n "${1}p"; }
jfield() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" <<<"$1"; }
start agent "$build/p25-enforcer" --apply --nft /bin/true --wait 60 "${agent_args[@]}" --state-dir "$work/enf"
for i in $(seq 1200); do
	# the first snapshot, applied and saved: the agent then waits on the feed
	[ -n "$(nth_timing 1)" ] && [ "$(grep -c '"event":"applied"' "$work/agent.log")" -ge 2 ] &&
		[ -f "$work/enf/state.json" ] && break
	kill -0 "${pids[agent]}" 2>/dev/null || { tail -5 "$work/agent.log" >&2; die "the agent died"; }
	[ "$i" = 1200 ] && die "the agent applied no snapshot in 120 s"
	sleep 0.1
done
sleep 1
kill -HUP "${pids[agent]}"
for i in $(seq 1200); do
	[ -n "$(nth_timing 2)" ] && break
	[ "$i" = 1200 ] && die "the agent took no second snapshot within 120 s of SIGHUP"
	sleep 0.1
done
sleep 1	# an apply, if the state changed (it should not: the same tokens)
stop agent
reload_line=$(grep '"event":"reloaded"' "$work/agent.log" | tail -1)
for k in 1 2; do
	line=$(nth_timing "$k")
	applied=$(grep '"event":"applied"' "$work/agent.log" | sed -n "$((k + 1))p")
	name=$([ "$k" = 1 ] && echo daemon_cold || echo warm)
	a_parse=$(jfield "$line" parse_ms)
	a_verify=$(jfield "$line" verify_ms)
	a_load=$(jfield "$applied" ms)
	a_load=${a_load:-0}
	a_lcpu=$(jfield "$applied" cpu_ms)
	a_cpu=$(( $(jfield "$line" parse_cpu_ms) + $(jfield "$line" verify_cpu_ms) + ${a_lcpu:-0} ))
	fig "agent.$name.fetch" "$(calc '%.3f' "$(jfield "$line" fetch_ms) / 1000")" s
	fig "agent.$name.parse" "$(calc '%.3f' "$a_parse / 1000")" s
	fig "agent.$name.verify" "$(calc '%.3f' "$a_verify / 1000")" s
	fig "agent.$name.render_load" "$(calc '%.3f' "$a_load / 1000")" s
	fig "agent.$name.reused" "$(jfield "$line" reused)" tokens
	fig "agent.$name.applied" "$(calc '%.3f' "($a_parse + $a_verify + $a_load) / 1000")" s
	fig "agent.$name.cpu" "$(calc '%.3f' "$a_cpu / 1000")" s
	[ "$k" = 1 ] && cold_d=$(calc '%.3f' "($a_parse + $a_verify + $a_load) / 1000")
	[ "$k" = 2 ] && warm=$(calc '%.3f' "($a_parse + $a_verify + $a_load) / 1000")
done
echo "# agent.daemon_cold: p25-enforcer --apply (no state) taking its first snapshot; agent.warm: the same" \
	"agent's full snapshot after SIGHUP (pinned keys re-read, tokens unchanged) — parse + verify +" \
	"render + the load (nft is /bin/true here), wall and CPU (all threads), from its debug log"
echo "# reload: $reload_line"
[ "$(grep -c '"event":"applied"' "$work/agent.log")" -ge 3 ] ||
	echo "# agent.warm: the state did not change (same digest), so nothing was rendered or loaded: render_load 0"
goal "$cold_d" "<" 2 "daemon, cold: snapshot of $n_tok applied (parse + verify + render) < 2 s"
goal "$warm" "<" 2 "daemon, warm: snapshot of $n_tok applied by a running agent < 2 s"

# ------------------------------------------------------------- 4. long-polls

head_seq=$(sql -c "SELECT coalesce(max(seq), 0) FROM feed_events")
victim=$(sql -c "SELECT id FROM exemptions WHERE status = 'active' ORDER BY id LIMIT 1")
curl -fsS -o /dev/null "$api/healthz"
sleep 1
rss0=$(rss_kib "$apid")
say "holding $n_polls long-polls (after=$head_seq, wait=60)"
t0file=$work/t0
: >"$t0file"
"$build/bench/bench-longpoll" 127.0.0.1 "$api_port" "$n_polls" \
	"/v1/enforcement/feed?after=$head_seq&wait=60" "$enforcer" "$t0file" 30 revoke \
	>"$work/longpoll.out" 2>"$work/longpoll.err" &
pids[longpoll]=$!
held=0
for i in $(seq 600); do
	held=$(curl -fsS "$api/metrics" | awk '$1 == "p25_feed_held" { print $2 }')
	[ "${held:-0}" -ge "$n_polls" ] && break
	kill -0 "${pids[longpoll]}" 2>/dev/null || { cat "$work/longpoll.err" >&2; die "bench-longpoll ended early"; }
	[ "$i" = 600 ] && die "only $held of $n_polls long-polls held after 60 s"
	sleep 0.1
done
sleep 1
rss1=$(rss_kib "$apid")
held=$(curl -fsS "$api/metrics" | awk '$1 == "p25_feed_held" { print $2 }')
say "$held held; revoking exemption $victim"
date +%s%N >"$t0file"
read -r code post_s < <(curl -sS -o "$work/revoke.json" -w '%{http_code} %{time_total}\n' -X POST \
	-H "Authorization: Bearer $reviewer" -H 'Content-Type: application/json' \
	-d '{"reason":"bench: revocation fan-out"}' "$api/v1/exemptions/$victim/revoke")
[ "$code" = 200 ] || { cat "$work/revoke.json" >&2; die "revoke answered $code"; }
wait "${pids[longpoll]}" || die "bench-longpoll failed"
unset "pids[longpoll]"
cat "$work/longpoll.out"
p99=$(awk '$1 == "longpoll.p99" { print $2 }' "$work/longpoll.out")
answered=$(awk '$1 == "longpoll.answered" { print $2 }' "$work/longpoll.out")
per_conn=$(calc '%.1f' "($rss1 - $rss0) / $n_polls")
first=$(awk '$1 == "longpoll.first" { print $2 }' "$work/longpoll.out")
fig revoke.post "$post_s" s
fig longpoll.fanout_p99 "$(calc '%.4f' "$p99 - $first")" s
fig api.rss_before_kib "$rss0" KiB
fig api.rss_held_kib "$rss1" KiB
fig longpoll.kib_per_conn "$per_conn" KiB
echo "# longpoll: $held held (p25_feed_held) when the revoke was sent; times from just before" \
	"POST /v1/exemptions/{id}/revoke to each complete 200 answer carrying the revoke event;" \
	"revoke.post: the POST's own answer (its durable commit: the event exists from then);" \
	"fanout_p99: p99 - first, the spread of the 2,000 answers once the first is out"
goal "$answered" ">=" "$n_polls" "every held long-poll answered with the revoke"
goal "$p99" "<" 1 "revocation answers all $n_polls long-polls, p99 < 1 s"
goal "$per_conn" "<" 32 "memory per held connection < 32 KiB (VmRSS delta / connections)"
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (wall times suffer from other load)"
