/*
 * test_backoff.c — table-driven tests of p25_queue_backoff() (queue.h):
 * the delay before a failed job's next attempt is min(2^attempts, 3600)
 * seconds scaled by a jitter factor in [0.8, 1.2).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "p25/queue.h"

static const struct {
	int attempts;
	double r;
	double want;
} cases[] = {
	/* r = 0.5 is the middle of the jitter: exactly the base */
	{ 1, 0.5, 2.0 }, { 2, 0.5, 4.0 }, { 3, 0.5, 8.0 }, { 10, 0.5, 1024.0 },
	{ 11, 0.5, 2048.0 },
	/* the cap */
	{ 12, 0.5, 3600.0 }, { 13, 0.5, 3600.0 }, { 100, 0.5, 3600.0 },
	{ 2147483647, 0.5, 3600.0 },
	/* jitter bounds: -20 % at r = 0, just under +20 % at r -> 1 */
	{ 1, 0.0, 1.6 }, { 3, 0.0, 6.4 }, { 12, 0.0, 2880.0 },
	{ 1, 0.999999, 2.3999992 }, { 12, 0.999999, 4319.99856 },
	/* out-of-range inputs are clamped, never negative or NaN */
	{ 0, 0.5, 2.0 }, { -5, 0.5, 2.0 }, { 1, -1.0, 1.6 }, { 1, 7.0, 2.3999992 },
};

static void
test_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got = p25_queue_backoff(cases[i].attempts, cases[i].r);
		double d = got - cases[i].want;

		if (d < -1e-6 || d > 1e-6)
			fail_msg("case %zu: backoff(%d, %g) = %.7f, want %.7f", i,
				 cases[i].attempts, cases[i].r, got, cases[i].want);
	}
}

static void
test_nan(void **state)
{
	double got = p25_queue_backoff(4, (double)NAN);

	assert_true(got >= 12.8 && got < 19.2);
}

/* every attempt waits at least as long as the previous one's minimum */
static void
test_monotonic(void **state)
{
	int a;

	for (a = 1; a < 40; a++) {
		double lo = p25_queue_backoff(a, 0.0);
		double hi = p25_queue_backoff(a, 0.999999);

		assert_true(lo > 0.0 && lo <= hi && hi < 4320.0);
		assert_true(p25_queue_backoff(a + 1, 0.5) >= p25_queue_backoff(a, 0.5));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_nan),
		cmocka_unit_test(test_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
