/*
 * notify.h — tenant notifications.  p25_notify() records a webhook
 * delivery and queues the `webhook` job that POSTs it, inside the caller's
 * transaction, so a notification exists exactly when the change it tells
 * of committed.  Tenants without a webhook URL get nothing queued.
 */
#ifndef P25_NOTIFY_H
#define P25_NOTIFY_H

#include <stddef.h>

struct p25_db;
struct p25_err;

/* event: "request.status" or "exemption.status"; status the new state. */
int p25_notify(struct p25_db *db, const char *tenant, const char *event,
	       const char *object_id, const char *status, const char *reason,
	       struct p25_err *err);

/*
 * A new webhook signing secret: 32 random bytes as 64 lowercase hex
 * characters and a NUL (out must hold P25_WEBHOOK_SECRET_LEN + 1).  The
 * webhook job keys HMAC-SHA256 with the 32 bytes the hex stands for.
 */
#define P25_WEBHOOK_SECRET_LEN 64
void p25_webhook_secret_new(char *out, size_t outlen);

#endif
