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
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <libpq-fe.h>

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

/*
 * The body {"seq":N,"tokens":["<jws>",...]} built here from the rows, not
 * by json_agg in the database: with 100,000 tokens (55 MB) the aggregate's
 * per-character escaping and its sort (beyond work_mem: on disk) cost
 * seconds, while the rows themselves come in a fraction of that.  A token
 * is base64url and dots, which needs no JSON escaping; anything else (never
 * written by p25, but the column is text) goes through jansson.  No order:
 * the agent sorts by exemption id itself.  NULL when out of memory.
 */
static char *
snapshot_body(const char *seq, PGresult *res, size_t *len)
{
	size_t n = (size_t)PQntuples(res), i, cap = strlen(seq) + 32, o, l, k;
	const char *t;
	char *b, *esc;

	for (i = 0; i < n; i++)
		cap += (size_t)PQgetlength(res, (int)i, 0) + 3;
	b = malloc(cap);
	if (!b)
		return NULL;
	o = (size_t)snprintf(b, cap, "{\"seq\":%s,\"tokens\":[", seq);
	for (i = 0; i < n; i++) {
		t = PQgetvalue(res, (int)i, 0);
		l = (size_t)PQgetlength(res, (int)i, 0);
		for (k = 0; k < l; k++)
			if (!((t[k] >= 'A' && t[k] <= 'Z') || (t[k] >= 'a' && t[k] <= 'z') ||
			      (t[k] >= '0' && t[k] <= '9') || t[k] == '-' || t[k] == '_' ||
			      t[k] == '.'))
				break;
		if (i)
			b[o++] = ',';
		if (k == l) {
			b[o++] = '"';
			memcpy(b + o, t, l);
			o += l;
			b[o++] = '"';
			continue;
		}
		/* escaped: at most 6 bytes a character, so grow for it */
		{
			json_t *js = json_string(t);

			esc = js ? json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
			json_decref(js);
		}
		if (!esc) {
			free(b);
			return NULL;
		}
		{
			size_t el = strlen(esc);
			char *nb = realloc(b, cap + el);

			if (!nb) {
				free(esc);
				free(b);
				return NULL;
			}
			b = nb;
			cap += el;
			memcpy(b + o, esc, el);
			o += el;
			free(esc);
		}
	}
	b[o++] = ']';
	b[o++] = '}';
	b[o] = '\0';
	*len = o;
	return b;
}

void
enf_snapshot(struct api_req *r, struct p25_db *db)
{
	P25_STMT(pos, 0, "SELECT coalesce(max(seq), 0) FROM feed_events");
	P25_STMT(toks, 0,
	    "SELECT t.jws FROM tokens t"
	    " JOIN exemptions e ON e.id = t.exemption_id"
	    " WHERE t.current AND e.status = 'active' AND t.expires_at > now()");
	struct p25_err err = { 0 };
	char etag[40], *seq = NULL, *body = NULL;
	PGresult *res = NULL;
	const char *inm;
	size_t len = 0;

	if (p25_db_command(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &err) != 0)
		goto fail;
	db->in_tx = true;
	if (p25_db_set_actor(db, NULL, "system", &err) != 0)
		goto fail;
	seq = p25_db_text(db, &pos, NULL, NULL, &err);
	if (!seq)
		goto fail;
	snprintf(etag, sizeof(etag), "\"s%s\"", seq);
	inm = api_get_header(r, "If-None-Match");
	if (inm && strcmp(inm, etag) == 0) {
		/* the position says it all: the tokens are not read */
		p25_db_rollback(db);
		api_reply(r, 304, NULL, "", 0);
	} else {
		res = p25_db_exec(db, &toks, NULL, &err);
		p25_db_rollback(db);
		if (!res)
			goto fail;
		body = snapshot_body(seq, res, &len);
		PQclear(res);
		res = NULL;
		if (!body) {
			p25_err_set(&err, 503, "out_of_memory", "out of memory");
			goto fail;
		}
		api_reply(r, 200, "application/json", body, len);
	}
	api_header(r, "ETag", etag);
	api_header(r, "Cache-Control", "no-cache");
	goto out;
fail:
	p25_db_rollback(db);
	api_reply_err(r, &err);
out:
	PQclear(res);
	free(seq);
	free(body);
}

/*
 * The last feed answer, shared by the requests that ask the same question.
 * A revocation wakes every held long-poll at once (feed.c), and they all
 * ask for the events after the same position: the first to reach the
 * database answers for all the others instead of thousands of identical
 * queries queueing for the pool.  An answer is reused only for the same
 * after and limit, while the feed position this process knows (feed_latest,
 * from NOTIFY) has not moved, and for at most FEED_CACHE_NS, and only when
 * it holds events (fcache_put says why).  Events
 * are never changed once they have a position, so an answer is a correct
 * page of the feed for as long as it is kept.
 */
#define FEED_CACHE_NS 1000000000ull
static struct {
	pthread_mutex_t mu;
	long long after, latest;
	int limit;
	uint64_t at_ns;
	char *text;		/* NULL: none */
} fcache = { .mu = PTHREAD_MUTEX_INITIALIZER };

static char *
fcache_get(long long after, int limit, long long latest)
{
	char *s = NULL;

	pthread_mutex_lock(&fcache.mu);
	if (fcache.text && latest >= 0 && fcache.after == after && fcache.limit == limit &&
	    fcache.latest == latest && api_mono_ns() - fcache.at_ns < FEED_CACHE_NS)
		s = strdup(fcache.text);
	pthread_mutex_unlock(&fcache.mu);
	return s;
}

static void
fcache_put(long long after, int limit, long long latest, uint64_t at_ns, const char *text)
{
	char *s;

	if (latest < 0 || feed_latest() != latest)
		return;		/* the feed moved during the query: keep nothing */
	/*
	 * An empty page is never kept: an event can be committed before this
	 * process's NOTIFY arrives (latest unchanged), and a caller who saw the
	 * commit must find it at once.  "[]" is in every empty page (and may be
	 * in a reason: then a full page goes uncached, which costs only a query).
	 */
	if (strstr(text, "[]"))
		return;
	s = strdup(text);
	if (!s)
		return;
	pthread_mutex_lock(&fcache.mu);
	free(fcache.text);
	fcache.text = s;
	fcache.after = after;
	fcache.limit = limit;
	fcache.latest = latest;
	fcache.at_ns = at_ns;
	pthread_mutex_unlock(&fcache.mu);
}

/* Held polls are answered on feed.c's listener with the same query. */
void
enf_feed(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 2, FEED_PAGE_SQL);
	struct p25_err err = { 0 };
	char after[24], limit[16];
	const char *p[2] = { after, limit };
	long long latest;
	uint64_t t0;
	char *s;

	if (r->lp_limit == 0 && feed_parse(r) != 0)
		return;
	latest = feed_latest();
	s = fcache_get(r->lp_after, r->lp_limit, latest);
	if (s) {
		api_reply_json_text(r, 200, s);
		api_header(r, "Cache-Control", "no-store");
		free(s);
		return;
	}
	t0 = api_mono_ns();
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
	fcache_put(r->lp_after, r->lp_limit, latest, t0, s);
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
