/*
 * vetting.h — the checks behind a decision, and the policy that maps them
 * to one.
 *
 * A check is a row of evidence: its name, subject (an address, a zone and
 * an address, a domain), outcome (pass, fail, warn, error), a reason code
 * when it did not pass, what was seen (JSON) and a hint telling the tenant
 * what to fix.  p25_vet_dns() runs the DNS checks (DNSBL, forward-confirmed
 * reverse DNS, SPF, DMARC) concurrently on one resolver, and
 * p25_vet_dns_batch() those of several requests at once;
 * p25_vet_facts() adds the checks that come from the database (ownership,
 * account, history).  The policy (data, with defaults and a version) maps
 * each reason code to an action, and the most severe action wins:
 * deny > needs_review > needs_info > approve.  A DNS error is "unknown": it
 * can send a request to a reviewer, never approve it.
 *
 * Thread-safety: the functions touch only what they are given.  Text from
 * DNS is untrusted: it is stored as JSON strings and never interpreted.
 */
#ifndef P25_VETTING_H
#define P25_VETTING_H

#include <stdbool.h>
#include <stddef.h>

struct json_t;
struct p25_config;
struct p25_dns;
struct p25_err;
struct p25_prefix;

enum p25_outcome { P25_PASS, P25_WARN, P25_FAIL, P25_ERROR };

struct p25_check {
	char name[16];		/* dnsbl, rdns, spf, dmarc, ownership, account, history */
	char subject[300];
	enum p25_outcome outcome;
	char code[32];		/* reason code, "" when passed */
	struct json_t *evidence;	/* owned */
	char hint[300];
	int prefix_idx;		/* which of the addresses, -1 when not about one */
};

struct p25_checks {
	struct p25_check *v;
	int n, cap;
};

void p25_checks_free(struct p25_checks *c);
/* Appends a check; returns it (evidence starts as an empty object). */
struct p25_check *p25_checks_add(struct p25_checks *c, const char *name,
				 const char *subject, enum p25_outcome o,
				 const char *code, const char *hint);
const char *p25_outcome_str(enum p25_outcome o);
/* JSON array of the checks for an API answer (caller decrefs). */
struct json_t *p25_checks_json(const struct p25_checks *c);

enum { P25_VET_DNSBL = 1, P25_VET_RDNS = 2, P25_VET_MAIL = 4, P25_VET_ALL = 7 };

/* DNS checks (what: P25_VET_* bits) for the addresses and sender domains
 * (array of strings, may be NULL).  Blocks until every query answered or
 * timed out.  The batch of one of p25_vet_dns_batch(). */
int p25_vet_dns(const struct p25_config *cfg, struct p25_dns *dns,
		const struct p25_prefix *addrs, int naddrs,
		struct json_t *domains, unsigned what, struct p25_checks *out,
		struct p25_err *err);

/* One request of a batch: its input, where its checks go (appended to
 * *out) and how it ended (rc 0, or -1 with *err filled). */
struct p25_vet_input {
	const struct p25_prefix *addrs;
	int naddrs;
	struct json_t *domains;		/* array of strings, may be NULL */
	struct p25_checks *out;
	struct p25_err *err;
	int rc;				/* set by p25_vet_dns_batch */
};

/* The DNS checks of n requests at once on one resolver: every request's
 * first-phase queries (DNSBL, PTR → A/AAAA, DMARC, SPF records) go out
 * together, the zones' RFC 5782 test queries once for the batch, and the
 * SPF evaluations of all requests proceed together round by round over
 * one answer cache (a query several of them need is sent once).  Each
 * request gets exactly the checks p25_vet_dns() gives it alone.  A request
 * that fails (out of memory) fails alone: its rc is -1 and its err set.
 * Returns 0 when every request succeeded, else -1 (err is set only when
 * the batch as a whole could not start). */
int p25_vet_dns_batch(const struct p25_config *cfg, struct p25_dns *dns,
		      struct p25_vet_input *in, int n, unsigned what,
		      struct p25_err *err);

/* What the database knows about the tenant and the addresses. */
struct p25_facts {
	bool tenant_known;
	double account_age_days;
	bool verified;
	char standing[16];
	int denials_30d;
	int abuse_suspensions_90d;
	int requests_24h;
	char not_held[512];	/* comma-separated addresses outside the inventory */
};

struct p25_db;
/* Reads the facts of tenant for the addresses in cidrs (a PostgreSQL
 * cidr[] literal), inside the caller's transaction. */
int p25_facts_load(struct p25_db *db, const char *tenant, const char *cidrs,
		   struct p25_facts *f, struct p25_err *err);

struct p25_policy;
void p25_vet_facts(const struct p25_policy *pol, const struct p25_facts *f,
		   struct p25_checks *out);

/* --- policy --- */

enum p25_action { P25_ACT_IGNORE, P25_ACT_WARN,
		  P25_ACT_NEEDS_INFO, P25_ACT_NEEDS_REVIEW, P25_ACT_DENY };

#define P25_POLICY_MAX_CODES 48

struct p25_policy {
	char version[64];
	struct {
		char code[32];
		enum p25_action action;
	} actions[P25_POLICY_MAX_CODES];
	int nactions;
	int account_min_age_days;
	int history_max_denials_30d;
	int history_max_requests_24h;
	int deny_reapply_days;
	int exemption_days;
	int recheck_interval_seconds;
	/* the way back after a suspension */
	int cooldown_hours[8];		/* by suspension count: 1st, 2nd, … (last repeats) */
	int ncooldown;
	bool self_reinstate;		/* first offence: the tenant's recheck may reinstate */
	int monitor_interval_seconds;	/* scheduled DNSBL re-check of active exemptions */
	int monitor_error_review;	/* consecutive DNS errors that raise a review item */
};

/* Cooldown hours as a PostgreSQL int[] literal ("{1,24,168,720}"). */
void p25_policy_cooldowns(const struct p25_policy *p, char *buf, size_t len);

/* The built-in defaults (documented in docs/policy.md). */
void p25_policy_defaults(struct p25_policy *p);
/* Parses a policy JSON text over the defaults; refuses unknown keys,
 * unknown codes and actions, and an error code mapped to warn/ignore. */
int p25_policy_parse(const char *json, size_t len, struct p25_policy *p,
		     struct p25_err *err);
/* Defaults when path is NULL or empty, else the file. */
int p25_policy_load(const char *path, struct p25_policy *p, struct p25_err *err);
enum p25_action p25_policy_action(const struct p25_policy *p, const char *code);
const char *p25_action_str(enum p25_action a);

struct p25_decision {
	char decision[16];	/* approve, deny, needs_review, needs_info */
	struct json_t *reason_codes;	/* array, owned */
	char message[1024];
	int reapply_days;	/* > 0 for deny */
};

void p25_policy_decide(const struct p25_policy *p, const struct p25_checks *c,
		       struct p25_decision *out);
void p25_decision_free(struct p25_decision *d);

#endif
