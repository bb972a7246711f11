/* test_arf.c — RFC 5965 abuse reports (core/arf.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "p25/arf.h"
#include "p25/err.h"

#define CT "multipart/report; report-type=feedback-report; boundary=\"B1\""

static const char report[] =
	"--B1\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
	"--B1\r\nContent-Type: message/feedback-report\r\n\r\n"
	"Feedback-Type: abuse\r\nUser-Agent: Feedy/1.0\r\nVersion: 1\r\n"
	"Source-IP: 81.2.69.5\r\nArrival-Date: Thu, 26 Nov 2026 20:00:00 +0100\r\n"
	"Reported-Domain: example.com\r\n  (folded)\r\n\r\n"
	"--B1\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <spam-1@example.com>\r\n"
	"Subject: <b>win</b>\r\n\r\nbody\r\n--B1--\r\n";

static void
test_parse_report(void **state)
{
	struct p25_arf a;
	struct p25_err err = { 0 };

	assert_int_equal(p25_arf_parse(CT, report, strlen(report), &a, &err), 0);
	assert_string_equal(a.feedback_type, "abuse");
	assert_string_equal(a.source_ip, "81.2.69.5");
	assert_string_equal(a.arrival_date, "2026-11-26T19:00:00Z");
	assert_string_equal(a.report_id, "<spam-1@example.com>");
	assert_string_equal(json_string_value(json_object_get(a.fields, "reported-domain")),
			    "example.com  (folded)");
	json_decref(a.fields);
}

static void
test_refusals(void **state)
{
	static const struct { const char *ct, *body; int status; } bad[] = {
		{ "application/json", report, 415 },
		{ "multipart/report; boundary=B1", report, 422 },	/* no report-type */
		{ "multipart/report; report-type=feedback-report", report, 422 },	/* no boundary */
		{ "multipart/report; report-type=feedback-report; boundary=XX", report, 422 },
		{ CT, "--B1\r\nContent-Type: message/feedback-report\r\n\r\nSource-IP: 1.2.3.4\r\n--B1--", 422 },
		{ CT, "--B1\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n--B1--", 422 },
		{ CT, "--B1\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
		      "Source-IP: 1.2.3.4\r\nArrival-Date: yesterday\r\n--B1--", 422 },
		{ CT, "", 422 },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct p25_arf a;
		struct p25_err err = { 0 };
		assert_int_equal(p25_arf_parse(bad[i].ct, bad[i].body, strlen(bad[i].body), &a, &err), -1);
		assert_int_equal(err.status, bad[i].status);
		assert_null(a.fields);
		p25_err_clear(&err);
	}
}

static void
test_report_id_fallback(void **state)
{
	static const char body[] = "--B1\r\nContent-Type: message/feedback-report\r\n\r\n"
				   "Feedback-Type: virus\r\nSource-IP: 2a02:ff0:1::5\r\n--B1--\r\n";
	struct p25_arf a, b;
	struct p25_err err = { 0 };

	assert_int_equal(p25_arf_parse(CT, body, strlen(body), &a, &err), 0);
	assert_int_equal(p25_arf_parse(CT, body, strlen(body), &b, &err), 0);
	assert_int_equal(strncmp(a.report_id, "sha:", 4), 0);
	assert_string_equal(a.report_id, b.report_id);	/* stable: duplicates are counted */
	assert_string_equal(a.arrival_date, "");
	json_decref(a.fields);
	json_decref(b.fields);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_report),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_report_id_fallback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
