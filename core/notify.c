/*
 * notify.c — queueing tenant webhooks (see notify.h).  The job gets more
 * attempts than the default: it retries with backoff until the delivery is
 * older than P25_WEBHOOK_GIVE_UP (a day by default), then gives up and
 * marks it failed for the tenant to see.
 */
#include <sodium.h>

#include "p25/db.h"
#include "p25/err.h"
#include "p25/notify.h"

int
p25_notify(struct p25_db *db, const char *tenant, const char *event,
	   const char *object_id, const char *status, const char *reason,
	   struct p25_err *err)
{
	P25_STMT(st, 5,
	    "WITH d AS (INSERT INTO webhook_deliveries (tenant_id, event, object_id, payload)"
	    "   SELECT $1, $2, $3, jsonb_build_object('event', $2::text, 'tenant', $1::text,"
	    "     'object', $3::text, 'status', $4::text, 'reason', $5::text,"
	    "     'occurred_at', now())"
	    "   FROM tenants WHERE id = $1 AND webhook_url IS NOT NULL RETURNING id),"
	    " j AS (INSERT INTO jobs (kind, payload, max_attempts)"
	    "   SELECT 'webhook', jsonb_build_object('delivery', id), 100 FROM d RETURNING id)"
	    " SELECT pg_notify('p25_jobs', 'webhook') FROM j");
	const char *p[5] = { tenant, event, object_id, status, reason };

	return p25_db_run(db, &st, p, err) < 0 ? -1 : 0;
}

void
p25_webhook_secret_new(char *out, size_t outlen)
{
	unsigned char rnd[P25_WEBHOOK_SECRET_LEN / 2];

	if (!out || outlen < P25_WEBHOOK_SECRET_LEN + 1) {
		if (out && outlen)
			out[0] = '\0';
		return;
	}
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(out, outlen, rnd, sizeof(rnd));
	sodium_memzero(rnd, sizeof(rnd));
}
