/*
 * suspend.h — taking an exemption away at once (a listing found by the
 * scheduled re-check, an abuse report) and releasing addresses.
 *
 * p25_suspend(), inside the caller's transaction: the exemption becomes
 * `suspended` (its token stops being current, a `revoke` event closes the
 * port on every node), the suspension count grows and sets the cool-down
 * before reinstatement (longer for each repeat, from the policy), the
 * request goes back to `needs_review` with a decision that says why (the
 * review item), the tenant is notified, and the audit row is written.
 */
#ifndef P25_SUSPEND_H
#define P25_SUSPEND_H

struct json_t;
struct p25_db;
struct p25_err;
struct p25_policy;

/* cause: "listing" or "abuse_report"; code: the reason code for the
 * review item ("dnsbl_sbl", "abuse_spam" …); reason: text for the tenant.
 * Returns 1 when suspended, 0 when the exemption was not active. */
int p25_suspend(struct p25_db *db, const struct p25_policy *pol, const char *exemption_id,
		const char *cause, const char *code, const char *reason,
		struct json_t *evidence, const char *actor, struct p25_err *err);

/*
 * Puts an approved request back in the review queue (status needs_review,
 * a decision by actor naming code and message): the "review item" of
 * monitoring.  No-op when the request is not approved.
 */
int p25_review_item(struct p25_db *db, const char *request_id, const char *actor,
		    const char *code, const char *message, struct p25_err *err);

#endif
