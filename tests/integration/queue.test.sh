#!/usr/bin/env bash
# queue.test.sh — the job queue under fire (workers/README.md).
#
# Starts a throwaway PostgreSQL (scripts/testpg.sh), applies migrations/,
# and drives tests/helpers/queue_worker (the real runtime with test kinds):
#
#   1. kill test: 2,000 test.effect jobs, three workers with a 5 s lease, one
#      of them SIGKILLed at random every 0.5–1 s and restarted, several
#      times.  At the end every job is done and test_effects holds exactly
#      one row per job, written under the job's final lease: nothing lost,
#      nothing applied twice, no fenced-out worker wrote anything.
#   2. retries: a job failing twice is retried with backoff and ends done;
#      a job with max_attempts = 2 that always fails ends parked with its
#      last error kept.
#   3. pause: a worker stopped (SIGSTOP) past its lease resumes and finds its
#      completion refused by the fence; the job took effect once.
#   4. SIGTERM: workers holding slow jobs exit 0 within the lease; what they
#      started is done, what they claimed but had not started is back in
#      the queue, and nothing is left running.
#   5. p25-worker itself (when built) runs a noop job and stops on SIGTERM.
#
# Environment: P25_BUILD_DIR (default build/jobs), P25_SOURCE_DIR;
# QUEUE_TEST_KEEP=1 keeps the cluster and the worker logs.  Against an
# ASan build (-DP25_SANITIZE=ON) a leak makes a worker's SIGTERM exit fail.
set -euo pipefail

SRC=${P25_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${P25_BUILD_DIR:-$SRC/build/jobs}
WORKER=$BUILD/tests/queue_worker
NJOBS=${QUEUE_TEST_JOBS:-2000}
KILLS=${QUEUE_TEST_KILLS:-8}
LEASE=5

T=$(mktemp -d /tmp/p25-queue-test.XXXXXX)
declare -A PIDS=() LOGS=()
T0=$SECONDS

log() { echo "queue.test: [$((SECONDS - T0))s] $*"; }
fail() {
	echo "queue.test: FAIL: $*" >&2
	for f in "$T"/w*.log; do
		[ -f "$f" ] || continue
		echo "--- $f (last lines other than job.done)" >&2
		grep -v '"event":"job.done"' "$f" | tail -n 8 >&2 || true
	done
	exit 1
}

cleanup() {
	local rc=$?
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	"$SRC/scripts/testpg.sh" stop "$T/pg" >/dev/null 2>&1 || true
	if [ -n "${QUEUE_TEST_KEEP:-}" ]; then
		echo "queue.test: kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT

[ -x "$WORKER" ] || fail "$WORKER missing: build the queue_worker target first"

# --- cluster and schema ----------------------------------------------------
env_lines=$("$SRC/scripts/testpg.sh" start "$T/pg") || fail "cannot start PostgreSQL"
while IFS='=' read -r k v; do
	[ -n "$k" ] && export "$k=$v"
done <<<"$env_lines"

app() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$P25_DATABASE_URL" "$@"; }
owner() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$P25_MIGRATE_DATABASE_URL" "$@"; }

migrated=
if [ -x "$BUILD/p25ctl" ] &&
   "$BUILD/p25ctl" migrate >"$T/migrate.log" 2>&1 &&
   [ "$(owner -c "SELECT to_regclass('jobs') IS NOT NULL")" = t ]; then
	migrated="p25ctl migrate"
fi
if [ -z "$migrated" ]; then
	# no (working) p25ctl: start from an empty database and apply by hand
	psql -X -q -v ON_ERROR_STOP=1 -h "$P25_PGHOST" -U postgres -d postgres \
		-c "DROP DATABASE p25" -c "CREATE DATABASE p25 OWNER p25_owner" >/dev/null ||
		fail "cannot recreate the database"
	# the table p25ctl migrate keeps (0001 grants on it)
	owner -c "CREATE TABLE schema_migrations (version integer PRIMARY KEY,
	          name text NOT NULL, checksum text NOT NULL,
	          applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null
	for f in "$SRC"/migrations/*.sql; do
		owner --single-transaction -f "$f" >/dev/null || fail "migration $f failed"
	done
	migrated="psql"
fi
owner -c "CREATE TABLE test_effects (job_id bigint NOT NULL, lease bigint NOT NULL,
                                      at timestamptz NOT NULL DEFAULT now());
          GRANT SELECT, INSERT ON test_effects TO p25_service;" >/dev/null
log "cluster up, schema applied with $migrated"

# --- workers ---------------------------------------------------------------
export P25_JOB_LEASE=$LEASE P25_WORKER_THREADS=2 P25_JOB_BATCH=4
export P25_JOB_POLL_INTERVAL=1 P25_JOB_MAX_ATTEMPTS=8 P25_LOG_LEVEL=info
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
unset P25_CONFIG_FILE

nstarts=0
start_worker() {	# start_worker SLOT [VAR=VALUE...]
	local slot=$1
	shift
	nstarts=$((nstarts + 1))
	LOGS[$slot]=$T/w$slot.$nstarts.log
	env "$@" "$WORKER" >"${LOGS[$slot]}" 2>&1 &
	PIDS[$slot]=$!
}

# wait_for SECONDS SQL EXPECTED: polls until SQL answers EXPECTED
wait_for() {
	local deadline=$((SECONDS + $1)) got
	while :; do
		got=$(app -c "$2")
		[ "$got" = "$3" ] && return 0
		[ "$SECONDS" -ge "$deadline" ] && { echo "$got"; return 1; }
		sleep 0.3
	done
}

# ============================================================ 1. kill test
app >/dev/null <<SQL
BEGIN;
INSERT INTO jobs (kind, payload)
    SELECT 'test.effect', '{}' FROM generate_series(1, $NJOBS);
SELECT pg_notify('p25_jobs', 'test.effect');
COMMIT;
SQL
log "enqueued $NJOBS test.effect jobs"

t1=$SECONDS
for s in 0 1 2; do start_worker "$s"; done
for ((k = 1; k <= KILLS; k++)); do
	sleep "0.$((RANDOM % 5 + 5))"
	s=$((RANDOM % 3))
	kill -KILL "${PIDS[$s]}"
	wait "${PIDS[$s]}" 2>/dev/null || true
	done_now=$(app -c "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND state = 'done'")
	start_worker "$s"
	log "kill $k: SIGKILLed worker $s ($done_now/$NJOBS done), restarted"
done

# no more kills from here: the retry jobs (phase 2) run while the kill test drains
app >/dev/null <<'SQL'
BEGIN;
INSERT INTO jobs (kind, payload) VALUES ('test.fail', '{"fail": 2, "tag": "retry"}');
INSERT INTO jobs (kind, payload, max_attempts) VALUES ('test.fail', '{"fail": 100, "tag": "park"}', 2);
SELECT pg_notify('p25_jobs', 'test.fail');
COMMIT;
SQL
t2=$SECONDS

left=$(wait_for 45 "SELECT count(*) FROM jobs WHERE kind = 'test.effect' AND state <> 'done'" 0) ||
	fail "$left test.effect jobs not done 45 s after the last kill"
log "all $NJOBS jobs done $((SECONDS - t1)) s after the workers started"

read -r total distinct fenced <<<"$(app -F ' ' -c "
    SELECT count(*), count(DISTINCT e.job_id),
           count(*) FILTER (WHERE e.lease = j.lease AND j.state = 'done')
      FROM test_effects e JOIN jobs j ON j.id = e.job_id")"
[ "$total" = "$NJOBS" ] || fail "test_effects has $total rows, want $NJOBS"
[ "$distinct" = "$NJOBS" ] || fail "test_effects covers $distinct jobs, want $NJOBS (lost or double)"
[ "$fenced" = "$NJOBS" ] || fail "only $fenced effects were written under the job's final lease"
orphans=$(app -c "SELECT count(*) FROM test_effects e WHERE NOT EXISTS
                  (SELECT 1 FROM jobs j WHERE j.id = e.job_id)")
[ "$orphans" = 0 ] || fail "$orphans effects for unknown jobs"
read -r retried expired <<<"$(app -F ' ' -c "
    SELECT count(*) FILTER (WHERE attempts > 1),
           count(*) FILTER (WHERE last_error = 'lease expired')
      FROM jobs WHERE kind = 'test.effect'")"
lost=$(cat "$T"/w*.log | grep -c '"event":"job.lease_lost"' || true)
log "kill test OK: $total effects, $distinct distinct jobs, all under their final lease;" \
    "$retried jobs ran more than once ($expired re-queued by the reaper), $lost fenced-out completions"

# ============================================================ 2. retries
got=$(wait_for 25 "SELECT string_agg(state, ',' ORDER BY id) FROM jobs WHERE kind = 'test.fail'" "done,parked") ||
	fail "test.fail jobs ended as '$got', want 'done,parked'"
read -r attempts took <<<"$(app -F ' ' -c "
    SELECT attempts, extract(epoch FROM finished_at - created_at)::numeric(6,2)
      FROM jobs WHERE payload->>'tag' = 'retry'")"
[ "$attempts" = 3 ] || fail "the retried job took $attempts attempts, want 3"
# backoff after attempts 1 and 2: 2 s and 4 s, each -20% at worst
awk -v t="$took" 'BEGIN { exit !(t >= 4.8) }' ||
	fail "the retried job finished after $took s: no backoff (want >= 4.8 s)"
read -r pattempts perr <<<"$(app -F ' ' -c "
    SELECT attempts, last_error FROM jobs WHERE payload->>'tag' = 'park'")"
[ "$pattempts" = 2 ] || fail "the parked job took $pattempts attempts, want 2"
case "$perr" in
*"failing on purpose"*) ;;
*) fail "the parked job's last_error is '$perr'" ;;
esac
log "retries OK in $((SECONDS - t2)) s: retried job done after 3 attempts in $took s;" \
    "parked after 2 attempts with last_error '$perr'"

# ============================================================ 3. a paused worker
# A worker that stalls past its lease (SIGSTOP) comes back to find its job
# re-queued by a reaper and finished by another worker: its completion is
# fenced out and its effect rolled back.
app >/dev/null <<'SQL'
BEGIN;
INSERT INTO jobs (kind, payload) VALUES ('test.effect', '{"first_sleep_ms": 4000, "tag": "pause"}');
SELECT pg_notify('p25_jobs', 'test.effect');
COMMIT;
SQL
wait_for 10 "SELECT state FROM jobs WHERE payload->>'tag' = 'pause'" running >/dev/null ||
	fail "the pause job never started"
holder=$(app -c "SELECT locked_by FROM jobs WHERE payload->>'tag' = 'pause' AND state = 'running'")
hpid=${holder#*:}
hpid=${hpid%/*}
pslot=
for s in 0 1 2; do [ "${PIDS[$s]}" = "$hpid" ] && pslot=$s; done
[ -n "$pslot" ] || fail "the pause job is held by '$holder', not by one of our workers"
kill -STOP "$hpid"
t4=$SECONDS
# its first attempt sleeps 4 s: it must still be in the handler now
[ "$(app -c "SELECT locked_by FROM jobs WHERE payload->>'tag' = 'pause' AND state = 'running'")" = "$holder" ] ||
	fail "the pause job finished before its worker could be stopped (machine too loaded?)"
wait_for $((LEASE + 10)) "SELECT state FROM jobs WHERE payload->>'tag' = 'pause'" "done" >/dev/null ||
	fail "the paused worker's job was not taken over"
kill -CONT "$hpid"
plog=${LOGS[$pslot]}
deadline=$((SECONDS + 10))
until grep -q '"event":"job.lease_lost"' "$plog"; do
	[ "$SECONDS" -ge "$deadline" ] && fail "the resumed worker did not report its lost lease"
	sleep 0.2
done
read -r peff plast <<<"$(app -F ' ' -c "
    SELECT count(*), count(*) FILTER (WHERE e.lease = j.lease)
      FROM test_effects e JOIN jobs j ON j.id = e.job_id WHERE j.payload->>'tag' = 'pause'")"
if [ "$peff" != 1 ] || [ "$plast" != 1 ]; then
	fail "the paused job has $peff effects ($plast under its final lease), want 1"
fi
log "pause OK: job taken over $((SECONDS - t4)) s after SIGSTOP; the resumed worker's" \
    "completion was fenced out, one effect"

# ============================================================ 4. SIGTERM
app >/dev/null <<'SQL'
BEGIN;
INSERT INTO jobs (kind, payload)
    SELECT 'test.effect', '{"sleep_ms": 1500, "tag": "slow"}' FROM generate_series(1, 8);
SELECT pg_notify('p25_jobs', 'test.effect');
COMMIT;
SQL
wait_for 10 "SELECT count(*) > 0 FROM jobs WHERE payload->>'tag' = 'slow' AND state = 'running'" t \
	>/dev/null || fail "no slow job started"
sleep 0.3
# a runner claims a batch and runs its jobs one by one: each holder is
# running exactly one job now, the rest of its batch waits in its hands
holders=$(app -c "SELECT count(DISTINCT locked_by) FROM jobs
                  WHERE payload->>'tag' = 'slow' AND state = 'running'")
t3=$SECONDS
for s in 0 1 2; do kill -TERM "${PIDS[$s]}"; done
for s in 0 1 2; do
	rc=0
	wait "${PIDS[$s]}" || rc=$?
	unset "PIDS[$s]"
	[ "$rc" = 0 ] || fail "worker $s exited $rc after SIGTERM, want 0"
done
took=$((SECONDS - t3))
[ "$took" -le "$LEASE" ] || fail "workers took $took s to stop, more than the lease ($LEASE s)"
read -r sdone squeued srunning sbad <<<"$(app -F ' ' -c "
    SELECT count(*) FILTER (WHERE state = 'done'),
           count(*) FILTER (WHERE state = 'queued'),
           count(*) FILTER (WHERE state = 'running'),
           count(*) FILTER (WHERE state = 'queued' AND (attempts <> 0 OR EXISTS
               (SELECT 1 FROM test_effects e WHERE e.job_id = jobs.id)))
      FROM jobs WHERE payload->>'tag' = 'slow'")"
[ "$srunning" = 0 ] || fail "$srunning jobs left running after SIGTERM"
[ "$sbad" = 0 ] || fail "$sbad handed-back jobs were charged an attempt or had effects"
[ "$sdone" -ge "$holders" ] || fail "$holders runners were running jobs at SIGTERM but only $sdone are done"
[ $((sdone + squeued)) = 8 ] || fail "slow jobs: $sdone done + $squeued queued, want 8"
log "SIGTERM OK: 3 workers exited 0 in ${took} s; $holders runners held slow jobs:" \
    "$sdone finished, $squeued handed back unstarted"

# a fresh worker drains what was handed back, then stops cleanly
start_worker 0 P25_WORKER_THREADS=8 P25_JOB_BATCH=1
left=$(wait_for 20 "SELECT count(*) FROM jobs WHERE state NOT IN ('done', 'parked')" 0) ||
	fail "$left jobs not done after the restart"
kill -TERM "${PIDS[0]}"
rc=0
wait "${PIDS[0]}" || rc=$?
unset "PIDS[0]"
[ "$rc" = 0 ] || fail "the last worker exited $rc after SIGTERM, want 0"
want=$(app -c "SELECT count(*) FROM jobs WHERE kind = 'test.effect'")
read -r total distinct <<<"$(app -F ' ' -c "SELECT count(*), count(DISTINCT job_id) FROM test_effects")"
if [ "$total" != "$want" ] || [ "$distinct" != "$want" ]; then
	fail "test_effects has $total rows for $distinct jobs, want $want each"
fi
# ============================================================ 5. p25-worker
# the production binary runs the same runtime: a noop job, then SIGTERM
if [ -x "$BUILD/p25-worker" ]; then
	app -c "INSERT INTO jobs (kind, payload) VALUES ('noop', '{\"tag\": \"noop\"}');
	        SELECT pg_notify('p25_jobs', 'noop')" >/dev/null
	"$BUILD/p25-worker" >"$T/w-p25-worker.log" 2>&1 &
	PIDS[p25]=$!
	wait_for 10 "SELECT state FROM jobs WHERE payload->>'tag' = 'noop'" "done" >/dev/null ||
		fail "p25-worker did not run the noop job"
	kill -TERM "${PIDS[p25]}"
	rc=0
	wait "${PIDS[p25]}" || rc=$?
	unset "PIDS[p25]"
	[ "$rc" = 0 ] || fail "p25-worker exited $rc after SIGTERM, want 0"
	log "p25-worker OK: ran a noop job, exited 0 on SIGTERM"
fi

if grep -l -E 'runtime error|Sanitizer' "$T"/w*.log >"$T/san.txt"; then
	fail "sanitizer reports in $(tr '\n' ' ' <"$T/san.txt")"
fi
log "PASS in $((SECONDS - T0)) s"
