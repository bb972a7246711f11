/*
 * err.c — struct p25_err, the SQLSTATE → HTTP map and the RFC 9457
 * problem+json writer.  Pure functions; thread-safe.
 */
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "p25/err.h"

void
p25_err_clear(struct p25_err *e)
{
	if (e->errors)
		json_decref(e->errors);
	memset(e, 0, sizeof(*e));
}

static int __attribute__((format(printf, 5, 0)))
err_vset(struct p25_err *e, int status, const char *code, const char *field,
	 const char *fmt, va_list ap)
{
	e->status = status;
	snprintf(e->code, sizeof(e->code), "%s", code);
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	snprintf(e->title, sizeof(e->title), "%s", p25_http_reason(status));
	return -1;
}

int
p25_err_set(struct p25_err *e, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(e, status, code, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int
p25_err_field(struct p25_err *e, int status, const char *code,
	      const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(e, status, code, field, fmt, ap);
	va_end(ap);
	p25_err_add(e, field, code, e->detail);
	return -1;
}

void
p25_err_hint(struct p25_err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->hint, sizeof(e->hint), fmt, ap);
	va_end(ap);
}

void
p25_err_add(struct p25_err *e, const char *field, const char *code,
	    const char *detail)
{
	if (!e->errors)
		e->errors = json_array();
	if (!e->errors || json_array_size(e->errors) >= 64)
		return;
	json_array_append_new(e->errors, json_pack("{s:s, s:s, s:s}",
	    "field", field ? field : "", "code", code, "detail", detail));
}

/*
 * The one SQLSTATE map.  Classes first matched by full code, then by the
 * two-character class.  Anything unknown is a 500: the detail of a server
 * error is never shown to the client (it is logged).
 */
static const struct {
	const char *state;
	int status;
	const char *code;
} sqlstate_map[] = {
	{ "23505", 409, "conflict" },		/* unique_violation */
	{ "23P01", 409, "conflict" },		/* exclusion_violation */
	{ "23503", 409, "conflict" },		/* foreign_key_violation */
	{ "23514", 422, "constraint_violation" },	/* check_violation */
	{ "23502", 422, "constraint_violation" },	/* not_null_violation */
	{ "22P02", 400, "invalid_input" },	/* invalid_text_representation */
	{ "22007", 400, "invalid_input" },	/* invalid_datetime_format */
	{ "22008", 400, "invalid_input" },	/* datetime_field_overflow */
	{ "22003", 400, "invalid_input" },	/* numeric_value_out_of_range */
	{ "40001", 409, "serialization_failure" },
	{ "40P01", 503, "deadlock" },
	{ "55P03", 409, "locked" },		/* lock_not_available */
	{ "53300", 503, "database_busy" },	/* too_many_connections */
	{ "57014", 503, "database_timeout" },	/* query_canceled */
	{ "57P01", 503, "database_unavailable" },	/* admin_shutdown */
	{ "42501", 500, "database_privilege" },	/* insufficient_privilege */
	{ "P0001", 422, "rejected" },		/* raise_exception from a rule */
	{ "08", 503, "database_unavailable" },	/* connection exceptions */
	{ "53", 503, "database_busy" },		/* insufficient resources */
	{ "22", 400, "invalid_input" },		/* data exceptions */
};

int
p25_sqlstate_http(const char *sqlstate, const char **code)
{
	size_t i;

	if (!sqlstate || !*sqlstate) {
		*code = "database_unavailable";
		return 503;
	}
	for (i = 0; i < sizeof(sqlstate_map) / sizeof(sqlstate_map[0]); i++) {
		size_t n = strlen(sqlstate_map[i].state);
		if (strncmp(sqlstate, sqlstate_map[i].state, n) == 0) {
			*code = sqlstate_map[i].code;
			return sqlstate_map[i].status;
		}
	}
	*code = "internal";
	return 500;
}

const char *
p25_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

char *
p25_problem_json(const struct p25_err *e, const char *instance)
{
	json_t *o;
	char type[128];
	char *s;
	int status = e->status ? e->status : 500;

	snprintf(type, sizeof(type), "https://p25.dev/problems/%s",
		 e->code[0] ? e->code : "internal");
	o = json_pack("{s:s, s:s, s:i, s:s}", "type", type,
		      "title", e->title[0] ? e->title : p25_http_reason(status),
		      "status", status, "code", e->code[0] ? e->code : "internal");
	if (!o)
		return NULL;
	if (e->detail[0])
		json_object_set_new(o, "detail", json_string(e->detail));
	if (e->hint[0])
		json_object_set_new(o, "hint", json_string(e->hint));
	if (e->field[0])
		json_object_set_new(o, "field", json_string(e->field));
	if (instance)
		json_object_set_new(o, "instance", json_string(instance));
	if (e->errors && json_array_size(e->errors) > 0)
		json_object_set(o, "errors", e->errors);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}
