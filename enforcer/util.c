/*
 * util.c — small things the agent's modules share: capped text buffers
 * (curl's Curl_dyn idea: every growable buffer has a cap, and a failed
 * append poisons the buffer so one check at the end suffices), atomic file
 * writes, whole-file reads, and the retry backoff.
 *
 * Pure but for the file functions.  Not thread-safe (the agent is one
 * thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enforcer.h"

void
enf_buf_init(struct enf_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
enf_buf_free(struct enf_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
enf_buf_reset(struct enf_buf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->p)
		b->p[0] = '\0';
}

static bool
buf_reserve(struct enf_buf *b, size_t more)
{
	size_t want, ncap;
	char *np;

	if (b->failed)
		return false;
	if (more > b->max || b->len > b->max - more) {
		b->failed = true;
		return false;
	}
	want = b->len + more + 1;
	if (want <= b->cap)
		return true;
	ncap = b->cap ? b->cap : 256;
	while (ncap < want)
		ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	np = realloc(b->p, ncap);
	if (!np) {
		b->failed = true;
		return false;
	}
	b->p = np;
	b->cap = ncap;
	return true;
}

void
enf_buf_add(struct enf_buf *b, const void *data, size_t len)
{
	if (!buf_reserve(b, len))
		return;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void
enf_buf_printf(struct enf_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static int
write_replace(const char *path, const void *data, size_t len, bool durable)
{
	char tmp[PATH_MAX], dirbuf[PATH_MAX];
	const char *p = data;
	int fd, dfd, saved;
	ssize_t w;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) ||
	    snprintf(dirbuf, sizeof(dirbuf), "%s", path) >= (int)sizeof(dirbuf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	while (len > 0) {
		w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += w;
		len -= (size_t)w;
	}
	if (durable && fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	if (!durable)
		return 0;
	/* the rename is durable only once the directory is */
	dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	if (fsync(dfd) != 0) {
		saved = errno;
		close(dfd);
		errno = saved;
		return -1;
	}
	close(dfd);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

int
enf_write_atomic(const char *path, const void *data, size_t len)
{
	return write_replace(path, data, len, true);
}

int
enf_write_replace(const char *path, const void *data, size_t len)
{
	return write_replace(path, data, len, false);
}

char *
enf_read_file(const char *path, size_t max, size_t *lenp)
{
	struct enf_buf b;
	char chunk[65536];
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	enf_buf_init(&b, max);
	enf_buf_add(&b, "", 0);
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (r == 0)
			break;
		enf_buf_add(&b, chunk, (size_t)r);
		if (b.failed)
			break;
	}
	if (r != 0 || b.failed) {
		int saved = r < 0 ? errno : EFBIG;

		close(fd);
		enf_buf_free(&b);
		errno = saved;
		return NULL;
	}
	close(fd);
	if (lenp)
		*lenp = b.len;
	return b.p;
}

long
enf_backoff_ms(unsigned attempt, long base_ms, long cap_ms, double rnd)
{
	long d = base_ms > 0 ? base_ms : 1;

	if (cap_ms < d)
		cap_ms = d;
	while (attempt-- > 0 && d < cap_ms)
		d = d > cap_ms / 2 ? cap_ms : d * 2;
	if (d > cap_ms)
		d = cap_ms;
	if (rnd < 0)
		rnd = 0;
	if (rnd >= 1)
		rnd = 0.999999;
	return d / 2 + (long)((double)(d - d / 2) * rnd);
}
