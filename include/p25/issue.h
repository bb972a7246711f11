/*
 * issue.h — the one issuance function: every approval, by policy or by a
 * reviewer, becomes exemptions through p25_issue().
 *
 * Inside the caller's transaction (the one that records the decision) it
 * creates one active exemption per approved prefix, signs one Ed25519
 * exemption token per exemption with the active key, stores the token,
 * writes a `grant` feed event and the audit rows, and notifies the API
 * processes holding long-polls (NOTIFY p25_feed, delivered at commit).  A
 * live exemption of the same tenant and prefix is superseded (revoked, with
 * a `revoke` event) so there is always at most one.  No signing key, no
 * KEK: the function fails (503) and the caller rolls back — an approval
 * never exists without its tokens.
 */
#ifndef P25_ISSUE_H
#define P25_ISSUE_H

#include <stdbool.h>

struct json_t;
struct p25_config;
struct p25_db;
struct p25_err;

struct p25_issuer {
	unsigned char kek[32];
	bool have_kek;
	char iss[128];
	long token_ttl;
	int monitor_interval;	/* seconds; new exemptions' first re-check is spread over it */
};

/* Loads the KEK (when P25_KEK_FILE is set) and the token settings.  A KEK
 * file that is set but unreadable is an error. */
int p25_issuer_init(struct p25_issuer *is, const struct p25_config *cfg,
		    struct p25_err *err);
void p25_issuer_wipe(struct p25_issuer *is);

struct p25_issue_opts {
	int expires_days;		/* exemption lifetime */
	struct json_t *prefixes;	/* array of CIDR strings; NULL = all of the request's */
	struct json_t *dest;		/* optional array of CIDR strings */
	long rate;			/* messages per hour, or -1 */
};

/*
 * Issues the exemptions of request_id (tenant's) as actor.  *ids receives
 * a JSON array of the new exemption ids (caller decrefs; may be NULL).
 */
int p25_issue(struct p25_db *db, const struct p25_issuer *is, const char *request_id,
	      const char *tenant, const char *actor, const struct p25_issue_opts *o,
	      struct json_t **ids, struct p25_err *err);

/*
 * Several approvals in one transaction (a vetting batch): the active key is
 * loaded and unsealed once, on the first approval, and kept in
 * sodium_malloc'd memory until p25_issue_batch_end() wipes it; the grant
 * feed events are kept and written with their positions by
 * p25_issue_batch_flush() (p25_feed_append, migration 0011), the last
 * statement before COMMIT.  Zero-initialise the struct before the first
 * call.  After a rollback call p25_issue_batch_end() (the kept events
 * belonged to the rolled-back transaction).
 */
struct p25_signer;
struct p25_issue_batch {
	struct p25_signer *signer;
	struct json_t *feed;	/* pending grant events, in order */
};

/* p25_issue() inside a batch (b may be NULL: then exactly p25_issue()). */
int p25_issue_batched(struct p25_db *db, const struct p25_issuer *is, struct p25_issue_batch *b,
		      const char *request_id, const char *tenant, const char *actor,
		      const struct p25_issue_opts *o, struct json_t **ids, struct p25_err *err);
/* Writes the batch's pending feed events (none: no round trip). */
int p25_issue_batch_flush(struct p25_db *db, struct p25_issue_batch *b, struct p25_err *err);
/* Wipes the key, drops pending events; the struct can be used again. */
void p25_issue_batch_end(struct p25_issue_batch *b);

/*
 * Signs a (new) token for an existing exemption inside the caller's
 * transaction: marks the previous token not current, stores the new one
 * and writes a feed event of type ("grant" or "renew").
 */
int p25_issue_token(struct p25_db *db, const struct p25_issuer *is,
		    const char *exemption_id,
		    const char *type, struct p25_err *err);

#endif
