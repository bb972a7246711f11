/*
 * longpoll.c — bench-longpoll: holds N HTTP long-polls on one epoll loop and
 * times each answer (bench/enforce.sh, bench/ENFORCE.md).
 *
 *   bench-longpoll HOST PORT N PATH TOKEN T0FILE [TIMEOUT_S] [MATCH]
 *
 * Opens N connections to HOST:PORT (IPv4, at most 100 connects in flight,
 * so the listen backlog never overflows) and sends on each
 *   GET PATH HTTP/1.1 / Host / Authorization: Bearer TOKEN
 * then waits for every answer, recording the CLOCK_REALTIME instant at
 * which each complete answer (headers and Content-Length bytes of body)
 * arrived.  Prints "sent N" on stderr once every request is written, so
 * the caller knows when to look at the server's held count.  When every
 * connection is answered or closed, or TIMEOUT_S (60) passed since the
 * last request went out, reads T0 (nanoseconds since the epoch, the
 * instant the caller triggered the event) from T0FILE and prints:
 *
 *   longpoll.held N           connections whose request went out
 *   longpoll.answered K       answers 200 whose body holds MATCH ("revoke")
 *   longpoll.failed F         other answers, resets, timeouts
 *   longpoll.p50 S s / longpoll.p99 S s / longpoll.max S s   (answer - T0)
 *   longpoll.first S s        the first answer - T0
 *
 * One thread, no allocation per event beyond the per-connection buffer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define INFLIGHT_CONNECTS 100
#define BUF_MAX (64 * 1024)

enum cstate { C_IDLE, C_CONNECTING, C_SENT, C_DONE };

struct conn {
	int fd;
	enum cstate st;
	size_t sent;
	char *buf;
	size_t len;
	long long t_done;	/* ns since the epoch */
	int status;
	int ok;
};

static long long
rt_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* 1: a complete answer in c->buf; 0: not yet. */
static int
complete(struct conn *c, const char *match)
{
	char *end, *cl;
	long body;

	c->buf[c->len] = '\0';
	end = strstr(c->buf, "\r\n\r\n");
	if (!end)
		return 0;
	cl = strcasestr(c->buf, "\r\nContent-Length:");
	if (!cl || cl > end)
		return 0;
	body = strtol(cl + 17, NULL, 10);
	if ((size_t)(end + 4 - c->buf) + (size_t)body > c->len)
		return 0;
	c->status = (int)strtol(c->buf + 9, NULL, 10);
	c->ok = c->status == 200 && strstr(end + 4, match) != NULL;
	return 1;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct conn *cs;
	struct epoll_event ev, evs[256];
	char req[8192];
	const char *match;
	int n, ep, i, k, reqlen, connecting = 0, next = 0, open_left, timeout_s;
	int sent = 0, answered = 0, failed = 0, announced = 0;
	long long t_last_sent = 0, t0 = 0, *lat;
	FILE *f;

	if (argc < 7) {
		fprintf(stderr, "usage: bench-longpoll HOST PORT N PATH TOKEN T0FILE [TIMEOUT_S] [MATCH]\n");
		return 64;
	}
	n = (int)strtol(argv[3], NULL, 10);
	timeout_s = argc > 7 ? (int)strtol(argv[7], NULL, 10) : 60;
	match = argc > 8 ? argv[8] : "revoke";
	if (n < 1 || n > 1000000 || timeout_s < 1)
		return 64;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)strtol(argv[2], NULL, 10));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1)
		return 64;
	reqlen = snprintf(req, sizeof(req),
			  "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n\r\n",
			  argv[4], argv[1], argv[2], argv[5]);
	if (reqlen < 0 || reqlen >= (int)sizeof(req))
		return 64;
	cs = calloc((size_t)n, sizeof(*cs));
	lat = calloc((size_t)n, sizeof(*lat));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cs || !lat || ep < 0)
		return 1;
	open_left = n;
	while (open_left > 0) {
		/* start connects, a bounded number at a time */
		while (next < n && connecting < INFLIGHT_CONNECTS) {
			struct conn *c = &cs[next];

			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (c->fd < 0) {
				fprintf(stderr, "bench-longpoll: socket: %s (raise ulimit -n)\n",
					strerror(errno));
				return 1;
			}
			if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
			    errno != EINPROGRESS) {
				fprintf(stderr, "bench-longpoll: connect: %s\n", strerror(errno));
				return 1;
			}
			c->st = C_CONNECTING;
			ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
			ev.data.u32 = (unsigned)next;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			connecting++;
			next++;
		}
		if (sent == n && !announced) {
			fprintf(stderr, "sent %d\n", n);
			announced = 1;
		}
		if (t_last_sent && rt_ns() - t_last_sent > (long long)timeout_s * 1000000000LL)
			break;
		k = epoll_wait(ep, evs, 256, 200);
		for (i = 0; i < k; i++) {
			struct conn *c = &cs[evs[i].data.u32];
			ssize_t r;

			if (c->st == C_CONNECTING && (evs[i].events & EPOLLOUT)) {
				r = send(c->fd, req + c->sent, (size_t)reqlen - c->sent, MSG_NOSIGNAL);
				if (r > 0)
					c->sent += (size_t)r;
				if (r < 0 && errno != EAGAIN) {
					c->st = C_DONE;
					failed++;
					open_left--;
					connecting--;
					close(c->fd);
					continue;
				}
				if (c->sent == (size_t)reqlen) {
					c->st = C_SENT;
					connecting--;
					sent++;
					t_last_sent = rt_ns();
					ev.events = EPOLLIN | EPOLLRDHUP;
					ev.data.u32 = evs[i].data.u32;
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
				continue;
			}
			if (c->st != C_SENT && c->st != C_CONNECTING)
				continue;
			if (!c->buf) {
				c->buf = malloc(BUF_MAX + 1);
				if (!c->buf)
					return 1;
			}
			r = recv(c->fd, c->buf + c->len, BUF_MAX - c->len, 0);
			if (r > 0) {
				c->len += (size_t)r;
				if (!complete(c, match) && c->len < BUF_MAX)
					continue;
				c->t_done = rt_ns();
				if (c->ok)
					lat[answered++] = c->t_done;
				else
					failed++;
			} else if (r < 0 && errno == EAGAIN) {
				continue;
			} else {
				failed++;	/* closed or reset before a whole answer */
			}
			if (c->st == C_CONNECTING)
				connecting--;
			c->st = C_DONE;
			close(c->fd);
			free(c->buf);
			c->buf = NULL;
			open_left--;
		}
	}
	for (i = 0; i < n; i++)
		if (cs[i].st != C_DONE) {
			failed++;
			close(cs[i].fd);
		}
	f = fopen(argv[6], "r");
	if (!f || fscanf(f, "%lld", &t0) != 1) {
		fprintf(stderr, "bench-longpoll: no T0 in %s\n", argv[6]);
		t0 = 0;
	}
	if (f)
		fclose(f);
	for (i = 0; i < answered; i++)
		lat[i] -= t0;
	qsort(lat, (size_t)answered, sizeof(*lat), cmp_ll);
	printf("longpoll.held %d connections\n", sent);
	printf("longpoll.answered %d answers\n", answered);
	printf("longpoll.failed %d answers\n", failed);
	if (answered > 0 && t0 > 0) {
		int p99 = (int)((answered * 99 + 99) / 100) - 1;

		printf("longpoll.first %.4f s\n", (double)lat[0] / 1e9);
		printf("longpoll.p50 %.4f s\n", (double)lat[(answered + 1) / 2 - 1] / 1e9);
		printf("longpoll.p99 %.4f s\n", (double)lat[p99 < 0 ? 0 : p99] / 1e9);
		printf("longpoll.max %.4f s\n", (double)lat[answered - 1] / 1e9);
	}
	free(cs);
	free(lat);
	return 0;
}
