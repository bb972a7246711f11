/*
 * test_vetting_batch.c — p25_vet_dns_batch() (core/vetting.c) against real
 * DNS servers on loopback: the DNS checks of many requests run at once.
 *
 * rbldnsd serves the DNSBL zone zen.test (the RFC 5782 test entry,
 * 10.9.1.0/24 listed); dnsmasq (cache off) answers PTR/A, the SPF and
 * DMARC TXT records and MX of a few sender domains, and forwards zen.test
 * to rbldnsd; a UDP socket the test binds and never reads is the server
 * that never answers.  The tests:
 *   - a batch of mixed requests (clean, listed, no PTR and no records, an
 *     SPF include chain, redirect, mx, several prefixes and domains) gives
 *     every request exactly the checks p25_vet_dns() gives it alone
 *     (compared as JSON: names, subjects, outcomes, codes, hints,
 *     evidence), and the expected outcomes;
 *   - a batch of clean requests of one sender domain sends the zone's two
 *     RFC 5782 test queries and the SPF record's query once for the batch
 *     (p25_dns_queries: 2 + 4 per request + 1, where alone each costs 7);
 *   - a batch of N requests against the silent server ends in about one
 *     query's timeout with its retries (the queries run concurrently), not
 *     N times it, and every check of every request is an error, none a pass.
 * Without /usr/sbin/rbldnsd and /usr/sbin/dnsmasq the DNS tests are skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
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
#include <jansson.h>

#include "p25/config.h"
#include "p25/dns.h"
#include "p25/err.h"
#include "p25/ipaddr.h"
#include "p25/vetting.h"

#include "dnstest.h"

#define RBLDNSD "/usr/sbin/rbldnsd"
#define DNSMASQ "/usr/sbin/dnsmasq"
#define ZONE "zen.test"

static char dir[64];
static char server[64];		/* dnsmasq, "127.0.0.1:PORT" */
static pid_t rbl_pid = -1, dnsmasq_pid = -1;
static char zones[] = ZONE;
static struct p25_config cfg;

static pid_t
spawn(char *const argv[])
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* --------------------------------------------------------- the servers */

/* dnsmasq's records: host-record gives A and PTR; TXT values have no comma
 * (dnsmasq would split them into several strings). */
static const char *const records[] = {
	/* clean hosts: forward-confirmed PTR */
	"--host-record=mail1.good.test,10.9.0.1",
	"--host-record=mail3.good.test,10.9.0.3",
	"--host-record=mail5.good.test,10.9.1.5",	/* listed in zen.test */
	"--host-record=mail8.good.test,10.9.0.8",
	"--host-record=mail9.good.test,10.9.0.9",
	"--host-record=mail10.good.test,10.9.0.10",
	"--host-record=mail11.good.test,10.9.0.11",
	/* 10.9.0.4 has no PTR; its name resolves only for SPF's a/mx */
	"--address=/mxb.mx.test/10.9.0.4",
	"--address=/spf-host.inc2.test/10.9.0.3",
	"--host-record=bench1.good.test,10.9.0.21",
	"--host-record=bench2.good.test,10.9.0.22",
	"--host-record=bench3.good.test,10.9.0.23",
	"--host-record=bench4.good.test,10.9.0.24",
	"--host-record=bench5.good.test,10.9.0.25",
	"--host-record=bench6.good.test,10.9.0.26",
	"--host-record=bench7.good.test,10.9.0.27",
	"--host-record=bench8.good.test,10.9.0.28",
	/* sender domains */
	"--txt-record=a.test,v=spf1 ip4:10.9.0.0/24 -all",
	"--txt-record=_dmarc.a.test,v=DMARC1; p=none",
	"--txt-record=chain.test,v=spf1 include:inc1.test -all",
	"--txt-record=inc1.test,v=spf1 include:inc2.test ~all",
	"--txt-record=inc2.test,v=spf1 a:spf-host.inc2.test ip4:192.0.2.0/24 -all",
	"--txt-record=_dmarc.chain.test,v=DMARC1; p=reject",
	"--txt-record=redir.test,v=spf1 redirect=chain.test",
	"--txt-record=mx.test,v=spf1 mx -all",
	"--mx-host=mx.test,mxa.mx.test,10",
	"--mx-host=mx.test,mxb.mx.test,20",
	"--txt-record=two.test,v=spf1 ip4:10.9.0.1 -all",
	"--txt-record=two.test,v=spf1 ip4:10.9.0.3 -all",	/* two records: permerror */
	"--local=/test/",
	"--local=/9.10.in-addr.arpa/",
};

/* argv of a server: copies (execv takes char *const[]) */
static char argbuf[64][160];
static char *argv_[65];
static int argc_;

static void
arg(const char *s)
{
	assert_true(argc_ < 64);
	snprintf(argbuf[argc_], sizeof(argbuf[0]), "%s", s);
	argv_[argc_] = argbuf[argc_];
	argv_[++argc_] = NULL;
}

static int
start_servers(void **state)
{
	char path[128], rbl_bind[64], port_arg[32], fwd[64];
	FILE *f;
	int rbl_port, port;
	size_t r;

	(void)state;
	argc_ = 0;
	memset(&cfg, 0, sizeof(cfg));
	cfg.dnsbl_zones = zones;
	if (access(RBLDNSD, X_OK) != 0 || access(DNSMASQ, X_OK) != 0)
		return 0;
	snprintf(dir, sizeof(dir), "/tmp/p25-test-vetb.XXXXXX");
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

	rbl_port = udp_port(NULL);
	snprintf(rbl_bind, sizeof(rbl_bind), "127.0.0.1/%d", rbl_port);
	arg(RBLDNSD);
	arg("-n");
	arg("-q");
	if (getuid() == 0) {	/* rbldnsd refuses to run as root */
		arg("-u");
		arg("nobody");
	}
	arg("-b");
	arg(rbl_bind);
	arg("-w");
	arg(dir);
	arg(ZONE ":ip4set:zone");
	rbl_pid = spawn(argv_);

	do
		port = udp_port(NULL);
	while (port == rbl_port);
	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	snprintf(port_arg, sizeof(port_arg), "--port=%d", port);
	snprintf(fwd, sizeof(fwd), "--server=/" ZONE "/127.0.0.1#%d", rbl_port);
	argc_ = 0;
	arg(DNSMASQ);
	arg("--keep-in-foreground");
	arg("--conf-file=/dev/null");
	arg("--pid-file");
	if (getuid() == 0) {
		arg("--user=nobody");
		arg("--group=nogroup");
	}
	arg(port_arg);
	arg("--listen-address=127.0.0.1");
	arg("--bind-interfaces");
	arg("--no-resolv");
	arg("--no-hosts");
	arg("--cache-size=0");
	arg(fwd);
	for (r = 0; r < sizeof(records) / sizeof(records[0]); r++)
		arg(records[r]);
	dnsmasq_pid = spawn(argv_);

	/* up once dnsmasq answers the zone's test entry through rbldnsd */
	if (dns_answers(server, "2.0.0.127." ZONE))
		return 0;
	fail_msg("dnsmasq/rbldnsd did not answer on %s", server);
	return -1;
}

static int
stop_servers(void **state)
{
	char path[128];

	(void)state;
	stop_child(&dnsmasq_pid);
	stop_child(&rbl_pid);
	if (dir[0]) {
		snprintf(path, sizeof(path), "%s/zone", dir);
		unlink(path);
		rmdir(dir);
	}
	return 0;
}

#define NEED_SERVERS() \
	do { \
		if (rbl_pid <= 0 || dnsmasq_pid <= 0) \
			skip(); \
	} while (0)

/* ------------------------------------------------------------ requests */

struct req {
	const char *addrs[3];
	const char *domains[3];
	/* filled */
	struct p25_prefix p[3];
	int np;
	json_t *dj;
	struct p25_checks checks;
	struct p25_err err;
};

static void
req_prepare(struct req *r)
{
	int i;

	r->np = 0;
	for (i = 0; i < 3 && r->addrs[i]; i++) {
		struct p25_err e = { 0 };
		assert_int_equal(p25_prefix_parse(r->addrs[i], &r->p[r->np++], &e), 0);
	}
	r->dj = json_array();
	for (i = 0; i < 3 && r->domains[i]; i++)
		json_array_append_new(r->dj, json_string(r->domains[i]));
	memset(&r->checks, 0, sizeof(r->checks));
	memset(&r->err, 0, sizeof(r->err));
}

static void
req_release(struct req *r)
{
	p25_checks_free(&r->checks);
	p25_err_clear(&r->err);
	json_decref(r->dj);
	r->dj = NULL;
}

static char *
checks_text(const struct p25_checks *c)
{
	json_t *j = p25_checks_json(c);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);

	json_decref(j);
	assert_non_null(s);
	return s;
}

/* The check named name whose subject starts with subject, or NULL. */
static const struct p25_check *
find(const struct p25_checks *c, const char *name, const char *subject)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i].name, name) == 0 &&
		    strncmp(c->v[i].subject, subject, strlen(subject)) == 0)
			return &c->v[i];
	return NULL;
}

/* The evidence of the check named name whose subject starts with subject
 * (NULL when there is none: json_object_get(NULL, …) is NULL). */
static json_t *
evidence(const struct p25_checks *c, const char *name, const char *subject)
{
	const struct p25_check *k = find(c, name, subject);

	return k ? k->evidence : NULL;
}

static void
expect(const struct p25_checks *c, const char *name, const char *subject,
       enum p25_outcome o, const char *code)
{
	const struct p25_check *k = find(c, name, subject);

	if (!k) {
		fail_msg("no %s check for %s", name, subject);
		return;
	}
	if (k->outcome != o || strcmp(k->code, code) != 0)
		fail_msg("%s %s: %s/%s, expected %s/%s", name, subject,
			 p25_outcome_str(k->outcome), k->code, p25_outcome_str(o), code);
}

static int
vet_batch(struct p25_dns *d, struct req *rq, int n)
{
	struct p25_vet_input *in = calloc((size_t)n, sizeof(*in));
	struct p25_err e = { 0 };
	int i, rc;

	assert_non_null(in);
	for (i = 0; i < n; i++) {
		in[i].addrs = rq[i].p;
		in[i].naddrs = rq[i].np;
		in[i].domains = rq[i].dj;
		in[i].out = &rq[i].checks;
		in[i].err = &rq[i].err;
	}
	rc = p25_vet_dns_batch(&cfg, d, in, n, P25_VET_ALL, &e);
	for (i = 0; i < n; i++)
		assert_int_equal(in[i].rc, 0);
	free(in);
	p25_err_clear(&e);
	return rc;
}

/* ------------------------------------------------------------ tests */

static void
test_batch_equals_alone(void **state)
{
	struct req rq[] = {
		/* clean */
		{ .addrs = { "10.9.0.1" }, .domains = { "a.test" } },
		/* listed */
		{ .addrs = { "10.9.1.5" }, .domains = { "a.test" } },
		/* no PTR, no records */
		{ .addrs = { "10.9.0.4" }, .domains = { "none.test" } },
		/* include → include → a */
		{ .addrs = { "10.9.0.3" }, .domains = { "chain.test" } },
		/* redirect → the chain */
		{ .addrs = { "10.9.0.3" }, .domains = { "redir.test" } },
		/* mx → the second exchanger */
		{ .addrs = { "10.9.0.4" }, .domains = { "mx.test" } },
		/* several of each */
		{ .addrs = { "10.9.0.8/31", "10.9.1.5", "10.9.0.11" },
		  .domains = { "a.test", "chain.test", "two.test" } },
		/* two SPF records */
		{ .addrs = { "10.9.0.1" }, .domains = { "two.test" } },
	};
	int n = (int)(sizeof(rq) / sizeof(rq[0])), i;
	char *alone[sizeof(rq) / sizeof(rq[0])];
	struct p25_dns *d;

	(void)state;
	NEED_SERVERS();
	d = dns_new(server, 2000, 2, 0);
	for (i = 0; i < n; i++) {
		req_prepare(&rq[i]);
		assert_int_equal(p25_vet_dns(&cfg, d, rq[i].p, rq[i].np, rq[i].dj, P25_VET_ALL,
					     &rq[i].checks, &rq[i].err), 0);
		alone[i] = checks_text(&rq[i].checks);
		p25_checks_free(&rq[i].checks);
	}
	assert_int_equal(vet_batch(d, rq, n), 0);
	for (i = 0; i < n; i++) {
		char *batch = checks_text(&rq[i].checks);
		if (strcmp(alone[i], batch) != 0)
			fail_msg("request %d: batch differs from alone\nalone: %s\nbatch: %s",
				 i, alone[i], batch);
		free(batch);
	}

	/* and the checks are the expected ones (not merely equal) */
	expect(&rq[0].checks, "dnsbl", "10.9.0.1/32 in zen.test", P25_PASS, "");
	expect(&rq[0].checks, "rdns", "10.9.0.1/32", P25_PASS, "");
	expect(&rq[0].checks, "dmarc", "a.test", P25_PASS, "");
	expect(&rq[0].checks, "spf", "a.test for 10.9.0.1/32", P25_PASS, "");
	assert_int_equal(rq[0].checks.n, 4);
	expect(&rq[1].checks, "dnsbl", "10.9.1.5/32 in zen.test", P25_FAIL, "dnsbl_sbl");
	expect(&rq[1].checks, "spf", "a.test for 10.9.1.5/32", P25_WARN, "spf_fail");
	expect(&rq[2].checks, "rdns", "10.9.0.4/32", P25_FAIL, "rdns_missing");
	expect(&rq[2].checks, "dmarc", "none.test", P25_WARN, "dmarc_missing");
	expect(&rq[2].checks, "spf", "none.test for 10.9.0.4/32", P25_WARN, "spf_missing");
	expect(&rq[3].checks, "spf", "chain.test for 10.9.0.3/32", P25_PASS, "");
	assert_int_equal(json_integer_value(json_object_get(
		evidence(&rq[3].checks, "spf", "chain.test"), "lookups")), 3);
	expect(&rq[4].checks, "spf", "redir.test for 10.9.0.3/32", P25_PASS, "");
	expect(&rq[5].checks, "spf", "mx.test for 10.9.0.4/32", P25_PASS, "");
	expect(&rq[6].checks, "dnsbl", "10.9.0.8/31 in zen.test", P25_PASS, "");
	assert_int_equal(json_integer_value(json_object_get(
		evidence(&rq[6].checks, "dnsbl", "10.9.0.8/31"), "checked")), 2);
	expect(&rq[6].checks, "dnsbl", "10.9.1.5/32 in zen.test", P25_FAIL, "dnsbl_sbl");
	expect(&rq[6].checks, "spf", "chain.test for 10.9.0.8/31", P25_WARN, "spf_fail");
	expect(&rq[6].checks, "spf", "a.test for 10.9.0.11/32", P25_PASS, "");
	expect(&rq[6].checks, "spf", "two.test for 10.9.0.11/32", P25_WARN, "spf_fail");
	expect(&rq[7].checks, "spf", "two.test for 10.9.0.1/32", P25_WARN, "spf_fail");
	assert_string_equal(json_string_value(json_object_get(
		evidence(&rq[7].checks, "spf", "two.test"), "result")), "permerror");

	for (i = 0; i < n; i++) {
		free(alone[i]);
		req_release(&rq[i]);
	}
	p25_dns_free(d);
}

static void
test_batch_shares_queries(void **state)
{
	enum { N = 8 };
	struct req rq[N];
	struct p25_dns *d;
	char addr[N][32];
	unsigned long q0, alone, batch;
	int i;

	(void)state;
	NEED_SERVERS();
	memset(rq, 0, sizeof(rq));
	d = dns_new(server, 2000, 2, 0);
	for (i = 0; i < N; i++) {
		snprintf(addr[i], sizeof(addr[i]), "10.9.0.%d", 21 + i);
		rq[i].addrs[0] = addr[i];
		rq[i].domains[0] = "a.test";
		req_prepare(&rq[i]);
	}
	/* alone: 2 zone tests, DNSBL, PTR, A of the PTR name, DMARC, SPF */
	q0 = p25_dns_queries(d);
	assert_int_equal(p25_vet_dns(&cfg, d, rq[0].p, rq[0].np, rq[0].dj, P25_VET_ALL,
				     &rq[0].checks, &rq[0].err), 0);
	alone = p25_dns_queries(d) - q0;
	assert_int_equal(alone, 7);
	p25_checks_free(&rq[0].checks);

	q0 = p25_dns_queries(d);
	assert_int_equal(vet_batch(d, rq, N), 0);
	batch = p25_dns_queries(d) - q0;
	/* the zone tests and the shared SPF record once; the rest per request */
	assert_int_equal(batch, 2 + 4 * N + 1);
	for (i = 0; i < N; i++) {
		char subject[64];
		snprintf(subject, sizeof(subject), "a.test for %.16s/32", addr[i]);
		expect(&rq[i].checks, "spf", subject, P25_PASS, "");
		snprintf(subject, sizeof(subject), "%.16s/32", addr[i]);
		expect(&rq[i].checks, "rdns", subject, P25_PASS, "");
		expect(&rq[i].checks, "dnsbl", subject, P25_PASS, "");
		expect(&rq[i].checks, "dmarc", "a.test", P25_PASS, "");
		req_release(&rq[i]);
	}
	p25_dns_free(d);
}

static void
test_silent_server_concurrent(void **state)
{
	enum { N = 16, TIMEOUT = 200, TRIES = 2 };
	struct req rq[N];
	char addr[N][32], silent[64];
	struct p25_dns *d;
	double t0, one, all;
	int fd, i, j;

	(void)state;
	memset(rq, 0, sizeof(rq));
	memset(&cfg, 0, sizeof(cfg));
	cfg.dnsbl_zones = zones;
	snprintf(silent, sizeof(silent), "127.0.0.1:%d", udp_port(&fd));
	/* a window large enough for the whole batch: this measures the
	 * batch's concurrency, not the window's queue (test_dns.c does that) */
	d = dns_new(silent, TIMEOUT, TRIES, 256);
	for (i = 0; i < N; i++) {
		snprintf(addr[i], sizeof(addr[i]), "10.9.0.%d", 100 + i);
		rq[i].addrs[0] = addr[i];
		rq[i].domains[0] = "a.test";
		req_prepare(&rq[i]);
	}

	/* one request alone: its queries time out together */
	t0 = now_ms();
	assert_int_equal(p25_vet_dns(&cfg, d, rq[0].p, rq[0].np, rq[0].dj, P25_VET_ALL,
				     &rq[0].checks, &rq[0].err), 0);
	one = now_ms() - t0;
	p25_checks_free(&rq[0].checks);

	t0 = now_ms();
	assert_int_equal(vet_batch(d, rq, N), 0);
	all = now_ms() - t0;
	print_message("silent server: one request %.0f ms, %d requests at once %.0f ms\n",
		      one, N, all);
	/* at least the tries of one query; about as long as one request, far
	 * from N × (one after the other it took N × one) */
	assert_true(one >= TIMEOUT * TRIES * 0.9);
	assert_true(all >= TIMEOUT * TRIES * 0.9);
	assert_true(all < 2.0 * one + 200);
	assert_true(all < N * one / 4);

	for (i = 0; i < N; i++) {
		/* DNSBL, rDNS, DMARC, SPF: each an error, none a pass */
		assert_int_equal(rq[i].checks.n, 4);
		for (j = 0; j < rq[i].checks.n; j++)
			if (rq[i].checks.v[j].outcome != P25_ERROR)
				fail_msg("request %d: %s %s is %s", i, rq[i].checks.v[j].name,
					 rq[i].checks.v[j].subject,
					 p25_outcome_str(rq[i].checks.v[j].outcome));
		expect(&rq[i].checks, "dnsbl", addr[i], P25_ERROR, "dnsbl_error");
		expect(&rq[i].checks, "rdns", addr[i], P25_ERROR, "rdns_error");
		expect(&rq[i].checks, "dmarc", "a.test", P25_ERROR, "dmarc_error");
		expect(&rq[i].checks, "spf", "a.test", P25_ERROR, "spf_error");
		req_release(&rq[i]);
	}
	p25_dns_free(d);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest dns[] = {
		cmocka_unit_test(test_batch_equals_alone),
		cmocka_unit_test(test_batch_shares_queries),
	};
	const struct CMUnitTest silent[] = {
		cmocka_unit_test(test_silent_server_concurrent),
	};
	int rc;

	rc = cmocka_run_group_tests_name("vetting batch against dnsmasq + rbldnsd", dns,
					 start_servers, stop_servers);
	rc |= cmocka_run_group_tests_name("vetting batch against a silent server", silent,
					  NULL, NULL);
	return rc;
}
