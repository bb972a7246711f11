/*
 * enforcement.c — what enforcement nodes read: the JWKS (public), the
 * snapshot, the feed and the acknowledgements (enforcer role).
 *
 * Consistency: feed positions are assigned in commit order
 * (migrations/0001, feed_events), so the snapshot — read in one
 * REPEATABLE READ transaction — holds exactly the tokens that the events up
 * to its position produced, and a node that follows the feed from there
 * misses nothing and sees nothing twice.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "input.h"
#include "p25/keys.h"

void
jwks_get(struct api_req *r, struct p25_db *db)
{
	struct p25_err err = { 0 };
	char *s;

	if (api_begin(r, db, &err) != 0) {
		api_reply_err(r, &err);
		return;
	}
	s = p25_keys_jwks(db, &err);
	p25_db_rollback(db);
	if (!s) {
		api_reply_err(r, &err);
		return;
	}
	api_reply(r, 200, "application/jwk-set+json", s, strlen(s));
	/* short: a rotated-in key must reach nodes well before it signs much */
	api_header(r, "Cache-Control", "public, max-age=60");
	free(s);
}

void
enf_snapshot(struct api_req *r, struct p25_db *db)
{
	P25_STMT(pos, 0, "SELECT coalesce(max(seq), 0) FROM feed_events");
	P25_STMT(toks, 0,
	    "SELECT coalesce(json_agg(t.jws ORDER BY t.exemption_id), '[]')::text FROM tokens t"
	    " JOIN exemptions e ON e.id = t.exemption_id"
	    " WHERE t.current AND e.status = 'active' AND t.expires_at > now()");
	struct p25_err err = { 0 };
	char etag[40], *seq = NULL, *tokens = NULL, *body = NULL;
	const char *inm;
	size_t len;

	if (p25_db_command(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &err) != 0)
		goto fail;
	db->in_tx = true;
	if (p25_db_set_actor(db, NULL, "system", &err) != 0)
		goto fail;
	seq = p25_db_text(db, &pos, NULL, NULL, &err);
	tokens = seq ? p25_db_text(db, &toks, NULL, NULL, &err) : NULL;
	p25_db_rollback(db);
	if (!tokens)
		goto fail;
	snprintf(etag, sizeof(etag), "\"s%s\"", seq);
	inm = api_get_header(r, "If-None-Match");
	if (inm && strcmp(inm, etag) == 0) {
		api_reply(r, 304, NULL, "", 0);
	} else {
		len = strlen(seq) + strlen(tokens) + 32;
		body = malloc(len);
		if (!body) {
			p25_err_set(&err, 503, "out_of_memory", "out of memory");
			goto fail;
		}
		snprintf(body, len, "{\"seq\":%s,\"tokens\":%s}", seq, tokens);
		api_reply(r, 200, "application/json", body, strlen(body));
	}
	api_header(r, "ETag", etag);
	api_header(r, "Cache-Control", "no-cache");
	goto out;
fail:
	p25_db_rollback(db);
	api_reply_err(r, &err);
out:
	free(seq);
	free(tokens);
	free(body);
}

void
enf_feed(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 2,
	    "SELECT json_build_object('events', coalesce(json_agg(json_strip_nulls(json_build_object("
	    " 'seq', seq, 'type', type, 'exemption', exemption_id, 'cidr', prefix::text,"
	    " 'token', token, 'reason', reason)) ORDER BY seq), '[]'),"
	    " 'next', coalesce(max(seq), $1::bigint))::text"
	    " FROM (SELECT * FROM feed_events WHERE seq > $1::bigint ORDER BY seq LIMIT $2) e");
	struct p25_err err = { 0 };
	char after[24], limit[16];
	const char *p[2] = { after, limit };
	char *s;

	if (r->lp_limit == 0 && feed_parse(r) != 0)
		return;
	snprintf(after, sizeof(after), "%lld", r->lp_after);
	snprintf(limit, sizeof(limit), "%d", r->lp_limit);
	if (api_begin(r, db, &err) != 0) {
		api_reply_err(r, &err);
		return;
	}
	s = p25_db_text(db, &st, p, NULL, &err);
	p25_db_rollback(db);
	if (!s) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json_text(r, 200, s);
	api_header(r, "Cache-Control", "no-store");
	free(s);
}

/* Node names: what the enforcement_nodes check allows. */
static bool
p25_node_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || (i > 0 && strchr("._:-", s[i]))))
			return false;
	return i > 0;
}

void
enf_ack(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 2,
	    "INSERT INTO enforcement_nodes AS n (node, acked_seq) VALUES ($1, $2::bigint)"
	    " ON CONFLICT (node) DO UPDATE SET acked_seq = greatest(n.acked_seq, $2::bigint),"
	    " acked_at = now() RETURNING acked_seq");
	P25_STMT(max, 0, "SELECT coalesce(max(seq), 0) FROM feed_events");
	static const char *const fields[] = { "node", "seq", NULL };
	struct p25_err err = { 0 };
	json_t *b, *seqv, *o;
	const char *node;
	char seq[24], *acked = NULL, *top = NULL;

	b = api_body_json(r, &err);
	if (!b)
		goto reply;
	input_known_fields(b, fields, &err);
	node = json_string_value(json_object_get(b, "node"));
	seqv = json_object_get(b, "seq");
	if (!node || strlen(node) == 0 || strlen(node) > 128 || !p25_node_ok(node))
		p25_err_add(&err, "node", "invalid_value",
			    "node must be 1 to 128 characters of letters, digits and . _ : -");
	if (!json_is_integer(seqv) || json_integer_value(seqv) < 0)
		p25_err_add(&err, "seq", "invalid_value", "seq must be a feed position (>= 0)");
	if (err.errors && json_array_size(err.errors)) {
		input_validation_failed(&err);
		goto reply;
	}
	snprintf(seq, sizeof(seq), "%lld", (long long)json_integer_value(seqv));
	if (api_begin(r, db, &err) != 0)
		goto reply;
	top = p25_db_text(db, &max, NULL, NULL, &err);
	if (!top)
		goto fail;
	if (strtoll(top, NULL, 10) < json_integer_value(seqv)) {
		p25_err_field(&err, 422, "seq_ahead", "seq",
			      "seq %s is beyond the feed's position %s", seq, top);
		goto fail;
	}
	{
		const char *p[2] = { node, seq };
		acked = p25_db_text(db, &st, p, NULL, &err);
	}
	if (!acked || p25_db_commit(db, &err) != 0)
		goto fail;
	o = json_pack("{s:s, s:I}", "node", node, "acked_seq",
		      (json_int_t)strtoll(acked, NULL, 10));
	api_reply_json(r, 200, o);
	goto out;
fail:
	p25_db_rollback(db);
reply:
	api_reply_err(r, &err);
out:
	free(acked);
	free(top);
	json_decref(b);
}
