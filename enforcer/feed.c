/*
 * feed.c — parsing what the API answers on the enforcement endpoints
 * (DESIGN.md "Shapes": feed answer, snapshot).
 *
 * Nothing here decides trust: tokens are carried as opaque strings to
 * state.c, which verifies them.  What is checked here is the framing the
 * agent's bookkeeping relies on — positions strictly increasing and never
 * behind where we asked from, so a confused or hostile answer cannot move
 * the node backwards or make it apply an event twice — and sizes, so one
 * answer cannot make it allocate without bound (the HTTP layer caps the
 * body; jansson's tree of it is bounded by that).
 *
 * Pure; not thread-safe only in that outputs must not be shared.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "p25/b64.h"
#include "enforcer.h"

static void ferr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
ferr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* A JSON integer that fits a feed position. */
static bool
get_pos(json_t *v, long long *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (long long)json_integer_value(v);
	return true;
}

/* Copies a string member of at most dstlen-1 bytes; absent → "". */
static bool
get_str(json_t *o, const char *name, char *dst, size_t dstlen, bool required)
{
	json_t *v = json_object_get(o, name);

	dst[0] = '\0';
	if (!v || json_is_null(v))
		return !required;
	if (!json_is_string(v) || json_string_length(v) >= dstlen ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return false;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return true;
}

static bool
token_text_ok(json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 &&
	       json_string_length(v) <= P25_TOKEN_MAX &&
	       strlen(json_string_value(v)) == json_string_length(v);
}

void
enf_feed_free(struct enf_feed *f)
{
	size_t i;

	if (!f)
		return;
	for (i = 0; i < f->n; i++)
		free(f->ev[i].token);
	free(f->ev);
	memset(f, 0, sizeof(*f));
}

int
enf_feed_parse(const char *json, size_t len, long long after,
	       struct enf_feed *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *events, *e, *tok;
	long long last = after;
	const char *type;
	size_t i;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (err && errlen)
			snprintf(err, errlen, "feed answer is not JSON: %s", jerr.text);
		return -1;
	}
	events = json_object_get(root, "events");
	if (!json_is_object(root) || !json_is_array(events)) {
		ferr(err, errlen, "feed answer has no events array");
		goto out;
	}
	if (!get_pos(json_object_get(root, "next"), &out->next)) {
		ferr(err, errlen, "feed answer has no valid next position");
		goto out;
	}
	if (json_array_size(events) > 0) {
		out->ev = calloc(json_array_size(events), sizeof(*out->ev));
		if (!out->ev) {
			ferr(err, errlen, "out of memory");
			goto out;
		}
	}
	json_array_foreach(events, i, e) {
		struct enf_event *ev = &out->ev[out->n];

		if (!json_is_object(e) || !get_pos(json_object_get(e, "seq"), &ev->seq)) {
			ferr(err, errlen, "feed event %lld has no valid seq", (long long)i);
			goto out;
		}
		if (ev->seq <= last) {
			ferr(err, errlen, "feed event seq %lld is not after the previous position",
			     ev->seq);
			goto out;
		}
		last = ev->seq;
		type = json_string_value(json_object_get(e, "type"));
		if (!type) {
			ferr(err, errlen, "feed event %lld has no type", ev->seq);
			goto out;
		}
		snprintf(ev->type_name, sizeof(ev->type_name), "%s", type);
		ev->type = strcmp(type, "grant") == 0 ? ENF_EV_GRANT
			 : strcmp(type, "renew") == 0 ? ENF_EV_RENEW
			 : strcmp(type, "revoke") == 0 ? ENF_EV_REVOKE : ENF_EV_UNKNOWN;
		out->n++;
		if (ev->type == ENF_EV_UNKNOWN)
			continue;	/* consumed, never applied */
		if (!get_str(e, "exemption", ev->exemption, sizeof(ev->exemption),
			     ev->type == ENF_EV_REVOKE) ||
		    !get_str(e, "cidr", ev->cidr, sizeof(ev->cidr), false)) {
			ferr(err, errlen, "feed event %lld: bad exemption or cidr", ev->seq);
			goto out;
		}
		if (ev->type == ENF_EV_REVOKE) {
			/* a reason longer than we keep is cut, not refused */
			const char *r = json_string_value(json_object_get(e, "reason"));

			if (r)
				snprintf(ev->reason, sizeof(ev->reason), "%s", r);
			if (ev->exemption[0] == '\0') {
				ferr(err, errlen, "feed event %lld: revoke without exemption",
				     ev->seq);
				goto out;
			}
			continue;
		}
		tok = json_object_get(e, "token");
		if (!token_text_ok(tok)) {
			ferr(err, errlen, "feed event %lld: grant/renew without a token", ev->seq);
			goto out;
		}
		ev->token = strdup(json_string_value(tok));
		if (!ev->token) {
			ferr(err, errlen, "out of memory");
			goto out;
		}
	}
	if (out->next < last) {
		ferr(err, errlen, "feed next position %lld is behind its events", out->next);
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		enf_feed_free(out);
	return rc;
}

void
enf_snapshot_free(struct enf_snapshot *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++)
		free(s->tokens[i]);
	free(s->tokens);
	memset(s, 0, sizeof(*s));
}

/* ---- the snapshot's fast path: its one usual shape, without jansson ---- */

struct scan {
	const char *p, *end;
};

static void
sc_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool
sc_lit(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	sc_ws(s);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return false;
	s->p += n;
	return true;
}

static bool
tok_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

/*
 * {"seq":N,"tokens":["<jws>",...]} (either member first, JSON whitespace
 * anywhere) with tokens of base64url and dots only, 1..P25_TOKEN_MAX
 * bytes, and N at most 18 digits: what p25 sends.  1: parsed into out;
 * 0: another shape (out empty: the caller parses with jansson, which
 * decides); -1: out of memory.  Memory: a big snapshot (100,000 tokens,
 * 55 MB) is read in one pass without a JSON tree, about ten times less
 * work than json_loadb().
 */
static int
snapshot_fast(const char *json, size_t len, struct enf_snapshot *out)
{
	struct scan s = { json, json + len };
	bool have_seq = false, have_toks = false;
	const char *q;
	size_t cap = 0, l;
	char **nv;
	int member, d;

	if (!sc_lit(&s, "{"))
		return 0;
	for (member = 0; member < 2; member++) {
		if (member == 1 && !sc_lit(&s, ","))
			goto other;
		if (!have_seq && sc_lit(&s, "\"seq\"")) {
			if (!sc_lit(&s, ":"))
				goto other;
			sc_ws(&s);
			out->seq = 0;
			for (d = 0; s.p < s.end && *s.p >= '0' && *s.p <= '9'; d++, s.p++)
				if (d < 18)	/* more digits: another shape, below */
					out->seq = out->seq * 10 + (*s.p - '0');
			if (d == 0 || d > 18 || (d > 1 && s.p[-d] == '0'))
				goto other;
			have_seq = true;
		} else if (!have_toks && sc_lit(&s, "\"tokens\"")) {
			if (!sc_lit(&s, ":") || !sc_lit(&s, "["))
				goto other;
			have_toks = true;
			if (sc_lit(&s, "]"))
				continue;
			do {
				if (!sc_lit(&s, "\""))
					goto other;
				for (q = s.p; q < s.end && tok_char((unsigned char)*q); q++)
					;
				l = (size_t)(q - s.p);
				if (q == s.end || *q != '"' || l == 0 || l > P25_TOKEN_MAX)
					goto other;
				if (out->n == cap) {
					cap = cap ? cap * 2 : 1024;
					nv = realloc(out->tokens, cap * sizeof(*nv));
					if (!nv)
						goto oom;
					out->tokens = nv;
				}
				out->tokens[out->n] = malloc(l + 1);
				if (!out->tokens[out->n])
					goto oom;
				memcpy(out->tokens[out->n], s.p, l);
				out->tokens[out->n][l] = '\0';
				out->n++;
				s.p = q + 1;
			} while (sc_lit(&s, ","));
			if (!sc_lit(&s, "]"))
				goto other;
		} else {
			goto other;
		}
	}
	if (!sc_lit(&s, "}"))
		goto other;
	sc_ws(&s);
	if (s.p != s.end)
		goto other;
	return 1;
other:
	enf_snapshot_free(out);
	return 0;
oom:
	enf_snapshot_free(out);
	return -1;
}

int
enf_snapshot_parse(const char *json, size_t len, struct enf_snapshot *out,
		   char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *toks, *t;
	size_t i;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	switch (snapshot_fast(json, len, out)) {
	case 1:
		return 0;
	case -1:
		ferr(err, errlen, "out of memory");
		return -1;
	default:
		break;	/* another shape: jansson decides */
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (err && errlen)
			snprintf(err, errlen, "snapshot is not JSON: %s", jerr.text);
		return -1;
	}
	toks = json_object_get(root, "tokens");
	if (!json_is_object(root) || !json_is_array(toks) ||
	    !get_pos(json_object_get(root, "seq"), &out->seq)) {
		ferr(err, errlen, "snapshot lacks seq or tokens");
		goto out;
	}
	if (json_array_size(toks) > 0) {
		out->tokens = calloc(json_array_size(toks), sizeof(char *));
		if (!out->tokens) {
			ferr(err, errlen, "out of memory");
			goto out;
		}
	}
	json_array_foreach(toks, i, t) {
		if (!token_text_ok(t)) {
			ferr(err, errlen, "snapshot token %lld is not a token string", (long long)i);
			goto out;
		}
		out->tokens[out->n] = strdup(json_string_value(t));
		if (!out->tokens[out->n]) {
			ferr(err, errlen, "out of memory");
			goto out;
		}
		out->n++;
	}
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		enf_snapshot_free(out);
	return rc;
}

int
enf_token_kid(const char *token, char *kid, size_t len)
{
	unsigned char hdr[1024];
	const char *dot = strchr(token, '.');
	size_t hlen;
	json_t *h;
	const char *k;
	int rc = -1;

	if (!dot || (size_t)(dot - token) > sizeof(hdr) * 4 / 3 ||
	    p25_b64url_decode(hdr, sizeof(hdr), token, (size_t)(dot - token), &hlen) != 0)
		return -1;
	h = json_loadb((const char *)hdr, hlen, JSON_REJECT_DUPLICATES, NULL);
	k = json_string_value(json_object_get(h, "kid"));
	if (k && strlen(k) > 0 && strlen(k) < len) {
		memcpy(kid, k, strlen(k) + 1);
		rc = 0;
	}
	json_decref(h);
	return rc;
}
