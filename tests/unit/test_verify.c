/*
 * test_verify.c — exemption tokens end to end without a database:
 * core/b64.c, core/jws.c (signing, thumbprints, JWKS text) and
 * core/verify.c (keyset parsing and token verification).
 *
 * Anchors: RFC 8037 appendix A (the Ed25519 key, its thumbprint and the
 * A.4 signature, reproduced byte for byte).  Everything else is built
 * here from a fixed test key, so every refusal below is of a token that
 * is otherwise correctly signed: the check under test is the one that
 * fires, not the signature.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>

#include "p25/b64.h"
#include "p25/jws.h"
#include "p25/verify.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* RFC 8037 A.1 */
static const char *rfc_seed_hex =
	"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char *rfc_x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
static const char *rfc_thumb = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
static const char *rfc_jws =
	"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
	"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

#define ISS "https://p25.test"
#define NOW 1767225600LL	/* 2026-01-01T00:00:00Z */
#define SKEW 60

struct fixture {
	unsigned char pk[32], sk[64];
	unsigned char pk2[32], sk2[64];	/* a second key, same kid games */
	char kid[P25_KID_LEN], kid2[P25_KID_LEN];
	struct p25_keyset *ks;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	unsigned char seed[32];
	size_t len;
	char errbuf[128];
	const char *kids[2];
	unsigned char pks[2][32];
	char *jwks;

	assert_non_null(f);
	assert_true(sodium_init() >= 0);
	assert_int_equal(sodium_hex2bin(seed, 32, rfc_seed_hex, 64, NULL, &len, NULL), 0);
	crypto_sign_seed_keypair(f->pk, f->sk, seed);
	memset(seed, 0x42, sizeof(seed));
	crypto_sign_seed_keypair(f->pk2, f->sk2, seed);
	assert_int_equal(p25_jwk_thumbprint(f->pk, f->kid, sizeof(f->kid)), 0);
	assert_int_equal(p25_jwk_thumbprint(f->pk2, f->kid2, sizeof(f->kid2)), 0);
	kids[0] = f->kid;
	kids[1] = f->kid2;
	memcpy(pks[0], f->pk, 32);
	memcpy(pks[1], f->pk2, 32);
	jwks = p25_jwks_json(kids, (const unsigned char (*)[32])pks, 2);
	assert_non_null(jwks);
	assert_int_equal(p25_keyset_parse(jwks, strlen(jwks), &f->ks, errbuf,
					  sizeof(errbuf)), 0);
	free(jwks);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	p25_keyset_free(f->ks);
	sodium_memzero(f, sizeof(*f));
	free(f);
	return 0;
}

/* ------------------------------------------------------- token kit */

static char *
sign(const unsigned char *sk, const char *hdr, const char *payload)
{
	char *tok = NULL;

	assert_int_equal(p25_jws_sign_ed25519(hdr, payload, sk, &tok), 0);
	assert_non_null(tok);
	return tok;
}

static void
header(char *buf, size_t len, const char *kid)
{
	snprintf(buf, len, "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", kid);
}

#define SCOPE_OK "{\"cidr\":\"81.2.69.5/32\",\"port\":25,\"proto\":\"tcp\"," \
		 "\"dir\":\"egress\",\"request\":\"req-1\"}"

static void
payload(char *buf, size_t len, const char *iss, long long nbf, long long exp,
	const char *scope)
{
	snprintf(buf, len, "{\"iss\":\"%s\",\"sub\":\"tenant-a\",\"jti\":\"ex-1\","
		 "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"p25\":%s}",
		 iss, nbf, nbf, exp, scope);
}

static enum p25_verify_result
verify_parts(struct fixture *f, const char *hdr, const char *pl,
	     struct p25_claims *c)
{
	char *tok = sign(f->sk, hdr, pl);
	enum p25_verify_result r = p25_token_verify(f->ks, tok, ISS, NOW, SKEW, c);

	free(tok);
	return r;
}

static char *
good_token(struct fixture *f)
{
	char h[256], p[1024];

	header(h, sizeof(h), f->kid);
	payload(p, sizeof(p), ISS, NOW - 10, NOW + 86400, SCOPE_OK);
	return sign(f->sk, h, p);
}

/* ------------------------------------------------------------ tests */

static void
test_rfc8037_vectors(void **state)
{
	struct fixture *f = *state;
	char x[64], thumb[P25_KID_LEN];
	char *tok;

	assert_true(p25_b64url_encode(x, sizeof(x), f->pk, 32) == 43);
	assert_string_equal(x, rfc_x);
	assert_int_equal(p25_jwk_thumbprint(f->pk, thumb, sizeof(thumb)), 0);
	assert_string_equal(thumb, rfc_thumb);
	assert_int_equal(p25_jwk_thumbprint(f->pk, thumb, sizeof(thumb) - 1), -1);
	tok = sign(f->sk, "{\"alg\":\"EdDSA\"}", "Example of Ed25519 signing");
	assert_string_equal(tok, rfc_jws);
	free(tok);
	/* signed by the right key, but untyped and without kid: refused */
	assert_int_equal(p25_token_verify(f->ks, rfc_jws, ISS, NOW, SKEW, NULL),
			 P25_VERIFY_BAD_HEADER);
}

static void
test_b64(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
	} cases[] = {
		{ "", 0, "" },
		{ "YQ", 0, "a" },
		{ "YWI", 0, "ab" },
		{ "YWJj", 0, "abc" },
		{ "YQ==", -1, NULL },	/* padding */
		{ "YR", -1, NULL },	/* non-zero trailing bits */
		{ "Y", -1, NULL },	/* 1 mod 4 */
		{ "YW+j", -1, NULL },	/* standard alphabet */
		{ "YW/j", -1, NULL },
		{ "YW j", -1, NULL },
		{ "YWJj.", -1, NULL },
		{ "YQ\n", -1, NULL },
		{ "_-8", 0, "\xff\xef" },
	};
	unsigned char out[16];
	size_t i, len;

	for (i = 0; i < N(cases); i++) {
		int rc = p25_b64url_decode(out, sizeof(out), cases[i].in,
					   strlen(cases[i].in), &len);
		if (rc != cases[i].rc)
			fail_msg("decode('%s') = %d", cases[i].in, rc);
		if (rc == 0) {
			assert_int_equal(len, strlen(cases[i].out));
			assert_memory_equal(out, cases[i].out, len);
		}
	}
	/* output bound */
	assert_int_equal(p25_b64url_decode(out, 2, "YWJj", 4, &len), -1);
	/* encoder bound */
	{
		char small[4];
		assert_int_equal(p25_b64url_encode(small, sizeof(small),
						   (const unsigned char *)"abc", 3), -1);
		assert_string_equal(small, "");
	}
	{
		char big[8];
		char *a;
		assert_int_equal(p25_b64url_encode(big, sizeof(big),
						   (const unsigned char *)"abc", 3), 4);
		assert_string_equal(big, "YWJj");
		a = p25_b64url_encode_alloc((const unsigned char *)"\xff\xef", 2);
		assert_string_equal(a, "_-8");
		free(a);
	}
}

/* The table decoder accepts and yields exactly what libsodium's strict
 * URL-safe no-padding decoder does: every string of up to 4 characters
 * over an alphabet of edge cases, and random longer ones. */
static void
test_b64_matches_libsodium(void **state)
{
	static const char alpha[] = "AQgw_-09zZ=+/. \n";
	const size_t na = sizeof(alpha) - 1;
	unsigned char o1[64], o2[64];
	char in[64];
	size_t len, i, k, n1, n2, total;
	int r1, r2;

	(void)state;
	assert_true(sodium_init() >= 0);
	for (len = 0; len <= 4; len++) {
		total = 1;
		for (k = 0; k < len; k++)
			total *= na;
		for (i = 0; i < total; i++) {
			size_t v = i;

			for (k = 0; k < len; k++, v /= na)
				in[k] = alpha[v % na];
			r1 = p25_b64url_decode(o1, sizeof(o1), in, len, &n1);
			r2 = sodium_base642bin(o2, sizeof(o2), in, len, NULL, &n2, NULL,
					       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
			if (r1 != r2 || (r1 == 0 && (n1 != n2 || memcmp(o1, o2, n1) != 0)))
				fail_msg("decode('%.*s'): %d vs libsodium %d", (int)len, in, r1, r2);
		}
	}
	for (i = 0; i < 20000; i++) {
		static const char url[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		len = randombytes_uniform(60);
		for (k = 0; k < len; k++)
			in[k] = url[randombytes_uniform(64)];
		if (len > 0 && randombytes_uniform(4) == 0)
			in[randombytes_uniform((uint32_t)len)] = alpha[randombytes_uniform((uint32_t)na)];
		for (n1 = 0; n1 < 2; n1++) {	/* room for all, then one byte short */
			size_t room = n1 == 0 ? sizeof(o1) : len * 3 / 4 - (len * 3 / 4 > 0);

			r1 = p25_b64url_decode(o1, room, in, len, &n2);
			r2 = sodium_base642bin(o2, room, in, len, NULL, &k, NULL,
					       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
			if (r1 != r2 || (r1 == 0 && (n2 != k || memcmp(o1, o2, k) != 0)))
				fail_msg("decode('%.*s', room %zu): %d vs libsodium %d", (int)len,
					 in, room, r1, r2);
		}
	}
}

/* The payload's two readings (the allocation-free one for p25's compact
 * shape, and jansson's) agree on result and claims: hand-picked shapes,
 * then random one-character mutations of real payloads. */
static void
payload_agree(const char *pl, size_t len)
{
	struct p25_claims a, b;
	enum p25_verify_result ra, rb;

	ra = p25_payload_check(pl, len, "https://p25.test", 1767225600LL, 60, &a, true);
	rb = p25_payload_check(pl, len, "https://p25.test", 1767225600LL, 60, &b, false);
	if (ra != rb || memcmp(&a, &b, sizeof(a)) != 0)
		fail_msg("payload %.*s: fast %s, jansson %s", (int)len, pl,
			 p25_verify_result_str(ra), p25_verify_result_str(rb));
}

static void
test_payload_fast_path(void **state)
{
#define PL_HEAD "{\"iss\":\"https://p25.test\",\"sub\":\"tenant-a\",\"jti\":\"ex-1\"," \
		"\"iat\":1767225000,\"nbf\":1767225000,\"exp\":1767229000,"
	static const char *base[] = {
		PL_HEAD "\"p25\":{\"cidr\":\"81.2.69.0/24\",\"port\":25,\"proto\":\"tcp\","
			"\"dir\":\"egress\",\"request\":\"req-1\"}}",
		PL_HEAD "\"p25\":{\"cidr\":\"2a02:ff0:1::/48\",\"port\":25,\"proto\":\"tcp\","
			"\"dir\":\"egress\",\"request\":\"req-1\",\"dest\":[\"192.0.2.0/24\","
			"\"2001:db8::/32\"],\"rate\":500}}",
		" { \"p25\" : { \"rate\" : 1 , \"request\":\"r\",\"dir\":\"egress\",\"proto\":\"tcp\","
			"\"port\":25,\"cidr\":\"81.2.69.5/32\" } , \"exp\":1767229000,\"nbf\":1767225000,"
			"\"iat\":0,\"jti\":\"j\",\"sub\":\"s\",\"iss\":\"https://p25.test\" }\n",
		PL_HEAD "\"p25\":{\"cidr\":\"81.2.69.0/24\",\"port\":25,\"proto\":\"tcp\","
			"\"dir\":\"egress\",\"request\":\"req-1\",\"extra\":1}}",
		PL_HEAD "\"p25\":{\"cidr\":\"81.2.69.0/24\",\"port\":25,\"proto\":\"tcp\","
			"\"dir\":\"egress\",\"request\":\"req-1\"},\"aud\":\"x\"}",
		PL_HEAD "\"p25\":{\"cidr\":\"81.2.69.0/24\",\"port\":25,\"proto\":\"tcp\","
			"\"dir\":\"egress\",\"request\":\"req-1\",\"dest\":[]}}",
		PL_HEAD "\"p25\":{\"cidr\":\"81.2.69.0/24\",\"port\":25,\"proto\":\"tcp\","
			"\"dir\":\"egress\",\"request\":\"req-1\",\"dest\":[\"\"],\"rate\":0}}",
		PL_HEAD "\"p25\":{\"cidr\":\"81.2.69.0/24\",\"port\":25,\"port\":25,\"proto\":\"tcp\","
			"\"dir\":\"egress\",\"request\":\"req-1\"}}",
		PL_HEAD "\"p25\":{\"cidr\":\"81.2.69.0/24\",\"port\":25.0,\"proto\":\"tcp\","
			"\"dir\":\"egress\",\"request\":\"req-1\"}}",
		PL_HEAD "\"p25\":{\"cidr\":\"81.2.69.0/24\",\"port\":-0,\"proto\":\"t\\u0063p\","
			"\"dir\":\"egress\",\"request\":\"req-1\"}}",
		PL_HEAD "\"p25\":{}}",
		PL_HEAD "\"p25\":[]}",
		"{\"iss\":\"https://p25.test\",\"iss\":\"https://p25.test\"}",
		"{}", "[]", "", "{\"iat\":0123}", "{\"iat\":1e3}",
		"{\"iat\":123456789012345678901234}",
	};
	char buf[1024];
	size_t i, k, len, pos;
	static const char alpha[] = "0189-.,:{}[]\"\\ eE/ax\x7f\x01\xc3";

	(void)state;
	/* the first three are good: both readings say so */
	for (i = 0; i < 3; i++)
		assert_int_equal(p25_payload_check(base[i], strlen(base[i]), "https://p25.test",
						   1767225600LL, 60, NULL, true), P25_VERIFY_OK);
	for (i = 0; i < N(base); i++)
		payload_agree(base[i], strlen(base[i]));
	for (i = 0; i < 3; i++) {
		for (k = 0; k < 3000; k++) {
			len = strlen(base[i]);
			memcpy(buf, base[i], len);
			pos = randombytes_uniform((uint32_t)len);
			switch (randombytes_uniform(3)) {
			case 0:	/* replace */
				buf[pos] = alpha[randombytes_uniform(sizeof(alpha) - 1)];
				break;
			case 1:	/* delete */
				memmove(buf + pos, buf + pos + 1, len - pos - 1);
				len--;
				break;
			default:	/* insert */
				memmove(buf + pos + 1, buf + pos, len - pos);
				buf[pos] = alpha[randombytes_uniform(sizeof(alpha) - 1)];
				len++;
				break;
			}
			payload_agree(buf, len);
		}
	}
#undef PL_HEAD
}

static void
test_good_token(void **state)
{
	struct fixture *f = *state;
	struct p25_claims c;
	char h[256], p[2048];
	char *tok = good_token(f);

	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, &c), P25_VERIFY_OK);
	assert_string_equal(c.iss, ISS);
	assert_string_equal(c.sub, "tenant-a");
	assert_string_equal(c.jti, "ex-1");
	assert_string_equal(c.kid, f->kid);
	assert_string_equal(c.cidr, "81.2.69.5/32");
	assert_int_equal(c.port, 25);
	assert_string_equal(c.proto, "tcp");
	assert_string_equal(c.dir, "egress");
	assert_string_equal(c.request, "req-1");
	assert_int_equal(c.nbf, NOW - 10);
	assert_int_equal(c.exp, NOW + 86400);
	assert_int_equal(c.ndest, 0);
	assert_int_equal(c.rate, -1);
	assert_string_equal(p25_verify_result_str(P25_VERIFY_OK), "ok");
	free(tok);

	/* the second key verifies its own tokens */
	header(h, sizeof(h), f->kid2);
	payload(p, sizeof(p), ISS, NOW, NOW + 60, SCOPE_OK);
	tok = sign(f->sk2, h, p);
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, &c), P25_VERIFY_OK);
	free(tok);

	/* optional scope: dest and rate */
	header(h, sizeof(h), f->kid);
	payload(p, sizeof(p), ISS, NOW, NOW + 60,
		"{\"cidr\":\"2a02:ff0:1::/48\",\"port\":25,\"proto\":\"tcp\",\"dir\":\"egress\","
		"\"request\":\"r\",\"dest\":[\"81.2.70.0/24\",\"2a02:ff0:9::25/128\"],\"rate\":500}");
	assert_int_equal(verify_parts(f, h, p, &c), P25_VERIFY_OK);
	assert_string_equal(c.cidr, "2a02:ff0:1::/48");
	assert_int_equal(c.ndest, 2);
	assert_string_equal(c.dest[0], "81.2.70.0/24");
	assert_string_equal(c.dest[1], "2a02:ff0:9::25/128");
	assert_int_equal(c.rate, 500);

	/* unknown header members that select nothing are tolerated */
	snprintf(h, sizeof(h), "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\","
		 "\"x-note\":1}", f->kid);
	payload(p, sizeof(p), ISS, NOW, NOW + 60, SCOPE_OK);
	assert_int_equal(verify_parts(f, h, p, &c), P25_VERIFY_OK);
}

/* Every single-bit change anywhere in the token is refused. */
static void
test_bit_flips(void **state)
{
	struct fixture *f = *state;
	char *tok = good_token(f);
	size_t len = strlen(tok), i;
	int b, checked = 0;

	for (i = 0; i < len; i++) {
		for (b = 0; b < 8; b++) {
			char saved = tok[i];
			enum p25_verify_result r;

			tok[i] = (char)(saved ^ (1 << b));
			if (tok[i] == '\0') {	/* a NUL shortens it: also covered */
				tok[i] = saved;
				continue;
			}
			r = p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL);
			if (r == P25_VERIFY_OK)
				fail_msg("flip of bit %d at byte %zu accepted", b, i);
			tok[i] = saved;
			checked++;
		}
	}
	/* every truncation too */
	for (i = 0; i < len; i++) {
		char saved = tok[i];
		tok[i] = '\0';
		assert_int_not_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL),
				     P25_VERIFY_OK);
		tok[i] = saved;
	}
	assert_true(checked > 7 * (int)len);
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL), P25_VERIFY_OK);
	free(tok);
}

/* tmpl with each "%s" replaced by kid (no run-time format strings) */
static void
subst_kid(char *out, size_t len, const char *tmpl, const char *kid)
{
	size_t o = 0, kl = strlen(kid);

	for (; *tmpl && o + 1 < len; tmpl++) {
		if (tmpl[0] == '%' && tmpl[1] == 's' && o + kl + 1 < len) {
			memcpy(out + o, kid, kl);
			o += kl;
			tmpl++;
		} else {
			out[o++] = *tmpl;
		}
	}
	out[o] = '\0';
}

static void
test_headers(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *fmt;	/* "%s" stands for the kid */
		enum p25_verify_result want;
	} cases[] = {
		{ "{\"alg\":\"HS256\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"none\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"ES256\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"Ed25519\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"eddsa\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":[\"EdDSA\"],\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"application/p25-exemption+jwt\",\"kid\":\"%s\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\",\"crit\":[\"exp\"]}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\",\"jku\":\"https://evil\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\",\"jwk\":{}}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\",\"x5u\":\"https://evil\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\",\"x5c\":[]}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\",\"b64\":false}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":1}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"\"}", P25_VERIFY_BAD_HEADER },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"unknown-kid\"}", P25_VERIFY_UNKNOWN_KID },
		/* a duplicate member could be read two ways: refused */
		{ "{\"alg\":\"EdDSA\",\"alg\":\"none\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", P25_VERIFY_MALFORMED },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"} ", P25_VERIFY_OK },
		{ "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}x", P25_VERIFY_MALFORMED },
		{ "[\"EdDSA\"]", P25_VERIFY_MALFORMED },
		{ "not json", P25_VERIFY_MALFORMED },
	};
	char h[512], p[1024];
	size_t i;

	payload(p, sizeof(p), ISS, NOW, NOW + 60, SCOPE_OK);
	for (i = 0; i < N(cases); i++) {
		enum p25_verify_result r;

		subst_kid(h, sizeof(h), cases[i].fmt, f->kid);
		r = verify_parts(f, h, p, NULL);
		if (r != cases[i].want)
			fail_msg("header %s: %s, want %s", h, p25_verify_result_str(r),
				 p25_verify_result_str(cases[i].want));
	}
}

/* alg "none" as an attacker would send it: no signature at all. */
static void
test_unsigned(void **state)
{
	struct fixture *f = *state;
	char h[256], p[1024], tok[4096], hb[512], pb[1536];

	snprintf(h, sizeof(h), "{\"alg\":\"none\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}", f->kid);
	payload(p, sizeof(p), ISS, NOW, NOW + 60, SCOPE_OK);
	p25_b64url_encode(hb, sizeof(hb), (const unsigned char *)h, strlen(h));
	p25_b64url_encode(pb, sizeof(pb), (const unsigned char *)p, strlen(p));
	snprintf(tok, sizeof(tok), "%s.%s.", hb, pb);
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL), P25_VERIFY_BAD_HEADER);
	/* alg right, signature missing or short */
	header(h, sizeof(h), f->kid);
	p25_b64url_encode(hb, sizeof(hb), (const unsigned char *)h, strlen(h));
	snprintf(tok, sizeof(tok), "%s.%s.", hb, pb);
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	snprintf(tok, sizeof(tok), "%s.%s.AAAA", hb, pb);
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	snprintf(tok, sizeof(tok), "%s.%s", hb, pb);
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
}

static void
test_wrong_key(void **state)
{
	struct fixture *f = *state;
	char h[256], p[1024];
	char *tok;

	/* signed with key 2 but naming key 1 */
	header(h, sizeof(h), f->kid);
	payload(p, sizeof(p), ISS, NOW, NOW + 60, SCOPE_OK);
	tok = sign(f->sk2, h, p);
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL),
			 P25_VERIFY_BAD_SIGNATURE);
	free(tok);
	/* a token whose signature belongs to another token */
	{
		char *a = good_token(f), *b, spliced[2048];
		size_t ia = strlen(a), ib;

		payload(p, sizeof(p), ISS, NOW, NOW + 120, SCOPE_OK);
		b = sign(f->sk, h, p);
		ib = strlen(b);
		while (ia > 0 && a[ia - 1] != '.')
			ia--;
		while (ib > 0 && b[ib - 1] != '.')
			ib--;
		snprintf(spliced, sizeof(spliced), "%.*s%s", (int)ib, b, a + ia);
		assert_int_equal(p25_token_verify(f->ks, spliced, ISS, NOW, SKEW, NULL),
				 P25_VERIFY_BAD_SIGNATURE);
		free(a);
		free(b);
	}
}

static void
test_times_and_issuer(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *iss;
		long long nbf, exp, now;
		enum p25_verify_result want;
	} cases[] = {
		{ ISS, NOW - 100, NOW + 100, NOW, P25_VERIFY_OK },
		{ "https://evil.test", NOW - 100, NOW + 100, NOW, P25_VERIFY_BAD_ISSUER },
		{ "https://p25.test/", NOW - 100, NOW + 100, NOW, P25_VERIFY_BAD_ISSUER },
		{ "", NOW - 100, NOW + 100, NOW, P25_VERIFY_MALFORMED },
		/* expiry at the skew boundary */
		{ ISS, NOW - 1000, NOW - 100, NOW, P25_VERIFY_EXPIRED },
		{ ISS, NOW - 1000, NOW - SKEW, NOW, P25_VERIFY_EXPIRED },
		{ ISS, NOW - 1000, NOW - SKEW + 1, NOW, P25_VERIFY_OK },
		/* not before, same */
		{ ISS, NOW + SKEW + 1, NOW + 1000, NOW, P25_VERIFY_NOT_YET_VALID },
		{ ISS, NOW + SKEW, NOW + 1000, NOW, P25_VERIFY_OK },
		{ ISS, NOW + 100000, NOW + 200000, NOW, P25_VERIFY_NOT_YET_VALID },
		/* a window that is empty */
		{ ISS, NOW, NOW, NOW, P25_VERIFY_MALFORMED },
		{ ISS, NOW, NOW - 1, NOW, P25_VERIFY_MALFORMED },
		/* out of range times */
		{ ISS, -1, NOW + 100, NOW, P25_VERIFY_MALFORMED },
		{ ISS, NOW, 253402300800LL, NOW, P25_VERIFY_MALFORMED },
		/* extreme "now" cannot overflow anything */
		{ ISS, NOW - 100, NOW + 100, 9223372036854775807LL, P25_VERIFY_EXPIRED },
		{ ISS, NOW - 100, NOW + 100, -9223372036854775807LL - 1, P25_VERIFY_NOT_YET_VALID },
	};
	char h[256], p[1024];
	size_t i;

	header(h, sizeof(h), f->kid);
	for (i = 0; i < N(cases); i++) {
		char *tok;
		enum p25_verify_result r;

		payload(p, sizeof(p), cases[i].iss, cases[i].nbf, cases[i].exp, SCOPE_OK);
		tok = sign(f->sk, h, p);
		r = p25_token_verify(f->ks, tok, ISS, cases[i].now, SKEW, NULL);
		if (r != cases[i].want)
			fail_msg("case %zu: %s, want %s", i, p25_verify_result_str(r),
				 p25_verify_result_str(cases[i].want));
		free(tok);
	}
	/* skew is clamped: a huge or negative skew does not extend validity */
	payload(p, sizeof(p), ISS, NOW - 200000, NOW - 100000, SCOPE_OK);
	{
		char *tok = sign(f->sk, h, p);
		assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, 2000000000, NULL),
				 P25_VERIFY_EXPIRED);
		assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW - 100001, -5, NULL),
				 P25_VERIFY_OK);
		assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW - 100000, -5, NULL),
				 P25_VERIFY_EXPIRED);
		free(tok);
	}
}

static void
test_claims(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *payload;
		enum p25_verify_result want;
	} cases[] = {
		/* types */
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"p25\":" SCOPE_OK "}", P25_VERIFY_OK },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"j\",\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"p25\":" SCOPE_OK "}", P25_VERIFY_MALFORMED },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999.0,\"p25\":" SCOPE_OK "}", P25_VERIFY_MALFORMED },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":\"1767229999\",\"p25\":" SCOPE_OK "}", P25_VERIFY_MALFORMED },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"p25\":" SCOPE_OK "}", P25_VERIFY_MALFORMED },
		{ "{\"iss\":\"" ISS "\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"p25\":" SCOPE_OK "}", P25_VERIFY_MALFORMED },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"p25\":" SCOPE_OK "}", P25_VERIFY_MALFORMED },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999}", P25_VERIFY_BAD_SCOPE },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"p25\":[]}", P25_VERIFY_BAD_SCOPE },
		/* duplicates and trailing data */
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"exp\":1999999999,\"p25\":" SCOPE_OK "}", P25_VERIFY_MALFORMED },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"p25\":" SCOPE_OK "}{}", P25_VERIFY_MALFORMED },
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\\u0000x\",\"jti\":\"j\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"p25\":" SCOPE_OK "}", P25_VERIFY_MALFORMED },
		/* a jti too long for the claims struct is refused, not cut */
		{ "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"0123456789012345678901234567890123456789"
		  "01234567890123456789012345\",\"iat\":1,\"nbf\":1767225000,"
		  "\"exp\":1767229999,\"p25\":" SCOPE_OK "}", P25_VERIFY_MALFORMED },
		{ "[]", P25_VERIFY_MALFORMED },
		{ "", P25_VERIFY_MALFORMED },
	};
	char h[256];
	size_t i;

	header(h, sizeof(h), f->kid);
	for (i = 0; i < N(cases); i++) {
		enum p25_verify_result r;

		if (cases[i].payload[0] == '\0') {
			/* the signer cannot make an empty segment mean anything */
			char *tok = sign(f->sk, h, "");
			r = p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL);
			free(tok);
		} else {
			r = verify_parts(f, h, cases[i].payload, NULL);
		}
		if (r != cases[i].want)
			fail_msg("case %zu: %s, want %s", i, p25_verify_result_str(r),
				 p25_verify_result_str(cases[i].want));
	}
}

static void
test_scope(void **state)
{
	struct fixture *f = *state;
#define S(extra) "{\"port\":25,\"proto\":\"tcp\",\"dir\":\"egress\",\"request\":\"r\"" extra "}"
	static const struct {
		const char *scope;
		enum p25_verify_result want;
	} cases[] = {
		{ S(",\"cidr\":\"81.2.69.5/32\""), P25_VERIFY_OK },
		{ S(",\"cidr\":\"81.2.69.0/24\""), P25_VERIFY_OK },
		{ S(",\"cidr\":\"81.0.0.0/8\""), P25_VERIFY_OK },
		{ S(",\"cidr\":\"2a02:ff0:1::5/128\""), P25_VERIFY_OK },
		{ S(",\"cidr\":\"2a02::/16\""), P25_VERIFY_OK },
		/* cidr */
		{ S(""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/24\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/33\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/032\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"081.2.69.5/32\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\" 81.2.69.5/32\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32 \""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"2A02:FF0:1::5/128\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"2a02:0ff0:1::5/128\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"2a02:ff0:1:0:0:0:0:5/128\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"::ffff:81.2.69.5/128\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"0.0.0.0/0\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"80.0.0.0/7\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"::/0\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"2a00::/15\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32/32\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":32"), P25_VERIFY_BAD_SCOPE },
		/* port, proto, dir, request */
		{ "{\"cidr\":\"81.2.69.5/32\",\"port\":26,\"proto\":\"tcp\",\"dir\":\"egress\",\"request\":\"r\"}", P25_VERIFY_BAD_SCOPE },
		{ "{\"cidr\":\"81.2.69.5/32\",\"port\":\"25\",\"proto\":\"tcp\",\"dir\":\"egress\",\"request\":\"r\"}", P25_VERIFY_BAD_SCOPE },
		{ "{\"cidr\":\"81.2.69.5/32\",\"port\":25.0,\"proto\":\"tcp\",\"dir\":\"egress\",\"request\":\"r\"}", P25_VERIFY_BAD_SCOPE },
		{ "{\"cidr\":\"81.2.69.5/32\",\"proto\":\"tcp\",\"dir\":\"egress\",\"request\":\"r\"}", P25_VERIFY_BAD_SCOPE },
		{ "{\"cidr\":\"81.2.69.5/32\",\"port\":25,\"proto\":\"udp\",\"dir\":\"egress\",\"request\":\"r\"}", P25_VERIFY_BAD_SCOPE },
		{ "{\"cidr\":\"81.2.69.5/32\",\"port\":25,\"proto\":\"TCP\",\"dir\":\"egress\",\"request\":\"r\"}", P25_VERIFY_BAD_SCOPE },
		{ "{\"cidr\":\"81.2.69.5/32\",\"port\":25,\"proto\":\"tcp\",\"dir\":\"ingress\",\"request\":\"r\"}", P25_VERIFY_BAD_SCOPE },
		{ "{\"cidr\":\"81.2.69.5/32\",\"port\":25,\"proto\":\"tcp\",\"request\":\"r\"}", P25_VERIFY_BAD_SCOPE },
		{ "{\"cidr\":\"81.2.69.5/32\",\"port\":25,\"proto\":\"tcp\",\"dir\":\"egress\"}", P25_VERIFY_BAD_SCOPE },
		{ "{\"cidr\":\"81.2.69.5/32\",\"port\":25,\"proto\":\"tcp\",\"dir\":\"egress\",\"request\":\"\"}", P25_VERIFY_BAD_SCOPE },
		/* an unknown restriction must not be dropped */
		{ S(",\"cidr\":\"81.2.69.5/32\",\"window\":\"09-17\""), P25_VERIFY_BAD_SCOPE },
		/* dest */
		{ S(",\"cidr\":\"81.2.69.5/32\",\"dest\":[\"192.0.2.25/32\"]"), P25_VERIFY_OK },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"dest\":[]"), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"dest\":\"192.0.2.25/32\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"dest\":[\"192.0.2.25\"]"), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"dest\":[\"192.0.2.25/24\"]"), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"dest\":[25]"), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"dest\":[\"1.0.0.1/32\",\"1.0.0.2/32\",\"1.0.0.3/32\","
		    "\"1.0.0.4/32\",\"1.0.0.5/32\",\"1.0.0.6/32\",\"1.0.0.7/32\",\"1.0.0.8/32\",\"1.0.0.9/32\","
		    "\"1.0.0.10/32\",\"1.0.0.11/32\",\"1.0.0.12/32\",\"1.0.0.13/32\",\"1.0.0.14/32\","
		    "\"1.0.0.15/32\",\"1.0.0.16/32\"]"), P25_VERIFY_OK },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"dest\":[\"1.0.0.1/32\",\"1.0.0.2/32\",\"1.0.0.3/32\","
		    "\"1.0.0.4/32\",\"1.0.0.5/32\",\"1.0.0.6/32\",\"1.0.0.7/32\",\"1.0.0.8/32\",\"1.0.0.9/32\","
		    "\"1.0.0.10/32\",\"1.0.0.11/32\",\"1.0.0.12/32\",\"1.0.0.13/32\",\"1.0.0.14/32\","
		    "\"1.0.0.15/32\",\"1.0.0.16/32\",\"1.0.0.17/32\"]"), P25_VERIFY_BAD_SCOPE },
		/* rate */
		{ S(",\"cidr\":\"81.2.69.5/32\",\"rate\":1"), P25_VERIFY_OK },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"rate\":0"), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"rate\":-5"), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"rate\":\"100\""), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"rate\":4294967296"), P25_VERIFY_BAD_SCOPE },
		{ S(",\"cidr\":\"81.2.69.5/32\",\"rate\":null"), P25_VERIFY_BAD_SCOPE },
	};
#undef S
	char h[256], p[2048];
	size_t i;

	header(h, sizeof(h), f->kid);
	for (i = 0; i < N(cases); i++) {
		enum p25_verify_result r;

		payload(p, sizeof(p), ISS, NOW, NOW + 60, cases[i].scope);
		r = verify_parts(f, h, p, NULL);
		if (r != cases[i].want)
			fail_msg("scope %s: %s, want %s", cases[i].scope,
				 p25_verify_result_str(r), p25_verify_result_str(cases[i].want));
	}
}

/* Edits of a good token's text, none of which may pass. */
static void
test_encoding(void **state)
{
	struct fixture *f = *state;
	char *tok = good_token(f);
	size_t len = strlen(tok);
	char *buf = malloc(len + 16);
	char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	size_t p1 = (size_t)(d1 - tok), p2 = (size_t)(d2 - tok);
	struct p25_claims c;

	assert_non_null(buf);
	/* '=' padding after each segment */
	snprintf(buf, len + 16, "%.*s=%s", (int)p1, tok, tok + p1);
	assert_int_equal(p25_token_verify(f->ks, buf, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	snprintf(buf, len + 16, "%.*s=%s", (int)p2, tok, tok + p2);
	assert_int_equal(p25_token_verify(f->ks, buf, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	snprintf(buf, len + 16, "%s==", tok);
	assert_int_equal(p25_token_verify(f->ks, buf, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	/* '-' and '_' spelled the standard way */
	memcpy(buf, tok, len + 1);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '-' || buf[i] == '_') {
			char saved = buf[i];
			buf[i] = saved == '-' ? '+' : '/';
			assert_int_equal(p25_token_verify(f->ks, buf, ISS, NOW, SKEW, NULL),
					 P25_VERIFY_MALFORMED);
			buf[i] = saved;
		}
	}
	/* trailing garbage */
	static const char *const tails[] = { ".", "x", "A", " ", "\n", "\r\n", ".x", "..", "\t" };
	for (size_t i = 0; i < N(tails); i++) {
		snprintf(buf, len + 16, "%s%s", tok, tails[i]);
		assert_int_not_equal(p25_token_verify(f->ks, buf, ISS, NOW, SKEW, NULL),
				     P25_VERIFY_OK);
	}
	/* leading garbage, a fourth segment, empty segments */
	snprintf(buf, len + 16, " %s", tok);
	assert_int_equal(p25_token_verify(f->ks, buf, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	snprintf(buf, len + 16, "%s.%s", tok, "AAAA");
	assert_int_equal(p25_token_verify(f->ks, buf, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	snprintf(buf, len + 16, ".%s", tok + p1 + 1);
	assert_int_equal(p25_token_verify(f->ks, buf, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	snprintf(buf, len + 16, "%.*s.%s", (int)p1, tok, tok + p2);
	assert_int_equal(p25_token_verify(f->ks, buf, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	assert_int_equal(p25_token_verify(f->ks, "", ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	assert_int_equal(p25_token_verify(f->ks, "..", ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	/* NULLs */
	memset(&c, 0xaa, sizeof(c));
	assert_int_equal(p25_token_verify(NULL, tok, ISS, NOW, SKEW, &c), P25_VERIFY_MALFORMED);
	assert_int_equal(c.iss[0], 0);	/* zeroed on failure */
	assert_int_equal(p25_token_verify(f->ks, NULL, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	assert_int_equal(p25_token_verify(f->ks, tok, NULL, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	/* the original still verifies */
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL), P25_VERIFY_OK);
	free(buf);
	free(tok);
}

static void
test_huge(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(1 << 20), *p, *tok;
	char h[256];
	size_t n;

	assert_non_null(big);
	/* a megabyte of base64url: refused before any decoding */
	memset(big, 'A', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	big[1000] = '.';
	big[2000] = '.';
	assert_int_equal(p25_token_verify(f->ks, big, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	/* a correctly signed token just over the cap */
	header(h, sizeof(h), f->kid);
	p = malloc(16384);
	assert_non_null(p);
	n = (size_t)snprintf(p, 16384, "{\"iss\":\"" ISS "\",\"sub\":\"t\",\"jti\":\"j\",\"iat\":1,"
			     "\"nbf\":%lld,\"exp\":%lld,\"p25\":" SCOPE_OK ",\"pad\":\"",
			     NOW, NOW + 60);
	memset(p + n, 'x', 7000);
	memcpy(p + n + 7000, "\"}", 3);
	tok = sign(f->sk, h, p);
	assert_true(strlen(tok) > P25_TOKEN_MAX);
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL), P25_VERIFY_MALFORMED);
	free(tok);
	/* and one just under it is fine */
	memcpy(p + n + 5500, "\"}", 3);
	tok = sign(f->sk, h, p);
	assert_true(strlen(tok) <= P25_TOKEN_MAX);
	assert_int_equal(p25_token_verify(f->ks, tok, ISS, NOW, SKEW, NULL), P25_VERIFY_OK);
	free(tok);
	free(p);
	free(big);
}

static void
test_keyset(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *jwks;
		int rc;
		size_t count;
	} cases[] = {
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}", 0, 1 },
		/* other key types and curves are skipped, not refused */
		{ "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"kid\":\"r\"},"
		  "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"kid\":\"x\",\"x\":\"AAAA\"},"
		  "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e\"},"
		  "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"use\":\"sig\",\"alg\":\"EdDSA\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}", 0, 1 },
		/* malformed Ed25519 keys fail the whole set */
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR\"}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURoA\"}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		  "\"x\":\"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\"}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":42}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"use\":\"enc\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"alg\":\"ES256\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		  "\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}", -1, 0 },
		/* a small-order point (all zeros) is not a key */
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		  "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
		  "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\","
		  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}", -1, 0 },
		/* shapes */
		{ "{\"keys\":[]}", -1, 0 },
		{ "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\"}]}", -1, 0 },
		{ "{\"keys\":{}}", -1, 0 },
		{ "{\"keys\":[1]}", -1, 0 },
		{ "{\"keys\":[{\"crv\":\"Ed25519\"}]}", -1, 0 },
		{ "[]", -1, 0 },
		{ "{\"keys\":[],\"keys\":[]}", -1, 0 },
		{ "", -1, 0 },
		{ "{", -1, 0 },
	};
	size_t i;

	for (i = 0; i < N(cases); i++) {
		struct p25_keyset *ks = (struct p25_keyset *)1;
		char errbuf[160];
		int rc = p25_keyset_parse(cases[i].jwks, strlen(cases[i].jwks), &ks,
					  errbuf, sizeof(errbuf));
		if (rc != cases[i].rc)
			fail_msg("keyset %zu: rc %d (%s)", i, rc, errbuf);
		if (rc == 0) {
			assert_int_equal(p25_keyset_count(ks), cases[i].count);
			assert_true(p25_keyset_has(ks, "a"));
			assert_false(p25_keyset_has(ks, "b"));
		} else {
			assert_null(ks);
			assert_true(errbuf[0] != '\0');
		}
		p25_keyset_free(ks);
	}
	assert_int_equal(p25_keyset_count(f->ks), 2);
	assert_true(p25_keyset_has(f->ks, f->kid));
	{
		struct p25_keyset *ks = NULL;
		const char *kids[1] = { f->kid };
		char *jwks = p25_jwks_json(kids, (const unsigned char (*)[32])f->pk, 1);
		char errbuf[128];

		assert_int_equal(p25_keyset_parse(NULL, 0, &ks, NULL, 0), -1);
		assert_null(ks);
		assert_non_null(jwks);
		assert_non_null(strstr(jwks, "\"kty\":\"OKP\""));
		assert_non_null(strstr(jwks, "\"use\":\"sig\""));
		assert_non_null(strstr(jwks, rfc_x));
		assert_null(strstr(jwks, "\"d\""));
		assert_int_equal(p25_keyset_parse(jwks, strlen(jwks), &ks, errbuf,
						  sizeof(errbuf)), 0);
		assert_int_equal(p25_keyset_count(ks), 1);
		p25_keyset_free(ks);
		free(jwks);
	}
	/* an empty JWKS text is valid output, an unusable key set */
	{
		char *jwks = p25_jwks_json(NULL, NULL, 0);
		assert_string_equal(jwks, "{\"keys\":[]}");
		free(jwks);
	}
}

static void
test_result_names(void **state)
{
	static const char *const names[] = { "ok", "malformed", "bad_header", "unknown_kid",
		"bad_signature", "bad_issuer", "not_yet_valid", "expired", "bad_scope" };
	size_t i;

	for (i = 0; i < N(names); i++)
		assert_string_equal(p25_verify_result_str((enum p25_verify_result)i), names[i]);
	assert_string_equal(p25_verify_result_str((enum p25_verify_result)99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8037_vectors),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_b64_matches_libsodium),
		cmocka_unit_test(test_payload_fast_path),
		cmocka_unit_test(test_good_token),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_unsigned),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_times_and_issuer),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_huge),
		cmocka_unit_test(test_keyset),
		cmocka_unit_test(test_result_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
