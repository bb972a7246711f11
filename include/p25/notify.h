/*
 * notify.h — tenant notifications.  p25_notify() records a webhook
 * delivery and queues the `webhook` job that POSTs it, inside the caller's
 * transaction, so a notification exists exactly when the change it tells
 * of committed.  Tenants without a webhook URL get nothing queued.
 */
#ifndef P25_NOTIFY_H
#define P25_NOTIFY_H

struct p25_db;
struct p25_err;

/* event: "request.status" or "exemption.status"; status the new state. */
int p25_notify(struct p25_db *db, const char *tenant, const char *event,
	       const char *object_id, const char *status, const char *reason,
	       struct p25_err *err);

#endif
