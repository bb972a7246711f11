/*
 * abuse.c — POST /v1/abuse-reports: JSON or ARF (RFC 5965) abuse reports
 * from automated feeds (reporter role) and reviewers.
 *
 * One transaction: the report is stored (duplicates by source and report
 * id are counted, not applied again), matched to the tenant holding the
 * address and to the exemption covering it, and — for categories in
 * P25_ABUSE_SUSPEND_CATEGORIES — the exemption is suspended at once (the
 * port closes on every node within a second); other categories put the
 * request in the review queue.  Unmatched reports stay for the history
 * check.  A malformed report is refused and stored nowhere.
 */
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <string.h>

#include "api.h"
#include "input.h"
#include "p25/arf.h"
#include "p25/audit.h"
#include "p25/ipaddr.h"
#include "p25/suspend.h"
#include "p25/validate.h"

static const char *const categories[] = { "spam", "malware", "phishing", "fraud", "other",
					  "not_spam", NULL };

static bool
category_ok(const char *c)
{
	const char *const *k;

	for (k = categories; *k; k++)
		if (strcmp(*k, c) == 0)
			return true;
	return false;
}

/* Is category in the comma-separated list? */
static bool
suspends(const char *category)
{
	const char *p = api.cfg.abuse_suspend_categories;
	size_t n = strlen(category);

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncmp(p, category, n) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

struct report {
	char source[201], report_id[256], address[64], category[16], observed[40];
	const char *format;
	json_t *evidence;	/* owned */
};

static int
report_json(struct api_req *r, struct report *rep, struct p25_err *err)
{
	static const char *const fields[] = { "address", "source", "category", "evidence",
					      "observed_at", "report_id", NULL };
	json_t *b = api_body_json(r, err), *ev;
	const char *s;
	int rc = -1;

	if (!b)
		return -1;
	input_known_fields(b, fields, err);
	if ((s = input_string(b, "address", true, 63, err)))
		snprintf(rep->address, sizeof(rep->address), "%s", s);
	if ((s = input_string(b, "source", true, 200, err))) {
		if (!s[0] || !p25_text_ok(s, 200))
			p25_err_add(err, "source", "invalid_text", "1 to 200 printable characters");
		snprintf(rep->source, sizeof(rep->source), "%s", s);
	}
	if ((s = input_string(b, "report_id", true, 255, err))) {
		if (!s[0] || !p25_text_ok(s, 255))
			p25_err_add(err, "report_id", "invalid_text", "1 to 255 printable characters");
		snprintf(rep->report_id, sizeof(rep->report_id), "%s", s);
	}
	if ((s = input_string(b, "category", true, 15, err))) {
		if (!category_ok(s))
			p25_err_add(err, "category", "invalid_value",
				    "must be spam, malware, phishing, fraud, other or not_spam");
		snprintf(rep->category, sizeof(rep->category), "%s", s);
	}
	if ((s = input_string(b, "observed_at", false, 39, err))) {
		if (!p25_timestamp_ok(s))
			p25_err_add(err, "observed_at", "invalid_timestamp", "must be an RFC 3339 date-time");
		snprintf(rep->observed, sizeof(rep->observed), "%s", s);
	}
	ev = json_object_get(b, "evidence");
	if (ev && !json_is_object(ev) && !json_is_string(ev))
		p25_err_add(err, "evidence", "invalid_type", "must be an object or a string");
	rep->evidence = ev ? (json_is_object(ev) ? json_incref(ev) : json_pack("{s:O}", "text", ev))
			   : json_object();
	rep->format = "json";
	if (err->errors && json_array_size(err->errors))
		input_validation_failed(err);
	else
		rc = 0;
	json_decref(b);
	return rc;
}

static int
report_arf(struct api_req *r, const char *ctype, struct report *rep, struct p25_err *err)
{
	struct p25_arf arf;
	const char *ft;

	if (p25_arf_parse(ctype, r->body ? r->body : "", r->body_len, &arf, err) != 0)
		return -1;
	snprintf(rep->source, sizeof(rep->source), "%s", r->who.sub);
	snprintf(rep->report_id, sizeof(rep->report_id), "%s", arf.report_id);
	snprintf(rep->address, sizeof(rep->address), "%s", arf.source_ip);
	snprintf(rep->observed, sizeof(rep->observed), "%s", arf.arrival_date);
	ft = arf.feedback_type;
	snprintf(rep->category, sizeof(rep->category), "%s",
		 strcasecmp(ft, "abuse") == 0 ? "spam" : strcasecmp(ft, "virus") == 0 ? "malware"
		 : strcasecmp(ft, "fraud") == 0 ? "fraud"
		 : strcasecmp(ft, "not-spam") == 0 ? "not_spam" : "other");
	rep->evidence = json_pack("{s:o}", "feedback_report", arf.fields);
	rep->format = "arf";
	return 0;
}

void
abuse_report(struct api_req *r, struct p25_db *db)
{
	P25_STMT(ins, 7,
	    "INSERT INTO abuse_reports AS a (source, report_id, format, address, category, evidence,"
	    " observed_at, tenant_id, exemption_id)"
	    " VALUES ($1, $2, $3, $4::inet, $5, $6::jsonb, $7::timestamptz,"
	    "  (SELECT t.tenant_id FROM tenant_addresses t WHERE t.prefix >>= $4::inet LIMIT 1),"
	    "  (SELECT e.id FROM exemptions e WHERE e.prefix >>= $4::inet AND e.status = 'active'"
	    "    ORDER BY masklen(e.prefix) DESC LIMIT 1))"
	    " ON CONFLICT (source, report_id) DO UPDATE SET times_seen = a.times_seen + 1"
	    " RETURNING a.id, (xmax = 0), a.times_seen, a.tenant_id, a.exemption_id,"
	    "  (SELECT request_id FROM exemptions WHERE id = a.exemption_id)");
	struct p25_err err = { 0 };
	struct report rep;
	struct p25_prefix host;
	const char *ctype = api_get_header(r, "Content-Type");
	char *ev = NULL, reason[400], code[32];
	PGresult *res = NULL;
	const char *action = "stored";
	json_t *o;
	bool inserted;

	memset(&rep, 0, sizeof(rep));
	if (ctype && strncasecmp(ctype, "multipart/report", 16) == 0) {
		if (report_arf(r, ctype, &rep, &err) != 0)
			goto reply;
	} else if (report_json(r, &rep, &err) != 0) {
		goto reply;
	}
	if (p25_prefix_parse(rep.address, &host, &err) != 0 ||
	    host.len != (host.family == AF_INET ? 32 : 128)) {
		p25_err_clear(&err);
		p25_err_field(&err, 422, "invalid_address", "address",
			      "%.60s is not a single IPv4 or IPv6 address", rep.address);
		goto reply;
	}
	ev = json_dumps(rep.evidence, JSON_COMPACT);
	if (!ev) {
		p25_err_set(&err, 503, "out_of_memory", "out of memory");
		goto reply;
	}
	if (api_begin(r, db, &err) != 0)
		goto reply;
	{
		const char *p[7] = { rep.source, rep.report_id, rep.format, rep.address, rep.category,
				     ev, rep.observed[0] ? rep.observed : NULL };
		res = p25_db_exec(db, &ins, p, &err);
	}
	if (!res)
		goto fail;
	inserted = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	/* "not spam" feedback is kept as evidence, never held against the sender */
	if (inserted && !PQgetisnull(res, 0, 4) && strcmp(rep.category, "not_spam") != 0) {
		snprintf(reason, sizeof(reason), "abuse report (%s) from %.200s", rep.category,
			 rep.source);
		snprintf(code, sizeof(code), "abuse_%s", rep.category);
		if (suspends(rep.category)) {
			json_t *d = json_pack("{s:s, s:s, s:s}", "report", PQgetvalue(res, 0, 0),
					      "source", rep.source, "category", rep.category);
			int s = p25_suspend(db, &api.policy, PQgetvalue(res, 0, 4), "abuse_report", code,
					    reason, d, r->who.sub, &err);
			json_decref(d);
			if (s < 0)
				goto fail;
			action = s == 1 ? "suspended" : "stored";
		} else {
			if (p25_review_item(db, PQgetvalue(res, 0, 5), r->who.sub, code, reason, &err) != 0)
				goto fail;
			action = "queued_for_review";
		}
	}
	if (inserted) {
		json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "source", rep.source, "category",
				      rep.category, "address", rep.address, "action", action);
		int rc = p25_audit(db, r->who.sub, "abuse_report.receive", "abuse_report",
				   PQgetvalue(res, 0, 0),
				   PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3), d, &err);
		json_decref(d);
		if (rc != 0)
			goto fail;
	}
	o = json_pack("{s:s, s:b, s:i, s:s, s:s, s:s}", "id", PQgetvalue(res, 0, 0),
		      "duplicate", !inserted, "times_seen", (int)strtol(PQgetvalue(res, 0, 2), NULL, 10),
		      "action", inserted ? action : "counted", "format", rep.format,
		      "category", rep.category);
	json_object_set_new(o, "tenant", PQgetisnull(res, 0, 3) ? json_null()
			    : json_string(PQgetvalue(res, 0, 3)));
	json_object_set_new(o, "exemption", PQgetisnull(res, 0, 4) ? json_null()
			    : json_string(PQgetvalue(res, 0, 4)));
	if (p25_db_commit(db, &err) != 0) {
		json_decref(o);
		goto reply;
	}
	api_reply_json(r, inserted ? 201 : 200, o);
	goto out;
fail:
	p25_db_rollback(db);
reply:
	api_reply_err(r, &err);
out:
	PQclear(res);
	free(ev);
	json_decref(rep.evidence);
}
