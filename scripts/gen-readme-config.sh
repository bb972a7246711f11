#!/usr/bin/env bash
# gen-readme-config.sh — the README's configuration table, from the code.
#
#   bash scripts/gen-readme-config.sh           rewrite the table in README.md
#   bash scripts/gen-readme-config.sh --check   fail if README.md is out of date
#
# The table is `p25ctl config-doc` (generated from include/p25/config.h) and
# sits between the lines <!-- config:begin --> and <!-- config:end -->.
# p25ctl is taken from $P25CTL, else build/debug, else built there.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

ctl=${P25CTL:-build/debug/p25ctl}
if [ ! -x "$ctl" ]; then
	cmake --preset debug >/dev/null
	cmake --build --preset debug -j 2 --target p25ctl >/dev/null
fi

readme=README.md
if ! grep -qx '<!-- config:begin -->' "$readme" || ! grep -qx '<!-- config:end -->' "$readme"; then
	echo "$readme: markers <!-- config:begin --> / <!-- config:end --> not found" >&2
	exit 1
fi

table=$(mktemp)
new=$(mktemp)
trap 'rm -f "$table" "$new"' EXIT
"$ctl" config-doc >"$table"
awk -v table="$table" '
	$0 == "<!-- config:end -->" { skip = 0 }
	!skip { print }
	$0 == "<!-- config:begin -->" { while ((getline line < table) > 0) print line; skip = 1 }
' "$readme" >"$new"

if [ "${1:-}" = --check ]; then
	if ! cmp -s "$readme" "$new"; then
		echo "$readme: the configuration table is out of date; run: bash scripts/gen-readme-config.sh" >&2
		diff -u "$readme" "$new" >&2 || true
		exit 1
	fi
	exit 0
fi
cmp -s "$readme" "$new" || cat "$new" >"$readme"
