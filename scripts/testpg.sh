#!/usr/bin/env bash
# testpg.sh — a throwaway PostgreSQL 15 cluster for tests and the local run.
#
#   scripts/testpg.sh start DIR [--durable]   initdb (once) + start; prints env lines
#   scripts/testpg.sh env DIR                 prints the env lines again
#   scripts/testpg.sh stop DIR                stop (fast) — safe when not running
#
# The cluster listens on a unix socket in DIR only (no TCP port to collide
# with), trusts local connections, and has three roles: p25_owner (owns the
# database, runs migrations), p25_service (NOLOGIN; what the migrations grant
# to) and p25_app (LOGIN, member of p25_service: what the services use).
# PostgreSQL refuses to run as root, so as root everything runs as `postgres`.
# Without --durable, fsync is off (tests).
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: testpg.sh start|stop|env DIR}
dir=$(realpath -m "${2:?usage: testpg.sh start|stop|env DIR}")
durable=${3:-}

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

print_env() {
	echo "P25_DATABASE_URL=postgresql:///p25?host=$dir&user=p25_app"
	echo "P25_MIGRATE_DATABASE_URL=postgresql:///p25?host=$dir&user=p25_owner"
	echo "P25_PGHOST=$dir"
}

case "$cmd" in
start)
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$dir"
		# postgres must be able to reach the folder
		p=$(dirname "$dir"); while [ "$p" != / ]; do chmod o+x "$p" 2>/dev/null || true; p=$(dirname "$p"); done
	fi
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
			--locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 1; }
		{
			echo "listen_addresses = ''"
			echo "unix_socket_directories = '$dir'"
			echo "max_connections = 300"
			echo "shared_buffers = 128MB"
			if [ "$durable" != --durable ]; then
				echo "fsync = off"
				echo "full_page_writes = off"
			fi
			echo "log_min_messages = warning"
		} | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
	fi
	if ! as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
			{ cat "$dir/server.log" >&2; exit 1; }
	fi
	as_pg psql -q -v ON_ERROR_STOP=1 -h "$dir" -U postgres -d postgres >/dev/null <<'SQL'
SELECT 'CREATE ROLE p25_owner LOGIN CREATEROLE' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'p25_owner') \gexec
SELECT 'CREATE ROLE p25_service NOLOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'p25_service') \gexec
SELECT 'CREATE ROLE p25_app LOGIN IN ROLE p25_service' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'p25_app') \gexec
SELECT 'CREATE DATABASE p25 OWNER p25_owner' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'p25') \gexec
SQL
	print_env
	;;
env)
	print_env
	;;
stop)
	if [ -f "$dir/data/PG_VERSION" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	;;
*)
	echo "usage: testpg.sh start|stop|env DIR" >&2; exit 64 ;;
esac
