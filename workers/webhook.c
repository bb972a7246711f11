/*
 * webhook.c — the `webhook` job kind: POSTs one tenant notification.
 *
 * Payload {"delivery": id}.  The body is the delivery's JSON; headers:
 *   P25-Event, P25-Delivery, and
 *   P25-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, t "." body)>
 * where secret is the tenant's webhook secret (64 hex characters, decoded
 * to 32 bytes).  A tenant checks the HMAC in constant time and refuses
 * stale t (replays).  Any 2xx is delivered; anything else is retried with
 * exponential backoff (the same formula as the queue's, by the delivery's
 * own attempt count: each retry is a new job queued in the transaction
 * that records the failure, so the queue's attempt cap does not end a
 * day of retries early) until the delivery is older than
 * P25_WEBHOOK_GIVE_UP; then it is marked failed (the tenant sees it in
 * GET /v1/webhook-deliveries).  Redirects are not followed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "p25/db.h"
#include "p25/err.h"
#include "p25/jobs.h"
#include "p25/log.h"
#include "p25/validate.h"
#include "worker.h"

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

int
p25_job_webhook(struct p25_job *job, struct p25_db *db, struct p25_err *err)
{
	P25_STMT(load, 1,
	    "SELECT d.payload::text, d.event, t.webhook_url, t.webhook_secret,"
	    " floor(extract(epoch FROM now() - d.created_at))::bigint, d.status"
	    " FROM webhook_deliveries d JOIN tenants t ON t.id = d.tenant_id WHERE d.id = $1");
	P25_STMT(done, 4,
	    "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1,"
	    " last_status = $3::integer, last_error = $4, updated_at = now() WHERE id = $1"
	    " RETURNING attempts");
	const char *id = json_string_value(json_object_get(job->payload, "delivery"));
	char *body = NULL, *url = NULL, *event = NULL, sig[160], hdr[200], st[16], cerr[CURL_ERROR_SIZE];
	unsigned char key[32], mac[32];
	char machex[65];
	size_t klen = 0;
	long age = 0, http = 0;
	struct curl_slist *h = NULL;
	CURL *c = NULL;
	PGresult *res;
	const char *outcome;
	int rc = -1;

	if (!id || !p25_uuid_ok(id))
		return p25_err_set(err, 400, "bad_payload", "webhook job needs {delivery: uuid}");
	if (p25_db_begin_as(db, NULL, "system", err) != 0)
		return -1;
	{
		const char *p[1] = { id };
		res = p25_db_exec(db, &load, p, err);
	}
	p25_db_rollback(db);
	if (!res)
		return -1;
	if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 5), "pending") != 0 ||
	    PQgetisnull(res, 0, 2)) {
		PQclear(res);
		return 0;	/* gone, done, or the tenant removed its URL */
	}
	body = strdup(PQgetvalue(res, 0, 0));
	event = strdup(PQgetvalue(res, 0, 1));
	url = strdup(PQgetvalue(res, 0, 2));
	if (sodium_hex2bin(key, sizeof(key), PQgetvalue(res, 0, 3), strlen(PQgetvalue(res, 0, 3)),
			   NULL, &klen, NULL) != 0 || klen != sizeof(key))
		klen = 0;
	age = strtol(PQgetvalue(res, 0, 4), NULL, 10);
	PQclear(res);
	if (!body || !event || !url || klen == 0) {
		p25_err_set(err, 500, "webhook_setup", "the delivery or the tenant's secret is unusable");
		goto out;
	}
	{
		long long t = (long long)time(NULL);
		crypto_auth_hmacsha256_state hs;
		char ts[24];
		snprintf(ts, sizeof(ts), "%lld", t);
		crypto_auth_hmacsha256_init(&hs, key, sizeof(key));
		crypto_auth_hmacsha256_update(&hs, (const unsigned char *)ts, strlen(ts));
		crypto_auth_hmacsha256_update(&hs, (const unsigned char *)".", 1);
		crypto_auth_hmacsha256_update(&hs, (const unsigned char *)body, strlen(body));
		crypto_auth_hmacsha256_final(&hs, mac);
		sodium_bin2hex(machex, sizeof(machex), mac, sizeof(mac));
		snprintf(sig, sizeof(sig), "P25-Signature: t=%s,v1=%s", ts, machex);
	}
	sodium_memzero(key, sizeof(key));
	c = curl_easy_init();
	if (!c) {
		p25_err_set(err, 503, "out_of_memory", "cannot start an HTTP client");
		goto out;
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, sig);
	snprintf(hdr, sizeof(hdr), "P25-Delivery: %s", id);
	h = curl_slist_append(h, hdr);
	snprintf(hdr, sizeof(hdr), "P25-Event: %.100s", event);
	h = curl_slist_append(h, hdr);
	cerr[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, wctx.cfg.webhook_timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "p25-webhook/1");
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
	if (http >= 200 && http < 300)
		outcome = "delivered";
	else if (age >= wctx.cfg.webhook_give_up)
		outcome = "failed";
	else
		outcome = "pending";
	snprintf(st, sizeof(st), "%ld", http);
	{
		char e2[300];
		const char *p[4] = { id, outcome, http ? st : NULL, e2 };
		snprintf(e2, sizeof(e2), "%s", http >= 200 && http < 300 ? "" :
			 http ? "the endpoint answered with an error status" : cerr);
		PGresult *ur;
		int attempts;
		if (p25_db_begin_as(db, NULL, "system", err) != 0)
			goto out;
		if (!(ur = p25_db_exec(db, &done, p, err))) {
			p25_db_rollback(db);
			goto out;
		}
		attempts = PQntuples(ur) ? (int)strtol(PQgetvalue(ur, 0, 0), NULL, 10) : 1;
		PQclear(ur);
		if (strcmp(outcome, "pending") == 0 &&
		    p25_job_enqueue(db, "webhook", job->payload, NULL,
				    (int)(p25_queue_backoff(attempts, randombytes_uniform(1000000) / 1e6) + 0.5),
				    err) != 0) {
			p25_db_rollback(db);
			goto out;
		}
		if (p25_job_complete(db, job, err) != 0 || p25_db_commit(db, err) != 0) {
			p25_db_rollback(db);
			goto out;
		}
	}
	if (strcmp(outcome, "pending") == 0)
		p25_info("webhook.retry", "delivery %s: HTTP %ld %s; retrying", id, http, cerr);
	if (strcmp(outcome, "failed") == 0)
		p25_warn("webhook.failed", "delivery %s given up after %ld s", id, age);
	rc = 0;
out:
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(body);
	free(url);
	free(event);
	return rc;
}
