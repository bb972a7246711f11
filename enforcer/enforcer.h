/*
 * enforcer.h — the parts of p25-enforcer, the agent on each enforcement
 * node (DESIGN.md "Feed", issue 5).  Internal to enforcer/ and its unit
 * tests; built as the static library p25enforce (every enforcer .c file but
 * main.c) so tests can link the pure modules.
 *
 *   feed.c    parse the snapshot and feed answers (pure)
 *   state.c   the node's verified state: apply a snapshot or feed events,
 *             expire by the clock, save/load the state file atomically
 *   render.c  the nftables rule set from a state (pure)
 *   keys.c    the trusted key set: the pinned JWKS, plus (only when
 *             configured) keys learned from the API's JWKS
 *   http.c    libcurl: the API calls, bearer token, no redirects
 *   nft.c     loading a rule set: libnftables in process, or an nft program
 *   log.c     one JSON object a line on stderr
 *   util.c    capped buffers, atomic file writes, backoff
 *
 * Nothing here is thread-safe: the agent is one thread.  Ownership is in
 * each declaration's comment.
 */
#ifndef P25_ENFORCER_H
#define P25_ENFORCER_H

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>

#include "p25/verify.h"

#define ENF_VERSION "0.1.0"
#define ENF_SNAPSHOT_MAX (512u << 20)	/* bytes of a snapshot answer */
#define ENF_FEED_MAX (64u << 20)	/* bytes of a feed answer */
#define ENF_STATE_MAX (1024u << 20)	/* bytes of the state file */
#define ENF_RENDER_MAX (1024u << 20)	/* bytes of a rendered rule set */
#define ENF_TIMEOUT_MAX (30LL * 86400)	/* longest kernel timeout rendered (s) */

/* ------------------------------------------------------------ util.c */

/* A growable text buffer with a cap; on overflow or OOM `failed` is set and
 * later appends are ignored, so callers check once at the end. */
struct enf_buf {
	char *p;		/* NUL-terminated when len > 0; owned */
	size_t len, cap, max;
	bool failed;
};

void enf_buf_init(struct enf_buf *b, size_t max);
void enf_buf_free(struct enf_buf *b);
void enf_buf_reset(struct enf_buf *b);
void enf_buf_add(struct enf_buf *b, const void *data, size_t len);
void enf_buf_printf(struct enf_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Writes data to path atomically: path.tmp (mode 0600) written, fsync'd,
 * renamed over path, then the directory fsync'd.  A reader sees the old
 * file or the new one, never a mix; after a crash, one of them.  Returns 0,
 * or -1 with errno set (the temporary file is removed).
 */
int enf_write_atomic(const char *path, const void *data, size_t len);
/* The same without the fsyncs: readers never see a torn file, but a crash may
 * leave the old one (for files that are rewritten from state anyway). */
int enf_write_replace(const char *path, const void *data, size_t len);

/* Reads a whole file (at most max bytes) into a malloc'd NUL-terminated
 * string; NULL with errno set (EFBIG when larger than max). */
char *enf_read_file(const char *path, size_t max, size_t *len);

/*
 * Exponential backoff with jitter: attempt 0, 1, 2 ... gives a delay in
 * milliseconds drawn from [d/2, d] where d = min(cap_ms, base_ms * 2^attempt)
 * ("equal jitter": never zero, never above the cap).  rnd is a uniform
 * value in [0, 1).
 */
long enf_backoff_ms(unsigned attempt, long base_ms, long cap_ms, double rnd);

/* ------------------------------------------------------------- log.c */

enum enf_level { ENF_DEBUG, ENF_INFO, ENF_WARN, ENF_ERROR };

void enf_log_set_level(enum enf_level lv);
int enf_log_parse_level(const char *s, enum enf_level *out);
/*
 * One JSON line on stderr: {"ts","level","component":"p25-enforcer",
 * "event", ...}.  fields is a jansson json_pack() object format ("{s:s,
 * s:I}") with its arguments, or NULL.  Callers never pass a bearer token
 * or a key: nothing here filters.
 */
void enf_log(enum enf_level lv, const char *event, const char *fields, ...);

/* ------------------------------------------------------------ feed.c */

enum enf_event_type { ENF_EV_GRANT, ENF_EV_RENEW, ENF_EV_REVOKE, ENF_EV_UNKNOWN };

struct enf_event {
	long long seq;
	enum enf_event_type type;
	char exemption[64];
	char cidr[64];		/* as the event says: informational only */
	char *token;		/* grant/renew: the JWS (owned); NULL otherwise */
	char reason[128];	/* revoke: why */
	char type_name[16];	/* as sent (for logging an unknown type) */
};

struct enf_feed {
	struct enf_event *ev;	/* owned */
	size_t n;
	long long next;
};

struct enf_snapshot {
	long long seq;
	char **tokens;		/* owned, n strings */
	size_t n;
};

/*
 * Parses a feed answer {"events":[...],"next":N}.  Strict where safety
 * depends on it: seq strictly increasing and > after, next >= every seq
 * and >= after, token a string of at most P25_TOKEN_MAX bytes; an event of
 * a type this agent does not know is kept as ENF_EV_UNKNOWN (the caller
 * skips it).  Returns 0, or -1 with a message in err.
 */
int enf_feed_parse(const char *json, size_t len, long long after,
		   struct enf_feed *out, char *err, size_t errlen);
void enf_feed_free(struct enf_feed *f);

/* Parses a snapshot {"seq":N,"tokens":["JWS",...]}; 0 or -1 with err. */
int enf_snapshot_parse(const char *json, size_t len, struct enf_snapshot *out,
		       char *err, size_t errlen);
void enf_snapshot_free(struct enf_snapshot *s);

/* The kid of a compact JWS's header, without verifying anything (to learn
 * which keys a batch needs before applying it).  0, or -1 when there is
 * none or the header is not ours to read. */
int enf_token_kid(const char *token, char *kid, size_t len);

/* ----------------------------------------------------------- state.c */

/*
 * The claims of a held token as the agent uses them: struct p25_claims
 * less what is fixed (port, proto, dir) or unused (sub, request), with its
 * strings in the entry's one allocation (enf_entry.token) instead of
 * fixed arrays — about 100 bytes instead of 1.6 KB, so that sorting,
 * inserting and reusing 100,000 entries moves little memory.
 */
struct enf_claims {
	const char *iss, *jti, *kid, *cidr;	/* NUL-terminated, in the block */
	const char *const *dest;	/* ndest strings in the block; NULL when 0 */
	int ndest;			/* 0 = no dest restriction */
	long long iat, nbf, exp;
	long long rate;			/* messages per hour; -1 when absent */
};

/* One exemption the node holds: a token that verified. */
struct enf_entry {
	char *token;		/* the compact JWS, at the start of the entry's one
				   allocation that also holds c's strings; owned */
	struct enf_claims c;	/* its claims as verified */
	unsigned char pk[32];	/* the public key that verified it (c.kid's) */
	long long applied_exp;	/* the expiry the loaded rule set carries for it
				   (kernel timeout, meta time); 0: not loaded */
};

/*
 * Sets e to token with the verified claims c and key pk in one new
 * allocation; the block e held before (e->token, may be NULL) is freed
 * after (token may point into it).  applied_exp is not touched.  0, or -1
 * when out of memory (e unchanged).
 */
int enf_entry_set(struct enf_entry *e, const char *token, const struct p25_claims *c,
		  const unsigned char pk[32]);
/* The entry's claims as a struct p25_claims (port, proto and dir as every
 * verified token has them; sub and request empty). */
void enf_entry_claims(const struct enf_entry *e, struct p25_claims *out);

/* The node's state: the feed position and the verified tokens, sorted by
 * jti (one per exemption). */
struct enf_state {
	long long seq;
	struct enf_entry *v;	/* owned */
	size_t n, cap;
	unsigned long gen;	/* bumped on every change */
};

/* What a token is checked against. */
struct enf_verifier {
	const struct p25_keyset *ks;
	const char *issuer;
	int skew;
};

/* Counts of one batch (snapshot, feed answer or state file). */
struct enf_stats {
	unsigned added, replaced, removed, unchanged, expired;
	unsigned rejected;		/* failed verification: skipped */
	unsigned unknown_kid;		/* of those, signed by a key not trusted */
	unsigned ignored;		/* unknown event types, stale renewals */
	unsigned reused;		/* byte-identical to a token held and verified
					   under the same key: signature not re-checked */
};

void enf_state_init(struct enf_state *st);
void enf_state_cleanup(struct enf_state *st);
const struct enf_entry *enf_state_find(const struct enf_state *st, const char *jti);

/*
 * Replaces the state by a snapshot: every token verified (failures logged
 * and skipped), seq = snapshot's.  A token byte-identical to one the state
 * holds keeps that entry's verified claims without a second signature
 * check when the key that verified it is still in the set under the same
 * kid and the time and issuer checks pass now (what p25_token_verify would
 * conclude, as its other inputs are the same bytes); counted in
 * stats->reused.  Returns 0, or -1 when out of memory (the state is
 * unchanged).
 */
int enf_state_from_snapshot(struct enf_state *st, const struct enf_snapshot *snap,
			    const struct enf_verifier *vf, long long now,
			    struct enf_stats *stats);

/*
 * Applies one feed event: grant/renew add or replace the exemption named
 * by the verified token's jti (a token older than the one held — lower
 * iat — is ignored, so a late duplicate never rolls back a renewal);
 * revoke removes the exemption id.  A token that fails verification is
 * logged and skipped.  seq advances to the event's in every case (an event
 * skipped is still consumed).  Returns 0, or -1 out of memory.
 */
int enf_state_apply(struct enf_state *st, const struct enf_event *ev,
		    const struct enf_verifier *vf, long long now,
		    struct enf_stats *stats);

/* Removes every entry whose exp <= now; returns how many. */
size_t enf_state_expire(struct enf_state *st, long long now);

/* Re-verifies every held token (after the key set changed); drops failures.
 * A token whose verifying key is still in the set, unchanged under its kid,
 * only has its time and issuer checked again (the signature stays valid). */
size_t enf_state_reverify(struct enf_state *st, const struct enf_verifier *vf,
			  long long now);

/* Earliest exp among the entries, or 0 when there are none. */
long long enf_state_next_expiry(const struct enf_state *st);

/*
 * The state file: {"format":"p25-enforcer-state/1","seq":N,"saved_at":T,
 * "tokens":[...]}, written atomically (enf_write_atomic).  Tokens are kept,
 * not claims: loading verifies them again, so a state file is never
 * trusted more than the feed was.
 */
int enf_state_save(const struct enf_state *st, const char *path, long long now);
/*
 * Loads a state file into st (which must be empty): 0 (also when the file
 * does not exist: st stays empty, seq 0), or -1 with err (unreadable,
 * malformed: the caller starts empty).
 */
int enf_state_load(struct enf_state *st, const char *path,
		   const struct enf_verifier *vf, long long now,
		   struct enf_stats *stats, char *err, size_t errlen);

/*
 * Digest (BLAKE2b-256) of the rule set's structure: for the entries active
 * at now, jti, cidr, dest and rate — not the expiries.  Equal digests give
 * the same rule set up to timeouts, so a renewal alone does not force a
 * reload; enf_state_refresh_due() says when the loaded timeouts must be
 * brought up to date.
 */
void enf_state_digest(const struct enf_state *st, long long now,
		      unsigned char out[32]);

/* After a successful load: every entry's applied_exp = min(exp, now + cap). */
void enf_state_mark_applied(struct enf_state *st, long long now);

/* True when an active entry's loaded expiry is behind its token's and will
 * be reached within margin seconds: reload to carry the renewal. */
bool enf_state_refresh_due(const struct enf_state *st, long long now, long long margin);

/* The next moment the rule set must change by the clock alone: the
 * earliest exp, or applied_exp - margin of a renewed entry; 0 when none. */
long long enf_state_next_deadline(const struct enf_state *st, long long margin);

/* ---------------------------------------------------------- render.c */

/*
 * Renders the nftables script for the entries active at now (exp > now)
 * into out (appended).  The script replaces table inet p25 atomically
 * (one `nft -f` transaction: add, delete, define).  Everything put into it
 * is re-derived from binary addresses and integers (never pasted from
 * token text).  Returns 0, or -1 when out overflowed.
 */
int enf_render(const struct enf_state *st, long long now, struct enf_buf *out);

/* Counts of the last rendering, for logs. */
struct enf_render_info {
	unsigned v4, v6;	/* set elements (after de-nesting) */
	unsigned scoped;	/* tokens rendered as their own rules */
};
int enf_render_ex(const struct enf_state *st, long long now, struct enf_buf *out,
		  struct enf_render_info *info);

/* ------------------------------------------------------------ keys.c */

struct enf_keys {
	char *pin_path;		/* the operator's JWKS: the trust root */
	char *learned_path;	/* keys learned from the API (NULL: never) */
	char *pin_text;		/* the pinned keys, as JSON text */
	char *learned_text;	/* the learned keys (OKP/Ed25519 only), or NULL */
	struct p25_keyset *ks;	/* pin ∪ learned */
};

/* Loads the pin (required) and, when learned_path is set, the learned keys
 * from an earlier run.  0, or -1 with err. */
int enf_keys_load(struct enf_keys *k, const char *pin_path,
		  const char *learned_path, char *err, size_t errlen);
void enf_keys_free(struct enf_keys *k);

/*
 * Merges a JWKS fetched from the API: its Ed25519 keys that are not pinned
 * become the learned set (keys the API no longer publishes leave it; pinned
 * keys are never touched).  A fetched key whose kid is pinned with a
 * different x refuses the whole document.  *added and *removed count learned
 * keys.  Saves the learned file when it changed.  0, or -1 with err (the
 * key set is unchanged).
 */
int enf_keys_merge(struct enf_keys *k, const char *jwks, size_t len,
		   unsigned *added, unsigned *removed, char *err, size_t errlen);

/* Pure core of enf_keys_merge: the new learned JWKS text (malloc'd) from the
 * pinned and the fetched documents. */
char *enf_keys_learned_from(const char *pin_json, const char *fetched_json,
			    size_t fetched_len, unsigned *nkeys, char *err,
			    size_t errlen);

/* ------------------------------------------------------------- nft.c */

struct enf_nft;

/*
 * program: run `PROGRAM [-c] -f FILE` for each load; NULL: libnftables in
 * process when it loads, else the program `nft`.  check_only: dry run.
 * NULL when out of memory.
 */
struct enf_nft *enf_nft_new(const char *program, bool check_only);
void enf_nft_free(struct enf_nft *n);
/* "libnftables" or the program's name, for logs */
const char *enf_nft_how(const struct enf_nft *n);
/* Loads the rule set (text, also written at path for a program): 0, or
 * non-zero with nft's messages in out. */
int enf_nft_load(struct enf_nft *n, const char *path, const char *text, char *out,
		 size_t outlen);

/* ------------------------------------------------------------ http.c */

struct enf_http;

struct enf_resp {
	long status;		/* 0: no answer (network) */
	struct enf_buf body;
	char etag[80];
	char error[256];	/* curl's message when status == 0 */
};

/*
 * A client for base (scheme://host[:port], no trailing path needed) with
 * the bearer token read from token_file (re-read when the file changes;
 * never logged).  cacert may be NULL.  abort_flag, when non-NULL, is
 * polled during transfers: non-zero aborts (SIGTERM).
 */
struct enf_http *enf_http_new(const char *base, const char *token_file,
			      const char *cacert, volatile sig_atomic_t *abort_flag,
			      char *err, size_t errlen);
void enf_http_free(struct enf_http *h);
/* Re-reads the token file now (SIGHUP). */
int enf_http_reload_token(struct enf_http *h, char *err, size_t errlen);
/* True when base is https, or http to a loopback address. */
bool enf_http_base_trusted_for_keys(const struct enf_http *h);

void enf_resp_init(struct enf_resp *r, size_t max);
void enf_resp_free(struct enf_resp *r);

/* GET path (with query).  auth: send the bearer token.  if_none_match may
 * be NULL.  timeout_s bounds the whole transfer.  0 when an HTTP answer
 * arrived (any status), -1 on a transport failure (r->error says). */
int enf_http_get(struct enf_http *h, const char *path, bool auth,
		 const char *if_none_match, long timeout_s, struct enf_resp *r);
int enf_http_post_json(struct enf_http *h, const char *path, const char *json,
		       long timeout_s, struct enf_resp *r);

#endif
