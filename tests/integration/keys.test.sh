#!/usr/bin/env bash
# keys.test.sh — signing keys sealed in PostgreSQL (core/keys.c), end to end.
#
# Starts a throwaway PostgreSQL (scripts/testpg.sh), applies migrations/ as
# the owner, and drives tests/helpers/keys_tool as the service role:
#
#   1. KEK files: only exactly 64 hex characters (plus one newline) load.
#   2. generate: the first key becomes active, a second --activate is
#      refused (409), a key generated without --activate is published
#      (retiring) but does not sign; every change has its audit row.
#   3. sign with the active key and verify against the JWKS the database
#      serves, through the verify library (p25_token_verify).
#   4. the private key is nowhere in clear: not in the list output, not in
#      the JWKS, not in any column of signing_keys, not in the audit log.
#   5. a wrong KEK fails to unseal, cleanly (error code, no token).
#   6. rotate: a pre-published key is promoted (after proving it unseals),
#      else a fresh key is made; the new key signs, the old one is retiring
#      with verify_until = now + TTL and its tokens still verify; once its
#      verify_until has passed, the next rotation retires it and the JWKS
#      drops it.
#   7. a row whose sealed key was swapped with another row's refuses to load.
#
# Environment: P25_BUILD_DIR (default build/crypto), P25_SOURCE_DIR.
set -euo pipefail

SRC=${P25_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${P25_BUILD_DIR:-$SRC/build/crypto}
TOOL=$BUILD/tests/keys_tool
ISS=https://p25.test

T=$(mktemp -d /tmp/p25-keys-test.XXXXXX)
T0=$SECONDS
log() { echo "keys.test: [$((SECONDS - T0))s] $*"; }
fail() { echo "keys.test: FAIL: $*" >&2; exit 1; }

cleanup() {
	local rc=$?
	"$SRC/scripts/testpg.sh" stop "$T/pg" >/dev/null 2>&1 || true
	rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT

[ -x "$TOOL" ] || fail "$TOOL not built (cmake --build BUILD --target keys_tool)"

while IFS= read -r line; do
	case "$line" in P25_*=*) export "${line?}" ;; esac
done < <("$SRC/scripts/testpg.sh" start "$T/pg")
[ -n "${P25_DATABASE_URL:-}" ] || fail "testpg.sh printed no P25_DATABASE_URL"
# as `p25ctl migrate` would: its bookkeeping table (0001 grants on it), then
# every migration in order, each in one transaction, as the owner
psql -X -q -v ON_ERROR_STOP=1 -d "$P25_MIGRATE_DATABASE_URL" -c "CREATE TABLE IF NOT EXISTS
	schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
	checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null
for f in "$SRC"/migrations/*.sql; do
	psql -X -q -v ON_ERROR_STOP=1 -d "$P25_MIGRATE_DATABASE_URL" --single-transaction -f "$f" >/dev/null ||
		fail "migration $f failed"
done
log "cluster up, migrations applied"

owner_sql() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$P25_MIGRATE_DATABASE_URL" -c "$1"; }
tool() { "$TOOL" "$@"; }
# verdict JWKS ISS TOKEN: the verify result's name (exit status must be 0 or 1)
verdict() {
	local out rc=0
	out=$(tool verify "$@" 2>&1) || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "verify exited $rc: $out"
	head -n1 <<<"$out"
}
# expect_fail CODE CMD...: the command fails cleanly (exit status exactly 1,
# so a sanitizer abort or leak report does not pass) and names CODE
expect_fail() {
	local code=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" = 1 ] || fail "expected exit 1 with '$code' from: $* (exit $rc: $out)"
	case "$out" in *"$code"*) ;; *) fail "expected '$code' from: $* (got: $out)" ;; esac
}

# ---------------------------------------------------------------- 1. KEK
new_kek() { od -An -tx1 -v -N32 /dev/urandom | tr -d ' \n' >"$1"; echo >>"$1"; chmod 600 "$1"; }
new_kek "$T/kek"
new_kek "$T/kek-wrong"
printf '%s' "$(head -c 64 "$T/kek")" >"$T/kek-nonl"; chmod 600 "$T/kek-nonl"
head -c 63 "$T/kek" >"$T/kek-short"
{ head -c 64 "$T/kek"; echo; echo; } >"$T/kek-2nl"
{ head -c 63 "$T/kek"; echo g; } >"$T/kek-nonhex"
{ echo -n ' '; head -c 64 "$T/kek"; } >"$T/kek-space"
printf '%064d\n' 0 >"$T/kek-zero"
for bad in kek-short kek-2nl kek-nonhex kek-space kek-zero kek-missing; do
	expect_fail kek_invalid tool generate "$T/$bad"
done
# the error names the file, never the content
out=$(tool generate "$T/kek-nonhex" 2>&1) && fail "a malformed KEK loaded"
case "$out" in *"$T/kek-nonhex"*) ;; *) fail "KEK error does not name the file: $out" ;; esac
case "$out" in *"$(head -c 16 "$T/kek")"*) fail "KEK error leaks the KEK: $out" ;; esac
log "KEK files: malformed ones refused"

# ----------------------------------------------------------- 2. generate
[ "$(tool jwks)" = '{"keys":[]}' ] || fail "JWKS of an empty table: $(tool jwks)"
expect_fail no_active_key tool sign "$T/kek" "$ISS" 81.2.69.5/32

kid1=$(tool generate "$T/kek" --activate)
[[ "$kid1" =~ ^[A-Za-z0-9_-]{43}$ ]] || fail "kid is not a thumbprint: $kid1"
expect_fail key_already_active tool generate "$T/kek" --activate
kid_pre=$(tool generate "$T/kek-nonl")
[ "$kid_pre" != "$kid1" ] || fail "two keys with one kid"
tool list >"$T/list1.json"
jq -e --arg k "$kid1" '[.[] | select(.kid == $k and .status == "active")] | length == 1' "$T/list1.json" >/dev/null ||
	fail "kid1 not active: $(cat "$T/list1.json")"
jq -e --arg k "$kid_pre" '[.[] | select(.kid == $k and .status == "retiring" and .verify_until == null)] | length == 1' \
	"$T/list1.json" >/dev/null || fail "pre-published key not retiring: $(cat "$T/list1.json")"
jq -e 'all(.[]; (keys | sort) == ["created_at","kid","retired_at","status","verify_until"])' "$T/list1.json" >/dev/null ||
	fail "list has unexpected members: $(cat "$T/list1.json")"
[ "$(owner_sql "SELECT count(*) FROM signing_keys WHERE status = 'active'")" = 1 ] || fail "not exactly one active key"
[ "$(owner_sql "SELECT count(*) FROM audit_log WHERE action = 'key.generate' AND object_type = 'signing_key'
	AND actor = 'test:keys_tool' AND object_id IN ('$kid1', '$kid_pre')")" = 2 ] || fail "generate audit rows missing"
# the refused second --activate left nothing behind
[ "$(owner_sql "SELECT count(*) FROM signing_keys")" = 2 ] || fail "refused generate left a row"
[ "$(owner_sql "SELECT count(*) FROM audit_log")" = 2 ] || fail "refused generate left an audit row"
log "generate: active, refused second activation, pre-published key"

# -------------------------------------------------------- 3. sign/verify
tool jwks >"$T/jwks1.json"
jq -e --arg a "$kid1" --arg b "$kid_pre" '[.keys[].kid] | sort == ([$a, $b] | sort)' "$T/jwks1.json" >/dev/null ||
	fail "JWKS does not list both keys: $(cat "$T/jwks1.json")"
jq -e 'all(.keys[]; .kty == "OKP" and .crv == "Ed25519" and .use == "sig" and .alg == "EdDSA"
	and (.x | test("^[A-Za-z0-9_-]{43}$")) and has("d") == false)' "$T/jwks1.json" >/dev/null ||
	fail "JWKS entries malformed: $(cat "$T/jwks1.json")"
tok1=$(tool sign "$T/kek" "$ISS" 81.2.69.5/32)
hdr=$(cut -d. -f1 <<<"$tok1" | tr '_-' '/+' | base64 -d 2>/dev/null || true)
case "$hdr" in *"\"kid\":\"$kid1\""*) ;; *) fail "token header does not name kid1: $hdr" ;; esac
out=$(tool verify "$T/jwks1.json" "$ISS" "$tok1") || fail "token does not verify: $out"
case "$out" in *"kid=$kid1"*"cidr=81.2.69.5/32"*) ;; *) fail "claims: $out" ;; esac
out=$(verdict "$T/jwks1.json" https://other.test "$tok1")
[ "$out" = bad_issuer ] || fail "wrong issuer: $out"
# a token a stranger signs under our kid does not verify
forged="${tok1%.*}.$(cut -d. -f3 <<<"$(tool sign "$T/kek" "$ISS" 81.2.69.6/32)")"
out=$(verdict "$T/jwks1.json" "$ISS" "$forged")
[ "$out" = bad_signature ] || fail "spliced signature: $out"
log "sign + verify through the JWKS: ok"

# --------------------------------------------- 4. no private key in clear
seed1=$(tool reveal "$T/kek" "$kid1")
seed_pre=$(tool reveal "$T/kek" "$kid_pre")
[[ "$seed1" =~ ^[0-9a-f]{64}$ ]] || fail "reveal: $seed1"
d1=$(xxd -r -p <<<"$seed1" | base64 -w0 | tr '+/' '-_' | tr -d '=')
owner_sql "COPY signing_keys TO STDOUT" >"$T/table.txt"
owner_sql "COPY audit_log TO STDOUT" >>"$T/table.txt"
owner_sql "SELECT encode(sealed_private, 'base64'), encode(sealed_private, 'escape') FROM signing_keys" >>"$T/table.txt"
tool list >>"$T/table.txt"
tool jwks >>"$T/table.txt"
for secret in "$seed1" "$seed_pre" "${seed1:0:16}" "${seed1:48:16}" "$d1" "${d1:0:16}"; do
	if grep -qiF -- "$secret" "$T/table.txt"; then
		fail "private key material ($secret) found in clear"
	fi
done
[ "$(owner_sql "SELECT count(*) FROM signing_keys WHERE length(sealed_private) = 80 AND length(nonce) = 24")" = 2 ] ||
	fail "sealed key or nonce has an unexpected length"
[ "$(owner_sql "SELECT count(DISTINCT nonce) FROM signing_keys")" = 2 ] || fail "nonces repeat"
log "private keys: sealed everywhere"

# ----------------------------------------------------------- 5. wrong KEK
expect_fail key_unseal_failed tool sign "$T/kek-wrong" "$ISS" 81.2.69.5/32
rc=0; out=$(tool sign "$T/kek-wrong" "$ISS" 81.2.69.5/32 2>/dev/null) || rc=$?
[ "$rc" = 1 ] && [ -z "$out" ] || fail "wrong KEK: exit $rc, printed: $out"
expect_fail "cannot unseal" tool reveal "$T/kek-wrong" "$kid1"
log "wrong KEK: refused cleanly"

# --------------------------------------------------------------- 6. rotate
expect_fail invalid_ttl tool rotate "$T/kek" 0
expect_fail invalid_ttl tool rotate "$T/kek" 99999999
# the pre-published key is promoted: nodes already hold it
kid2=$(tool rotate "$T/kek" 3600)
[ "$kid2" = "$kid_pre" ] || fail "rotate did not promote the pre-published key ($kid2 != $kid_pre)"
tool list >"$T/list2.json"
jq -e --arg k "$kid2" '[.[] | select(.status == "active")] | (length == 1 and .[0].kid == $k)' "$T/list2.json" >/dev/null ||
	fail "kid2 not the one active key: $(cat "$T/list2.json")"
jq -e --arg k "$kid1" '.[] | select(.kid == $k) | .status == "retiring" and .retired_at != null and .verify_until != null' \
	"$T/list2.json" >/dev/null || fail "kid1 not retiring: $(cat "$T/list2.json")"
secs=$(owner_sql "SELECT round(extract(epoch FROM verify_until - retired_at)) FROM signing_keys WHERE kid = '$kid1'")
[ "$secs" = 3600 ] || fail "verify_until - retired_at = $secs s, want 3600"
[ "$(owner_sql "SELECT details->>'previous' || ' ' || (details->>'prepublished') FROM audit_log
	WHERE action = 'key.rotate' AND object_id = '$kid2'")" = "$kid1 true" ] || fail "rotate audit row missing"
tool jwks >"$T/jwks2.json"
jq -e --arg a "$kid1" --arg b "$kid2" '[.keys[].kid] | sort == ([$a, $b] | sort)' "$T/jwks2.json" >/dev/null ||
	fail "JWKS after rotate: $(cat "$T/jwks2.json")"
tool verify "$T/jwks2.json" "$ISS" "$tok1" >/dev/null || fail "old token stopped verifying after rotate"
tok2=$(tool sign "$T/kek" "$ISS" 2a02:ff0:1::/48)
out=$(tool verify "$T/jwks2.json" "$ISS" "$tok2") || fail "new token: $out"
case "$out" in *"kid=$kid2"*"cidr=2a02:ff0:1::/48"*) ;; *) fail "new token claims: $out" ;; esac
# the JWKS from before the rotation already verifies the promoted key's tokens
[ "$(verdict "$T/jwks1.json" "$ISS" "$tok2")" = ok ] || fail "pre-published key unknown to the old JWKS"

# a pre-published key this KEK cannot open is never activated
kid_bad=$(tool generate "$T/kek-wrong")
before=$(owner_sql "SELECT string_agg(kid || ':' || status, ',' ORDER BY kid) FROM signing_keys")
expect_fail key_unseal_failed tool rotate "$T/kek" 3600
[ "$(owner_sql "SELECT string_agg(kid || ':' || status, ',' ORDER BY kid) FROM signing_keys")" = "$before" ] ||
	fail "a failed rotation changed the keys"
owner_sql "UPDATE signing_keys SET status = 'retired', retired_at = now() WHERE kid = '$kid_bad'"

# no pre-published key: a fresh one; kid1's last token has expired, so
# this rotation also retires it for good
owner_sql "UPDATE signing_keys SET verify_until = now() - interval '1 second' WHERE kid = '$kid1'"
kid3=$(tool rotate "$T/kek" 3600)
case "$kid3" in "$kid1"|"$kid2"|"$kid_bad") fail "rotate reused a kid" ;; esac
[ "$(owner_sql "SELECT status FROM signing_keys WHERE kid = '$kid3'")" = active ] || fail "kid3 not active"
[ "$(owner_sql "SELECT status FROM signing_keys WHERE kid = '$kid1'")" = retired ] || fail "kid1 not retired"
[ "$(owner_sql "SELECT status FROM signing_keys WHERE kid = '$kid2'")" = retiring ] || fail "kid2 not retiring"
tool jwks >"$T/jwks3.json"
jq -e --arg a "$kid2" --arg b "$kid3" '[.keys[].kid] | sort == ([$a, $b] | sort)' "$T/jwks3.json" >/dev/null ||
	fail "JWKS after the second rotation: $(cat "$T/jwks3.json")"
out=$(verdict "$T/jwks3.json" "$ISS" "$tok1")
[ "$out" = unknown_kid ] || fail "token of a retired key: $out"
tok3=$(tool sign "$T/kek" "$ISS" 81.2.69.0/24)
[ "$(verdict "$T/jwks3.json" "$ISS" "$tok3")" = ok ] || fail "fresh key's token"
[ "$(verdict "$T/jwks2.json" "$ISS" "$tok3")" = unknown_kid ] || fail "fresh key known too early"
# a retired key whose verify_until is still ahead stays published
owner_sql "UPDATE signing_keys SET verify_until = now() + interval '1 hour' WHERE kid = '$kid1'"
tool jwks | jq -e --arg k "$kid1" '[.keys[].kid] | index($k) != null' >/dev/null || fail "retired-but-valid key not published"
[ "$(owner_sql "SELECT count(*) FROM audit_log WHERE action = 'key.rotate'")" = 2 ] || fail "rotate audit rows"
log "rotate: pre-published key promoted, old key verifies until verify_until, then drops out"

# ---------------------------------------------------- 7. swapped ciphertext
owner_sql "UPDATE signing_keys a SET sealed_private = b.sealed_private, nonce = b.nonce
	FROM signing_keys b WHERE a.kid = '$kid3' AND b.kid = '$kid2'"
expect_fail key_unseal_failed tool sign "$T/kek" "$ISS" 81.2.69.5/32
log "swapped ciphertext: refused"

log "PASS"
