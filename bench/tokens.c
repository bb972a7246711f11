/*
 * tokens.c — bench-tokens: the exemption tokens of the enforcement
 * benchmark (bench/enforce.sh, bench/ENFORCE.md), and the verification
 * rate figure.
 *
 *   bench-tokens mint N DIR [ISS]
 *       A fresh Ed25519 key; N tokens of exactly p25's shape (header and
 *       claims built as core/issue.c builds them, signed with
 *       p25_jws_sign_ed25519) into DIR:
 *         jwks.json    the public key (the node's pinned JWKS)
 *         key.txt      "kid <tab> public key hex" for the signing_keys row
 *         tokens.tsv   "exemption id <tab> cidr <tab> jws", one per token
 *       1 % of the tokens carry a rate, 1 % a destination list, 10 % an
 *       IPv6 /64; the rest an IPv4 /32.  Valid for 30 days from now.
 *
 *   bench-tokens rate DIR [ISS] [ROUNDS]
 *       On the tokens of DIR (one thread, the same tokens for both):
 *         raw  crypto_sign_verify_detached() over each token's signing
 *              input with its signature — decoded beforehand, outside the
 *              timing, the key looked up once: the floor;
 *         lib  p25_token_verify() on each token string: shape, base64url,
 *              header JSON, key lookup, the same signature check, claims.
 *       ROUNDS (5) rounds, each over all tokens in blocks of 256, raw and
 *       lib in turn on each block; each figure is the median round,
 *       timed by the thread's CPU time (foreign load on a shared machine
 *       moves wall time much more; the wall figures are a comment).
 *       Prints "verify.raw_rate", "verify.lib_rate" (tokens/s),
 *       "verify.raw_us", "verify.lib_us" (per token) and "verify.ratio"
 *       (lib / raw); exit 1 when a token fails either way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <sodium.h>

#include "p25/b64.h"
#include "p25/jws.h"
#include "p25/verify.h"

#define ISS_DEFAULT "p25-bench"
#define BLOCK 256	/* tokens timed at a time, raw and lib in turn */

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
mint(long n, const char *dir, const char *iss)
{
	unsigned char pk[32], sk[64];
	char kid[P25_KID_LEN], path[4096], id[64], cidr[64], req[40], hex[65];
	const char *kids[1];
	char *jwks, *hj, *pj, *jws;
	FILE *f;
	json_t *hdr, *pl, *scope;
	long long now = (long long)time(NULL), exp = now + 30LL * 86400;
	long i;

	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	p25_jwk_thumbprint(pk, kid, sizeof(kid));
	kids[0] = kid;
	jwks = p25_jwks_json(kids, (const unsigned char (*)[32])pk, 1);
	snprintf(path, sizeof(path), "%s/jwks.json", dir);
	f = fopen(path, "w");
	if (!f || !jwks || fputs(jwks, f) < 0 || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	free(jwks);
	snprintf(path, sizeof(path), "%s/key.txt", dir);
	f = fopen(path, "w");
	sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
	if (!f || fprintf(f, "%s\t%s\n", kid, hex) < 0 || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/tokens.tsv", dir);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		return 1;
	}
	hdr = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", P25_TOKEN_TYP, "kid", kid);
	hj = json_dumps(hdr, JSON_COMPACT);
	snprintf(req, sizeof(req), "00000000-0000-4000-8000-000000000001");
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%08lx-0000-4000-8000-%012lx", (unsigned long)i + 1,
			 (unsigned long)i + 1);
		if (i % 10 == 9)
			snprintf(cidr, sizeof(cidr), "2a02:ff0:%lx:%lx::/64", (i >> 15) + 1,
				 (i & 0x7fff) + 1);
		else
			snprintf(cidr, sizeof(cidr), "81.%ld.%ld.%ld/32", 2 + i / 65536,
				 (i / 256) % 256, i % 256);
		scope = json_pack("{s:s, s:i, s:s, s:s, s:s}", "cidr", cidr, "port", 25,
				  "proto", "tcp", "dir", "egress", "request", req);
		if (i % 100 == 3)
			json_object_set_new(scope, "rate", json_integer(500));
		if (i % 100 == 7 && i % 10 != 9)
			json_object_set_new(scope, "dest",
					    json_pack("[s, s]", "192.0.2.0/24", "198.51.100.25/32"));
		pl = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "iss", iss, "sub", "bench",
			       "jti", id, "iat", (json_int_t)now, "nbf", (json_int_t)now,
			       "exp", (json_int_t)exp, "p25", scope);
		pj = json_dumps(pl, JSON_COMPACT);
		if (!pj || p25_jws_sign_ed25519(hj, pj, sk, &jws) != 0) {
			fprintf(stderr, "bench-tokens: signing failed\n");
			return 1;
		}
		fprintf(f, "%s\t%s\t%s\n", id, cidr, jws);
		free(jws);
		free(pj);
		json_decref(pl);
	}
	free(hj);
	json_decref(hdr);
	sodium_memzero(sk, sizeof(sk));
	if (fclose(f) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}

struct tok {
	char *jws;
	size_t input_len;	/* bytes of "header.payload" */
	unsigned char sig[crypto_sign_BYTES];
};

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *p = NULL;
	long sz;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (p = malloc((size_t)sz + 1)) != NULL) {
		*len = fread(p, 1, (size_t)sz, f);
		p[*len] = '\0';
	}
	fclose(f);
	return p;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
rate(const char *dir, const char *iss, int rounds)
{
	char path[4096], err[256], kid[64], *text, *line, *save = NULL, *dot;
	struct p25_keyset *ks = NULL;
	struct p25_claims c;
	struct tok *v = NULL;
	size_t len, n = 0, cap = 0, i, slen;
	unsigned char pk[32];
	double *traw, *tlib, *craw, *clib, t0, c0, raw, lib, rawc, libc;
	long long now = (long long)time(NULL);
	char hexpk[65];
	int k, bad = 0;

	if (sodium_init() < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/jwks.json", dir);
	text = slurp(path, &len);
	if (!text || p25_keyset_parse(text, len, &ks, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-tokens: %s: %s\n", path, text ? err : "unreadable");
		return 1;
	}
	free(text);
	snprintf(path, sizeof(path), "%s/key.txt", dir);
	text = slurp(path, &len);
	if (!text || sscanf(text, "%63s %64s", kid, hexpk) != 2 ||
	    sodium_hex2bin(pk, sizeof(pk), hexpk, strlen(hexpk), NULL, &slen, NULL) != 0 ||
	    slen != 32) {
		fprintf(stderr, "bench-tokens: %s: unreadable\n", path);
		return 1;
	}
	free(text);
	snprintf(path, sizeof(path), "%s/tokens.tsv", dir);
	text = slurp(path, &len);
	if (!text) {
		perror(path);
		return 1;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *jws = strrchr(line, '\t');

		if (!jws)
			continue;
		jws++;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				return 1;
		}
		dot = strrchr(jws, '.');
		if (!dot || p25_b64url_decode(v[n].sig, sizeof(v[n].sig), dot + 1, strlen(dot + 1),
					      &slen) != 0 || slen != crypto_sign_BYTES) {
			fprintf(stderr, "bench-tokens: token %zu has no signature\n", n);
			return 1;
		}
		v[n].jws = jws;
		v[n].input_len = (size_t)(dot - jws);
		n++;
	}
	if (n == 0) {
		fprintf(stderr, "bench-tokens: no tokens in %s\n", path);
		return 1;
	}
	traw = calloc((size_t)rounds, sizeof(double));
	tlib = calloc((size_t)rounds, sizeof(double));
	craw = calloc((size_t)rounds, sizeof(double));
	clib = calloc((size_t)rounds, sizeof(double));
	if (!traw || !tlib || !craw || !clib)
		return 1;
	/*
	 * Interleaved in blocks of BLOCK tokens (raw then lib on the same
	 * block, the order swapped every other block), so that both see the
	 * same machine: on a shared machine the load moves within seconds.
	 */
	for (k = 0; k < rounds; k++) {
		size_t b0, b1, pass;

		for (b0 = 0; b0 < n; b0 += BLOCK) {
			b1 = b0 + BLOCK < n ? b0 + BLOCK : n;
			for (pass = 0; pass < 2; pass++) {
				if ((pass == 0) == ((b0 / BLOCK) % 2 == 0)) {
					t0 = mono();
					c0 = cpu();
					for (i = b0; i < b1; i++)
						if (crypto_sign_verify_detached(v[i].sig,
							(const unsigned char *)v[i].jws,
							v[i].input_len, pk) != 0)
							bad++;
					craw[k] += cpu() - c0;
					traw[k] += mono() - t0;
				} else {
					t0 = mono();
					c0 = cpu();
					for (i = b0; i < b1; i++)
						if (p25_token_verify(ks, v[i].jws, iss, now, 60, &c) !=
						    P25_VERIFY_OK)
							bad++;
					clib[k] += cpu() - c0;
					tlib[k] += mono() - t0;
				}
			}
		}
		fprintf(stderr, "bench-tokens: round %d: raw %.3f s (cpu %.3f), lib %.3f s (cpu %.3f)"
			" for %zu tokens\n", k + 1, traw[k], craw[k], tlib[k], clib[k], n);
	}
	if (bad) {
		fprintf(stderr, "bench-tokens: %d verifications failed\n", bad);
		return 1;
	}
	qsort(traw, (size_t)rounds, sizeof(double), cmp_double);
	qsort(tlib, (size_t)rounds, sizeof(double), cmp_double);
	qsort(craw, (size_t)rounds, sizeof(double), cmp_double);
	qsort(clib, (size_t)rounds, sizeof(double), cmp_double);
	raw = traw[rounds / 2];
	lib = tlib[rounds / 2];
	rawc = craw[rounds / 2];
	libc = clib[rounds / 2];
	printf("verify.tokens %zu tokens\n", n);
	printf("verify.raw_rate %.0f tokens/s\n", (double)n / rawc);
	printf("verify.lib_rate %.0f tokens/s\n", (double)n / libc);
	printf("verify.raw_us %.2f us\n", rawc / (double)n * 1e6);
	printf("verify.lib_us %.2f us\n", libc / (double)n * 1e6);
	printf("verify.ratio %.3f\n", rawc / libc);
	printf("# verify: rates from the thread's CPU time, median of %d rounds; by wall time:"
	       " raw %.0f/s, lib %.0f/s, ratio %.3f\n", rounds, (double)n / raw, (double)n / lib,
	       raw / lib);
	free(traw);
	free(tlib);
	free(craw);
	free(clib);
	free(v);
	free(text);
	p25_keyset_free(ks);
	return 0;
}

int
main(int argc, char **argv)
{
	char *end;
	long n;

	if (argc >= 4 && strcmp(argv[1], "mint") == 0) {
		n = strtol(argv[2], &end, 10);
		if (*end || n < 1 || n > 10000000) {
			fprintf(stderr, "bench-tokens: N must be 1 to 10000000\n");
			return 64;
		}
		return mint(n, argv[3], argc > 4 ? argv[4] : ISS_DEFAULT);
	}
	if (argc >= 3 && strcmp(argv[1], "rate") == 0) {
		n = argc > 4 ? strtol(argv[4], &end, 10) : 5;
		if (n < 1 || n > 100) {
			fprintf(stderr, "bench-tokens: ROUNDS must be 1 to 100\n");
			return 64;
		}
		return rate(argv[2], argc > 3 ? argv[3] : ISS_DEFAULT, (int)n);
	}
	fprintf(stderr, "usage: bench-tokens mint N DIR [ISS]\n"
			"       bench-tokens rate DIR [ISS] [ROUNDS]\n");
	return 64;
}
