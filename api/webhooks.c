/*
 * webhooks.c — a tenant's own webhook configuration and its signing secret.
 *
 * The webhook job signs every delivery with HMAC-SHA256 keyed by the
 * tenant's secret (workers/webhook.c).  The secret is write-only from the
 * API's side: GET /v1/webhook shows the URL and a fingerprint of the
 * secret (the first 16 hex characters of SHA-256 over its text, enough to
 * tell which secret is current, useless for forging), never the secret.
 * POST /v1/webhook/secret draws a new one, stores it, writes the audit row
 * (with the fingerprint, not the secret) in the same transaction, and
 * answers it once, with Cache-Control: no-store.  A tenant that lost it
 * rotates again; deliveries still being retried are signed with the new
 * secret from their next attempt on.
 */
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "api.h"
#include "p25/audit.h"
#include "p25/notify.h"

#define WEBHOOK_FINGERPRINT_SQL(col) \
	"CASE WHEN " col " IS NULL THEN NULL ELSE" \
	" left(encode(sha256(convert_to(" col ", 'UTF8')), 'hex'), 16) END"

void
webhook_get(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 1,
	    "SELECT jsonb_build_object('url', webhook_url,"
	    " 'secret_set', webhook_secret IS NOT NULL,"
	    " 'secret_fingerprint', " WEBHOOK_FINGERPRINT_SQL("webhook_secret") ","
	    " 'signature_header', 'P25-Signature')::text"
	    " FROM tenants WHERE id = $1");
	const char *p[1] = { r->who.tenant };

	api_reply_query(r, db, &st, p, "tenant");
}

void
webhook_secret_rotate(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 2,
	    "UPDATE tenants SET webhook_secret = $2, updated_at = now() WHERE id = $1"
	    " RETURNING " WEBHOOK_FINGERPRINT_SQL("webhook_secret"));
	struct p25_err err = { 0 };
	char secret[P25_WEBHOOK_SECRET_LEN + 1];
	PGresult *res = NULL;
	json_t *details, *o;

	p25_webhook_secret_new(secret, sizeof(secret));
	if (strlen(secret) != P25_WEBHOOK_SECRET_LEN) {
		p25_err_set(&err, 500, "internal", "could not draw a secret");
		goto reply;
	}
	if (api_begin(r, db, &err) != 0)
		goto reply;
	{
		const char *p[2] = { r->who.tenant, secret };
		res = p25_db_exec(db, &st, p, &err);
	}
	if (!res)
		goto rollback;
	if (PQntuples(res) == 0) {
		p25_err_set(&err, 404, "not_found", "no such tenant: ask an administrator to register it");
		goto rollback;
	}
	details = json_pack("{s:s}", "fingerprint", PQgetvalue(res, 0, 0));
	if (p25_audit(db, r->who.sub, "tenant.webhook_secret_rotate", "tenant", r->who.tenant,
		      r->who.tenant, details, &err) != 0 || p25_db_commit(db, &err) != 0) {
		json_decref(details);
		goto rollback;
	}
	json_decref(details);
	o = json_pack("{s:s, s:s, s:s}", "secret", secret,
		      "secret_fingerprint", PQgetvalue(res, 0, 0), "signature_header", "P25-Signature");
	PQclear(res);
	sodium_memzero(secret, sizeof(secret));
	api_reply_json(r, 200, o);
	api_header(r, "Cache-Control", "no-store");
	return;
rollback:
	p25_db_rollback(db);
reply:
	PQclear(res);
	sodium_memzero(secret, sizeof(secret));
	api_reply_err(r, &err);
}
