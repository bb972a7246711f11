/*
 * verify.h — offline verification of p25 exemption tokens (DESIGN.md
 * "Exemption tokens").  This is what an enforcement node links
 * (library p25verify: libsodium + jansson, no database, no libjwt).
 *
 * A token is a JWS compact serialization signed with Ed25519 (RFC 8037):
 *
 *   header  {"alg":"EdDSA","typ":"p25-exemption+jwt","kid":"<kid>"}
 *   payload {"iss","sub","jti","iat","nbf","exp",
 *            "p25":{"cidr","port":25,"proto":"tcp","dir":"egress","request",
 *                   ["dest":[cidr,...]], ["rate":n]}}
 *
 * Everything is pinned: one algorithm, one typ, keys by kid from a JWKS the
 * node obtained out of band, one issuer.  Nothing in a token can choose a
 * key or an algorithm (no jku/jwk/x5u/x5c, no crit).  The payload is only
 * parsed after its signature checked out.
 *
 * Thread-safety: a parsed keyset is immutable; any number of threads may
 * verify against it at once.  No shared state (libsodium is initialised by
 * p25_keyset_parse(), which is idempotent and thread-safe); each thread
 * remembers the last token header it accepted (its text and kid), so that
 * the next token with the same header bytes skips re-parsing them.
 */
#ifndef P25_VERIFY_H
#define P25_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#define P25_TOKEN_TYP "p25-exemption+jwt"
#define P25_TOKEN_ALG "EdDSA"
#define P25_TOKEN_MAX 8192		/* bytes of compact JWS, beyond: malformed */
#define P25_KEYSET_MAX_KEYS 64
#define P25_JWKS_MAX (256 * 1024)	/* bytes of JWKS text */
#define P25_MAX_DEST 16

/* A parsed JWKS: the OKP/Ed25519 public keys by kid. */
struct p25_keyset;

/*
 * Parses a JWKS ({"keys":[...]}).  Keys of another kty, or OKP keys of
 * another curve (X25519, Ed448), are skipped; an OKP/Ed25519 key is used
 * only if it is well formed and refused (the whole set fails) otherwise:
 * "kid" required (1..63 chars, unique in the set), "x" must decode to
 * exactly 32 bytes of a valid, not small-order point, "use" if present must
 * be "sig", "alg" if present must be "EdDSA", and a private "d" is refused
 * (a JWKS must never carry one).  A set with no usable key is an error.
 * Returns 0 with *out owned by the caller (p25_keyset_free), or -1 with a
 * message in errbuf (may be NULL).
 */
int p25_keyset_parse(const char *jwks_json, size_t len,
		     struct p25_keyset **out, char *errbuf, size_t errlen);
void p25_keyset_free(struct p25_keyset *ks);
size_t p25_keyset_count(const struct p25_keyset *ks);
/* True when the set holds kid. */
bool p25_keyset_has(const struct p25_keyset *ks, const char *kid);
/* The 32-byte Ed25519 public key of kid in the set, or NULL (valid while
 * the set lives).  Lets a caller that remembers which key verified a token
 * tell whether that key is still trusted, unchanged, under the same kid. */
const unsigned char *p25_keyset_key(const struct p25_keyset *ks, const char *kid);

struct p25_claims {
	char iss[128];
	char sub[128];
	char jti[64];
	char kid[64];
	long long iat, nbf, exp;
	char cidr[64];		/* normalized, e.g. "81.2.69.5/32" */
	int port;		/* always 25 */
	char proto[8];		/* always "tcp" */
	char dir[16];		/* always "egress" */
	char request[64];
	char dest[P25_MAX_DEST][64];	/* optional: where the source may connect */
	int ndest;		/* 0 = no dest restriction */
	long long rate;		/* messages per hour; -1 when absent */
};

enum p25_verify_result {
	P25_VERIFY_OK = 0,
	P25_VERIFY_MALFORMED,	/* not a compact JWS of our shape, bad JSON, claim types */
	P25_VERIFY_BAD_HEADER,	/* alg != EdDSA, typ != p25-exemption+jwt, no kid,
				   crit/jku/jwk/x5u/x5c present */
	P25_VERIFY_UNKNOWN_KID,
	P25_VERIFY_BAD_SIGNATURE,
	P25_VERIFY_BAD_ISSUER,
	P25_VERIFY_NOT_YET_VALID,
	P25_VERIFY_EXPIRED,
	P25_VERIFY_BAD_SCOPE,	/* cidr unparsable, not normalized or wider than
				   /8 (v4) or /16 (v6); port != 25; proto != tcp;
				   dir != egress; bad dest or rate; unknown member */
};

/*
 * Verifies a compact JWS exemption token (at most P25_TOKEN_MAX bytes)
 * against ks: header pinned as above, kid known, Ed25519 signature over the
 * ASCII signing input, iss == expected_iss, nbf - skew <= now < exp + skew
 * (unix seconds; now is passed in for testability; skew is clamped to
 * 0..86400), scope sane.  Fills *claims on OK (claims may be NULL); on
 * any other result *claims is zeroed.  Checks run in the order of the enum
 * so the first failing one is reported.  Thread-safe, allocation-neutral.
 */
enum p25_verify_result p25_token_verify(const struct p25_keyset *ks,
					const char *token,
					const char *expected_iss,
					long long now, int skew,
					struct p25_claims *claims);

/*
 * The claims step of p25_token_verify() alone, on a payload's JSON text
 * (no signature: for tests).  fast = false forces the jansson reading;
 * true takes the allocation-free reading of p25's own compact shape when
 * the text has it (p25_token_verify always does) — both must agree.
 */
enum p25_verify_result p25_payload_check(const char *json, size_t len,
					 const char *expected_iss, long long now,
					 int skew, struct p25_claims *claims, bool fast);

/* Stable lowercase name of r ("ok", "bad_signature", ...). */
const char *p25_verify_result_str(enum p25_verify_result r);

/*
 * Parses a normalized CIDR as tokens carry it ("81.2.69.0/24",
 * "2a02:ff0:1::/48"): the address in the exact text inet_ntop() gives,
 * a decimal length without leading zeros, host bits zero, no IPv4-mapped
 * IPv6.  On success fills family (AF_INET/AF_INET6), addr (16 bytes, v4 in
 * the first 4) and len.  Exposed for the enforcement agent and tests.
 */
bool p25_cidr_normalized(const char *s, int *family, unsigned char addr[16],
			 int *len);

#endif
