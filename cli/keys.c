/*
 * keys.c — `p25ctl keys generate|rotate|list`, `p25ctl token verify`,
 * `p25ctl policy check` and `p25ctl audit verify|seal`.
 *
 * Keys are sealed with the KEK from P25_KEK_FILE; nothing here ever prints
 * private material.  `token verify` works offline: a token and a JWKS file,
 * the same library an enforcement node links.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "p25/audit.h"
#include "p25/db.h"
#include "p25/err.h"
#include "p25/keys.h"
#include "p25/verify.h"
#include "p25/vetting.h"

static int
with_kek(unsigned char kek[32])
{
	struct p25_err err = { 0 };

	if (!cli_cfg.kek_file[0]) {
		fprintf(stderr, "p25ctl: P25_KEK_FILE is not set\n");
		return -1;
	}
	if (p25_kek_load(cli_cfg.kek_file, kek, &err) != 0) {
		cli_fail(&err);
		return -1;
	}
	return 0;
}

int
cmd_keys(int argc, char **argv)
{
	struct p25_err err = { 0 };
	unsigned char kek[32];
	struct p25_db *db;
	char kid[64];
	int rc = 1;

	if (argc < 2 || (strcmp(argv[1], "generate") != 0 && strcmp(argv[1], "rotate") != 0 &&
			 strcmp(argv[1], "list") != 0)) {
		fprintf(stderr, "usage: p25ctl keys generate|rotate|list\n");
		return 64;
	}
	db = cli_connect(cli_cfg.database_url);
	if (!db)
		return 1;
	if (strcmp(argv[1], "list") == 0) {
		json_t *l = p25_keys_list(db, &err);
		if (!l) {
			rc = cli_fail(&err);
		} else {
			size_t i;
			json_t *k;
			printf("%-44s %-9s %-27s %s\n", "KID", "STATUS", "CREATED", "VERIFY_UNTIL");
			json_array_foreach(l, i, k)
				printf("%-44s %-9s %-27s %s\n",
				       json_string_value(json_object_get(k, "kid")),
				       json_string_value(json_object_get(k, "status")),
				       json_string_value(json_object_get(k, "created_at")),
				       json_is_string(json_object_get(k, "verify_until"))
				       ? json_string_value(json_object_get(k, "verify_until")) : "-");
			json_decref(l);
			rc = 0;
		}
		goto out;
	}
	if (with_kek(kek) != 0)
		goto out;
	if (strcmp(argv[1], "generate") == 0) {
		/* the first key becomes active; later ones need `rotate` */
		if (p25_keys_generate(db, kek, "p25ctl", true, kid, &err) != 0) {
			if (strcmp(err.code, "key_already_active") == 0) {
				printf("an active signing key exists already; use `p25ctl keys rotate`\n");
				p25_err_clear(&err);
				rc = 0;
			} else {
				rc = cli_fail(&err);
			}
		} else {
			printf("generated active signing key %s\n", kid);
			rc = 0;
		}
	} else {
		/* the outgoing key keeps verifying until its last token expired */
		if (p25_keys_rotate(db, kek, "p25ctl", cli_cfg.token_ttl + cli_cfg.auth_leeway,
				    kid, &err) != 0)
			rc = cli_fail(&err);
		else {
			printf("rotated: %s is now the active signing key\n", kid);
			rc = 0;
		}
	}
	sodium_memzero(kek, sizeof(kek));
out:
	p25_db_close(db);
	return rc;
}

int
cmd_token(int argc, char **argv)
{
	const char *jwks = cli_opt(argc, argv, "--jwks");
	const char *iss = cli_opt(argc, argv, "--issuer");
	struct p25_keyset *ks = NULL;
	struct p25_claims c;
	enum p25_verify_result r;
	char errbuf[200];
	size_t len;
	char *text;
	int i;

	if (argc < 3 || strcmp(argv[1], "verify") != 0 || !jwks) {
		fprintf(stderr, "usage: p25ctl token verify JWS --jwks FILE [--issuer ISS]\n");
		return 64;
	}
	text = p25_read_file(jwks, 1 << 20, &len);
	if (!text) {
		fprintf(stderr, "p25ctl: cannot read %s\n", jwks);
		return 1;
	}
	if (p25_keyset_parse(text, len, &ks, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "p25ctl: %s: %s\n", jwks, errbuf);
		free(text);
		return 1;
	}
	free(text);
	r = p25_token_verify(ks, argv[2], iss ? iss : cli_cfg.token_issuer,
			     (long long)time(NULL), 60, &c);
	p25_keyset_free(ks);
	if (r != P25_VERIFY_OK) {
		printf("invalid: %s\n", p25_verify_result_str(r));
		return 1;
	}
	printf("valid\nkid %s\niss %s\nsub %s\njti %s\ncidr %s\nport %d/%s %s\nrequest %s\n"
	       "nbf %lld\nexp %lld\n", c.kid, c.iss, c.sub, c.jti, c.cidr, c.port, c.proto, c.dir,
	       c.request, c.nbf, c.exp);
	for (i = 0; i < c.ndest; i++)
		printf("dest %s\n", c.dest[i]);
	if (c.rate >= 0)
		printf("rate %lld/h\n", c.rate);
	return 0;
}

int
cmd_policy(int argc, char **argv)
{
	struct p25_err err = { 0 };
	struct p25_policy pol;
	int i;

	if (argc < 3 || strcmp(argv[1], "check") != 0) {
		if (argc >= 2 && strcmp(argv[1], "defaults") == 0) {
			p25_policy_defaults(&pol);
			printf("{\n  \"version\": \"%s\",\n  \"actions\": {\n", pol.version);
			for (i = 0; i < pol.nactions; i++)
				printf("    \"%s\": \"%s\"%s\n", pol.actions[i].code,
				       p25_action_str(pol.actions[i].action),
				       i + 1 < pol.nactions ? "," : "");
			printf("  },\n  \"account_min_age_days\": %d,\n  \"history_max_denials_30d\": %d,\n"
			       "  \"history_max_requests_24h\": %d,\n  \"deny_reapply_days\": %d,\n"
			       "  \"exemption_days\": %d,\n  \"recheck_interval_seconds\": %d\n}\n",
			       pol.account_min_age_days, pol.history_max_denials_30d,
			       pol.history_max_requests_24h, pol.deny_reapply_days,
			       pol.exemption_days, pol.recheck_interval_seconds);
			return 0;
		}
		fprintf(stderr, "usage: p25ctl policy check FILE | p25ctl policy defaults\n");
		return 64;
	}
	if (p25_policy_load(argv[2], &pol, &err) != 0) {
		fprintf(stderr, "p25ctl: %s: %s%s%s\n", argv[2], err.detail,
			err.field[0] ? " — at " : "", err.field);
		p25_err_clear(&err);
		return 1;
	}
	printf("policy %s is valid (version %s)\n", argv[2], pol.version);
	for (i = 0; i < pol.nactions; i++)
		printf("  %-20s %s\n", pol.actions[i].code, p25_action_str(pol.actions[i].action));
	return 0;
}

int
cmd_audit(int argc, char **argv)
{
	struct p25_err err = { 0 };
	struct p25_audit_report rep;
	struct p25_db *db;
	long n;

	if (argc < 2 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "seal") != 0)) {
		fprintf(stderr, "usage: p25ctl audit verify|seal\n");
		return 64;
	}
	db = cli_connect(cli_cfg.database_url);
	if (!db)
		return 1;
	if (strcmp(argv[1], "seal") == 0) {
		n = p25_audit_seal(db, 100000, &err);
		p25_db_close(db);
		if (n < 0)
			return cli_fail(&err);
		printf("sealed %ld audit rows\n", n);
		return 0;
	}
	if (p25_audit_verify(db, &rep, &err) != 0) {
		p25_db_close(db);
		return cli_fail(&err);
	}
	p25_db_close(db);
	if (rep.broken_pos >= 0) {
		printf("BROKEN at link %lld: %s\n(%lld links verified before it)\n", rep.broken_pos,
		       rep.problem, rep.checked);
		return 2;
	}
	printf("audit chain intact: %lld links verified, %lld rows not sealed yet\n",
	       rep.checked, rep.unsealed);
	return 0;
}
