/*
 * keys_tool.c — drives core/keys.c for tests/integration/keys.test.sh.
 *
 *   keys_tool generate KEKFILE [--activate]   prints the new kid
 *   keys_tool rotate KEKFILE TTL              prints the new kid
 *   keys_tool list                            prints p25_keys_list() JSON
 *   keys_tool jwks                            prints p25_keys_jwks()
 *   keys_tool sign KEKFILE ISS CIDR [TTL]     prints a token from the active key
 *   keys_tool verify JWKSFILE ISS TOKEN       prints the p25_token_verify() result
 *                                             and the claims; exit 0 only if ok
 *   keys_tool reveal KEKFILE KID              prints the seed of KID in hex —
 *                                             TEST ONLY: lets the test look for
 *                                             the private key where it must not be
 *
 * The database is P25_DATABASE_URL.  Errors go to stderr as "code: detail"
 * with exit status 1; usage errors exit 64.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <sodium.h>

#include "p25/db.h"
#include "p25/err.h"
#include "p25/keys.h"
#include "p25/log.h"
#include "p25/verify.h"

static int
fail(struct p25_err *err)
{
	fprintf(stderr, "%s: %s%s%s\n", err->code, err->detail,
		err->hint[0] ? " — " : "", err->hint);
	return 1;
}

static int
usage(void)
{
	fprintf(stderr, "usage: keys_tool generate|rotate|list|jwks|sign|verify|reveal ...\n");
	return 64;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			buf[n] = '\0';
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static long
num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	return (*s && !*end) ? v : -1;
}

static int
cmd_verify(int argc, char **argv)
{
	struct p25_keyset *ks = NULL;
	struct p25_claims c;
	enum p25_verify_result r;
	char errbuf[256];
	size_t len = 0;
	char *jwks;
	int i;

	if (argc != 5)
		return usage();
	jwks = slurp(argv[2], &len);
	if (!jwks || p25_keyset_parse(jwks, len, &ks, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "jwks: %s\n", jwks ? errbuf : "cannot read");
		free(jwks);
		return 1;
	}
	free(jwks);
	r = p25_token_verify(ks, argv[4], argv[3], (long long)time(NULL), 60, &c);
	printf("%s\n", p25_verify_result_str(r));
	if (r == P25_VERIFY_OK) {
		printf("kid=%s sub=%s jti=%s cidr=%s request=%s exp=%lld", c.kid, c.sub,
		       c.jti, c.cidr, c.request, c.exp);
		for (i = 0; i < c.ndest; i++)
			printf(" dest=%s", c.dest[i]);
		printf("\n");
	}
	p25_keyset_free(ks);
	return r == P25_VERIFY_OK ? 0 : 1;
}

/* Test only: unseal KID's secret key by hand and print its seed. */
static int
cmd_reveal(struct p25_db *db, const unsigned char kek[32], const char *kid,
	   struct p25_err *err)
{
	P25_STMT(st, 1, "SELECT encode(sealed_private, 'hex'), encode(nonce, 'hex')"
			" FROM signing_keys WHERE kid = $1");
	unsigned char sealed[crypto_secretbox_MACBYTES + 64], nonce[24], sk[64];
	char hex[65];
	const char *p[1] = { kid };
	PGresult *res = p25_db_exec(db, &st, p, err);
	size_t l1 = 0, l2 = 0;
	int rc = 1;

	if (!res)
		return fail(err);
	if (PQntuples(res) != 1 ||
	    sodium_hex2bin(sealed, sizeof(sealed), PQgetvalue(res, 0, 0),
			   strlen(PQgetvalue(res, 0, 0)), NULL, &l1, NULL) != 0 ||
	    sodium_hex2bin(nonce, sizeof(nonce), PQgetvalue(res, 0, 1),
			   strlen(PQgetvalue(res, 0, 1)), NULL, &l2, NULL) != 0 ||
	    l1 != sizeof(sealed) || l2 != sizeof(nonce) ||
	    crypto_secretbox_open_easy(sk, sealed, sizeof(sealed), nonce, kek) != 0) {
		fprintf(stderr, "reveal: cannot unseal %s\n", kid);
		goto out;
	}
	sodium_bin2hex(hex, sizeof(hex), sk, 32);
	printf("%s\n", hex);
	rc = 0;
out:
	sodium_memzero(sk, sizeof(sk));
	PQclear(res);
	return rc;
}

static int
cmd_sign(struct p25_db *db, const unsigned char kek[32], int argc, char **argv,
	 struct p25_err *err)
{
	struct p25_signer *s = NULL;
	char *hdr = NULL, *pl = NULL, *tok = NULL;
	long long now = (long long)time(NULL);
	long ttl = argc > 5 ? num(argv[5]) : 3600;
	json_t *h = NULL, *p = NULL;
	int rc = 1;

	if (ttl <= 0)
		return usage();
	if (p25_signer_load(db, kek, &s, err) != 0) {
		rc = fail(err);
		goto out;
	}
	h = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", P25_TOKEN_TYP,
		      "kid", p25_signer_kid(s));
	p = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:{s:s, s:i, s:s, s:s, s:s}}",
		      "iss", argv[3], "sub", "tenant-test", "jti", "ex-test",
		      "iat", (json_int_t)now, "nbf", (json_int_t)now,
		      "exp", (json_int_t)(now + ttl),
		      "p25", "cidr", argv[4], "port", 25, "proto", "tcp",
		      "dir", "egress", "request", "req-test");
	hdr = h ? json_dumps(h, JSON_COMPACT) : NULL;
	pl = p ? json_dumps(p, JSON_COMPACT) : NULL;
	if (!hdr || !pl || p25_signer_sign(s, hdr, pl, &tok) != 0) {
		fprintf(stderr, "sign: failed\n");
		goto out;
	}
	free(tok);
	tok = NULL;
	/* a header naming another key is refused by the signer */
	if (p25_signer_sign(s, "{\"alg\":\"EdDSA\",\"kid\":\"other\"}", pl, &tok) == 0 ||
	    tok != NULL) {
		fprintf(stderr, "sign: signer accepted a foreign kid\n");
		goto out;
	}
	free(tok);
	tok = NULL;
	if (p25_signer_sign(s, hdr, pl, &tok) != 0)
		goto out;
	printf("%s\n", tok);
	rc = 0;
out:
	free(tok);
	free(hdr);
	free(pl);
	json_decref(h);
	json_decref(p);
	p25_signer_free(s);
	return rc;
}

int
main(int argc, char **argv)
{
	struct p25_err err = { 0 };
	struct p25_db *db = NULL;
	unsigned char kek[32];
	const char *url = getenv("P25_DATABASE_URL");
	const char *cmd = argc > 1 ? argv[1] : "";
	char kid[64];
	int rc = 1;

	p25_log_init("keys_tool", "warn");
	if (sodium_init() < 0)
		return 1;
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(argc, argv);
	if (!url)
		return usage();
	/* commands that need the KEK take it as argv[2] */
	if (strcmp(cmd, "list") != 0 && strcmp(cmd, "jwks") != 0) {
		if (argc < 3)
			return usage();
		if (p25_kek_load(argv[2], kek, &err) != 0)
			return fail(&err);
	}
	db = p25_db_connect(url, "keys_tool", &err);
	if (!db) {
		rc = fail(&err);
		goto out;
	}
	if (strcmp(cmd, "generate") == 0) {
		bool activate = argc > 3 && strcmp(argv[3], "--activate") == 0;
		if (p25_keys_generate(db, kek, "test:keys_tool", activate, kid, &err) != 0) {
			rc = fail(&err);
			goto out;
		}
		printf("%s\n", kid);
		rc = 0;
	} else if (strcmp(cmd, "rotate") == 0) {
		if (argc != 4) {
			rc = usage();
			goto out;
		}
		if (p25_keys_rotate(db, kek, "test:keys_tool", num(argv[3]), kid, &err) != 0) {
			rc = fail(&err);
			goto out;
		}
		printf("%s\n", kid);
		rc = 0;
	} else if (strcmp(cmd, "list") == 0) {
		json_t *list = p25_keys_list(db, &err);
		char *s;
		if (!list) {
			rc = fail(&err);
			goto out;
		}
		s = json_dumps(list, JSON_COMPACT);
		printf("%s\n", s ? s : "");
		free(s);
		json_decref(list);
		rc = 0;
	} else if (strcmp(cmd, "jwks") == 0) {
		char *s = p25_keys_jwks(db, &err);
		if (!s) {
			rc = fail(&err);
			goto out;
		}
		printf("%s\n", s);
		free(s);
		rc = 0;
	} else if (strcmp(cmd, "sign") == 0 && argc >= 5) {
		rc = cmd_sign(db, kek, argc, argv, &err);
	} else if (strcmp(cmd, "reveal") == 0 && argc == 4) {
		rc = cmd_reveal(db, kek, argv[3], &err);
	} else {
		rc = usage();
	}
out:
	sodium_memzero(kek, sizeof(kek));
	p25_err_clear(&err);
	p25_db_close(db);
	return rc;
}
