# bench/lib.sh — helpers shared by the benchmark scripts (sourced).
# For start and stop the caller sets $work (its work folder) and
# `declare -A pids=()` first.

# median VALUES...: the median ("n/a" for none)
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print "n/a"
		else if (NR % 2) print v[(NR + 1) / 2]
		else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# start NAME CMD...: runs CMD in the background, output to $work/NAME.log
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 </dev/null &
	pids[$name]=$!
}

# stop NAME: SIGTERM, up to 15 s for a clean exit (p25-api drains for up to
# 10 s), then SIGKILL.  Only ever a pid this script started.
stop() {
	local pid=${pids[$1]:-} i
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
	unset "pids[$1]"
}
