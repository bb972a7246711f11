/*
 * arf.c — RFC 5965 feedback reports (see arf.h).
 *
 * Deliberately small: find the MIME boundary in the Content-Type, walk the
 * parts, take the one whose Content-Type is message/feedback-report, and
 * read its fields (with RFC 5322 folding).  Everything is bounded: at most
 * 64 parts, 128 fields, 1000 bytes a field value.  Field names and values
 * are kept as JSON strings (never interpreted beyond the few we use).
 */

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <jansson.h>
#include <sodium.h>

#include "p25/arf.h"
#include "p25/err.h"

/* A parameter of a header value: boundary="x" or boundary=x. */
static int
header_param(const char *value, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);
	const char *p = value;

	while ((p = strcasestr(p, name)) != NULL) {
		if ((p == value || p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t') && p[n] == '=') {
			const char *v = p + n + 1;
			size_t k = 0;
			if (*v == '"') {
				v++;
				while (*v && *v != '"' && k + 1 < len)
					out[k++] = *v++;
			} else {
				while (*v && *v != ';' && !isspace((unsigned char)*v) && k + 1 < len)
					out[k++] = *v++;
			}
			out[k] = '\0';
			return k > 0 ? 0 : -1;
		}
		p += n;
	}
	return -1;
}

/* Finds needle (len nlen) in [hay, hay+hlen). */
static const char *
memfind(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	const char *end = hay + hlen;

	if (nlen == 0 || hlen < nlen)
		return NULL;
	for (const char *p = hay; p + nlen <= end; p++) {
		p = memchr(p, needle[0], (size_t)(end - p));
		if (!p || p + nlen > end)
			return NULL;
		if (memcmp(p, needle, nlen) == 0)
			return p;
	}
	return NULL;
}

/* End of the header block: offset of the body, or len when none. */
static size_t
header_end(const char *s, size_t len, size_t *hlen)
{
	const char *a = memfind(s, len, "\r\n\r\n", 4);
	const char *b = memfind(s, len, "\n\n", 2);

	if (a && (!b || a < b)) {
		*hlen = (size_t)(a - s);
		return *hlen + 4;
	}
	if (b) {
		*hlen = (size_t)(b - s);
		return *hlen + 2;
	}
	*hlen = len;
	return len;
}

/* Parses header-style fields into obj (name lower-cased → value). */
static int
parse_fields(const char *s, size_t len, json_t *obj)
{
	char name[80], value[1001];
	size_t i = 0, vlen = 0;
	int nfields = 0;
	bool have = false;

	while (i < len) {
		size_t eol = i;
		while (eol < len && s[eol] != '\n')
			eol++;
		size_t ll = eol - i;
		if (ll > 0 && s[i + ll - 1] == '\r')
			ll--;
		if (ll > 0 && (s[i] == ' ' || s[i] == '\t') && have) {
			/* folded continuation */
			size_t k = 0;
			while (k < ll && vlen + 1 < sizeof(value)) {
				char c = s[i + k++];
				value[vlen++] = (c == '\t') ? ' ' : c;
			}
		} else if (ll > 0) {
			const char *colon = memchr(s + i, ':', ll);
			if (have && nfields < 128) {
				value[vlen] = '\0';
				json_object_set_new(obj, name, json_string(value));
				nfields++;
			}
			have = false;
			if (colon && (size_t)(colon - (s + i)) < sizeof(name) && colon > s + i) {
				size_t nl = (size_t)(colon - (s + i)), k;
				for (k = 0; k < nl; k++)
					name[k] = (char)tolower((unsigned char)s[i + k]);
				name[nl] = '\0';
				const char *v = colon + 1;
				const char *ve = s + i + ll;
				while (v < ve && (*v == ' ' || *v == '\t'))
					v++;
				vlen = 0;
				while (v < ve && vlen + 1 < sizeof(value))
					value[vlen++] = *v++;
				have = true;
			}
		}
		i = eol + 1;
	}
	if (have && nfields < 128) {
		value[vlen] = '\0';
		json_object_set_new(obj, name, json_string(value));
	}
	/* drop values that were not valid UTF-8 (json_string returned NULL) */
	return 0;
}

/* RFC 5322 §4.3 obsolete zone names → an offset. */
static const struct { const char *name; const char *off; } obs_zones[] = {
	{ "UT", "+0000" }, { "GMT", "+0000" }, { "Z", "+0000" },
	{ "EST", "-0500" }, { "EDT", "-0400" }, { "CST", "-0600" }, { "CDT", "-0500" },
	{ "MST", "-0700" }, { "MDT", "-0600" }, { "PST", "-0800" }, { "PDT", "-0700" },
};

static int
date_parse(const char *in, char *out, size_t len);

int
p25_rfc5322_date(const char *in, char *out, size_t len)
{
	char buf[128];
	size_t n = strlen(in), i;
	const char *sp;

	if (date_parse(in, out, len) == 0)
		return 0;
	/* an obsolete zone name as the last word */
	sp = strrchr(in, ' ');
	if (!sp || n >= sizeof(buf))
		return -1;
	for (i = 0; i < sizeof(obs_zones) / sizeof(obs_zones[0]); i++) {
		if (strcasecmp(sp + 1, obs_zones[i].name) != 0)
			continue;
		snprintf(buf, sizeof(buf), "%.*s %s", (int)(sp - in), in, obs_zones[i].off);
		return date_parse(buf, out, len);
	}
	return -1;
}

static int
date_parse(const char *in, char *out, size_t len)
{
	static const char *const fmts[] = { "%a, %d %b %Y %H:%M:%S %z", "%d %b %Y %H:%M:%S %z",
					    "%a, %d %b %Y %H:%M %z", NULL };
	const char *const *f;

	for (f = fmts; *f; f++) {
		struct tm tm;
		char *end;
		memset(&tm, 0, sizeof(tm));
		end = strptime(in, *f, &tm);
		if (!end)
			continue;
		while (*end == ' ')
			end++;
		if (*end && *end != '(')	/* a trailing comment "(UTC)" is fine */
			continue;
		{
			long off = tm.tm_gmtoff;
			time_t t = timegm(&tm) - off;
			struct tm u;
			gmtime_r(&t, &u);
			strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &u);
		}
		return 0;
	}
	return -1;
}

int
p25_arf_parse(const char *ctype, const char *body, size_t len, struct p25_arf *out,
	      struct p25_err *err)
{
	char boundary[200], delim[210], rtype[64];
	const char *p, *end = body + len;
	json_t *fields = NULL;
	int parts = 0;
	bool found = false;
	const char *v;

	memset(out, 0, sizeof(*out));
	if (!ctype || strncasecmp(ctype, "multipart/report", 16) != 0)
		return p25_err_set(err, 415, "unsupported_media_type",
				   "an ARF report is multipart/report");
	if (header_param(ctype, "report-type", rtype, sizeof(rtype)) != 0 ||
	    strcasecmp(rtype, "feedback-report") != 0)
		return p25_err_set(err, 422, "invalid_arf",
				   "the multipart/report must have report-type=feedback-report");
	if (header_param(ctype, "boundary", boundary, sizeof(boundary)) != 0)
		return p25_err_set(err, 422, "invalid_arf", "the Content-Type has no boundary");
	snprintf(delim, sizeof(delim), "--%s", boundary);
	p = memfind(body, len, delim, strlen(delim));
	while (p && parts < 64) {
		const char *start = p + strlen(delim), *next;
		size_t hlen, boff, plen;
		char pct[200];
		json_t *ph;

		if (start + 2 <= end && start[0] == '-' && start[1] == '-')
			break;		/* closing delimiter */
		while (start < end && (*start == '\r' || *start == '\n' || *start == ' '))
			start++;
		next = memfind(start, (size_t)(end - start), delim, strlen(delim));
		plen = (size_t)((next ? next : end) - start);
		parts++;
		boff = header_end(start, plen, &hlen);
		ph = json_object();
		parse_fields(start, hlen, ph);
		v = json_string_value(json_object_get(ph, "content-type"));
		snprintf(pct, sizeof(pct), "%s", v ? v : "text/plain");
		json_decref(ph);
		if (strncasecmp(pct, "message/feedback-report", 23) == 0 && !found) {
			fields = json_object();
			parse_fields(start + boff, plen - boff, fields);
			found = true;
		} else if ((strncasecmp(pct, "message/rfc822", 14) == 0 ||
			    strncasecmp(pct, "text/rfc822-headers", 19) == 0) && !out->report_id[0]) {
			json_t *mh = json_object();
			size_t mhlen;
			header_end(start + boff, plen - boff, &mhlen);
			parse_fields(start + boff, mhlen, mh);
			v = json_string_value(json_object_get(mh, "message-id"));
			if (v)
				snprintf(out->report_id, sizeof(out->report_id), "%s", v);
			json_decref(mh);
		}
		p = next;
	}
	if (!found)
		return p25_err_set(err, 422, "invalid_arf",
				   "no message/feedback-report part was found");
	out->fields = fields;
	v = json_string_value(json_object_get(fields, "feedback-type"));
	if (!v || !*v) {
		p25_err_set(err, 422, "invalid_arf", "the feedback report has no Feedback-Type");
		goto bad;
	}
	snprintf(out->feedback_type, sizeof(out->feedback_type), "%s", v);
	v = json_string_value(json_object_get(fields, "source-ip"));
	if (!v || !*v) {
		p25_err_set(err, 422, "invalid_arf", "the feedback report has no Source-IP");
		goto bad;
	}
	snprintf(out->source_ip, sizeof(out->source_ip), "%s", v);
	v = json_string_value(json_object_get(fields, "arrival-date"));
	if (!v)
		v = json_string_value(json_object_get(fields, "received-date"));
	if (v && p25_rfc5322_date(v, out->arrival_date, sizeof(out->arrival_date)) != 0) {
		p25_err_set(err, 422, "invalid_arf", "Arrival-Date is not an RFC 5322 date");
		goto bad;
	}
	v = json_string_value(json_object_get(fields, "original-envelope-id"));
	if (v && *v)
		snprintf(out->report_id, sizeof(out->report_id), "%s", v);
	if (!out->report_id[0]) {
		unsigned char h[16];
		crypto_generichash(h, sizeof(h), (const unsigned char *)body, len, NULL, 0);
		memcpy(out->report_id, "sha:", 4);
		sodium_bin2hex(out->report_id + 4, sizeof(out->report_id) - 4, h, sizeof(h));
	}
	return 0;
bad:
	json_decref(fields);
	out->fields = NULL;
	return -1;
}
