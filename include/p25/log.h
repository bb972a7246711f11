/*
 * log.h — structured logs: one JSON object a line on stderr.
 *
 * Every line carries ts, level, event, the process name and, when set, the
 * id of the request or job the thread is working on (thread-local).  Never
 * pass a token, a key or an Authorization header to these functions: the
 * fields are written as given.  Thread-safe (one write(2) per line).
 */
#ifndef P25_LOG_H
#define P25_LOG_H

struct json_t;

enum p25_log_level { P25_LOG_DEBUG, P25_LOG_INFO, P25_LOG_WARN, P25_LOG_ERROR };

void p25_log_init(const char *process, const char *level);
/* Sets the thread's context id (request or job id); NULL clears it. */
void p25_log_ctx(const char *id);
const char *p25_log_ctx_get(void);

void p25_logf(enum p25_log_level lvl, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Logs with extra fields from obj (reference stolen; may be NULL). */
void p25_logj(enum p25_log_level lvl, const char *event, struct json_t *obj);
int p25_log_enabled(enum p25_log_level lvl);

#define p25_debug(ev, ...) p25_logf(P25_LOG_DEBUG, ev, __VA_ARGS__)
#define p25_info(ev, ...) p25_logf(P25_LOG_INFO, ev, __VA_ARGS__)
#define p25_warn(ev, ...) p25_logf(P25_LOG_WARN, ev, __VA_ARGS__)
#define p25_error(ev, ...) p25_logf(P25_LOG_ERROR, ev, __VA_ARGS__)

#endif
