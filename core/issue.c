/*
 * issue.c — exemptions, tokens and grant events (see issue.h).
 *
 * Claims of a token (DESIGN.md, "Exemption tokens"): iss, sub (tenant), jti
 * (exemption id), iat, nbf, exp = min(now + P25_TOKEN_TTL, the exemption's
 * expiry) and p25 {cidr, port 25, proto tcp, dir egress, request, dest?,
 * rate?}.  The header pins alg EdDSA and typ p25-exemption+jwt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>

#include "p25/audit.h"
#include "p25/config.h"
#include "p25/db.h"
#include "p25/err.h"
#include "p25/issue.h"
#include "p25/keys.h"

int
p25_issuer_init(struct p25_issuer *is, const struct p25_config *cfg, struct p25_err *err)
{
	memset(is, 0, sizeof(*is));
	snprintf(is->iss, sizeof(is->iss), "%s", cfg->token_issuer);
	is->token_ttl = cfg->token_ttl;
	is->monitor_interval = 3600;
	if (!cfg->kek_file[0])
		return 0;
	if (p25_kek_load(cfg->kek_file, is->kek, err) != 0)
		return -1;
	is->have_kek = true;
	return 0;
}

void
p25_issuer_wipe(struct p25_issuer *is)
{
	sodium_memzero(is->kek, sizeof(is->kek));
	is->have_kek = false;
}

int
p25_issue_token(struct p25_db *db, const struct p25_issuer *is, const char *exemption_id,
		const char *type, struct p25_err *err)
{
	P25_STMT(load, 1,
	    "SELECT e.tenant_id, e.prefix::text, e.request_id, floor(extract(epoch FROM now()))::bigint,"
	    " floor(extract(epoch FROM e.expires_at))::bigint, to_jsonb(e.dest)::text, e.rate"
	    " FROM exemptions e WHERE e.id = $1 AND e.status = 'active'");
	P25_STMT(old, 1, "UPDATE tokens SET current = false WHERE exemption_id = $1 AND current");
	P25_STMT(ins, 6,
	    "INSERT INTO tokens (exemption_id, tenant_id, kid, jws, issued_at, expires_at)"
	    " VALUES ($1, $2, $3, $4, to_timestamp($5::bigint), to_timestamp($6::bigint))");
	P25_STMT(feed, 5,
	    "INSERT INTO feed_events (type, exemption_id, tenant_id, prefix, token)"
	    " VALUES ($1, $2, $3, $4::cidr, $5)");
	struct p25_signer *signer = NULL;
	PGresult *res = NULL;
	json_t *hdr = NULL, *pl = NULL, *scope;
	char *hj = NULL, *pj = NULL, *jws = NULL;
	long long now, exp, eexp;
	char nbuf[24], ebuf[24];
	int rc = -1;

	if (!is->have_kek)
		return p25_err_set(err, 503, "no_kek",
				   "P25_KEK_FILE is not set: exemption tokens cannot be signed");
	if (p25_signer_load(db, is->kek, &signer, err) != 0)
		return -1;
	{
		const char *p[1] = { exemption_id };
		res = p25_db_exec(db, &load, p, err);
	}
	if (!res)
		goto out;
	if (PQntuples(res) != 1) {
		p25_err_set(err, 409, "exemption_not_active", "the exemption is not active");
		goto out;
	}
	now = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	eexp = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	exp = now + is->token_ttl < eexp ? now + is->token_ttl : eexp;
	scope = json_pack("{s:s, s:i, s:s, s:s, s:s}", "cidr", PQgetvalue(res, 0, 1),
			  "port", 25, "proto", "tcp", "dir", "egress",
			  "request", PQgetvalue(res, 0, 2));
	if (!PQgetisnull(res, 0, 5))
		json_object_set_new(scope, "dest", json_loads(PQgetvalue(res, 0, 5), 0, NULL));
	if (!PQgetisnull(res, 0, 6))
		json_object_set_new(scope, "rate", json_integer(strtoll(PQgetvalue(res, 0, 6), NULL, 10)));
	hdr = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "p25-exemption+jwt",
			"kid", p25_signer_kid(signer));
	pl = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "iss", is->iss,
		       "sub", PQgetvalue(res, 0, 0), "jti", exemption_id,
		       "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp", (json_int_t)exp,
		       "p25", scope);
	hj = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
	pj = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
	if (!hj || !pj || p25_signer_sign(signer, hj, pj, &jws) != 0) {
		p25_err_set(err, 500, "signing_failed", "the token could not be signed");
		goto out;
	}
	snprintf(nbuf, sizeof(nbuf), "%lld", now);
	snprintf(ebuf, sizeof(ebuf), "%lld", exp);
	{
		const char *p1[1] = { exemption_id };
		const char *p2[6] = { exemption_id, PQgetvalue(res, 0, 0), p25_signer_kid(signer),
				      jws, nbuf, ebuf };
		const char *p3[5] = { type, exemption_id, PQgetvalue(res, 0, 0),
				      PQgetvalue(res, 0, 1), jws };
		if (p25_db_run(db, &old, p1, err) < 0 || p25_db_run(db, &ins, p2, err) != 1 ||
		    p25_db_run(db, &feed, p3, err) != 1)
			goto out;
	}
	rc = 0;
out:
	free(jws);
	free(hj);
	free(pj);
	json_decref(hdr);
	json_decref(pl);
	PQclear(res);
	p25_signer_free(signer);
	return rc;
}

/*
 * Signs the token of each new exemption in `ex` (rows of
 * p25_issue_exemptions: id, prefix, iat, exp of the exemption, dest, rate)
 * and stores the tokens and their grant feed events in one statement, then
 * the exemption.grant audit rows (p25_audit: a row that cannot be written
 * fails closed with audit_unavailable).
 */
static int
issue_tokens(struct p25_db *db, const struct p25_issuer *is, struct p25_issue_batch *b,
	     PGresult *ex, const char *request_id, const char *tenant, const char *actor,
	     int expires_days, struct p25_err *err)
{
	P25_STMT(store, 3,
	    "WITH x AS (SELECT (e->>'id')::uuid AS id, e->>'prefix' AS prefix, e->>'jws' AS jws,"
	    "   (e->>'iat')::bigint AS iat, (e->>'exp')::bigint AS exp, n"
	    "   FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(e, n)),"
	    " t AS (INSERT INTO tokens (exemption_id, tenant_id, kid, jws, issued_at, expires_at)"
	    "   SELECT id, $2, $3, jws, to_timestamp(iat), to_timestamp(exp) FROM x ORDER BY n"
	    "   RETURNING 1),"
	    " f AS (INSERT INTO feed_events (type, exemption_id, tenant_id, prefix, token)"
	    "   SELECT 'grant', id, $2, prefix::cidr, jws FROM x ORDER BY n RETURNING 1)"
	    " SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM f)");
	/* in a batch: the tokens and the exemption.grant audit rows in one
	 * statement (an audit row not written fails closed, as p25_audit does),
	 * the grant events at p25_issue_batch_flush() with the ids drawn here, so
	 * that they keep their place among the transaction's other events
	 * (p25_feed_append, migration 0011) */
	P25_STMT(store_b, 4,
	    "WITH x AS (SELECT (e->>'id')::uuid AS id, e->>'jws' AS jws,"
	    "   (e->>'iat')::bigint AS iat, (e->>'exp')::bigint AS exp, e->'details' AS details, n"
	    "   FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS j(e, n)),"
	    " t AS (INSERT INTO tokens (exemption_id, tenant_id, kid, jws, issued_at, expires_at)"
	    "   SELECT id, $2, $3, jws, to_timestamp(iat), to_timestamp(exp) FROM x ORDER BY n"
	    "   RETURNING 1),"
	    " a AS (INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, details)"
	    "   SELECT $4, 'exemption.grant', 'exemption', id::text, $2, details FROM x ORDER BY n"
	    "   RETURNING 1)"
	    " SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM a),"
	    "   (SELECT string_agg(f.id::text, ',' ORDER BY f.id)"
	    "    FROM (SELECT nextval('feed_events_id_seq') AS id FROM x ORDER BY n) f)");
	struct p25_signer *signer = NULL;
	PGresult *sres = NULL;
	json_t *rows = json_array();
	char *rj = NULL, *sum = NULL;
	int i, rc = -1;

	if (!rows)
		return p25_err_set(err, 503, "out_of_memory", "out of memory");
	if (b && b->signer) {
		signer = b->signer;
	} else if (p25_signer_load(db, is->kek, &signer, err) != 0) {
		goto out;
	} else if (b) {
		b->signer = signer;	/* the batch keeps it; p25_issue_batch_end wipes it */
	}
	for (i = 0; i < PQntuples(ex); i++) {
		const char *id = PQgetvalue(ex, i, 0), *cidr = PQgetvalue(ex, i, 1);
		long long now = strtoll(PQgetvalue(ex, i, 2), NULL, 10);
		long long eexp = strtoll(PQgetvalue(ex, i, 3), NULL, 10);
		long long exp = now + is->token_ttl < eexp ? now + is->token_ttl : eexp;
		json_t *scope, *hdr, *pl, *row;
		char *hj, *pj, *jws = NULL;
		int ok;

		scope = json_pack("{s:s, s:i, s:s, s:s, s:s}", "cidr", cidr, "port", 25,
				  "proto", "tcp", "dir", "egress", "request", request_id);
		if (scope && !PQgetisnull(ex, i, 4))
			json_object_set_new(scope, "dest", json_loads(PQgetvalue(ex, i, 4), 0, NULL));
		if (scope && !PQgetisnull(ex, i, 5))
			json_object_set_new(scope, "rate",
					    json_integer(strtoll(PQgetvalue(ex, i, 5), NULL, 10)));
		hdr = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "p25-exemption+jwt",
				"kid", p25_signer_kid(signer));
		pl = scope ? json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "iss", is->iss,
				       "sub", tenant, "jti", id, "iat", (json_int_t)now,
				       "nbf", (json_int_t)now, "exp", (json_int_t)exp, "p25", scope)
			   : NULL;
		hj = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
		pj = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
		ok = hj && pj && p25_signer_sign(signer, hj, pj, &jws) == 0;
		row = ok ? json_pack("{s:s, s:s, s:s, s:I, s:I, s:{s:s, s:s, s:s, s:i}}", "id", id,
				     "prefix", cidr, "jws", jws, "iat", (json_int_t)now,
				     "exp", (json_int_t)exp, "details", "request", request_id,
				     "cidr", cidr, "actor_role",
				     strncmp(actor, "system:", 7) == 0 ? "policy" : "reviewer",
				     "expires_in_days", expires_days)
			 : NULL;
		free(jws);
		free(hj);
		free(pj);
		json_decref(hdr);
		json_decref(pl);
		if (!row || json_array_append_new(rows, row) != 0) {
			p25_err_set(err, 500, "signing_failed", "the token could not be signed");
			goto out;
		}
	}
	rj = json_dumps(rows, JSON_COMPACT);
	if (!rj) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		goto out;
	}
	if (b) {
		const char *p[4] = { rj, tenant, p25_signer_kid(signer), actor };
		char *ids, *save = NULL, *tok;
		size_t k = 0;

		sres = p25_db_exec(db, &store_b, p, err);
		if (!sres)
			goto out;
		if (PQntuples(sres) != 1 || PQgetisnull(sres, 0, 2) ||
		    strtoll(PQgetvalue(sres, 0, 0), NULL, 10) != PQntuples(ex)) {
			p25_err_set(err, 500, "internal", "tokens not written");
			goto out;
		}
		if (strtoll(PQgetvalue(sres, 0, 1), NULL, 10) != PQntuples(ex)) {
			/* fail closed, as p25_audit() does */
			p25_err_set(err, 503, "audit_unavailable", "the change was not made because"
				    " its audit record could not be written");
			err->retry_after = 5;
			goto out;
		}
		if (!b->feed)
			b->feed = json_array();
		ids = strdup(PQgetvalue(sres, 0, 2));
		if (!b->feed || !ids) {
			free(ids);
			p25_err_set(err, 503, "out_of_memory", "out of memory");
			goto out;
		}
		for (tok = strtok_r(ids, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++) {
			/* row k: the k-th exemption (ids ascend in x's order) */
			json_t *row = json_array_get(rows, k);
			json_t *ev = row ? json_pack("{s:s, s:s, s:O, s:s, s:O, s:O}", "id", tok,
						     "type", "grant",
						     "exemption_id", json_object_get(row, "id"),
						     "tenant_id", tenant,
						     "prefix", json_object_get(row, "prefix"),
						     "token", json_object_get(row, "jws"))
					 : NULL;
			if (!ev || json_array_append_new(b->feed, ev) != 0) {
				free(ids);
				p25_err_set(err, 503, "out_of_memory", "out of memory");
				goto out;
			}
		}
		free(ids);
		if (k != json_array_size(rows)) {
			p25_err_set(err, 500, "internal", "feed event ids not drawn");
			goto out;
		}
		rc = 0;		/* tokens, audit rows written; the events wait for the flush */
		goto out;
	} else {
		const char *p[3] = { rj, tenant, p25_signer_kid(signer) };
		bool found;
		sum = p25_db_text(db, &store, p, &found, err);
	}
	if (!sum)
		goto out;
	if (strtoll(sum, NULL, 10) != 2LL * PQntuples(ex)) {
		/* every exemption has one token and one feed event */
		p25_err_set(err, 500, "internal", "tokens or feed events not written");
		goto out;
	}
	for (i = 0; i < (int)json_array_size(rows); i++) {
		json_t *row = json_array_get(rows, i);
		if (p25_audit(db, actor, "exemption.grant", "exemption",
			      json_string_value(json_object_get(row, "id")), tenant,
			      json_object_get(row, "details"), err) != 0)
			goto out;
	}
	rc = 0;
out:
	free(rj);
	free(sum);
	PQclear(sres);
	json_decref(rows);
	if (!b || b->signer != signer)
		p25_signer_free(signer);
	return rc;
}

int
p25_issue(struct p25_db *db, const struct p25_issuer *is, const char *request_id,
	  const char *tenant, const char *actor, const struct p25_issue_opts *o,
	  json_t **ids, struct p25_err *err)
{
	return p25_issue_batched(db, is, NULL, request_id, tenant, actor, o, ids, err);
}

int
p25_issue_batch_flush(struct p25_db *db, struct p25_issue_batch *b, struct p25_err *err)
{
	P25_STMT(append, 1, "SELECT p25_feed_append($1::jsonb)");
	char *fj, *n;
	bool found = false;
	int rc = -1;

	if (!b->feed || json_array_size(b->feed) == 0)
		return 0;
	fj = json_dumps(b->feed, JSON_COMPACT);
	if (!fj)
		return p25_err_set(err, 503, "out_of_memory", "out of memory");
	{
		const char *p[1] = { fj };
		n = p25_db_text(db, &append, p, &found, err);
	}
	if (n && strtoll(n, NULL, 10) == (long long)json_array_size(b->feed)) {
		json_array_clear(b->feed);
		rc = 0;
	} else if (n) {
		p25_err_set(err, 500, "internal", "feed events not written");
	}
	free(n);
	free(fj);
	return rc;
}

void
p25_issue_batch_end(struct p25_issue_batch *b)
{
	p25_signer_free(b->signer);	/* wipes the key */
	b->signer = NULL;
	json_decref(b->feed);
	b->feed = NULL;
}

int
p25_issue_batched(struct p25_db *db, const struct p25_issuer *is, struct p25_issue_batch *b,
		  const char *request_id, const char *tenant, const char *actor,
		  const struct p25_issue_opts *o, json_t **ids, struct p25_err *err)
{
	P25_STMT(create, 7,
	    "SELECT ex_id, ex_prefix, ex_iat, ex_exp, ex_dest, ex_rate"
	    " FROM p25_issue_exemptions($1::uuid, $2, $3::cidr[], $4::integer, $5::jsonb,"
	    " $6::integer, $7::integer)");
	PGresult *res = NULL;
	json_t *out = json_array();
	char days[16], rate[24], mon[16], *pfx = NULL, *dest = NULL;
	int i, rc = -1;

	if (!is->have_kek) {
		p25_err_set(err, 503, "no_kek",
			    "P25_KEK_FILE is not set: exemption tokens cannot be signed");
		goto done;
	}
	if (o->prefixes) {
		size_t k, used = 1;
		size_t cap = 3 + json_array_size(o->prefixes) * 64;
		pfx = malloc(cap);
		if (!pfx)
			goto oom;
		pfx[0] = '{';
		for (k = 0; k < json_array_size(o->prefixes); k++) {
			int n = snprintf(pfx + used, cap - used, "%s%s", k ? "," : "",
			    json_string_value(json_array_get(o->prefixes, k)));
			if (n < 0 || (size_t)n >= cap - used)
				goto oom;
			used += (size_t)n;
		}
		snprintf(pfx + used, cap - used, "}");
	}
	if (o->dest)
		dest = json_dumps(o->dest, JSON_COMPACT);
	snprintf(days, sizeof(days), "%d", o->expires_days);
	snprintf(rate, sizeof(rate), "%ld", o->rate);
	snprintf(mon, sizeof(mon), "%d", is->monitor_interval > 0 ? is->monitor_interval : 3600);
	{
		const char *p[7] = { request_id, tenant, pfx, days, dest, o->rate > 0 ? rate : NULL,
				     mon };
		res = p25_db_exec(db, &create, p, err);
	}
	if (!res)
		goto done;
	if (PQntuples(res) == 0) {
		p25_err_set(err, 422, "no_prefixes", "none of the named prefixes is in the request");
		goto done;
	}
	if (issue_tokens(db, is, b, res, request_id, tenant, actor, o->expires_days, err) != 0)
		goto done;
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(out, json_string(PQgetvalue(res, i, 0)));
	rc = 0;
	goto done;
oom:
	p25_err_set(err, 503, "out_of_memory", "out of memory");
done:
	PQclear(res);
	free(pfx);
	free(dest);
	if (rc == 0 && ids)
		*ids = out;
	else
		json_decref(out);
	return rc;
}
