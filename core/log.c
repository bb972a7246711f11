/*
 * log.c — JSON-lines logging.  A line is built in memory and written with
 * one write(2) so lines from different threads never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "p25/log.h"

static const char *log_process = "p25";
static enum p25_log_level log_min = P25_LOG_INFO;
static _Thread_local char log_ctx[64];

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
p25_log_init(const char *process, const char *level)
{
	int i;

	log_process = process;
	for (i = 0; level && i < 4; i++)
		if (strcmp(level, level_names[i]) == 0)
			log_min = (enum p25_log_level)i;
}

void
p25_log_ctx(const char *id)
{
	snprintf(log_ctx, sizeof(log_ctx), "%s", id ? id : "");
}

const char *
p25_log_ctx_get(void)
{
	return log_ctx;
}

int
p25_log_enabled(enum p25_log_level lvl)
{
	return lvl >= log_min;
}

void
p25_logj(enum p25_log_level lvl, const char *event, json_t *obj)
{
	struct timespec ts;
	struct tm tm;
	char tbuf[64];
	char *line;
	size_t len;

	if (lvl < log_min) {
		json_decref(obj);
		return;
	}
	if (!obj)
		obj = json_object();
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(tbuf, sizeof(tbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000) % 1000);
	json_object_set_new(obj, "ts", json_string(tbuf));
	json_object_set_new(obj, "level", json_string(level_names[lvl]));
	json_object_set_new(obj, "proc", json_string(log_process));
	json_object_set_new(obj, "event", json_string(event));
	if (log_ctx[0])
		json_object_set_new(obj, "id", json_string(log_ctx));
	line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!line)
		return;
	len = strlen(line);
	line[len] = '\n';	/* json_dumps leaves room: overwrite the NUL */
	if (write(STDERR_FILENO, line, len + 1) < 0) {
		/* nowhere left to report it */
	}
	free(line);
}

void
p25_logf(enum p25_log_level lvl, const char *event, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *o;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_object();
	/* json_string refuses invalid UTF-8; fall back to an escaped copy */
	if (json_object_set_new(o, "msg", json_string(msg)) != 0)
		json_object_set_new(o, "msg", json_string("(non-UTF-8 message)"));
	p25_logj(lvl, event, o);
}
