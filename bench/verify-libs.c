/*
 * verify-libs.c — is there a faster Ed25519 verifier among Debian 12's
 * libraries than libsodium's?  (bench/ENFORCE.md, "Why the 2 s goal is
 * missed cold").  One 300-byte message, one key, N verifications each with
 * libsodium (crypto_sign_verify_detached), OpenSSL 3 (EVP_DigestVerify,
 * a fresh context per token as a verifier would use) and Nettle
 * (ed25519_sha512_verify); prints microseconds per verification.  Not part
 * of the build (it needs libssl-dev and nettle-dev, which p25 does not):
 *
 *   cc -O2 bench/verify-libs.c -o /tmp/verify-libs \
 *      -lsodium -lcrypto -lnettle -lhogweed -lgmp && /tmp/verify-libs
 */
#include <stdio.h>
#include <time.h>
#include <nettle/eddsa.h>
#include <openssl/evp.h>
#include <sodium.h>

#define N 5000

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
main(void)
{
	unsigned char pk[32], sk[64], sig[64], msg[300];
	EVP_PKEY *key;
	double t;
	int i, ok;

	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	randombytes_buf(msg, sizeof(msg));
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);

	for (ok = 0, t = now(), i = 0; i < N; i++)
		ok += crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) == 0;
	printf("libsodium %.1f us (%d ok)\n", (now() - t) / N * 1e6, ok);

	key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, sizeof(pk));
	if (!key)
		return 1;
	for (ok = 0, t = now(), i = 0; i < N; i++) {
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		ok += c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, key) == 1 &&
		      EVP_DigestVerify(c, sig, sizeof(sig), msg, sizeof(msg)) == 1;
		EVP_MD_CTX_free(c);
	}
	printf("openssl %.1f us (%d ok)\n", (now() - t) / N * 1e6, ok);
	EVP_PKEY_free(key);

	for (ok = 0, t = now(), i = 0; i < N; i++)
		ok += ed25519_sha512_verify(pk, sizeof(msg), msg, sig);
	printf("nettle %.1f us (%d ok)\n", (now() - t) / N * 1e6, ok);
	return ok == N ? 0 : 1;
}
