/*
 * fuzz_verify.c — libFuzzer target for the verify library (core/verify.c,
 * core/b64.c): what an enforcement node runs on bytes from the network.
 * Not built by CMake; run:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude \
 *       tests/fuzz/fuzz_verify.c core/verify.c core/b64.c core/jws.c \
 *       -lsodium -ljansson -o /tmp/fuzz_verify
 *   mkdir -p /tmp/corpus-verify && /tmp/fuzz_verify -max_total_time=60 /tmp/corpus-verify
 *
 * A random token almost never gets past the signature, so the first input
 * byte picks a mode:
 *   0  the rest is a token, verified as is;
 *   1  the rest is "HEADER\0PAYLOAD": both are signed with the fuzzer's own
 *      key (which the keyset holds), so the header and claim checks behind
 *      the signature get fuzzed too;
 *   2  the rest is a JWKS text for p25_keyset_parse.
 * Invariants: an OK result comes with filled claims (normalized cidr,
 * port 25, ...); any other result leaves them zeroed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "p25/jws.h"
#include "p25/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define ISS "https://p25.test"
#define NOW 1767225600LL

static struct p25_keyset *ks;
static unsigned char sk[64];

static void
init(void)
{
	unsigned char pk[32], seed[32];
	char *jwks, err[128];
	/* a short kid the fuzzer finds easily */
	const char *kids[1] = { "k" };

	if (ks)
		return;
	CHECK(sodium_init() >= 0);
	memset(seed, 7, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	jwks = p25_jwks_json(kids, (const unsigned char (*)[32])pk, 1);
	CHECK(jwks && p25_keyset_parse(jwks, strlen(jwks), &ks, err, sizeof(err)) == 0);
	free(jwks);
}

static void
check(const char *tok)
{
	struct p25_claims c;
	enum p25_verify_result r = p25_token_verify(ks, tok, ISS, NOW, 60, &c);

	if (r == P25_VERIFY_OK) {
		CHECK(c.port == 25 && strcmp(c.proto, "tcp") == 0 &&
		      strcmp(c.dir, "egress") == 0 && strcmp(c.iss, ISS) == 0);
		CHECK(strchr(c.cidr, '/') != NULL && c.ndest >= 0 && c.ndest <= P25_MAX_DEST);
		CHECK(c.nbf - 60 <= NOW && NOW < c.exp + 60);
	} else {
		CHECK(c.iss[0] == '\0' && c.cidr[0] == '\0' && c.ndest == 0);
	}
	CHECK(p25_verify_result_str(r)[0] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *tok = NULL;
	struct p25_keyset *k2 = NULL;
	char err[128];

	init();
	if (size < 1 || size > 64 * 1024)
		return 0;
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		check(buf);
		break;
	case 1: {
		size_t hl = strlen(buf);
		const char *payload = hl + 1 < size - 1 ? buf + hl + 1 : "";
		/* buf[size-1] is NUL, so payload is terminated */
		if (p25_jws_sign_ed25519(buf, payload, sk, &tok) == 0)
			check(tok);
		free(tok);
		break;
	}
	default:
		if (p25_keyset_parse(buf, size - 1, &k2, err, sizeof(err)) == 0)
			CHECK(p25_keyset_count(k2) >= 1);
		else
			CHECK(k2 == NULL);
		p25_keyset_free(k2);
		break;
	}
	free(buf);
	return 0;
}
