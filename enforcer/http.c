/*
 * http.c — the agent's HTTP client (libcurl easy interface, one handle
 * reused so the connection to the API stays open between long-polls).
 *
 * Rules: http and https only, no redirects (a redirect would carry the
 * bearer token to wherever it points), TLS peer and host verification on
 * (libcurl's defaults, never turned off; --cacert adds a CA file), every
 * body capped (ENF_*_MAX by the caller), every transfer bounded by a
 * timeout, and an abort flag polled during transfers so SIGTERM ends a
 * long-poll at once.
 *
 * The bearer token lives in memory only between reading the file and
 * enf_http_free (wiped with sodium_memzero, as the header list that carried
 * it); it is re-read when the file changes (an operator rotating it needs
 * no restart).  It is never logged: errors name the file, not the content.
 *
 * Not thread-safe: one handle, one thread.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <curl/curl.h>
#include <sodium.h>

#include "enforcer.h"

#define TOKEN_FILE_MAX 16384

struct enf_http {
	CURL *h;
	char *base;
	char *token_file;
	char *token;		/* wiped on replace and free */
	size_t token_len;
	struct stat token_st;
	char *cacert;
	volatile sig_atomic_t *abort_flag;
	bool keys_ok;
};

static void herr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
herr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static void
token_wipe(struct enf_http *h)
{
	if (h->token) {
		sodium_memzero(h->token, h->token_len);
		free(h->token);
	}
	h->token = NULL;
	h->token_len = 0;
}

static int
token_read(struct enf_http *h, char *err, size_t errlen)
{
	struct stat st;
	size_t len, i;
	char *t;

	if (stat(h->token_file, &st) != 0) {
		herr(err, errlen, "cannot read the token file %s: %s", h->token_file,
		     strerror(errno));
		return -1;
	}
	t = enf_read_file(h->token_file, TOKEN_FILE_MAX, &len);
	if (!t) {
		herr(err, errlen, "cannot read the token file %s: %s", h->token_file,
		     strerror(errno));
		return -1;
	}
	while (len > 0 && isspace((unsigned char)t[len - 1]))
		t[--len] = '\0';
	/* a JWT: printable ASCII without spaces (nothing that could split a header) */
	for (i = 0; i < len; i++)
		if (t[i] <= ' ' || t[i] > '~')
			break;
	if (len == 0 || i < len) {
		sodium_memzero(t, len);
		free(t);
		herr(err, errlen, "the token file %s does not hold one bearer token",
		     h->token_file);
		return -1;
	}
	token_wipe(h);
	h->token = t;
	h->token_len = len;
	h->token_st = st;
	return 0;
}

int
enf_http_reload_token(struct enf_http *h, char *err, size_t errlen)
{
	return token_read(h, err, errlen);
}

/* Re-reads the token when the file changed since it was read. */
static void
token_refresh(struct enf_http *h)
{
	struct stat st;
	char err[256];

	if (stat(h->token_file, &st) != 0)
		return;
	if (st.st_ino == h->token_st.st_ino && st.st_size == h->token_st.st_size &&
	    st.st_mtim.tv_sec == h->token_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == h->token_st.st_mtim.tv_nsec)
		return;
	if (token_read(h, err, sizeof(err)) == 0)
		enf_log(ENF_INFO, "token_reloaded", "{s:s}", "file", h->token_file);
	else
		enf_log(ENF_WARN, "token_reload_failed", "{s:s}", "error", err);
}

static bool
host_is_loopback(const char *host)
{
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
	    strcmp(host, "::1") == 0)
		return true;
	return strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == strlen(host);
}

struct enf_http *
enf_http_new(const char *base, const char *token_file, const char *cacert,
	     volatile sig_atomic_t *abort_flag, char *err, size_t errlen)
{
	struct enf_http *h;
	CURLU *u;
	char *scheme = NULL, *host = NULL;
	size_t n;

	h = calloc(1, sizeof(*h));
	if (!h) {
		herr(err, errlen, "out of memory");
		return NULL;
	}
	u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		herr(err, errlen, "the API URL must be http:// or https://HOST[:PORT][/PATH]");
		goto fail;
	}
	h->keys_ok = strcmp(scheme, "https") == 0 || host_is_loopback(host);
	h->base = strdup(base);
	h->token_file = strdup(token_file);
	h->cacert = cacert ? strdup(cacert) : NULL;
	if (!h->base || !h->token_file || (cacert && !h->cacert)) {
		herr(err, errlen, "out of memory");
		goto fail;
	}
	n = strlen(h->base);
	while (n > 0 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	h->abort_flag = abort_flag;
	if (token_read(h, err, errlen) != 0)
		goto fail;
	h->h = curl_easy_init();
	if (!h->h) {
		herr(err, errlen, "curl_easy_init failed");
		goto fail;
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return h;
fail:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	enf_http_free(h);
	return NULL;
}

void
enf_http_free(struct enf_http *h)
{
	if (!h)
		return;
	if (h->h)
		curl_easy_cleanup(h->h);
	token_wipe(h);
	free(h->base);
	free(h->token_file);
	free(h->cacert);
	free(h);
}

bool
enf_http_base_trusted_for_keys(const struct enf_http *h)
{
	return h->keys_ok;
}

void
enf_resp_init(struct enf_resp *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	enf_buf_init(&r->body, max);
}

void
enf_resp_free(struct enf_resp *r)
{
	enf_buf_free(&r->body);
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct enf_resp *r = arg;
	size_t n = size * nmemb;

	enf_buf_add(&r->body, data, n);
	return r->body.failed ? 0 : n;	/* 0: curl stops with a write error */
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct enf_resp *r = arg;
	size_t n = size * nmemb, i, end;

	if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
		for (i = 5; i < n && (data[i] == ' ' || data[i] == '\t'); i++)
			;
		for (end = n; end > i && isspace((unsigned char)data[end - 1]); end--)
			;
		if (end - i < sizeof(r->etag)) {
			memcpy(r->etag, data + i, end - i);
			r->etag[end - i] = '\0';
		}
	}
	return n;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
	    curl_off_t ulnow)
{
	struct enf_http *h = arg;

	return h->abort_flag && *h->abort_flag ? 1 : 0;
}

static int
perform(struct enf_http *h, const char *path, bool auth, const char *if_none_match,
	const char *post_json, long timeout_s, struct enf_resp *r)
{
	struct curl_slist *hdrs = NULL, *nh, *it;
	struct enf_buf line;
	char url[4096];
	CURLcode rc;
	int ret = -1;

	r->status = 0;
	r->etag[0] = '\0';
	r->error[0] = '\0';
	enf_buf_reset(&r->body);
	if (snprintf(url, sizeof(url), "%s%s", h->base, path) >= (int)sizeof(url)) {
		herr(r->error, sizeof(r->error), "URL too long");
		return -1;
	}
	enf_buf_init(&line, TOKEN_FILE_MAX + 64);
	if (auth) {
		token_refresh(h);
		enf_buf_printf(&line, "Authorization: Bearer %s", h->token);
		nh = line.failed ? NULL : curl_slist_append(hdrs, line.p);
		if (!nh)
			goto out;
		hdrs = nh;
	}
	if (if_none_match && if_none_match[0]) {
		char inm[128];

		snprintf(inm, sizeof(inm), "If-None-Match: %s", if_none_match);
		if (!(nh = curl_slist_append(hdrs, inm)))
			goto out;
		hdrs = nh;
	}
	if (!(nh = curl_slist_append(hdrs, "Accept: application/json")))
		goto out;
	hdrs = nh;
	if (post_json) {
		if (!(nh = curl_slist_append(hdrs, "Content-Type: application/json")))
			goto out;
		hdrs = nh;
	}

	curl_easy_reset(h->h);	/* keeps the connection cache */
	curl_easy_setopt(h->h, CURLOPT_URL, url);
	curl_easy_setopt(h->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h->h, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(h->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h->h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h->h, CURLOPT_USERAGENT, "p25-enforcer/" ENF_VERSION);
	curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h->h, CURLOPT_XFERINFODATA, h);
	if (h->cacert)
		curl_easy_setopt(h->h, CURLOPT_CAINFO, h->cacert);
	if (post_json) {
		curl_easy_setopt(h->h, CURLOPT_POSTFIELDS, post_json);
		curl_easy_setopt(h->h, CURLOPT_POSTFIELDSIZE, (long)strlen(post_json));
	}
	rc = curl_easy_perform(h->h);
	if (rc != CURLE_OK) {
		if (rc == CURLE_WRITE_ERROR && r->body.failed)
			herr(r->error, sizeof(r->error), "answer larger than %zu bytes", r->body.max);
		else
			herr(r->error, sizeof(r->error), "%s", curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(h->h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->body.len == 0)
		enf_buf_add(&r->body, "", 0);
	ret = 0;
out:
	if (ret != 0 && !r->error[0])
		herr(r->error, sizeof(r->error), "out of memory");
	/* the header list held the token: wipe it before it goes back to malloc */
	for (it = hdrs; it; it = it->next)
		sodium_memzero(it->data, strlen(it->data));
	curl_slist_free_all(hdrs);
	curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, NULL);
	if (line.p)
		sodium_memzero(line.p, line.len);
	enf_buf_free(&line);
	return ret;
}

int
enf_http_get(struct enf_http *h, const char *path, bool auth, const char *if_none_match,
	     long timeout_s, struct enf_resp *r)
{
	return perform(h, path, auth, if_none_match, NULL, timeout_s, r);
}

int
enf_http_post_json(struct enf_http *h, const char *path, const char *json, long timeout_s,
		   struct enf_resp *r)
{
	return perform(h, path, true, NULL, json, timeout_s, r);
}
