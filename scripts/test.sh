#!/usr/bin/env bash
# test.sh — build and test p25 exactly as CI does.
#
#   bash scripts/test.sh                 everything (what .ci/run runs)
#   P25_TEST_QUICK=1 bash scripts/test.sh   skip the sanitizer pass
#
# Steps (CMakePresets.json names the build folders and flags):
#   1. scripts/deps.sh                    what is missing, installed
#   2. redocly lint openapi.yaml          the API description (redocly.yaml)
#   3. preset debug: gcc, -Werror, build
#   4. preset clang: clang, -Werror, build only (both compilers build clean)
#      and README.md's configuration table is what p25ctl config-doc prints
#   5. ctest --preset debug               unit, integration and browser tests
#   6. preset asan: ASan + UBSan build, every test again (the browser tests
#      too: the contract test wants every operation exercised in each run)
# A failing step does not stop the steps that do not depend on it; the
# summary at the end lists every step, and any failure makes the exit non-zero.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=2

results=()
failed=0
step() { # NAME CMD...: runs CMD, records the outcome and the time it took
	local name=$1 t0 rc
	shift
	printf '\n=== %s\n' "$name"
	t0=$(date +%s)
	rc=0
	"$@" || rc=$?
	if [ $rc = 0 ]; then
		results+=("ok    $name ($(($(date +%s) - t0)) s)")
	else
		results+=("FAIL  $name (exit $rc, $(($(date +%s) - t0)) s)")
		failed=1
	fi
	return $rc
}
skip() { results+=("skip  $1 ($2)"); }

# shellcheck disable=SC2317 # build and lint_openapi are called through step
build() { # PRESET
	cmake --preset "$1" && cmake --build --preset "$1" -j "$jobs"
}

# shellcheck disable=SC2317
lint_openapi() {
	if [ ! -f openapi.yaml ]; then
		echo "openapi.yaml is missing" >&2
		return 1
	fi
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		npx --no-install redocly lint openapi.yaml
}

step deps bash scripts/deps.sh || { printf '%s\n' "${results[@]}"; exit 1; }
step "openapi lint" lint_openapi || true
debug_ok=0
step "build debug (gcc)" build debug && debug_ok=1
step "build clang" build clang || true
if [ $debug_ok = 1 ]; then
	step "README configuration table" \
		env P25CTL=build/debug/p25ctl bash scripts/gen-readme-config.sh --check || true
	step "ctest debug" ctest --preset debug -j "$jobs" --output-on-failure || true
else
	skip "README configuration table, ctest debug" "debug build failed"
fi

if [ "${P25_TEST_QUICK:-0}" != 0 ]; then
	skip "asan" "P25_TEST_QUICK is set"
elif step "build asan" build asan; then
	# The sanitizer pass runs the C under test again: unit and integration
	# tests.  The browser tests and the contract check (which needs every
	# operation exercised in one run, browser included) ran in the debug pass.
	step "ctest asan" ctest --preset asan -j "$jobs" --output-on-failure \
		-LE browser -E '^integration\.contract$' || true
else
	skip "ctest asan" "asan build failed"
fi

printf '\n=== summary\n'
printf '%s\n' "${results[@]}"
exit $failed
