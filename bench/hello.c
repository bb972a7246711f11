/*
 * hello.c — the benchmark's HTTP floor: the least a libmicrohttpd server in
 * p25-api's threading mode can do per request.
 *
 * It starts the daemon exactly as api/http.c does (MHD_USE_EPOLL_INTERNAL_THREAD
 * | MHD_ALLOW_SUSPEND_RESUME, a pool of P25_HTTP_THREADS epoll threads, the
 * same connection limit, connection timeout, per-connection memory limit and
 * listen backlog) and answers every request, once its headers are read, with
 * the fixed body p25-api's GET /healthz answers ({"status":"ok"}, JSON).  No
 * routing, no request state, no logging, no metrics: whatever p25-api
 * measures above this is the cost of p25's own code.
 *
 * Configuration, with p25's names, defaults and bounds (include/p25/config.h):
 *   P25_LISTEN                IPv4 host:port        (127.0.0.1:8026 here)
 *   P25_HTTP_THREADS          1..256                (2)
 *   P25_HTTP_MAX_CONNECTIONS  16..1000000           (8192)
 *   P25_HTTP_TIMEOUT          1..3600 seconds       (30)
 * A bad value exits with status 78 naming the variable.  SIGTERM or SIGINT
 * stops the daemon and exits 0.
 *
 * Used only by bench/run.sh; not part of any shipped binary.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>

#define EX_CONFIG 78

static const char body[] = "{\"status\":\"ok\"}";

/* The number in environment variable name, within [lo, hi]; def when unset.
 * Exits 78 on a malformed or out-of-range value. */
static long
env_long(const char *name, long def, long lo, long hi)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !v[0])
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < lo || n > hi) {
		fprintf(stderr, "bench-hello: %s: \"%s\" is not a number from %ld to %ld\n",
			name, v, lo, hi);
		exit(EX_CONFIG);
	}
	return n;
}

/* Fills sa from "a.b.c.d:port"; exits 78 when it is not one. */
static void
parse_listen(const char *listen, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		goto bad;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port < 1 || port > 65535)
		goto bad;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa->sin_addr) != 1)
		goto bad;
	return;
bad:
	fprintf(stderr, "bench-hello: P25_LISTEN: \"%s\" is not IPv4 host:port\n", listen);
	exit(EX_CONFIG);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
	   const char *method, const char *version, const char *upload_data,
	   size_t *upload_size, void **con_cls)
{
	static int seen;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	/*
	 * Answer on the second callback, as every MHD server must that wants
	 * keep-alive: a response queued on the first one (headers only, the
	 * body not yet known) makes MHD close the connection after it.
	 * p25-api answers at the same point.
	 */
	if (*con_cls != &seen) {
		*con_cls = &seen;
		return MHD_YES;
	}
	/* a body, if any, is ignored: the bench only sends GETs here */
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

int
main(void)
{
	const char *listen = getenv("P25_LISTEN");
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	sigset_t set;
	int sig;
	long threads, maxconn, timeout;

	parse_listen(listen && listen[0] ? listen : "127.0.0.1:8026", &sa);
	threads = env_long("P25_HTTP_THREADS", 2, 1, 256);
	maxconn = env_long("P25_HTTP_MAX_CONNECTIONS", 8192, 16, 1000000);
	timeout = env_long("P25_HTTP_TIMEOUT", 30, 1, 3600);

	/* signals go to the main thread only, as in p25-api */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			     MHD_USE_ERROR_LOG,
	    ntohs(sa.sin_port), NULL, NULL, on_request, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)maxconn,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
	    MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "bench-hello: cannot listen on %s\n",
			listen && listen[0] ? listen : "127.0.0.1:8026");
		return 1;
	}
	if (sigwait(&set, &sig) != 0)
		sig = SIGTERM;
	MHD_stop_daemon(d);
	return 0;
}
