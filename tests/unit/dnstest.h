/*
 * dnstest.h — what the DNS unit tests (test_dns.c, test_vetting_batch.c)
 * share: a clock, a free loopback UDP port (or a bound socket that never
 * answers) and a resolver made for a test.  Include after <cmocka.h> and
 * "p25/dns.h".
 */
#ifndef P25_TEST_DNSTEST_H
#define P25_TEST_DNSTEST_H

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <ares.h>

/* Monotonic milliseconds. */
static inline double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A UDP port free on 127.0.0.1 now (bound to port 0 and released); with
 * fd, the socket stays bound and is returned there: a server that reads
 * nothing and answers nothing. */
static inline int
udp_port(int *fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_DGRAM, 0), port;

	assert_true(s >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	if (fd)
		*fd = s;
	else
		close(s);
	return port;
}

/* A resolver for servers; window > 0 sets its cap on queries in flight. */
static inline struct p25_dns *
dns_new(const char *servers, int timeout_ms, int tries, int window)
{
	struct p25_err e = { 0 };
	struct p25_dns *d = p25_dns_new(servers, timeout_ms, tries, &e);

	assert_non_null(d);
	p25_err_clear(&e);
	if (window > 0)
		p25_dns_set_max_inflight(d, window);
	return d;
}

static inline void
status_cb(void *arg, int status, const unsigned char *abuf, int alen)
{
	(void)abuf;
	(void)alen;
	*(int *)arg = status;
}

/* Whether server answers qname (type A) within about 5 s: a server just
 * started is up once it does. */
static inline bool
dns_answers(const char *server, const char *qname)
{
	int i;

	for (i = 0; i < 100; i++) {
		struct p25_dns *d = dns_new(server, 100, 1, 0);
		int status = ARES_ETIMEOUT;
		p25_dns_query(d, qname, ns_t_a, status_cb, &status);
		p25_dns_wait(d);
		p25_dns_free(d);
		if (status == ARES_SUCCESS)
			return true;
		usleep(50000);
	}
	return false;
}

/* Stops a server the test started (SIGTERM, reaped); *pid becomes -1. */
static inline void
stop_child(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
		*pid = -1;
	}
}

#endif
