/*
 * addresses.c — GET /v1/addresses/{ip}: "my mail times out, why?"
 *
 * For an address the tenant holds: is port 25 open for it, by which
 * exemption, or why not — no request, a request still pending, denied (with
 * the decision's reasons and when to try again), suspended (with the
 * reason) — and since when.  An address the tenant does not hold answers
 * 404, like anything else that is not the caller's.
 */
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>

#include "api.h"
#include "p25/ipaddr.h"

void
addr_status(struct api_req *r, struct p25_db *db)
{
	P25_STMT(held, 2, "SELECT prefix::text FROM tenant_addresses"
			  " WHERE tenant_id = $1 AND prefix >>= $2::inet LIMIT 1");
	P25_STMT(exm, 2,
	    "SELECT jsonb_build_object('id', id, 'cidr', prefix::text, 'status', status,"
	    " 'status_reason', status_reason, 'expires_at', expires_at, 'request', request_id,"
	    " 'cooldown_until', cooldown_until)::text, status, to_jsonb(updated_at) #>> '{}'"
	    " FROM exemptions WHERE tenant_id = $1 AND prefix >>= $2::inet"
	    " ORDER BY (status = 'active') DESC, (status = 'suspended') DESC, updated_at DESC LIMIT 1");
	P25_STMT(req, 2,
	    "SELECT r.id, r.status, to_jsonb(r.updated_at) #>> '{}',"
	    " (SELECT jsonb_build_object('decision', d.decision, 'reason_codes', to_jsonb(d.reason_codes),"
	    "   'message', d.message, 'reapply_after', d.reapply_after, 'policy_version', d.policy_version)::text"
	    "  FROM decisions d WHERE d.request_id = r.id ORDER BY d.id DESC LIMIT 1)"
	    " FROM request_addresses ra JOIN requests r ON r.id = ra.request_id"
	    " WHERE ra.tenant_id = $1 AND ra.prefix >>= $2::inet AND r.status <> 'withdrawn'"
	    " ORDER BY r.created_at DESC LIMIT 1");
	struct p25_err err = { 0 };
	struct p25_prefix host;
	char addr[P25_PREFIX_STRLEN];
	const char *p[2];
	PGresult *res = NULL;
	json_t *o = NULL;
	const char *state, *hint;

	if (p25_prefix_parse(r->params[0], &host, &err) != 0 ||
	    host.len != (host.family == AF_INET ? 32 : 128)) {
		p25_err_clear(&err);
		p25_err_field(&err, 400, "invalid_address", "ip",
			      "%.100s is not a single IPv4 or IPv6 address", r->params[0]);
		api_reply_err(r, &err);
		return;
	}
	p25_prefix_format(&host, addr, sizeof(addr));
	addr[strcspn(addr, "/")] = '\0';
	p[0] = r->who.tenant;
	p[1] = addr;
	if (api_begin(r, db, &err) != 0)
		goto fail;
	res = p25_db_exec(db, &held, p, &err);
	if (!res)
		goto fail;
	if (PQntuples(res) == 0) {
		p25_db_rollback(db);
		PQclear(res);
		api_reply_problem(r, 404, "address_not_held",
				  "%s is not in your address inventory", addr);
		return;
	}
	o = json_pack("{s:s, s:s, s:b}", "address", addr, "held_in",
		      PQgetvalue(res, 0, 0), "port25_open", 0);
	PQclear(res);

	res = p25_db_exec(db, &exm, p, &err);
	if (!res)
		goto fail;
	if (PQntuples(res) == 1) {
		const char *st = PQgetvalue(res, 0, 1);
		json_object_set_new(o, "exemption", json_loads(PQgetvalue(res, 0, 0), 0, NULL));
		json_object_set_new(o, "since", json_string(PQgetvalue(res, 0, 2)));
		if (strcmp(st, "active") == 0) {
			json_object_set_new(o, "port25_open", json_true());
			json_object_set_new(o, "state", json_string("open"));
			json_object_set_new(o, "hint", json_string(
			    "port 25 is open for this address; if mail still times out, "
			    "check the destination and your mail server"));
			PQclear(res);
			goto done;
		}
		if (strcmp(st, "suspended") == 0) {
			json_object_set_new(o, "state", json_string("suspended"));
			json_object_set_new(o, "hint", json_string(
			    "the exemption was suspended; see status_reason, fix the cause "
			    "and ask for a recheck"));
			PQclear(res);
			goto done;
		}
	}
	PQclear(res);
	json_object_set_new(o, "exemption", json_null());

	res = p25_db_exec(db, &req, p, &err);
	if (!res)
		goto fail;
	if (PQntuples(res) == 0) {
		state = "no_request";
		hint = "no request covers this address: file one with POST /v1/requests";
		json_object_set_new(o, "request", json_null());
		json_object_set_new(o, "decision", json_null());
	} else {
		const char *st = PQgetvalue(res, 0, 1);
		json_object_set_new(o, "request", json_pack("{s:s, s:s}", "id",
				    PQgetvalue(res, 0, 0), "status", st));
		json_object_set_new(o, "since", json_string(PQgetvalue(res, 0, 2)));
		json_object_set_new(o, "decision", PQgetisnull(res, 0, 3) ? json_null() :
				    json_loads(PQgetvalue(res, 0, 3), 0, NULL));
		if (strcmp(st, "denied") == 0) {
			state = "denied";
			hint = "the request was denied: the decision says why and when to try again";
		} else if (strcmp(st, "needs_info") == 0) {
			state = "needs_info";
			hint = "the reviewers asked a question: answer it on the request";
		} else if (strcmp(st, "approved") == 0) {
			state = "exemption_ended";
			hint = "the exemption for this address ended (revoked, expired or given up): "
			       "file a new request";
		} else {
			state = "pending";
			hint = "the request is being vetted or reviewed";
		}
	}
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "hint", json_string(hint));
	PQclear(res);
done:
	p25_db_rollback(db);
	api_reply_json(r, 200, o);
	api_header(r, "Cache-Control", "private, no-cache");
	return;
fail:
	p25_db_rollback(db);
	json_decref(o);
	api_reply_err(r, &err);
}
