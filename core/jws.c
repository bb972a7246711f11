/*
 * jws.c — Ed25519 JWS signing, RFC 7638 thumbprints and JWKS text.
 *
 * The signing input is built exactly as RFC 7515 §5.1 says, over the
 * caller's JSON bytes, and signed with the one-shot crypto_sign_detached()
 * — never the crypto_sign_init/update/final API, which is Ed25519ph and not
 * what RFC 8037 "EdDSA" means (LIBRARY-NOTES §3.1).  The RFC 8037 A.4
 * vector is reproduced by tests/unit/test_verify.c.
 *
 * Pure functions, thread-safe, no state.  Only reads the secret key; the
 * caller owns and wipes it (see keys.c's p25_signer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>

#include "p25/b64.h"
#include "p25/jws.h"

#define SIGN_INPUT_MAX (1024 * 1024)

int
p25_jws_sign_ed25519(const char *header_json, const char *payload_json,
		     const unsigned char sk[64], char **out)
{
	unsigned char sig[crypto_sign_BYTES];
	size_t hl, pl, hb, pb, sb, total;
	char *buf;

	*out = NULL;
	if (!header_json || !payload_json || sodium_init() < 0)
		return -1;
	hl = strlen(header_json);
	pl = strlen(payload_json);
	if (hl > SIGN_INPUT_MAX || pl > SIGN_INPUT_MAX)
		return -1;
	hb = p25_b64url_encoded_size(hl) - 1;
	pb = p25_b64url_encoded_size(pl) - 1;
	sb = p25_b64url_encoded_size(sizeof(sig)) - 1;
	total = hb + 1 + pb + 1 + sb + 1;
	buf = malloc(total);
	if (!buf)
		return -1;
	/* sizes were computed above: the encoders cannot fail */
	p25_b64url_encode(buf, total, (const unsigned char *)header_json, hl);
	buf[hb] = '.';
	p25_b64url_encode(buf + hb + 1, total - hb - 1,
			  (const unsigned char *)payload_json, pl);
	crypto_sign_detached(sig, NULL, (const unsigned char *)buf, hb + 1 + pb, sk);
	buf[hb + 1 + pb] = '.';
	p25_b64url_encode(buf + hb + 1 + pb + 1, sb + 1, sig, sizeof(sig));
	*out = buf;
	return 0;
}

int
p25_jwk_thumbprint(const unsigned char pk[32], char *kid, size_t len)
{
	char x[64], members[128];
	unsigned char digest[crypto_hash_sha256_BYTES];
	int n;

	if (len < P25_KID_LEN)
		return -1;
	p25_b64url_encode(x, sizeof(x), pk, 32);
	/* RFC 7638 §3.2: required members only, sorted, no whitespace */
	n = snprintf(members, sizeof(members),
		     "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x);
	if (n < 0 || (size_t)n >= sizeof(members))
		return -1;
	crypto_hash_sha256(digest, (const unsigned char *)members, (size_t)n);
	p25_b64url_encode(kid, len, digest, sizeof(digest));
	return 0;
}

char *
p25_jwks_json(const char *const *kids, const unsigned char (*pks)[32], size_t n)
{
	json_t *root = NULL, *keys;
	char *s = NULL;
	size_t i;

	keys = json_array();
	if (!keys)
		goto out;
	root = json_pack("{s:o}", "keys", keys);
	if (!root)
		goto out;
	for (i = 0; i < n; i++) {
		char x[64];

		p25_b64url_encode(x, sizeof(x), pks[i], 32);
		if (json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
		    "kty", "OKP", "crv", "Ed25519", "kid", kids[i], "x", x,
		    "use", "sig", "alg", "EdDSA")) != 0)
			goto out;
	}
	s = json_dumps(root, JSON_COMPACT);
out:
	json_decref(root);
	return s;
}
