/*
 * requests.c — the tenant's requests: submit, list, read, withdraw, answer.
 *
 * Isolation, twice: every statement names the caller's tenant, and every
 * transaction runs with the caller's row-level-security identity
 * (api_begin), so a handler that forgot the first wall still sees no other
 * tenant's row.  Another tenant's request answers 404 exactly like an id
 * that does not exist.
 *
 * Submitting is one transaction per group of submits (see submit_group):
 * for each, idempotency-key check, a per-tenant advisory lock (so the rate
 * limit and the open-request cap hold under concurrency), address
 * ownership, the request and its addresses, the vetting job, the audit row
 * and — with an Idempotency-Key — the stored answer, in one server-side
 * call (p25_submit_group, migrations 0013 and 0019) sent
 * with BEGIN, the identity and COMMIT in one round trip; the workers are
 * woken after the commit.  A refusal rolls that submit back whole: a
 * refused request leaves no row behind.
 *
 * Reading one request serves a kept body after a version check (the
 * request cache below).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "api.h"
#include "input.h"
#include "p25/audit.h"
#include "p25/b64.h"
#include "p25/ipaddr.h"
#include "p25/jobs.h"
#include "p25/log.h"
#include "p25/notify.h"
#include "p25/validate.h"

#define OPEN_STATES "{pending,vetting,needs_review,needs_info}"

/* ------------------------------------------------------------- helpers */

P25_STMT(load_st, 2, "SELECT p25_request_json(id)::text, version FROM requests"
		     " WHERE id = $1 AND tenant_id = $2");

/* The JSON and ETag of a load_st result; NULL (no error) when no row. */
static char *
request_take(PGresult *res, char etag[32], struct p25_err *err)
{
	char *s = NULL;

	if (!res)
		return NULL;
	if (PQntuples(res) == 1) {
		s = strdup(PQgetvalue(res, 0, 0));
		if (etag)
			snprintf(etag, 32, "\"%s\"", PQgetvalue(res, 0, 1));
		if (!s)
			p25_err_set(err, 503, "out_of_memory", "out of memory");
	}
	PQclear(res);
	return s;
}

static void
not_found(struct api_req *r)
{
	api_reply_problem(r, 404, "not_found", "no such request");
}

/* --------------------------------------------------------- idempotency */

struct idem {
	const char *key;
	unsigned char hash[32];
	char hash_hex[65];
};

/* An Idempotency-Key: printable ASCII, no spaces or controls. */
static bool
key_ok(const char *k)
{
	for (; *k; k++)
		if ((unsigned char)*k < 0x21 || (unsigned char)*k > 0x7e)
			return false;
	return true;
}

/*
 * Checks the Idempotency-Key's syntax and hashes what it stands for (the
 * path and the body).  0, or -1 with err (400).
 */
static int
idem_prepare(struct api_req *r, struct idem *ik, struct p25_err *err)
{
	crypto_generichash_state h;

	if (strlen(ik->key) == 0 || strlen(ik->key) > 255 || !key_ok(ik->key))
		return p25_err_field(err, 400, "invalid_idempotency_key", "Idempotency-Key",
				     "the Idempotency-Key must be 1 to 255 printable characters");
	crypto_generichash_init(&h, NULL, 0, sizeof(ik->hash));
	crypto_generichash_update(&h, (const unsigned char *)r->path, strlen(r->path) + 1);
	if (r->body)
		crypto_generichash_update(&h, (const unsigned char *)r->body, r->body_len);
	crypto_generichash_final(&h, ik->hash, sizeof(ik->hash));
	sodium_bin2hex(ik->hash_hex, sizeof(ik->hash_hex), ik->hash, sizeof(ik->hash));
	return 0;
}

/*
 * A key already answered: the first answer byte for byte, or 422 when the
 * key came with another body.  The stored status, body, headers (a JSON
 * object) and body hash (hex) come from p25_submit_group's 'replay' row.
 */
static int
idem_replay(struct api_req *r, const char *status, const char *body, const char *headers,
	    const char *hash, const struct idem *ik, struct p25_err *err)
{
	json_t *hdrs;
	const char *name;
	json_t *v;

	if (strlen(hash) != 64 || sodium_memcmp(hash, ik->hash_hex, 64) != 0)
		return p25_err_field(err, 422, "idempotency_key_reused", "Idempotency-Key",
		    "this Idempotency-Key was used with a different request body");
	hdrs = json_loads(headers, 0, NULL);
	api_reply(r, (int)strtol(status, NULL, 10), "application/json", body, strlen(body));
	json_object_foreach(hdrs, name, v)
		api_header(r, name, json_string_value(v));
	api_header(r, "Idempotent-Replayed", "true");
	json_decref(hdrs);
	return 0;
}

/* -------------------------------------------------------------- submit */

struct submission {
	int naddrs;
	const char *use_case;
	const char *description;
	json_t *domains;		/* normalized array of strings */
	long long volume;		/* -1 when absent */
	const char *email;
	struct p25_prefix addrs[];	/* room for the body's entries, at most P25_MAX_ADDRESSES */
};

static const char *const submit_fields[] = {
	"addresses", "use_case", "description", "sender_domains",
	"expected_daily_volume", "contact_email", NULL
};

static int
submission_parse(json_t *b, struct submission *s, struct p25_err *err)
{
	static const char *const use_cases[] = { "transactional", "marketing", "relay",
						   "personal", "other", NULL };
	const char *const *u;
	json_t *v;

	input_known_fields(b, submit_fields, err);
	input_addresses(json_object_get(b, "addresses"), "addresses",
			(int)api.cfg.max_addresses, (int)api.cfg.max_prefix_v4,
			(int)api.cfg.max_prefix_v6, s->addrs, &s->naddrs, err);
	s->use_case = input_string(b, "use_case", true, 32, err);
	if (s->use_case) {
		for (u = use_cases; *u && strcmp(*u, s->use_case) != 0; u++)
			;
		if (!*u)
			p25_err_add(err, "use_case", "invalid_value",
			    "must be one of transactional, marketing, relay, personal, other");
	}
	s->description = input_string(b, "description", false, 4000, err);
	if (s->description && !p25_text_ok(s->description, 4000))
		p25_err_add(err, "description", "invalid_text",
			    "must not contain control characters");
	s->email = input_string(b, "contact_email", false, 254, err);
	if (s->email && !p25_email_ok(s->email))
		p25_err_add(err, "contact_email", "invalid_email",
			    "is not an e-mail address (name@example.com)");
	v = json_object_get(b, "expected_daily_volume");
	s->volume = -1;
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 1000000000)
			p25_err_add(err, "expected_daily_volume", "invalid_value",
				    "must be a whole number from 0 to 1000000000");
		else
			s->volume = json_integer_value(v);
	}
	s->domains = json_array();
	input_domains(json_object_get(b, "sender_domains"), "sender_domains", s->domains, err);
	return err->errors && json_array_size(err->errors) ? -1 : 0;
}

/*
 * Words a refusal p25_submit_group raised (SQLSTATE P2501, see
 * migrations/0019_submit_inline.sql): the code is the message, the datum
 * the detail.  Returns -1 with err filled.
 */
static int
submission_refused(const char *code, const char *datum, const struct submission *s,
		   struct p25_err *err)
{
	int i;

	if (!code)
		code = "";
	if (!datum)
		datum = "";
	if (strcmp(code, "idempotency_in_flight") == 0) {
		p25_err_set(err, 409, "idempotency_in_flight",
			    "a request with this Idempotency-Key is still being processed");
		p25_err_hint(err, "retry in a moment to get its answer");
		err->retry_after = 1;
	} else if (strcmp(code, "tenant_unknown") == 0) {
		p25_err_set(err, 403, "tenant_unknown",
			    "your tenant is not registered with p25");
		p25_err_hint(err, "ask the provider to set up your account");
	} else if (strcmp(code, "rate_limited") == 0) {
		long wait = strtol(datum, NULL, 10);
		p25_err_set(err, 429, "rate_limited",
			    "at most %ld requests per hour may be filed", api.cfg.rate_limit);
		err->retry_after = wait > 0 ? (int)wait : 1;
	} else if (strcmp(code, "too_many_open_requests") == 0) {
		p25_err_set(err, 409, "too_many_open_requests",
			    "you have %ld open requests, the most allowed",
			    api.cfg.max_open_requests);
		p25_err_hint(err, "wait for a decision or withdraw one");
	} else if (strcmp(code, "address_not_held") == 0) {
		/* name each entry, like every other validation failure; datum is ",a,b," */
		for (i = 0; i < s->naddrs; i++) {
			char txt[P25_PREFIX_STRLEN + 2], field[32], detail[160];
			size_t tl;
			txt[0] = ',';
			p25_prefix_format(&s->addrs[i], txt + 1, sizeof(txt) - 2);
			tl = strlen(txt);
			txt[tl] = ',';
			txt[tl + 1] = '\0';
			if (!strstr(datum, txt))
				continue;
			txt[tl] = '\0';
			snprintf(field, sizeof(field), "addresses[%d]", i);
			snprintf(detail, sizeof(detail), "%s is not in your address inventory", txt + 1);
			p25_err_add(err, field, "address_not_held", detail);
		}
		input_validation_failed(err);
		p25_err_hint(err, "request only addresses your account holds");
	} else {
		p25_error("submit.refusal", "unknown refusal code from p25_submit_group: %.60s", code);
		p25_err_set(err, 500, "internal", "the submission was refused for an unknown reason");
	}
	return -1;
}

/* One submit of a group: its parsed input and its item of p25_submit_group. */
struct sub_item {
	struct api_req *r;
	struct submission *s;
	struct idem ik;
	json_t *body;
	bool live;		/* valid, sent to the database, not yet answered */
};

static void
sub_item_free(struct sub_item *it)
{
	if (it->s)
		json_decref(it->s->domains);
	free(it->s);
	json_decref(it->body);
}

/*
 * Parses and checks one submit and appends its item to items (an object;
 * see migrations/0019_submit_inline.sql).  -1 with err
 * (the answer) when the input is refused.
 */
static int
sub_prepare(struct sub_item *it, json_t *items, struct p25_err *err)
{
	struct api_req *r = it->r;
	struct submission *s;
	const char *tenant, *role;
	char *cidrs;
	json_t *o;
	size_t room;

	it->ik.key = api_get_header(r, "Idempotency-Key");
	it->body = api_body_json(r, err);
	if (!it->body)
		return -1;
	/* room for the addresses given, never more than the most accepted
	 * (input_addresses refuses a longer list before writing any) */
	o = json_object_get(it->body, "addresses");
	room = json_is_array(o) ? json_array_size(o) : 0;
	if (room > (size_t)api.cfg.max_addresses)
		room = (size_t)api.cfg.max_addresses;
	s = it->s = calloc(1, sizeof(*s) + (room ? room : 1) * sizeof(s->addrs[0]));
	if (!s)
		return p25_err_set(err, 503, "out_of_memory", "out of memory");
	if (submission_parse(it->body, s, err) != 0)
		return input_validation_failed(err);
	if (it->ik.key && idem_prepare(r, &it->ik, err) != 0)
		return -1;
	api_actor(r, &tenant, &role);
	cidrs = input_cidr_array(s->addrs, s->naddrs);
	o = cidrs ? json_pack("{s:s?, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:O, s:s?, s:s,"
			      " s:{s:s, s:O}}",
			      "rls_tenant", tenant, "rls_role", role,
			      "tenant", r->who.tenant, "actor", r->who.sub,
			      "key", it->ik.key, "hash", it->ik.key ? it->ik.hash_hex : NULL,
			      "use_case", s->use_case, "description", s->description,
			      "domains", s->domains, "email", s->email, "cidrs", cidrs,
			      "details", "use_case", s->use_case, "addresses",
			      json_object_get(it->body, "addresses")) : NULL;
	free(cidrs);
	if (o && s->volume >= 0)
		json_object_set_new(o, "volume", json_integer(s->volume));
	if (!o || json_array_append_new(items, o) != 0)
		return p25_err_set(err, 503, "out_of_memory", "out of memory");
	it->live = true;
	return 0;
}

/* Column numbers of p25_submit_group's rows. */
enum { G_IDX, G_KIND, G_STATUS, G_BODY, G_ETAG, G_LOCATION, G_HEADERS, G_HASH,
       G_SQLSTATE, G_MESSAGE, G_DETAIL, G_CONSTRAINT, G_CONTEXT };

/* Answers one submit from its row of p25_submit_group.  1 when it was filed. */
static int
sub_answer(struct sub_item *it, const PGresult *res, int row, struct p25_err *err)
{
	const char *kind = PQgetvalue(res, row, G_KIND);
	const char *state = PQgetvalue(res, row, G_SQLSTATE);

	if (strcmp(kind, "created") == 0) {
		api_reply_json_text(it->r, 202, PQgetvalue(res, row, G_BODY));
		api_header(it->r, "Location", PQgetvalue(res, row, G_LOCATION));
		api_header(it->r, "ETag", PQgetvalue(res, row, G_ETAG));
		return 1;
	}
	if (strcmp(kind, "replay") == 0) {
		if (idem_replay(it->r, PQgetvalue(res, row, G_STATUS), PQgetvalue(res, row, G_BODY),
				PQgetvalue(res, row, G_HEADERS), PQgetvalue(res, row, G_HASH),
				&it->ik, err) != 0)
			api_reply_err(it->r, err);
		return 0;
	}
	if (strcmp(state, "P2501") == 0) {
		submission_refused(PQgetvalue(res, row, G_MESSAGE), PQgetvalue(res, row, G_DETAIL),
				   it->s, err);
	} else if (strstr(PQgetvalue(res, row, G_CONTEXT), "INSERT INTO audit_log")) {
		/* as p25_audit: fail closed, and never a 4xx for this */
		p25_error("audit.write", "sqlstate %s: %s", state, PQgetvalue(res, row, G_MESSAGE));
		p25_err_set(err, 503, "audit_unavailable",
		    "the change was not made because its audit record could not be written");
		err->retry_after = 5;
	} else {
		p25_db_error_fields(state, PQgetvalue(res, row, G_MESSAGE),
				    PQgetisnull(res, row, G_CONSTRAINT) ||
				    !*PQgetvalue(res, row, G_CONSTRAINT)
				    ? NULL : PQgetvalue(res, row, G_CONSTRAINT), err);
	}
	api_reply_err(it->r, err);
	return 0;
}

/*
 * POST /v1/requests, for a group of submits (ROUTE_GROUP, see the groups in
 * http.c): each is parsed and checked here; the valid ones go to the
 * database together, in one round trip (BEGIN, one call of
 * p25_submit_group, COMMIT in one pipeline: p25_db_write_as) and one
 * transaction.  Each submit (idempotency, limits, ownership, the request,
 * its addresses, the vetting job, its audit row, the stored answer) runs
 * under its own identity and in its own subtransaction,
 * so a refusal or failure undoes that submit alone; the rest commit with
 * one WAL flush.  Once committed, the pool's notifier wakes the workers.
 */
static void
submit_group(struct api_req **rs, int n, struct p25_db *db)
{
	P25_STMT(st, 3,
	    "SELECT o_idx, o_kind, o_status, o_body, o_etag, o_location, o_headers, o_hash,"
	    " coalesce(o_sqlstate, ''), coalesce(o_message, ''), coalesce(o_detail, ''),"
	    " o_constraint, coalesce(o_context, '')"
	    " FROM p25_submit_group($1::jsonb, $2::bigint, $3::bigint)");
	struct sub_item *its = calloc((size_t)n, sizeof(*its));
	int *at = calloc((size_t)n, sizeof(*at));	/* group position → item */
	json_t *items = json_array();
	PGresult *res = NULL, *failed = NULL;
	char *arg = NULL, rate[24], maxopen[24];
	const char *tenant = NULL, *role = "tenant";
	int i, k, live = 0, filed = 0;
	struct p25_err err = { 0 };

	if (!its || !at || !items) {
		for (i = 0; i < n; i++)
			api_reply_problem(rs[i], 503, "out_of_memory", "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		its[i].r = rs[i];
		p25_log_ctx(rs[i]->id);
		if (sub_prepare(&its[i], items, &err) != 0) {
			api_reply_err(rs[i], &err);
			p25_err_clear(&err);
			continue;
		}
		if (live == 0)
			api_actor(rs[i], &tenant, &role);
		at[live++] = i;
	}
	p25_log_ctx(NULL);
	if (live == 0)
		goto out;
	arg = json_dumps(items, JSON_COMPACT);
	snprintf(rate, sizeof(rate), "%ld", api.cfg.rate_limit);
	snprintf(maxopen, sizeof(maxopen), "%ld", api.cfg.max_open_requests);
	if (!arg) {
		p25_err_set(&err, 503, "out_of_memory", "out of memory");
	} else {
		const char *p[3] = { arg, rate, maxopen };
		res = p25_db_write_as(db, tenant, role, &st, p, &failed, &err);
	}
	if (res) {
		for (k = 0; k < PQntuples(res); k++) {
			long g = strtol(PQgetvalue(res, k, G_IDX), NULL, 10);
			struct sub_item *it;
			if (g < 0 || g >= live || !its[at[g]].live)
				continue;
			it = &its[at[g]];
			it->live = false;
			p25_log_ctx(it->r->id);
			filed += sub_answer(it, res, k, &err);
			p25_err_clear(&err);
		}
		p25_log_ctx(NULL);
		if (filed > 0)	/* committed: wake the workers (coalesced) */
			p25_pool_notify(api.pool, P25_JOBS_CHANNEL, "vet");
	} else if (!err.status) {
		/* the group's transaction failed as a whole: nothing of it was written */
		p25_db_error(db, failed, &err);
	}
	if (!err.status)
		p25_err_set(&err, 500, "internal", "the submission gave no answer");
	for (i = 0; i < n; i++) {
		struct p25_err e = { 0 };
		if (!its[i].live)
			continue;
		p25_err_set(&e, err.status, err.code, "%s", err.detail);
		e.retry_after = err.retry_after;
		api_reply_err(rs[i], &e);
	}
out:
	PQclear(res);
	PQclear(failed);
	free(arg);
	json_decref(items);
	for (i = 0; its && i < n; i++)
		sub_item_free(&its[i]);
	free(its);
	free(at);
	p25_err_clear(&err);
}

/* ROUTE_GROUP: r and the requests following it through grp_next. */
void
req_submit(struct api_req *r, struct p25_db *db)
{
	struct api_req *rs[API_GROUP_MAX], *q;
	int n = 0;

	for (q = r; q && n < (int)(sizeof(rs) / sizeof(rs[0])); q = q->grp_next)
		rs[n++] = q;
	submit_group(rs, n, db);
}

/* ---------------------------------------------------------------- read */

/*
 * The representations of requests read recently, per API process.  A
 * request's JSON changes only with its version (every change of the
 * request, its checks, decision, exemptions or messages bumps it, in the
 * same transaction: the ETag relies on it too), so a kept body is served
 * after a one-row version check instead of being rendered again (six
 * tables, under row-level security).  An entry carries the tenant it was
 * rendered for (under that tenant's identity) and is only given back to
 * the same tenant; the check (view request_versions, migration 0015) asks
 * for that id with that tenant, so a request that moved or vanished is
 * read again in full, under row-level security, or answers 404.
 * Four-way set-associative by the id (the least recently used of a set
 * gives way), bounded in entries, entry size and bytes.
 */
#define RC_SLOTS 65536
#define RC_WAYS 4
#define RC_BODY_MAX 16384
#define RC_BUDGET ((size_t)32 << 20)

/* An entry is one block: "id\0tenant\0version\0body\0". */
struct rc_slot {
	char *entry;
	size_t size;		/* of the block */
	const char *tenant, *version, *body;
	uint32_t hash;		/* of the id */
	uint32_t used;		/* rc.tick when last read or written */
};

static struct {
	pthread_mutex_t mu;
	size_t bytes;
	uint32_t tick;
	struct rc_slot slot[RC_SLOTS];
} rc = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* The entry of id in its set, or NULL; with rc.mu held. */
static struct rc_slot *
rc_find_locked(const char *id, uint32_t h)
{
	struct rc_slot *set = &rc.slot[h % (RC_SLOTS / RC_WAYS) * RC_WAYS];
	int i;

	for (i = 0; i < RC_WAYS; i++)
		if (set[i].entry && set[i].hash == h && strcmp(set[i].entry, id) == 0)
			return &set[i];
	return NULL;
}

/* Empties sl; with rc.mu held. */
static void
rc_clear_locked(struct rc_slot *sl)
{
	rc.bytes -= sl->size;
	free(sl->entry);
	memset(sl, 0, sizeof(*sl));
}

/* A copy of the kept body of id for tenant, and its version; NULL if none. */
static char *
rc_get(const char *id, const char *tenant, char version[21])
{
	uint32_t h = api_hash(id);
	struct rc_slot *sl;
	char *copy = NULL;

	pthread_mutex_lock(&rc.mu);
	sl = rc_find_locked(id, h);
	if (sl && strcmp(sl->tenant, tenant) == 0) {
		copy = strdup(sl->body);
		if (copy)
			snprintf(version, 21, "%s", sl->version);
		sl->used = ++rc.tick;
	}
	pthread_mutex_unlock(&rc.mu);
	return copy;
}

/* Keeps body as id's representation at version (or forgets id: body NULL). */
static void
rc_put(const char *id, const char *tenant, const char *version, const char *body)
{
	uint32_t h = api_hash(id);
	struct rc_slot *sl, *set, fresh = { 0 };
	size_t li = strlen(id) + 1, lt = strlen(tenant) + 1, lv = strlen(version) + 1;
	size_t lb = body ? strlen(body) + 1 : 0;
	int i;

	if (body && lb <= RC_BODY_MAX && lv <= 21) {
		fresh.size = li + lt + lv + lb;
		fresh.entry = malloc(fresh.size);
	}
	if (fresh.entry) {
		memcpy(fresh.entry, id, li);
		memcpy(fresh.entry + li, tenant, lt);
		memcpy(fresh.entry + li + lt, version, lv);
		memcpy(fresh.entry + li + lt + lv, body, lb);
		fresh.tenant = fresh.entry + li;
		fresh.version = fresh.entry + li + lt;
		fresh.body = fresh.entry + li + lt + lv;
		fresh.hash = h;
	}
	pthread_mutex_lock(&rc.mu);
	sl = rc_find_locked(id, h);
	if (sl)
		rc_clear_locked(sl);
	if (fresh.entry) {
		if (!sl) {
			/* an empty way, else the least recently used */
			set = &rc.slot[h % (RC_SLOTS / RC_WAYS) * RC_WAYS];
			sl = &set[0];
			for (i = 0; i < RC_WAYS && sl->entry; i++)
				if (!set[i].entry || (int32_t)(set[i].used - sl->used) < 0)
					sl = &set[i];
			if (sl->entry)
				rc_clear_locked(sl);
		}
		if (rc.bytes + fresh.size <= RC_BUDGET) {
			fresh.used = ++rc.tick;
			*sl = fresh;
			rc.bytes += fresh.size;
			fresh.entry = NULL;
		}
	}
	pthread_mutex_unlock(&rc.mu);
	free(fresh.entry);
}

/* Answers r with body s (taken) at version, or 304 for a matching If-None-Match. */
static void
get_answer(struct api_req *r, char *s, const char *version)
{
	char etag[32];
	const char *inm;

	snprintf(etag, sizeof(etag), "\"%s\"", version);
	inm = api_get_header(r, "If-None-Match");
	if (inm && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) {
		api_reply(r, 304, NULL, "", 0);
		free(s);
	} else {
		api_reply_json_take(r, 200, s);
	}
	api_header(r, "ETag", etag);
	api_header(r, "Cache-Control", "private, no-cache");
}

/* Answers r from res, its request read in full under r's identity (or err), and keeps it. */
static void
get_rendered(struct api_req *r, PGresult *res, struct p25_err *err)
{
	char version[21] = "";
	char *s;

	if (res && PQntuples(res) == 1) {
		snprintf(version, sizeof(version), "%s", PQgetvalue(res, 0, 1));
		rc_put(r->params[0], r->who.tenant, version, PQgetvalue(res, 0, 0));
	}
	s = request_take(res, NULL, err);
	if (s)
		get_answer(r, s, version);
	else if (err->status)
		api_reply_err(r, err);
	else
		not_found(r);
}

/*
 * ROUTE_GROUP: r and the reads following it through grp_next.  The kept
 * bodies of the whole group are checked in one round trip (migration 0015
 * says why the check needs no identity); the reads with no kept body, or
 * whose version moved, are then read in full in one more round trip, each
 * under its own identity.
 */
void
req_get(struct api_req *r, struct p25_db *db)
{
	P25_STMT(ver_st, 2, "SELECT q.i, v.version"
			    " FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS q (id, tenant, i)"
			    " JOIN request_versions v ON v.id = q.id AND v.tenant_id = q.tenant");
	struct api_req *rs[API_GROUP_MAX];
	char *kept[API_GROUP_MAX] = { 0 }, version[API_GROUP_MAX][21];
	/* the arrays: per entry a quoted uuid (38) or tenant id (66) and a comma */
	char ids[API_GROUP_MAX * 39 + 3], tenants[API_GROUP_MAX * 67 + 3];
	int at[API_GROUP_MAX], n = 0, nk = 0, i;
	size_t li = 1, lt = 1;
	struct api_req *q;

	for (q = r; q && n < API_GROUP_MAX; q = q->grp_next)
		rs[n++] = q;
	ids[0] = '{';
	tenants[0] = '{';
	for (i = 0; i < n; i++) {
		if (!p25_uuid_ok(rs[i]->params[0]))
			continue;
		kept[i] = rc_get(rs[i]->params[0], rs[i]->who.tenant, version[i]);
		if (!kept[i])
			continue;
		/* uuids and tenant ids (p25_tenant_id_ok) need no escaping */
		li += (size_t)snprintf(ids + li, sizeof(ids) - li, "%s\"%s\"",
				       nk ? "," : "", rs[i]->params[0]);
		lt += (size_t)snprintf(tenants + lt, sizeof(tenants) - lt, "%s\"%s\"",
				       nk ? "," : "", rs[i]->who.tenant);
		at[nk++] = i;
	}
	snprintf(ids + li, sizeof(ids) - li, "}");
	snprintf(tenants + lt, sizeof(tenants) - lt, "}");

	if (nk > 0) {
		const char *p[2] = { ids, tenants };
		struct p25_err err = { 0 };
		bool seen[API_GROUP_MAX] = { 0 };
		PGresult *res = p25_db_exec(db, &ver_st, p, &err);
		int k, row;

		for (row = 0; res && row < PQntuples(res); row++) {
			k = (int)strtol(PQgetvalue(res, row, 0), NULL, 10) - 1;
			if (k < 0 || k >= nk || seen[k])
				continue;
			seen[k] = true;
			i = at[k];
			if (strcmp(PQgetvalue(res, row, 1), version[i]) == 0) {
				get_answer(rs[i], kept[i], version[i]);
				kept[i] = NULL;
				rs[i] = NULL;	/* answered */
			}
		}
		for (k = 0; k < nk; k++) {
			i = at[k];
			if (!rs[i])
				continue;
			if (!res) {
				api_reply_err(rs[i], &err);
				rs[i] = NULL;
			} else if (!seen[k]) {
				/* gone, or not this tenant's: forget it */
				rc_put(rs[i]->params[0], rs[i]->who.tenant, "", NULL);
				not_found(rs[i]);
				rs[i] = NULL;
			}
			free(kept[i]);
			kept[i] = NULL;
		}
		PQclear(res);
		p25_err_clear(&err);
	}
	/* the others are read in full, all in one round trip */
	{
		const char *tenant[API_GROUP_MAX] = { 0 }, *role[API_GROUP_MAX] = { 0 };
		const char *par[API_GROUP_MAX][2];
		const char *const *pp[API_GROUP_MAX] = { 0 };
		PGresult *res[API_GROUP_MAX];
		struct p25_err errs[API_GROUP_MAX];
		int m = 0, k;

		for (i = 0; i < n; i++) {
			if (!rs[i])
				continue;
			if (!p25_uuid_ok(rs[i]->params[0])) {
				not_found(rs[i]);
				continue;
			}
			api_actor(rs[i], &tenant[m], &role[m]);
			par[m][0] = rs[i]->params[0];
			par[m][1] = rs[i]->who.tenant;
			pp[m] = par[m];
			memset(&errs[m], 0, sizeof(errs[m]));
			at[m++] = i;
		}
		p25_db_read_many_as(db, m, tenant, role, &load_st, pp, res, errs);
		for (k = 0; k < m; k++) {
			get_rendered(rs[at[k]], res[k], &errs[k]);
			p25_err_clear(&errs[k]);
		}
	}
}

void
req_list(struct api_req *r, struct p25_db *db)
{
	P25_STMT(st, 5,
	    "SELECT p25_request_summary(r)::text,"
	    " (extract(epoch FROM r.created_at) * 1000000)::bigint, r.id"
	    " FROM requests r WHERE r.tenant_id = $1 AND ($2::text IS NULL OR r.status = $2)"
	    " AND ($3::bigint IS NULL OR (r.created_at, r.id) <"
	    "      ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4::uuid))"
	    " ORDER BY r.created_at DESC, r.id DESC LIMIT $5");
	static const char *const states[] = { "pending", "vetting", "approved", "denied",
		"needs_review", "needs_info", "withdrawn", NULL };
	struct p25_err err = { 0 };
	const char *status = api_get_query(r, "status");
	const char *limit_s = api_get_query(r, "limit");
	const char *cursor = api_get_query(r, "cursor");
	char us[24] = "", cid[40] = "", lim[24];
	long limit = 20;
	PGresult *res;
	json_t *o, *items;
	int i, n;

	if (status) {
		const char *const *s;
		for (s = states; *s && strcmp(*s, status) != 0; s++)
			;
		if (!*s) {
			p25_err_field(&err, 400, "invalid_parameter", "status",
			    "status must be one of pending, vetting, approved, denied, "
			    "needs_review, needs_info, withdrawn");
			api_reply_err(r, &err);
			return;
		}
	}
	if (input_query_long(limit_s, "limit", 20, 1, 100, &limit, &err) != 0) {
		api_reply_err(r, &err);
		return;
	}
	if (cursor && api_cursor_decode(cursor, us, sizeof(us), cid, sizeof(cid)) != 0) {
		p25_err_field(&err, 400, "invalid_cursor", "cursor",
			      "the cursor is not one this API gave out");
		api_reply_err(r, &err);
		return;
	}
	snprintf(lim, sizeof(lim), "%ld", limit + 1);
	if (api_begin(r, db, &err) != 0) {
		api_reply_err(r, &err);
		return;
	}
	{
		const char *p[5] = { r->who.tenant, status, cursor ? us : NULL,
				     cursor ? cid : NULL, lim };
		res = p25_db_exec(db, &st, p, &err);
	}
	p25_db_rollback(db);
	if (!res) {
		api_reply_err(r, &err);
		return;
	}
	items = json_array();
	n = PQntuples(res);
	for (i = 0; i < n && i < limit; i++)
		json_array_append_new(items, json_loads(PQgetvalue(res, i, 0), 0, NULL));
	o = json_pack("{s:o}", "items", items);
	json_object_set_new(o, "next_cursor", n > limit
	    ? api_cursor_encode(PQgetvalue(res, limit - 1, 1), PQgetvalue(res, limit - 1, 2))
	    : json_null());
	PQclear(res);
	api_reply_json(r, 200, o);
	api_header(r, "Cache-Control", "private, no-cache");
}

/* ------------------------------------------------------------- changes */

/*
 * Checks If-Match against the request's version, inside the transaction
 * (the row is locked FOR UPDATE).  Returns the current status in buf, or
 * -1 with err (404, 412).
 */
static int
request_lock(struct api_req *r, struct p25_db *db, char *status, size_t len,
	     struct p25_err *err)
{
	P25_STMT(st, 2, "SELECT status, version FROM requests WHERE id = $1 AND tenant_id = $2"
			" FOR UPDATE");
	const char *p[2] = { r->params[0], r->who.tenant };
	const char *im = api_get_header(r, "If-Match");
	PGresult *res = p25_db_exec(db, &st, p, err);
	char etag[32];

	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return p25_err_set(err, 404, "not_found", "no such request");
	}
	snprintf(status, len, "%s", PQgetvalue(res, 0, 0));
	snprintf(etag, sizeof(etag), "\"%s\"", PQgetvalue(res, 0, 1));
	PQclear(res);
	if (im && strcmp(im, "*") != 0 && strcmp(im, etag) != 0) {
		p25_err_set(err, 412, "precondition_failed",
			    "the request changed since you read it (ETag %s)", etag);
		p25_err_hint(err, "read it again and retry");
		return -1;
	}
	return 0;
}

/* Replies with the request after a change, and commits (api.h). */
void
request_commit_reply(struct api_req *r, struct p25_db *db, const char *id, const char *tenant,
		     int status)
{
	P25_STMT(st, 2, "SELECT p25_request_json(id)::text, version FROM requests"
			" WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)");
	const char *p[2] = { id, tenant };
	struct p25_err err = { 0 };
	char etag[32];
	char *s = request_take(p25_db_exec(db, &st, p, &err), etag, &err);

	if (!s || p25_db_commit(db, &err) != 0) {
		p25_db_rollback(db);
		if (!err.status)
			p25_err_set(&err, 500, "internal", "the request vanished");
		api_reply_err(r, &err);
		free(s);
		return;
	}
	api_reply_json_text(r, status, s);
	api_header(r, "ETag", etag);
	free(s);
}

void
req_withdraw(struct api_req *r, struct p25_db *db)
{
	P25_STMT(upd, 1, "UPDATE requests SET status = 'withdrawn', version = version + 1,"
			 " updated_at = now(), claimed_by = NULL, claimed_until = NULL"
			 " WHERE id = $1");
	struct p25_err err = { 0 };
	const char *p[1] = { r->params[0] };
	char status[24];
	json_t *d;

	if (!p25_uuid_ok(r->params[0])) {
		not_found(r);
		return;
	}
	if (api_begin(r, db, &err) != 0)
		goto fail;
	if (request_lock(r, db, status, sizeof(status), &err) != 0)
		goto fail;
	if (!strstr(OPEN_STATES, status)) {
		p25_err_set(&err, 409, "invalid_state",
			    "a request that is %s can no longer be withdrawn", status);
		goto fail;
	}
	d = json_pack("{s:s}", "from", status);
	if (p25_db_run(db, &upd, p, &err) != 1 ||
	    p25_audit(db, r->who.sub, "request.withdraw", "request", r->params[0],
		      r->who.tenant, d, &err) != 0 ||
	    p25_notify(db, r->who.tenant, "request.status", r->params[0], "withdrawn",
		       "withdrawn by the tenant", &err) != 0) {
		json_decref(d);
		goto fail;
	}
	json_decref(d);
	request_commit_reply(r, db, r->params[0], r->who.tenant, 200);
	return;
fail:
	p25_db_rollback(db);
	api_reply_err(r, &err);
}

/*
 * A tenant's answer to needs_info: the message is kept and the request goes
 * back to pending for a new vetting round.
 */
void
req_message(struct api_req *r, struct p25_db *db)
{
	P25_STMT(ins, 4, "INSERT INTO messages (request_id, tenant_id, author, role, body)"
			 " VALUES ($1, $2, $3, 'tenant', $4)");
	/* a question from a reviewer goes back to the review queue; one from
	 * the policy (rDNS, …) goes back to vetting */
	P25_STMT(upd, 1,
	    "UPDATE requests r SET version = version + 1, updated_at = now(),"
	    " status = CASE WHEN d.actor = 'policy' THEN 'pending' ELSE 'needs_review' END,"
	    " vetting_round = vetting_round + CASE WHEN d.actor = 'policy' THEN 1 ELSE 0 END"
	    " FROM (SELECT coalesce((SELECT actor FROM decisions WHERE request_id = $1"
	    "   ORDER BY id DESC LIMIT 1), 'policy') AS actor) d"
	    " WHERE r.id = $1 RETURNING r.vetting_round, r.status");
	static const char *const fields[] = { "body", NULL };
	struct p25_err err = { 0 };
	json_t *b = NULL, *job = NULL;
	const char *text;
	char status[24];
	PGresult *res;

	if (!p25_uuid_ok(r->params[0])) {
		not_found(r);
		return;
	}
	b = api_body_json(r, &err);
	if (!b)
		goto reply;
	input_known_fields(b, fields, &err);
	text = input_string(b, "body", true, 4000, &err);
	if (text && (!text[0] || !p25_text_ok(text, 4000)))
		p25_err_add(&err, "body", "invalid_text",
			    "must be 1 to 4000 characters without control characters");
	if (err.errors && json_array_size(err.errors)) {
		input_validation_failed(&err);
		goto reply;
	}
	if (api_begin(r, db, &err) != 0)
		goto reply;
	if (request_lock(r, db, status, sizeof(status), &err) != 0)
		goto fail;
	if (strcmp(status, "needs_info") != 0) {
		p25_err_set(&err, 409, "invalid_state",
			    "messages answer a request that needs information; this one is %s",
			    status);
		goto fail;
	}
	{
		const char *p[4] = { r->params[0], r->who.tenant, r->who.sub, text };
		const char *q[1] = { r->params[0] };
		if (p25_db_run(db, &ins, p, &err) != 1)
			goto fail;
		res = p25_db_exec(db, &upd, q, &err);
		if (!res)
			goto fail;
		if (PQntuples(res) != 1) {
			PQclear(res);
			p25_err_set(&err, 500, "internal", "the request has no decision to answer");
			goto fail;
		}
		if (strcmp(PQgetvalue(res, 0, 1), "pending") == 0)
			job = json_pack("{s:s, s:i}", "request", r->params[0], "round",
					(int)strtol(PQgetvalue(res, 0, 0), NULL, 10));
		PQclear(res);
	}
	if ((job && p25_job_enqueue(db, "vet", job, NULL, 0, &err) != 0) ||
	    p25_notify(db, r->who.tenant, "request.status", r->params[0],
		       job ? "pending" : "needs_review", "answered", &err) != 0 ||
	    p25_audit(db, r->who.sub, "request.answer", "request", r->params[0],
		      r->who.tenant, NULL, &err) != 0)
		goto fail;
	request_commit_reply(r, db, r->params[0], r->who.tenant, 200);
	goto out;
fail:
	p25_db_rollback(db);
reply:
	api_reply_err(r, &err);
out:
	json_decref(job);
	json_decref(b);
}
