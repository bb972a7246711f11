/*
 * test_dns.c — core/dns.c against a real DNS server on loopback: the cap on
 * queries in flight (P25_DNS_MAX_INFLIGHT) and its queue.
 *
 * rbldnsd serves zen.test (the RFC 5782 test entry and 10.9.1.0/24 listed)
 * on a free loopback port; a UDP socket the test binds and never reads is
 * the server that never answers.  The tests:
 *   - a burst of 20,000 queries started at once is answered in full: every
 *     status is an answer (listed or NXDOMAIN, none a timeout), exactly the
 *     256 listed ones listed, and never more than the window on the wire;
 *   - callbacks that start more queries while the window is full (the
 *     DNSBL A → TXT follow-up of core/vetting.c) get their answers too;
 *   - the timeout is time on the wire: with a window of 2 and 6 queries to
 *     the silent server, they time out in pairs, one timeout apart, not
 *     all after the first;
 *   - a query unanswered for one timeout leaves the window (c-ares still
 *     retries it for its full tries), so a dead server does not hold the
 *     window for every query's tries × timeout;
 *   - queries that fail at once (a name c-ares refuses) drain a long queue
 *     without recursion, each called back once;
 *   - p25_dns_free() with queries on the wire and queued calls each back
 *     once with ARES_EDESTRUCTION (and leaks nothing, under ASan).
 * Without /usr/sbin/rbldnsd the rbldnsd tests are skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <ares.h>
#include <cmocka.h>

#include "p25/dns.h"
#include "p25/err.h"

#include "dnstest.h"

#define RBLDNSD "/usr/sbin/rbldnsd"
#define ZONE "zen.test"
#define BURST 20000
#define LISTED 256	/* 10.9.1.0/24 */

static char dir[64];
static char server[64];	/* rbldnsd, "127.0.0.1:PORT" */
static pid_t rbl_pid = -1;

struct one {
	int status, calls;
	char txt[128];
	double at;	/* ms since the test's start, when called back */
};

static void
one_cb(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct one *o = arg;

	(void)abuf;
	(void)alen;
	o->status = status;
	o->calls++;
	o->at = now_ms();
}

/* ------------------------------------------------------------ rbldnsd */

static int
start_rbldnsd(void **state)
{
	char path[128];
	FILE *f;
	int port;

	(void)state;
	if (access(RBLDNSD, X_OK) != 0)
		return 0;
	snprintf(dir, sizeof(dir), "/tmp/p25-test-dns.XXXXXX");
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0755);
	snprintf(path, sizeof(path), "%s/zone", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "$SOA 0 ns.zen.test. hostmaster.zen.test. 1 600 300 86400 0\n"
		   "$NS 0 ns.zen.test.\n$TTL 0\n"
		   ":127.0.0.2:Listed in zen.test: $\n"
		   "127.0.0.2\n10.9.1.0/24\n");
	fclose(f);
	chmod(path, 0644);
	port = udp_port(NULL);
	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	rbl_pid = fork();
	assert_true(rbl_pid >= 0);
	if (rbl_pid == 0) {
		char bind_arg[64];
		int null = open("/dev/null", O_RDWR);
		snprintf(bind_arg, sizeof(bind_arg), "127.0.0.1/%d", port);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		/* rbldnsd refuses to run as root */
		if (getuid() == 0)
			execl(RBLDNSD, "rbldnsd", "-n", "-q", "-u", "nobody", "-b", bind_arg, "-w", dir,
			      ZONE ":ip4set:zone", (char *)NULL);
		else
			execl(RBLDNSD, "rbldnsd", "-n", "-q", "-b", bind_arg, "-w", dir,
			      ZONE ":ip4set:zone", (char *)NULL);
		_exit(127);
	}
	/* up once it answers the test entry */
	if (dns_answers(server, "2.0.0.127." ZONE))
		return 0;
	fail_msg("rbldnsd did not answer on %s", server);
	return -1;
}

static int
stop_rbldnsd(void **state)
{
	char path[128];

	(void)state;
	stop_child(&rbl_pid);
	if (dir[0]) {
		snprintf(path, sizeof(path), "%s/zone", dir);
		unlink(path);
		rmdir(dir);
	}
	return 0;
}

#define NEED_RBLDNSD() \
	do { \
		if (rbl_pid <= 0) \
			skip(); \
	} while (0)

static void
qname(int i, char *out, size_t cap)
{
	/* 10.9.0.0 upwards: 10.9.1.x are the listed ones */
	snprintf(out, cap, "%d.%d.9.10." ZONE, i % 256, (i / 256) % 256);
}

/* ------------------------------------------------------------ tests */

static void
test_burst_all_answered(void **state)
{
	struct p25_dns *d;
	struct p25_dns_stats st;
	struct one *o = calloc(BURST, sizeof(*o));
	int i, listed = 0, nx = 0, other = 0, first_other = -1;
	double t0;

	(void)state;
	NEED_RBLDNSD();
	assert_non_null(o);
	/* the defaults' window; one try, so any lost datagram shows as a timeout */
	d = dns_new(server, 3000, 1, 0);
	t0 = now_ms();
	for (i = 0; i < BURST; i++) {
		char n[64];
		qname(i, n, sizeof(n));
		p25_dns_query(d, n, ns_t_a, one_cb, &o[i]);
	}
	p25_dns_stats(d, &st);
	assert_int_equal(st.inflight, P25_DNS_MAX_INFLIGHT_DEFAULT);
	assert_int_equal(st.queued, BURST - P25_DNS_MAX_INFLIGHT_DEFAULT);
	p25_dns_wait(d);
	for (i = 0; i < BURST; i++) {
		assert_int_equal(o[i].calls, 1);
		if (o[i].status == ARES_SUCCESS)
			listed++;
		else if (o[i].status == ARES_ENOTFOUND)
			nx++;
		else if (other++ == 0)
			first_other = i;
	}
	p25_dns_stats(d, &st);
	print_message("burst: %d queries in %.0f ms, window %d: %d listed, %d nxdomain, %d other\n",
		      BURST, now_ms() - t0, P25_DNS_MAX_INFLIGHT_DEFAULT, listed, nx, other);
	if (other)
		fail_msg("%d of %d queries failed (first: #%d, %s)", other, BURST, first_other,
			 p25_dns_status_name(o[first_other].status));
	/* 10.9.1.0/24 once per 65,536: BURST < 65,536 covers it once */
	assert_int_equal(listed, LISTED);
	assert_int_equal(nx, BURST - LISTED);
	assert_int_equal(st.queries, BURST);
	assert_int_equal(st.peak_inflight, P25_DNS_MAX_INFLIGHT_DEFAULT);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.queued, 0);
	p25_dns_free(d);
	free(o);
}

/* An A answer that is a listing starts the TXT query, as core/vetting.c does. */
struct chain {
	struct p25_dns *d;
	char name[64];
	struct one a, txt;
};

static void
txt_cb(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct chain *c = arg;
	struct ares_txt_ext *t = NULL;

	c->txt.status = status;
	c->txt.calls++;
	if (status == ARES_SUCCESS && ares_parse_txt_reply_ext(abuf, alen, &t) == ARES_SUCCESS && t) {
		snprintf(c->txt.txt, sizeof(c->txt.txt), "%.*s", (int)t->length, t->txt);
		ares_free_data(t);
	}
}

static void
a_cb(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct chain *c = arg;

	(void)abuf;
	(void)alen;
	c->a.status = status;
	c->a.calls++;
	if (status == ARES_SUCCESS)
		p25_dns_query(c->d, c->name, ns_t_txt, txt_cb, c);
}

static void
test_follow_up_queries(void **state)
{
	enum { N = 1024, WINDOW = 8 };
	struct chain *c = calloc(N, sizeof(*c));
	struct p25_dns *d;
	struct p25_dns_stats st;
	int i, listed = 0;

	(void)state;
	NEED_RBLDNSD();
	assert_non_null(c);
	d = dns_new(server, 3000, 1, WINDOW);
	/* 10.9.0.0 … 10.9.3.255: the second quarter listed, their TXT asked
	 * from the A callbacks while the queue still holds the rest */
	for (i = 0; i < N; i++) {
		c[i].d = d;
		qname(i, c[i].name, sizeof(c[i].name));
		p25_dns_query(d, c[i].name, ns_t_a, a_cb, &c[i]);
	}
	p25_dns_wait(d);
	for (i = 0; i < N; i++) {
		char want[128];
		assert_int_equal(c[i].a.calls, 1);
		if (i / 256 != 1) {
			assert_int_equal(c[i].a.status, ARES_ENOTFOUND);
			assert_int_equal(c[i].txt.calls, 0);
			continue;
		}
		listed++;
		assert_int_equal(c[i].a.status, ARES_SUCCESS);
		assert_int_equal(c[i].txt.calls, 1);
		assert_int_equal(c[i].txt.status, ARES_SUCCESS);
		snprintf(want, sizeof(want), "Listed in zen.test: 10.9.1.%d", i % 256);
		assert_string_equal(c[i].txt.txt, want);
	}
	assert_int_equal(listed, 256);
	p25_dns_stats(d, &st);
	assert_int_equal(st.queries, N + 256);
	assert_int_equal(st.peak_inflight, WINDOW);
	p25_dns_free(d);
	free(c);
}

/* A window of one: one query at a time, in the order started. */
static void
test_window_one(void **state)
{
	enum { N = 300 };
	struct one o[N];
	struct p25_dns *d;
	struct p25_dns_stats st;
	int i;

	(void)state;
	NEED_RBLDNSD();
	memset(o, 0, sizeof(o));
	d = dns_new(server, 3000, 1, 1);
	for (i = 0; i < N; i++) {
		char n[64];
		qname(i + 256, n, sizeof(n));
		p25_dns_query(d, n, ns_t_a, one_cb, &o[i]);
	}
	p25_dns_wait(d);
	for (i = 0; i < N; i++) {
		assert_int_equal(o[i].calls, 1);
		assert_int_equal(o[i].status, i < 256 ? ARES_SUCCESS : ARES_ENOTFOUND);
		/* FIFO: one at a time, in the order started */
		if (i > 0)
			assert_true(o[i].at >= o[i - 1].at);
	}
	p25_dns_stats(d, &st);
	assert_int_equal(st.peak_inflight, 1);
	assert_int_equal(st.peak_queued, N - 1);
	p25_dns_free(d);
}

/* ------------------------------------------------------------ no server needed */

static void
test_timeout_is_time_on_the_wire(void **state)
{
	enum { N = 6, WINDOW = 2, TIMEOUT = 250 };
	struct one o[N];
	struct p25_dns *d;
	char silent[64];
	int fd, i;
	double t0;

	(void)state;
	memset(o, 0, sizeof(o));
	snprintf(silent, sizeof(silent), "127.0.0.1:%d", udp_port(&fd));
	d = dns_new(silent, TIMEOUT, 1, WINDOW);
	t0 = now_ms();
	for (i = 0; i < N; i++) {
		char n[64];
		qname(i, n, sizeof(n));
		p25_dns_query(d, n, ns_t_a, one_cb, &o[i]);
	}
	p25_dns_wait(d);
	for (i = 0; i < N; i++) {
		double at = o[i].at - t0, floor = (double)(TIMEOUT * (i / WINDOW + 1)) - 5;
		print_message("query %d timed out after %.0f ms\n", i, at);
		assert_int_equal(o[i].calls, 1);
		assert_int_equal(o[i].status, ARES_ETIMEOUT);
		/* queued ones time out a full timeout after they were sent, not
		 * after they were started: pairs at 250, 500, 750 ms */
		if (at < floor)
			fail_msg("query %d timed out after %.0f ms, before %.0f ms", i, at, floor);
	}
	/* generous: a loaded machine may be late, never early */
	assert_true(o[N - 1].at - t0 < TIMEOUT * (N / WINDOW) + 3000);
	p25_dns_free(d);
	close(fd);
}

/*
 * A server that never answers, three tries: each query is on the wire its
 * full 200 + 400 + 800 ms (c-ares doubles the timeout per round), but it
 * leaves the window of one after its first 200 ms, so the next one goes
 * out then: the five end about 200 ms apart (≈ 2.2 s in all), not one
 * after another (7 s).
 */
static void
test_dead_server_does_not_hold_the_window(void **state)
{
	enum { N = 5, TIMEOUT = 200, FULL = 200 + 400 + 800 };
	struct one o[N];
	struct p25_dns *d;
	struct p25_dns_stats st;
	char silent[64];
	int fd, i;
	double t0;

	(void)state;
	memset(o, 0, sizeof(o));
	snprintf(silent, sizeof(silent), "127.0.0.1:%d", udp_port(&fd));
	d = dns_new(silent, TIMEOUT, 3, 1);
	t0 = now_ms();
	for (i = 0; i < N; i++) {
		char n[64];
		qname(i, n, sizeof(n));
		p25_dns_query(d, n, ns_t_a, one_cb, &o[i]);
	}
	p25_dns_wait(d);
	for (i = 0; i < N; i++) {
		double at = o[i].at - t0, floor = (double)(TIMEOUT * i + FULL) - 5;
		print_message("query %d timed out after %.0f ms\n", i, at);
		assert_int_equal(o[i].calls, 1);
		assert_int_equal(o[i].status, ARES_ETIMEOUT);
		if (at < floor)
			fail_msg("query %d timed out after %.0f ms, before %.0f ms", i, at, floor);
	}
	if (o[N - 1].at - t0 >= (double)(N * FULL) - 2000)
		fail_msg("the last query ended after %.0f ms: the window was held for whole tries",
			 o[N - 1].at - t0);
	p25_dns_stats(d, &st);
	assert_int_equal(st.peak_inflight, 1);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.retrying, 0);
	p25_dns_free(d);
	close(fd);
}

static void
test_immediate_failures_drain(void **state)
{
	enum { N = 20000 };
	struct one *o = calloc(N, sizeof(*o));
	struct p25_dns *d;
	struct p25_dns_stats st;
	char bad[80];
	int i, fd;

	(void)state;
	assert_non_null(o);
	/* a 70-byte label: c-ares refuses the name before sending anything */
	memset(bad, 'a', 70);
	snprintf(bad + 70, sizeof(bad) - 70, ".test");
	{
		char silent[64];
		snprintf(silent, sizeof(silent), "127.0.0.1:%d", udp_port(&fd));
		d = dns_new(silent, 200, 1, 1);
	}
	for (i = 0; i < N; i++)
		p25_dns_query(d, bad, ns_t_a, one_cb, &o[i]);
	p25_dns_wait(d);
	for (i = 0; i < N; i++) {
		assert_int_equal(o[i].calls, 1);
		assert_int_equal(o[i].status, ARES_EBADNAME);
	}
	p25_dns_stats(d, &st);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.queued, 0);
	p25_dns_free(d);
	close(fd);
	free(o);
}

static void
test_free_calls_back_everything(void **state)
{
	enum { N = 50, WINDOW = 4 };
	struct one o[N];
	struct p25_dns *d;
	struct p25_dns_stats st;
	char silent[64];
	int fd, i;

	(void)state;
	memset(o, 0, sizeof(o));
	snprintf(silent, sizeof(silent), "127.0.0.1:%d", udp_port(&fd));
	d = dns_new(silent, 5000, 1, WINDOW);
	for (i = 0; i < N; i++) {
		char n[64];
		qname(i, n, sizeof(n));
		p25_dns_query(d, n, ns_t_a, one_cb, &o[i]);
	}
	p25_dns_stats(d, &st);
	assert_int_equal(st.inflight, WINDOW);
	assert_int_equal(st.queued, N - WINDOW);
	p25_dns_free(d);
	for (i = 0; i < N; i++) {
		assert_int_equal(o[i].calls, 1);
		assert_int_equal(o[i].status, ARES_EDESTRUCTION);
	}
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest rbl[] = {
		cmocka_unit_test(test_burst_all_answered),
		cmocka_unit_test(test_follow_up_queries),
		cmocka_unit_test(test_window_one),
	};
	const struct CMUnitTest local[] = {
		cmocka_unit_test(test_timeout_is_time_on_the_wire),
		cmocka_unit_test(test_dead_server_does_not_hold_the_window),
		cmocka_unit_test(test_immediate_failures_drain),
		cmocka_unit_test(test_free_calls_back_everything),
	};
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests_name("dns against rbldnsd", rbl, start_rbldnsd, stop_rbldnsd);
	rc |= cmocka_run_group_tests_name("dns without a server", local, NULL, NULL);
	return rc;
}
