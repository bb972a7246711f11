/*
 * input.c — checks shared by handlers that take a JSON body: unknown
 * fields, typed field access, address lists.  Every failure is added to
 * err->errors with the field that caused it, so a form can show them all
 * next to their fields at once; the caller answers 422 when any were added.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>

#include "api.h"
#include "input.h"
#include "p25/b64.h"
#include "p25/ipaddr.h"
#include "p25/validate.h"

int
input_known_fields(json_t *body, const char *const *allowed, struct p25_err *err)
{
	const char *key;
	json_t *v;
	int bad = 0;

	json_object_foreach(body, key, v) {
		const char *const *a;
		int ok = 0;
		for (a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				ok = 1;
		if (!ok) {
			char detail[200];
			snprintf(detail, sizeof(detail), "unknown field \"%.100s\"", key);
			p25_err_add(err, key, "unknown_field", detail);
			bad++;
		}
	}
	return bad;
}

const char *
input_string(json_t *body, const char *field, bool required, size_t max,
	     struct p25_err *err)
{
	json_t *v = json_object_get(body, field);
	char detail[160];

	if (!v || json_is_null(v)) {
		if (required)
			p25_err_add(err, field, "required", "this field is required");
		return NULL;
	}
	if (!json_is_string(v)) {
		p25_err_add(err, field, "invalid_type", "must be a string");
		return NULL;
	}
	if (json_string_length(v) > max) {
		snprintf(detail, sizeof(detail), "must be at most %zu bytes", max);
		p25_err_add(err, field, "too_long", detail);
		return NULL;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		p25_err_add(err, field, "invalid_text", "must not contain NUL characters");
		return NULL;
	}
	return json_string_value(v);
}

int
input_addresses(json_t *arr, const char *field, int max_entries, int max_v4,
		int max_v6, struct p25_prefix *out, int *n, struct p25_err *err)
{
	size_t i, j;
	json_t *v;
	char fname[64], detail[300];
	int bad = 0;

	*n = 0;
	if (!json_is_array(arr)) {
		p25_err_add(err, field, arr ? "invalid_type" : "required",
			    arr ? "must be an array of addresses or prefixes"
				: "this field is required");
		return 1;
	}
	if (json_array_size(arr) == 0) {
		p25_err_add(err, field, "required", "name at least one address");
		return 1;
	}
	if (json_array_size(arr) > (size_t)max_entries) {
		snprintf(detail, sizeof(detail), "at most %d entries", max_entries);
		p25_err_add(err, field, "too_many_addresses", detail);
		return 1;
	}
	json_array_foreach(arr, i, v) {
		struct p25_err e = { 0 };
		struct p25_prefix *p = &out[*n];
		const char *why;

		snprintf(fname, sizeof(fname), "%s[%zu]", field, i);
		if (!json_is_string(v)) {
			p25_err_add(err, fname, "invalid_type", "must be a string");
			bad++;
			continue;
		}
		if (p25_prefix_parse(json_string_value(v), p, &e) != 0) {
			if (e.hint[0])
				snprintf(detail, sizeof(detail), "%.200s (%.90s)", e.detail, e.hint);
			else
				snprintf(detail, sizeof(detail), "%.290s", e.detail);
			p25_err_add(err, fname, e.code, detail);
			p25_err_clear(&e);
			bad++;
			continue;
		}
		why = p25_prefix_special(p);
		if (why) {
			char txt[P25_PREFIX_STRLEN];
			p25_prefix_format(p, txt, sizeof(txt));
			snprintf(detail, sizeof(detail),
			    "%s is not a public address (%s): it can never send mail on the internet",
			    txt, why);
			p25_err_add(err, fname, "non_public_address", detail);
			bad++;
			continue;
		}
		if (max_v4 >= 0 && ((p->family == AF_INET && p->len < max_v4) ||
		    (p->family == AF_INET6 && p->len < max_v6))) {
			snprintf(detail, sizeof(detail),
			    "the prefix is too wide: at most /%d for IPv4 and /%d for IPv6",
			    max_v4, max_v6);
			p25_err_add(err, fname, "prefix_too_wide", detail);
			bad++;
			continue;
		}
		for (j = 0; j < (size_t)*n; j++) {
			if (p25_prefix_overlaps(&out[j], p)) {
				snprintf(detail, sizeof(detail),
				    "overlaps entry %zu of the same list", j);
				p25_err_add(err, fname, "duplicate_address", detail);
				bad++;
				break;
			}
		}
		if (j == (size_t)*n)
			(*n)++;
	}
	return bad;
}

char *
input_cidr_array(const struct p25_prefix *p, int n)
{
	size_t cap = 3 + (size_t)n * (P25_PREFIX_STRLEN + 1), len = 1;	/* "{" … "}" NUL */
	char *s = malloc(cap);
	int i;

	if (!s)
		return NULL;
	s[0] = '{';
	for (i = 0; i < n; i++) {
		if (i)
			s[len++] = ',';
		p25_prefix_format(&p[i], s + len, cap - len);
		len += strlen(s + len);
	}
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

int
input_validation_failed(struct p25_err *err)
{
	size_t n = err->errors ? json_array_size(err->errors) : 0;
	json_t *first = n ? json_array_get(err->errors, 0) : NULL;

	const char *code = first ? json_string_value(json_object_get(first, "code")) : NULL;
	size_t i;

	/* one kind of problem names the code; mixed ones are validation_failed */
	for (i = 1; code && i < n; i++)
		if (strcmp(code, json_string_value(json_object_get(json_array_get(err->errors, i),
								   "code"))) != 0)
			code = NULL;
	err->status = 422;
	snprintf(err->title, sizeof(err->title), "%s", p25_http_reason(422));
	snprintf(err->code, sizeof(err->code), "%s", code ? code : "validation_failed");
	snprintf(err->field, sizeof(err->field), "%s",
		 first ? json_string_value(json_object_get(first, "field")) : "");
	if (n == 1)
		snprintf(err->detail, sizeof(err->detail), "%s: %s", err->field,
			 json_string_value(json_object_get(first, "detail")));
	else
		snprintf(err->detail, sizeof(err->detail),
			 "%zu fields are not acceptable; see errors", n);
	return -1;
}

int
input_query_long(const char *value, const char *name, long def, long lo, long hi,
		 long *out, struct p25_err *err)
{
	char *end;
	long v;

	*out = def;
	if (!value)
		return 0;
	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || *end || end == value || v < lo || v > hi)
		return p25_err_field(err, 400, "invalid_parameter", name,
				     "%s must be a whole number from %ld to %ld", name, lo, hi);
	*out = v;
	return 0;
}

int
input_domains(json_t *v, const char *field, json_t *out, struct p25_err *err)
{
	size_t i;
	json_t *d;
	int bad = 0;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > 20) {
		p25_err_add(err, field, "invalid_value",
			    "must be an array of at most 20 domain names");
		return 1;
	}
	json_array_foreach(v, i, d) {
		char fname[64], name[256];
		snprintf(fname, sizeof(fname), "%s[%zu]", field, i);
		if (!json_is_string(d) || json_string_length(d) > 254 ||
		    !p25_domain_ok(json_string_value(d))) {
			p25_err_add(err, fname, "invalid_domain", "is not a domain name (example.com)");
			bad++;
			continue;
		}
		snprintf(name, sizeof(name), "%s", json_string_value(d));
		p25_domain_normalize(name);
		json_array_append_new(out, json_string(name));
	}
	return bad;
}

/* Cursor: base64url of "<created_at in µs since epoch>/<uuid>". */
int
api_cursor_decode(const char *c, char *us, size_t uslen, char *id, size_t idlen)
{
	unsigned char buf[80];
	size_t n;
	char *slash;

	if (strlen(c) > 100 || p25_b64url_decode(buf, sizeof(buf) - 1, c, strlen(c), &n) != 0)
		return -1;
	buf[n] = '\0';
	slash = strchr((char *)buf, '/');
	if (!slash || (size_t)(slash - (char *)buf) >= uslen || slash == (char *)buf)
		return -1;
	*slash = '\0';
	for (char *q = (char *)buf; *q; q++)
		if ((*q < '0' || *q > '9') && !(q == (char *)buf && *q == '-'))
			return -1;
	if (!p25_uuid_ok(slash + 1) || strlen(slash + 1) >= idlen)
		return -1;
	snprintf(us, uslen, "%s", (char *)buf);
	snprintf(id, idlen, "%s", slash + 1);
	return 0;
}

json_t *
api_cursor_encode(const char *us, const char *id)
{
	char raw[80];
	char *enc;
	json_t *v;

	snprintf(raw, sizeof(raw), "%s/%s", us, id);
	enc = p25_b64url_encode_alloc((const unsigned char *)raw, strlen(raw));
	v = enc ? json_string(enc) : json_null();
	free(enc);
	return v;
}

