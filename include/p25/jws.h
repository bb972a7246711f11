/*
 * jws.h — issuing side of exemption tokens: Ed25519 JWS compact
 * serialization (RFC 7515 + RFC 8037), RFC 7638 key thumbprints and the
 * JWKS document.  In p25core (the verifier is in p25verify, verify.h).
 *
 * All functions are pure and thread-safe; they need sodium_init() to have
 * run (p25_jws_sign_ed25519 calls it).  Secret keys are only read.
 */
#ifndef P25_JWS_H
#define P25_JWS_H

#include <stddef.h>

/* base64url of a SHA-256 digest (43 chars) + NUL */
#define P25_KID_LEN 44

/*
 * Signs: b64url(header_json) "." b64url(payload_json) "." b64url(sig),
 * sig = Ed25519(sk, signing input).  The JSON texts are taken byte for
 * byte (not re-serialized, not validated).  sk is libsodium's 64-byte
 * secret key (seed || public key).  Returns 0 with *out a malloc'd
 * NUL-terminated string the caller frees, or -1 (out of memory, or an
 * input larger than 1 MiB) with *out = NULL.
 */
int p25_jws_sign_ed25519(const char *header_json, const char *payload_json,
			 const unsigned char sk[64], char **out);

/*
 * RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over
 * {"crv":"Ed25519","kty":"OKP","x":"<b64url pk>"}, base64url.  kid must
 * hold P25_KID_LEN bytes.  Returns 0, or -1 when len is too small.
 */
int p25_jwk_thumbprint(const unsigned char pk[32], char *kid, size_t len);

/*
 * The JWKS text {"keys":[{"kty":"OKP","crv":"Ed25519","kid":..,"x":..,
 * "use":"sig","alg":"EdDSA"}, ...]} for n keys (n may be 0).  Returns a
 * malloc'd string the caller frees, or NULL when out of memory.
 */
char *p25_jwks_json(const char *const *kids, const unsigned char (*pks)[32],
		    size_t n);

#endif
