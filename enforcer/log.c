/*
 * log.c — the agent's structured log: one JSON object a line on stderr
 * (STYLE.md §7), {"ts","level","component","event", ...fields}.
 *
 * Callers build fields with a json_pack() format; this module adds
 * nothing it was not given, so keeping the bearer token, keys and tokens
 * out of the log is the callers' rule (they log kids, jtis and cidrs).
 * Strings from the network (reasons, error texts) go through jansson, which
 * escapes them: a log line cannot be split or forged by a value.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <jansson.h>

#include "enforcer.h"

static enum enf_level min_level = ENF_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
enf_log_set_level(enum enf_level lv)
{
	min_level = lv;
}

int
enf_log_parse_level(const char *s, enum enf_level *out)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum enf_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = ENF_WARN;
		return 0;
	}
	return -1;
}

void
enf_log(enum enf_level lv, const char *event, const char *fields, ...)
{
	struct timeval tv;
	struct tm tm;
	char ts[96];
	json_t *o, *extra = NULL;
	json_error_t jerr;
	va_list ap;
	char *line;

	if (lv < min_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (long)(tv.tv_usec / 1000) % 1000);
	o = json_object();
	if (!o)
		return;
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "level", json_string(level_names[lv]));
	json_object_set_new(o, "component", json_string("p25-enforcer"));
	json_object_set_new(o, "event", json_string(event));
	if (fields) {
		va_start(ap, fields);
		extra = json_vpack_ex(&jerr, 0, fields, ap);
		va_end(ap);
		if (extra)
			json_object_update(o, extra);
		else
			json_object_set_new(o, "log_error", json_string(jerr.text));
		json_decref(extra);
	}
	line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!line)
		return;
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
	free(line);
}
