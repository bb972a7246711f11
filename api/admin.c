/*
 * admin.c — tenants and their address inventory (admin role).
 *
 * The inventory is what ownership is checked against on every request, so
 * replacing it is one transaction: the old set goes, the new set comes, the
 * audit row records both, and the database's exclusion constraint refuses
 * any prefix that overlaps another tenant's (answered 409, naming it).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "input.h"
#include "p25/audit.h"
#include "p25/ipaddr.h"
#include "p25/notify.h"
#include "p25/validate.h"

P25_STMT(tenant_json_st, 1,
    "SELECT jsonb_build_object('id', id, 'name', name, 'created_at', account_created_at,"
    " 'verified', verified, 'standing', standing, 'webhook_url', webhook_url,"
    " 'registered_at', created_at, 'updated_at', updated_at)::text"
    " FROM tenants WHERE id = $1");

static int
tenant_id_param(struct api_req *r)
{
	if (!p25_tenant_id_ok(r->params[0])) {
		api_reply_problem(r, 404, "not_found", "no such tenant");
		return -1;
	}
	return 0;
}

void
admin_tenant_get(struct api_req *r, struct p25_db *db)
{
	const char *p[1] = { r->params[0] };

	if (tenant_id_param(r) != 0)
		return;
	api_reply_query(r, db, &tenant_json_st, p, "tenant");
}

void
admin_tenant_put(struct api_req *r, struct p25_db *db)
{
	P25_STMT(upsert, 7,
	    "INSERT INTO tenants AS t (id, name, account_created_at, verified, standing, webhook_url,"
	    " webhook_secret) VALUES ($1, $2, $3::timestamptz, $4::boolean, $5, $6,"
	    " $7)"
	    " ON CONFLICT (id) DO UPDATE SET name = $2, account_created_at = $3::timestamptz,"
	    " webhook_secret = coalesce(t.webhook_secret, $7),"
	    " verified = $4::boolean, standing = $5, webhook_url = $6, updated_at = now()"
	    " RETURNING (xmax = 0)");
	static const char *const fields[] = { "name", "created_at", "verified", "standing",
					      "webhook_url", NULL };
	struct p25_err err = { 0 };
	json_t *b;
	const char *name, *created, *standing, *hook;
	json_t *verified;
	PGresult *res = NULL;
	bool created_row;
	char *s = NULL;

	if (tenant_id_param(r) != 0)
		return;
	b = api_body_json(r, &err);
	if (!b) {
		api_reply_err(r, &err);
		return;
	}
	input_known_fields(b, fields, &err);
	name = input_string(b, "name", true, 200, &err);
	if (name && (!name[0] || !p25_text_ok(name, 200)))
		p25_err_add(&err, "name", "invalid_text", "must be 1 to 200 printable characters");
	created = input_string(b, "created_at", true, 64, &err);
	if (created && !p25_timestamp_ok(created))
		p25_err_add(&err, "created_at", "invalid_timestamp",
			    "must be an RFC 3339 date-time (2024-01-31T12:00:00Z)");
	verified = json_object_get(b, "verified");
	if (verified && !json_is_boolean(verified))
		p25_err_add(&err, "verified", "invalid_type", "must be true or false");
	standing = input_string(b, "standing", false, 16, &err);
	if (standing && strcmp(standing, "good") != 0 && strcmp(standing, "delinquent") != 0 &&
	    strcmp(standing, "suspended") != 0)
		p25_err_add(&err, "standing", "invalid_value",
			    "must be one of good, delinquent, suspended");
	hook = input_string(b, "webhook_url", false, 2000, &err);
	if (hook && strncmp(hook, "https://", 8) != 0 && strncmp(hook, "http://", 7) != 0)
		p25_err_add(&err, "webhook_url", "invalid_url", "must be an http(s) URL");
	if (err.errors && json_array_size(err.errors)) {
		input_validation_failed(&err);
		goto fail;
	}
	if (api_begin(r, db, &err) != 0)
		goto fail;
	{
		char secret[P25_WEBHOOK_SECRET_LEN + 1];
		p25_webhook_secret_new(secret, sizeof(secret));
		const char *p[7] = { r->params[0], name, created,
				     json_is_true(verified) ? "true" : "false",
				     standing ? standing : "good", hook, secret };
		json_t *d = json_deep_copy(b);
		res = p25_db_exec(db, &upsert, p, &err);
		if (!res || p25_audit(db, r->who.sub, "tenant.put", "tenant", r->params[0],
				      r->params[0], d, &err) != 0) {
			json_decref(d);
			goto rollback;
		}
		json_decref(d);
		created_row = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	}
	{
		const char *p[1] = { r->params[0] };
		s = p25_db_text(db, &tenant_json_st, p, NULL, &err);
	}
	if (!s || p25_db_commit(db, &err) != 0)
		goto rollback;
	api_reply_json_text(r, created_row ? 201 : 200, s);
	if (created_row) {
		char loc[128];
		snprintf(loc, sizeof(loc), "/v1/admin/tenants/%s", r->params[0]);
		api_header(r, "Location", loc);
	}
	goto out;
rollback:
	p25_db_rollback(db);
fail:
	api_reply_err(r, &err);
out:
	PQclear(res);
	free(s);
	json_decref(b);
}

P25_STMT(inventory_st, 1,
    "SELECT jsonb_build_object('tenant', $1::text, 'addresses',"
    " coalesce(jsonb_agg(prefix::text ORDER BY prefix), '[]'))::text"
    " FROM tenant_addresses WHERE tenant_id = $1");
P25_STMT(tenant_exists_st, 1, "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE");

void
admin_addresses_get(struct api_req *r, struct p25_db *db)
{
	struct p25_err err = { 0 };
	const char *p[1] = { r->params[0] };
	char *s = NULL;

	if (tenant_id_param(r) != 0)
		return;
	if (api_begin(r, db, &err) != 0)
		goto fail;
	if (p25_db_run(db, &tenant_exists_st, p, &err) == 0) {
		p25_db_rollback(db);
		api_reply_problem(r, 404, "not_found", "no such tenant");
		return;
	}
	s = p25_db_text(db, &inventory_st, p, NULL, &err);
	p25_db_rollback(db);
	if (!s)
		goto fail;
	api_reply_json_text(r, 200, s);
	free(s);
	return;
fail:
	p25_db_rollback(db);
	api_reply_err(r, &err);
}

void
admin_addresses_put(struct api_req *r, struct p25_db *db)
{
	P25_STMT(conflict, 2,
	    "SELECT a::text, t.prefix::text, t.tenant_id FROM unnest($2::cidr[]) a"
	    " JOIN tenant_addresses t ON t.prefix && a AND t.tenant_id <> $1 LIMIT 1");
	P25_STMT(old, 1, "SELECT coalesce(jsonb_agg(prefix::text ORDER BY prefix), '[]')::text"
			 " FROM tenant_addresses WHERE tenant_id = $1");
	P25_STMT(del, 1, "DELETE FROM tenant_addresses WHERE tenant_id = $1");
	/* a released address never keeps port 25 open for its next holder */
	P25_STMT(release, 2,
	    "WITH x AS (UPDATE exemptions e SET status = 'revoked', updated_at = now(),"
	    "   status_reason = 'address released from the inventory'"
	    "   WHERE e.tenant_id = $1 AND e.status IN ('active', 'suspended')"
	    "   AND NOT EXISTS (SELECT 1 FROM unnest($2::cidr[]) a WHERE a >>= e.prefix)"
	    "   RETURNING e.id, e.tenant_id, e.prefix),"
	    " t AS (UPDATE tokens SET current = false WHERE current"
	    "   AND exemption_id IN (SELECT id FROM x)),"
	    " f AS (INSERT INTO feed_events (type, exemption_id, tenant_id, prefix, reason)"
	    "   SELECT 'revoke', id, tenant_id, prefix, 'released' FROM x)"
	    " SELECT id::text FROM x");
	P25_STMT(ins, 2, "INSERT INTO tenant_addresses (tenant_id, prefix)"
			 " SELECT $1, a FROM unnest($2::cidr[]) a");
	static const char *const fields[] = { "addresses", NULL };
	struct p25_err err = { 0 };
	struct p25_prefix *pfx = NULL;
	json_t *b = NULL, *d = NULL;
	char *cidrs = NULL, *prev = NULL, *s = NULL;
	PGresult *res;
	int n = 0, released = 0;

	if (tenant_id_param(r) != 0)
		return;
	b = api_body_json(r, &err);
	if (!b)
		goto fail;
	pfx = calloc(4096, sizeof(*pfx));
	if (!pfx) {
		p25_err_set(&err, 503, "out_of_memory", "out of memory");
		goto fail;
	}
	input_known_fields(b, fields, &err);
	if (json_is_array(json_object_get(b, "addresses")) &&
	    json_array_size(json_object_get(b, "addresses")) == 0) {
		n = 0;		/* an empty inventory is allowed: the tenant holds nothing */
	} else {
		/* inventory entries may be wide: no per-request width limit */
		input_addresses(json_object_get(b, "addresses"), "addresses", 4096, -1, -1,
				pfx, &n, &err);
	}
	if (err.errors && json_array_size(err.errors)) {
		input_validation_failed(&err);
		goto fail;
	}
	cidrs = input_cidr_array(pfx, n);
	if (!cidrs) {
		p25_err_set(&err, 503, "out_of_memory", "out of memory");
		goto fail;
	}
	if (api_begin(r, db, &err) != 0)
		goto fail;
	{
		const char *p[2] = { r->params[0], cidrs };
		if (p25_db_run(db, &tenant_exists_st, p, &err) != 1) {
			if (!err.status)
				p25_err_set(&err, 404, "not_found", "no such tenant");
			goto rollback;
		}
		res = p25_db_exec(db, &conflict, p, &err);
		if (!res)
			goto rollback;
		if (PQntuples(res) > 0) {
			p25_err_set(&err, 409, "address_conflict",
			    "%s overlaps %s, held by tenant %s", PQgetvalue(res, 0, 0),
			    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
			snprintf(err.field, sizeof(err.field), "addresses");
			p25_err_hint(&err, "an address can be held by one tenant only; "
			    "release it from the other tenant first");
			PQclear(res);
			goto rollback;
		}
		PQclear(res);
		prev = p25_db_text(db, &old, p, NULL, &err);
		if (!prev)
			goto rollback;
		res = p25_db_exec(db, &release, p, &err);
		if (!res)
			goto rollback;
		for (int i = 0; i < PQntuples(res); i++) {
			if (p25_audit(db, r->who.sub, "exemption.release", "exemption",
				      PQgetvalue(res, i, 0), r->params[0], NULL, &err) != 0 ||
			    p25_notify(db, r->params[0], "exemption.status", PQgetvalue(res, i, 0),
				       "revoked", "address released from the inventory", &err) != 0) {
				PQclear(res);
				goto rollback;
			}
		}
		released = PQntuples(res);
		PQclear(res);
		if (p25_db_run(db, &del, p, &err) < 0 || p25_db_run(db, &ins, p, &err) != n)
			goto rollback;
	}
	d = json_pack("{s:o, s:O, s:i}", "before", json_loads(prev, 0, NULL), "after",
		      json_object_get(b, "addresses"), "exemptions_released", released);
	if (p25_audit(db, r->who.sub, "tenant.addresses.put", "tenant", r->params[0],
		      r->params[0], d, &err) != 0)
		goto rollback;
	{
		const char *p[1] = { r->params[0] };
		s = p25_db_text(db, &inventory_st, p, NULL, &err);
	}
	if (!s || p25_db_commit(db, &err) != 0)
		goto rollback;
	api_reply_json_text(r, 200, s);
	goto out;
rollback:
	p25_db_rollback(db);
fail:
	api_reply_err(r, &err);
out:
	free(s);
	free(prev);
	free(cidrs);
	free(pfx);
	json_decref(d);
	json_decref(b);
}
