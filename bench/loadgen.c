/*
 * loadgen.c — a constant-rate (open-loop) HTTP/1.1 load generator for the
 * benchmark's latency figures ("p99 at 70 % of the maximum rate").
 *
 * Why not wrk: wrk is closed-loop — each connection sends its next request
 * only when the previous answer arrived, so a slow server is simply sent
 * less, and the latencies it reports leave out the time requests would have
 * waited (coordinated omission).  wrk2 fixes this but is not in Debian.
 *
 * Design: one thread, epoll, N keep-alive connections.  Request i is due at
 * t0 + i / rate whether or not the server has kept up; its latency is
 * measured from that due time (not from when a connection became free) to
 * the last byte of its answer.  A due request waits in a FIFO until a
 * connection is idle — that wait counts.  epoll_pwait2's nanosecond timeout
 * (a timerfd where the kernel lacks it) wakes the loop for the next due
 * time, so sends are not batched to millisecond ticks.  The load generator
 * shares the machine with what it measures, so it spends as few system
 * calls per request as it can: no timer to re-arm and read per wake-up, and
 * an epoll_ctl only when a connection's interest in EPOLLOUT changes.  No
 * pipelining: a connection carries one request at a time.  Every latency is
 * kept (rate x duration values) and sorted at the end: exact percentiles, no
 * histogram buckets.  Requests still unanswered when the drain time runs out
 * are counted as unfinished and enter the percentiles with the time they had
 * waited so far (a lower bound), so a stalled server cannot look fast.
 *
 * Requests come from a file, one a line, tab-separated:
 *     METHOD <TAB> PATH <TAB> TOKEN <TAB> BODY
 * TOKEN "-" sends no Authorization header; BODY may be empty or absent (a
 * body is sent as application/json).  The lines are used in turn, cycling.
 *
 * Usage:
 *   bench-loadgen --port P --rate R --duration S --requests FILE
 *                 [--host 127.0.0.1] [--connections 64] [--drain 10]
 *                 [--timeline FILE] [--warmup S]
 * --warmup S first sends S seconds at the rate whose latencies are left out
 * of the percentiles and the timeline (warmup_max_ms gives their largest);
 * every answer, the warm-up's included, counts in the status counts.
 * Prints "key value" lines on stdout (requests, warmup_requests,
 * warmup_max_ms, completed, ok, non2xx, errors, unfinished, achieved_rps,
 * backlog_max, p50_ms, p90_ms, p99_ms, p999_ms, max_ms, status.NNN);
 * diagnostics on stderr.  Exit 0 when the run happened (whatever the
 * answers were), 1 when it could not run, 64 on a usage error.  Used only
 * by bench/run.sh.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define IN_CAP (1024 * 1024)	/* largest answer we accept */
#define MAX_CONNS 4096

struct req {
	char *buf;
	size_t len;
};

struct conn {
	int fd;
	int busy;		/* a request is in flight */
	uint64_t seq;		/* which request (its due time follows) */
	const struct req *rq;
	size_t sent;
	char *in;
	size_t in_len;
	int out;		/* EPOLLOUT is in its epoll interest */
};

static struct {
	const char *host;
	int port;
	double rate;
	double duration;
	double drain;
	int nconns;
	const char *file;
	const char *timeline;
	double warmup;
} opt = { "127.0.0.1", 0, 0, 0, 10, 64, NULL, NULL, 0 };

static struct req *reqs;
static size_t nreqs;
static struct conn *conns;
static int *idle;		/* stack of idle connection indexes */
static int nidle;
static int ep;
static struct sockaddr_in addr;

static uint64_t t0, interval_ns_x1000;	/* interval in ns, times 1000 */
static uint64_t total;			/* requests sent, the warm-up's included */
static uint64_t nwarm, warm_max;	/* --warmup: its requests, their largest latency */
static uint64_t next_due, next_disp;	/* requests due so far / dispatched */
static uint64_t *lat;			/* ns */
static uint64_t nlat;
static uint64_t completed, ok, non2xx, errors, unfinished, backlog_max;
static uint64_t last_done_ns;
static uint64_t status_count[600];
/* --timeline: per 100 ms of due time, the answers and their largest latency */
#define TL_NS 100000000u
static uint64_t *tl_n, *tl_max;
static size_t tl_len;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
due_ns(uint64_t i)
{
	return t0 + i * interval_ns_x1000 / 1000;
}

/* Records request seq's latency t - due (0 when early); a warm-up
 * request's only in warm_max. */
static void
record(uint64_t seq, uint64_t t)
{
	uint64_t d = due_ns(seq), l = t > d ? t - d : 0;
	size_t w;

	if (seq < nwarm) {
		if (l > warm_max)
			warm_max = l;
		return;
	}
	w = (size_t)((d - due_ns(nwarm)) / TL_NS);
	lat[nlat++] = l;
	if (tl_n && w < tl_len) {
		tl_n[w]++;
		if (l > tl_max[w])
			tl_max[w] = l;
	}
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench-loadgen --port P --rate R --duration S --requests FILE\n"
	    "                     [--host 127.0.0.1] [--connections 64] [--drain 10]\n"
	    "                     [--timeline FILE] [--warmup S]\n");
	exit(64);
}

static double
num_arg(const char *name, const char *v, double lo, double hi)
{
	char *end;
	double d;

	if (!v)
		usage();
	errno = 0;
	d = strtod(v, &end);
	if (errno || *end || v[0] == '\0' || !(d >= lo && d <= hi)) {
		fprintf(stderr, "bench-loadgen: %s: \"%s\" is not a number from %g to %g\n",
			name, v, lo, hi);
		exit(64);
	}
	return d;
}

/* Reads the request file into reqs[] (raw HTTP/1.1 bytes). */
static void
load_requests(void)
{
	FILE *f = fopen(opt.file, "r");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	ssize_t n;

	if (!f) {
		fprintf(stderr, "bench-loadgen: %s: %s\n", opt.file, strerror(errno));
		exit(1);
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		char *method, *path, *token, *body, *save = NULL;
		char *buf;
		size_t blen, need;
		int w;

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		method = strtok_r(line, "\t", &save);
		path = strtok_r(NULL, "\t", &save);
		token = strtok_r(NULL, "\t", &save);
		body = strtok_r(NULL, "", &save);
		if (!method || !path) {
			fprintf(stderr, "bench-loadgen: %s: a line needs METHOD and PATH\n",
				opt.file);
			exit(1);
		}
		if (token && strcmp(token, "-") == 0)
			token = NULL;
		blen = body ? strlen(body) : 0;
		need = strlen(method) + strlen(path) + (token ? strlen(token) : 0) +
		       strlen(opt.host) + blen + 256;
		buf = malloc(need);
		if (!buf) {
			fprintf(stderr, "bench-loadgen: out of memory\n");
			exit(1);
		}
		w = snprintf(buf, need, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s",
			     method, path, opt.host, opt.port,
			     token ? "Authorization: Bearer " : "", token ? token : "",
			     token ? "\r\n" : "");
		if (blen)
			w += snprintf(buf + w, need - (size_t)w,
				      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
				      blen, body);
		else
			w += snprintf(buf + w, need - (size_t)w, "\r\n");
		if (nreqs == alloc) {
			struct req *nr;
			alloc = alloc ? alloc * 2 : 1024;
			nr = realloc(reqs, alloc * sizeof(*reqs));
			if (!nr) {
				fprintf(stderr, "bench-loadgen: out of memory\n");
				exit(1);
			}
			reqs = nr;
		}
		reqs[nreqs].buf = buf;
		reqs[nreqs].len = (size_t)w;
		nreqs++;
	}
	free(line);
	fclose(f);
	if (nreqs == 0) {
		fprintf(stderr, "bench-loadgen: %s holds no requests\n", opt.file);
		exit(1);
	}
}

/* Opens connection c (blocking connect on loopback, then non-blocking).
 * Returns 0, or -1 when the server cannot be reached. */
static int
conn_open(struct conn *c)
{
	struct epoll_event ev = { 0 };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	ev.events = EPOLLIN;
	ev.data.u32 = (uint32_t)(c - conns);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->busy = 0;
	c->in_len = 0;
	c->out = 0;
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->busy = 0;
	c->in_len = 0;
}

static void
set_out(struct conn *c, int want)
{
	struct epoll_event ev = { 0 };

	if (c->out == want)
		return;
	ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
	ev.data.u32 = (uint32_t)(c - conns);
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->out = want;
}

static void conn_failed(struct conn *c);

/* Writes what is left of the request; EPOLLOUT while it does not fit. */
static void
conn_flush(struct conn *c)
{
	while (c->sent < c->rq->len) {
		ssize_t n = send(c->fd, c->rq->buf + c->sent, c->rq->len - c->sent,
				 MSG_NOSIGNAL);
		if (n > 0) {
			c->sent += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_out(c, 1);
			return;
		}
		if (n < 0 && errno == EINTR)
			continue;
		conn_failed(c);
		return;
	}
	set_out(c, 0);
}

static void
conn_start(struct conn *c, uint64_t seq)
{
	c->busy = 1;
	c->seq = seq;
	c->rq = &reqs[seq % nreqs];
	c->sent = 0;
	c->in_len = 0;
	conn_flush(c);
}

/* The connection broke or sent nonsense: the request is an error; the
 * connection is reopened (or left dead when the server is gone). */
static void
conn_failed(struct conn *c)
{
	if (c->busy)
		errors++;
	conn_close(c);
	if (conn_open(c) == 0)
		idle[nidle++] = (int)(c - conns);
}

/* Parses c->in; returns 1 when a whole answer is there (status and
 * keep-alive filled), 0 when more is needed, -1 on nonsense. */
static int
parse_answer(struct conn *c, int *status, int *keep)
{
	char *hend, *p, *line;
	size_t hlen, clen = 0;
	int have_len = 0;

	c->in[c->in_len] = '\0';
	hend = strstr(c->in, "\r\n\r\n");
	if (!hend)
		return c->in_len >= IN_CAP ? -1 : 0;
	hlen = (size_t)(hend - c->in) + 4;
	if (strncmp(c->in, "HTTP/1.", 7) != 0 || c->in_len < 12)
		return -1;
	*status = (int)strtol(c->in + 9, NULL, 10);
	if (*status < 100 || *status > 599)
		return -1;
	*keep = strncmp(c->in, "HTTP/1.1", 8) == 0;
	for (line = strstr(c->in, "\r\n"); line && line < hend; line = strstr(line + 2, "\r\n")) {
		p = line + 2;
		if (strncasecmp(p, "content-length:", 15) == 0) {
			clen = strtoul(p + 15, NULL, 10);
			have_len = 1;
		} else if (strncasecmp(p, "connection:", 11) == 0) {
			p += 11;
			while (*p == ' ')
				p++;
			if (strncasecmp(p, "close", 5) == 0)
				*keep = 0;
		} else if (strncasecmp(p, "transfer-encoding:", 18) == 0) {
			return -1;	/* chunked answers are not expected here */
		}
	}
	if (!have_len && *status != 204 && *status != 304 && *status >= 200)
		return -1;
	if (hlen + clen > IN_CAP)
		return -1;
	if (c->in_len < hlen + clen)
		return 0;
	return 1;
}

static void
conn_readable(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
		int status = 0, keep = 0, rc;

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
			       errno != EINTR)) {
			conn_failed(c);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (!c->busy) {		/* bytes nobody asked for */
			conn_failed(c);
			return;
		}
		c->in_len += (size_t)n;
		rc = parse_answer(c, &status, &keep);
		if (rc < 0) {
			conn_failed(c);
			return;
		}
		if (rc == 0)
			continue;
		{
			uint64_t t = now_ns();
			record(c->seq, t);
			last_done_ns = t;
		}
		completed++;
		status_count[status]++;
		if (status >= 200 && status < 300)
			ok++;
		else
			non2xx++;
		c->busy = 0;
		c->in_len = 0;
		if (!keep) {
			conn_close(c);
			if (conn_open(c) != 0)
				return;
		}
		idle[nidle++] = (int)(c - conns);
		return;
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_ms(double q)
{
	uint64_t k;

	if (nlat == 0)
		return 0;
	k = (uint64_t)ceil(q * (double)nlat);
	if (k < 1)
		k = 1;
	if (k > nlat)
		k = nlat;
	return (double)lat[k - 1] / 1e6;
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[256];
	uint64_t end_ns, drain_end_ns;
	int tfd, i;
	bool pwait2 = true;	/* epoll_pwait2 works here (else the timerfd) */

	for (i = 1; i < argc; i += 2) {	/* every option takes a value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--host") == 0 && v)
			opt.host = v;
		else if (strcmp(a, "--port") == 0)
			opt.port = (int)num_arg(a, v, 1, 65535);
		else if (strcmp(a, "--rate") == 0)
			opt.rate = num_arg(a, v, 0.1, 10000000);
		else if (strcmp(a, "--duration") == 0)
			opt.duration = num_arg(a, v, 0.1, 86400);
		else if (strcmp(a, "--drain") == 0)
			opt.drain = num_arg(a, v, 0, 3600);
		else if (strcmp(a, "--connections") == 0)
			opt.nconns = (int)num_arg(a, v, 1, MAX_CONNS);
		else if (strcmp(a, "--requests") == 0 && v)
			opt.file = v;
		else if (strcmp(a, "--timeline") == 0 && v)
			opt.timeline = v;
		else if (strcmp(a, "--warmup") == 0)
			opt.warmup = num_arg(a, v, 0, 3600);
		else
			usage();
	}
	if (!opt.port || opt.rate <= 0 || opt.duration <= 0 || !opt.file)
		usage();
	signal(SIGPIPE, SIG_IGN);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1) {
		fprintf(stderr, "bench-loadgen: --host must be an IPv4 address\n");
		return 64;
	}
	load_requests();

	nwarm = (uint64_t)llround(opt.rate * opt.warmup);
	total = (uint64_t)llround(opt.rate * opt.duration);
	if (total == 0)
		total = 1;
	total += nwarm;
	interval_ns_x1000 = (uint64_t)llround(1e12 / opt.rate);
	lat = calloc(total, sizeof(*lat));
	if (opt.timeline) {
		tl_len = (size_t)ceil(opt.duration * 1e9 / TL_NS);
		tl_n = calloc(tl_len, sizeof(*tl_n));
		tl_max = calloc(tl_len, sizeof(*tl_max));
		if (!tl_n || !tl_max) {
			fprintf(stderr, "bench-loadgen: out of memory\n");
			return 1;
		}
	}
	conns = calloc((size_t)opt.nconns, sizeof(*conns));
	idle = calloc((size_t)opt.nconns, sizeof(*idle));
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!lat || !conns || !idle || ep < 0 || tfd < 0) {
		fprintf(stderr, "bench-loadgen: cannot set up: %s\n", strerror(errno));
		return 1;
	}
	{
		struct epoll_event ev = { 0 };
		ev.events = EPOLLIN;
		ev.data.u32 = UINT32_MAX;	/* the timer */
		epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	}
	for (i = 0; i < opt.nconns; i++) {
		conns[i].fd = -1;
		conns[i].in = malloc(IN_CAP + 1);
		if (!conns[i].in || conn_open(&conns[i]) != 0) {
			fprintf(stderr, "bench-loadgen: cannot connect to %s:%d: %s\n",
				opt.host, opt.port, strerror(errno));
			return 1;
		}
		idle[nidle++] = i;
	}

	t0 = now_ns() + 50 * 1000000u;
	end_ns = due_ns(total);
	drain_end_ns = end_ns + (uint64_t)(opt.drain * 1e9);
	for (;;) {
		uint64_t now = now_ns(), wake;
		struct itimerspec its = { 0 };
		int n;

		while (next_due < total && due_ns(next_due) <= now)
			next_due++;
		if (next_due - next_disp > backlog_max)
			backlog_max = next_due - next_disp;
		while (next_disp < next_due && nidle > 0) {
			struct conn *c = &conns[idle[--nidle]];
			conn_start(c, next_disp++);
		}
		{
			int live = 0;
			for (i = 0; i < opt.nconns; i++)
				live += conns[i].fd >= 0;
			if (live == 0) {
				fprintf(stderr, "bench-loadgen: every connection is gone\n");
				break;
			}
			if (next_disp == total && nidle == live)
				break;	/* all sent, all answered */
		}
		if (now >= drain_end_ns)
			break;
		wake = next_due < total ? due_ns(next_due) : drain_end_ns;
		n = -1;
		errno = ENOSYS;
		if (pwait2) {
			struct timespec ts = { 0 };
			uint64_t left = wake > now ? wake - now : 0;

			ts.tv_sec = (time_t)(left / 1000000000u);
			ts.tv_nsec = (long)(left % 1000000000u);
			n = epoll_pwait2(ep, evs, 256, &ts, NULL);
			if (n < 0 && errno == ENOSYS)
				pwait2 = false;
		}
		if (!pwait2) {
			its.it_value.tv_sec = (time_t)(wake / 1000000000u);
			its.it_value.tv_nsec = (long)(wake % 1000000000u);
			timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
			n = epoll_wait(ep, evs, 256, -1);
		}
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "bench-loadgen: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++) {
			struct conn *c;
			if (evs[i].data.u32 == UINT32_MAX) {
				uint64_t x;
				if (read(tfd, &x, sizeof(x)) < 0) {
					/* nothing: the timer may have been re-armed */
				}
				continue;
			}
			c = &conns[evs[i].data.u32];
			if (c->fd < 0)
				continue;
			if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
				if (!(evs[i].events & EPOLLIN)) {
					conn_failed(c);
					continue;
				}
			}
			if ((evs[i].events & EPOLLOUT) && c->busy)
				conn_flush(c);
			if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_readable(c);
		}
	}

	/* what never got its answer counts with the time it waited so far */
	{
		uint64_t now = now_ns(), s;
		for (i = 0; i < opt.nconns; i++)
			if (conns[i].fd >= 0 && conns[i].busy) {
				record(conns[i].seq, now);
				unfinished++;
			}
		for (s = next_disp; s < total; s++) {
			record(s, now);
			unfinished++;
		}
	}
	if (opt.timeline) {
		FILE *f = fopen(opt.timeline, "w");
		size_t w;
		if (!f) {
			perror(opt.timeline);
			return 1;
		}
		fprintf(f, "# due_ms answers max_ms\n");
		for (w = 0; w < tl_len; w++)
			fprintf(f, "%zu %llu %.1f\n", w * (TL_NS / 1000000u),
			    (unsigned long long)tl_n[w], (double)tl_max[w] / 1e6);
		fclose(f);
	}
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("requests %llu\n", (unsigned long long)total);
	printf("warmup_requests %llu\n", (unsigned long long)nwarm);
	printf("warmup_max_ms %.2f\n", (double)warm_max / 1e6);
	printf("completed %llu\n", (unsigned long long)completed);
	printf("ok %llu\n", (unsigned long long)ok);
	printf("non2xx %llu\n", (unsigned long long)non2xx);
	printf("errors %llu\n", (unsigned long long)errors);
	printf("unfinished %llu\n", (unsigned long long)unfinished);
	printf("achieved_rps %.1f\n", last_done_ns > t0 ?
	       (double)completed / ((double)(last_done_ns - t0) / 1e9) : 0.0);
	printf("backlog_max %llu\n", (unsigned long long)backlog_max);
	printf("p50_ms %.2f\n", pct_ms(0.50));
	printf("p90_ms %.2f\n", pct_ms(0.90));
	printf("p99_ms %.2f\n", pct_ms(0.99));
	printf("p999_ms %.2f\n", pct_ms(0.999));
	printf("max_ms %.2f\n", nlat ? (double)lat[nlat - 1] / 1e6 : 0.0);
	for (i = 0; i < 600; i++)
		if (status_count[i])
			printf("status.%d %llu\n", i, (unsigned long long)status_count[i]);
	for (i = 0; i < opt.nconns; i++) {
		if (conns[i].fd >= 0)
			close(conns[i].fd);
		free(conns[i].in);
	}
	for (size_t k = 0; k < nreqs; k++)
		free(reqs[k].buf);
	free(reqs);
	free(conns);
	free(idle);
	free(lat);
	close(tfd);
	close(ep);
	return 0;
}
