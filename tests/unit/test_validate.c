/* test_validate.c — table-driven tests of validate.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "p25/validate.h"

static const struct { const char *s; bool ok; } domains[] = {
	{ "example.com", true }, { "mail.example.co.uk", true }, { "example.com.", true },
	{ "xn--bcher-kva.example", true }, { "a-b.example", true },
	{ "example", false }, { "", false }, { ".example.com", false },
	{ "exa mple.com", false }, { "-a.example", false }, { "a-.example", false },
	{ "example..com", false }, { "1.2.3.4", false }, { "<b>.example", false },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", false },
};

static const struct { const char *s; bool ok; } emails[] = {
	{ "ops@example.com", true }, { "first.last+tag@mail.example.org", true },
	{ "ops@example", false }, { "@example.com", false }, { "ops@", false },
	{ "a..b@example.com", false }, { ".a@example.com", false },
	{ "a b@example.com", false }, { "ops@example.com.", false }, { "<x>@example.com", false },
};

static const struct { const char *s; bool ok; } stamps[] = {
	{ "2024-01-31T12:00:00Z", true }, { "2024-01-31T12:00:00.123Z", true },
	{ "2024-01-31T12:00:00+02:00", true }, { "2024-01-31", false },
	{ "2024-01-31 12:00:00Z", false }, { "2024-01-31T12:00:00", false },
	{ "2024-01-31T12:00:00+0200", false },
	{ "2024-02-30T00:00:00Z", false }, { "2023-02-29T00:00:00Z", false },
	{ "2024-02-29T00:00:00Z", true }, { "2024-13-01T00:00:00Z", false },
	{ "2024-01-01T24:00:00Z", false }, { "2024-01-01T23:60:00Z", false },
};

static void
test_domains(void **state)
{
	size_t i;
	for (i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		assert_int_equal(p25_domain_ok(domains[i].s), domains[i].ok);
}

static void
test_emails(void **state)
{
	size_t i;
	for (i = 0; i < sizeof(emails) / sizeof(emails[0]); i++)
		assert_int_equal(p25_email_ok(emails[i].s), emails[i].ok);
}

static void
test_timestamps(void **state)
{
	size_t i;
	for (i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++)
		assert_int_equal(p25_timestamp_ok(stamps[i].s), stamps[i].ok);
}

static void
test_uuid_and_text(void **state)
{
	char d[] = "Mail.Example.COM.";

	assert_true(p25_uuid_ok("0b6f3c1e-8f1a-4c59-9d9e-2a8b7c6d5e4f"));
	assert_false(p25_uuid_ok("0b6f3c1e-8f1a-4c59-9d9e-2a8b7c6d5e4"));
	assert_false(p25_uuid_ok("0b6f3c1e08f1a-4c59-9d9e-2a8b7c6d5e4f"));
	assert_true(p25_text_ok("line one\nline two\t", 100));
	assert_false(p25_text_ok("bell\a", 100));
	assert_false(p25_text_ok("toolong", 3));
	p25_domain_normalize(d);
	assert_string_equal(d, "mail.example.com");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_emails),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_uuid_and_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
