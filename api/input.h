/* input.h — body checks shared by handlers (see input.c). */
#ifndef P25_API_INPUT_H
#define P25_API_INPUT_H

#include <stdbool.h>
#include <stdlib.h>
#include <jansson.h>

struct p25_err;
struct p25_prefix;

/* Adds an error per field of body not in the NULL-terminated allowed list;
 * returns how many. */
int input_known_fields(json_t *body, const char *const *allowed, struct p25_err *err);
/* The string value of field (borrowed from body), NULL when absent or bad
 * (adding the error). */
const char *input_string(json_t *body, const char *field, bool required,
			 size_t max, struct p25_err *err);
/*
 * Parses an array of addresses/prefixes into out (room for max_entries):
 * normalized, public only, no wider than /max_v4 or /max_v6 (max_v4 < 0:
 * no width limit), no overlaps within the list.  Returns the number of
 * errors added.
 */
int input_addresses(json_t *arr, const char *field, int max_entries,
		    int max_v4, int max_v6, struct p25_prefix *out, int *n,
		    struct p25_err *err);
/* Appends the normalized domain names of array v to out; returns the
 * number of errors added. */
int input_domains(json_t *v, const char *field, json_t *out, struct p25_err *err);
/*
 * The query parameter name as a whole number in [lo, hi], or def when
 * absent.  -1 with err 400 invalid_parameter naming it otherwise.
 */
int input_query_long(const char *value, const char *name, long def, long lo, long hi,
		     long *out, struct p25_err *err);
/* Opaque list cursors: "<µs since the epoch>/<uuid>" in base64url. */
int api_cursor_decode(const char *c, char *us, size_t uslen, char *id, size_t idlen);
json_t *api_cursor_encode(const char *us, const char *id);
/* PostgreSQL array literal of the prefixes ("{81.2.69.5/32,…}"); malloc'd. */
char *input_cidr_array(const struct p25_prefix *p, int n);
/* Turns err->errors into the 422 answer; returns -1. */
int input_validation_failed(struct p25_err *err);

#endif
