/*
 * err.h — the one error type of p25.
 *
 * Every fallible function returns int (0 ok, -1 error) and fills a caller's
 * struct p25_err.  The HTTP layer turns it into RFC 9457 problem+json with
 * p25_problem_json(); the database layer fills it from a SQLSTATE through
 * the single map in err.c.  Thread-safe: the struct is owned by the caller.
 */
#ifndef P25_ERR_H
#define P25_ERR_H

#include <stdarg.h>
#include <stddef.h>

struct json_t;

struct p25_err {
	int status;		/* HTTP status the error answers with */
	char code[48];		/* stable machine code, e.g. "address_not_held" */
	char title[96];		/* short summary, constant per code */
	char detail[512];	/* this occurrence */
	char hint[256];		/* what the caller can do about it */
	char field[128];	/* the input field, "addresses[2]", or "" */
	char sqlstate[6];	/* when it came from PostgreSQL */
	int retry_after;	/* seconds, for 429/503; 0 = none */
	struct json_t *errors;	/* optional array of {field, code, detail}; owned */
};

/* Clears e (releasing e->errors). */
void p25_err_clear(struct p25_err *e);

/* Fills e and returns -1 so callers can `return p25_err_set(...)`. */
int p25_err_set(struct p25_err *e, int status, const char *code,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int p25_err_field(struct p25_err *e, int status, const char *code,
		  const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void p25_err_hint(struct p25_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Adds one entry to e->errors (for forms: every field at once). */
void p25_err_add(struct p25_err *e, const char *field, const char *code,
		 const char *detail);

/* HTTP status for a SQLSTATE (the one map), and the stable code for it. */
int p25_sqlstate_http(const char *sqlstate, const char **code);

/* The problem+json body for e; caller frees with free(). */
char *p25_problem_json(const struct p25_err *e, const char *instance);

/* Standard title for an HTTP status ("Not Found"). */
const char *p25_http_reason(int status);

#endif
