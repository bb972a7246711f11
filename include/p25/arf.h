/*
 * arf.h — reading abuse reports in the Abuse Reporting Format (RFC 5965):
 * a multipart/report; report-type=feedback-report message whose second
 * part, message/feedback-report, holds header-style fields.  Pure; takes
 * untrusted bytes (fuzzed in tests/fuzz).
 */
#ifndef P25_ARF_H
#define P25_ARF_H

#include <stddef.h>

struct json_t;
struct p25_err;

struct p25_arf {
	char feedback_type[32];	/* abuse, fraud, virus, other, not-spam, auth-failure */
	char source_ip[64];
	char arrival_date[40];	/* RFC 3339 UTC, "" when absent */
	char report_id[256];	/* Original-Envelope-Id, the reported message's
				   Message-ID, or a hash of the report */
	struct json_t *fields;	/* every field of the feedback part; owned */
};

/*
 * Parses body (len bytes) sent with the given Content-Type header value.
 * Returns 0, or -1 with err 400/422 naming what is missing or malformed.
 * On success the caller releases out->fields with json_decref.
 */
int p25_arf_parse(const char *content_type, const char *body, size_t len,
		  struct p25_arf *out, struct p25_err *err);

/* RFC 5322 date-time → RFC 3339 UTC ("2026-11-26T21:00:00Z"); -1 if bad. */
int p25_rfc5322_date(const char *in, char *out, size_t len);

#endif
