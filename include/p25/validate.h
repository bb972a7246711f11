/*
 * validate.h — syntax checks for values tenants send: domain names,
 * e-mail addresses, ids and timestamps.  Pure functions, thread-safe.
 */
#ifndef P25_VALIDATE_H
#define P25_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

/* A DNS host/domain name: LDH labels of 1..63, total <= 253, at least two
 * labels, a TLD that is not all digits; a trailing dot is allowed. */
bool p25_domain_ok(const char *s);
/* Lower-cases s and drops a trailing dot, in place. */
void p25_domain_normalize(char *s);
/* local@domain, local part of RFC 5321 dot-atom characters (1..64),
 * domain per p25_domain_ok, total <= 254. */
bool p25_email_ok(const char *s);
/* 8-4-4-4-12 hex. */
bool p25_uuid_ok(const char *s);
/* RFC 3339 date-time ("2024-01-31T12:00:00Z", offsets and fractions). */
bool p25_timestamp_ok(const char *s);
/* Printable text without control characters other than \n, \r, \t. */
bool p25_text_ok(const char *s, size_t max_bytes);

#endif
