/*
 * main.c — p25-enforcer: options, the follow loop, applying the rule set
 * with nft, acknowledgements and signals.  `p25-enforcer --help` is the
 * manual; the modules are described in enforcer.h.
 *
 * The loop (--apply):
 *
 *   1. load the state file (every token verified again) and load its rule
 *      set at once: a node that boots while the API is down enforces its
 *      last verified state, and a fresh node blocks port 25 for everyone;
 *   2. take the snapshot (If-None-Match: the state's position, so an
 *      unchanged feed costs a 304), then long-poll the feed from its
 *      position; each answer's events are verified and applied in order;
 *   3. before every rendering, tokens whose exp passed leave the state, and
 *      every wait (long-poll or backoff) is cut short at the next expiry:
 *      expiry is enforced by the clock whether or not the API answers;
 *   4. when the rule set's structure changed (or loaded timeouts must carry
 *      a renewal), render and load it with one `nft -f` (atomic replace);
 *   5. after a successful load, acknowledge the position (POST ack);
 *   6. on any failure: keep what is loaded, back off (exponential, equal
 *      jitter, capped) and retry.
 *
 * The state file is saved right after the load when an exemption left it
 * (so a restart never re-opens a revoked address; after the load, so the
 * fsyncs never delay closing the port) and at most every STATE_SAVE_EVERY
 * seconds otherwise (a lost addition only fails closed until the next
 * snapshot).  Signals: SIGTERM/SIGINT end the loop (a long-poll is aborted
 * at once) and leave the loaded rule set in place (the kernel timeouts keep
 * expiring it); SIGHUP re-reads the pinned JWKS and the token file and
 * takes a full snapshot.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "enforcer.h"


#define EXIT_USAGE 2
#define RESYNC_EVERY 3600	/* s: a snapshot (usually a 304) as anti-entropy */
#define KEYS_REFRESH_EVERY 600	/* s: JWKS refresh with --accept-new-keys */
#define KEYS_REFRESH_MIN 10	/* s: at most this often on an unknown kid */
#define STATE_SAVE_EVERY 30	/* s: coalescing of additions */
#define RENEW_MARGIN 3600	/* s: reload before a loaded timeout runs out */
#define FEED_LIMIT 500

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_reload;
static volatile sig_atomic_t g_wake;	/* any of them: aborts a transfer */

enum mode { MODE_NONE, MODE_PRINT, MODE_APPLY, MODE_ONCE };

struct cfg {
	enum mode mode;
	const char *api, *token_file, *node, *pin, *state_dir, *issuer, *nft, *cacert;
	bool accept_new_keys, offline, check_only;
	long wait_s, backoff_max_s;
	int skew;
	char hostname[256];
};

struct agent {
	struct cfg *cfg;
	struct enf_keys keys;
	struct enf_verifier vf;
	struct enf_state st;
	struct enf_http *http;
	struct enf_nft *nft;
	char state_path[PATH_MAX], learned_path[PATH_MAX], ruleset_path[PATH_MAX];
	unsigned char applied_digest[32];
	bool applied_ok;
	long long acked_seq;
	bool need_snapshot, full_snapshot, skipped_unknown_kid;
	long long last_snapshot, last_keys_fetch, last_save;
	char last_unknown_kid[64];	/* the last kid a refresh was made for */
	long long last_unknown_fetch;
	bool dirty, save_urgent;
	unsigned long saved_gen;
	unsigned fails;
};

/* ------------------------------------------------------------ help */

static const char *const help_text =
"NAME\n"
"    p25-enforcer - open port 25 on an enforcement node for exactly the\n"
"    sources p25 has exempted\n"
"\n"
"SYNOPSIS\n"
"    p25-enforcer --apply  --api URL --token-file FILE --jwks-pin FILE [OPTIONS]\n"
"    p25-enforcer --once   --api URL --token-file FILE --jwks-pin FILE [OPTIONS]\n"
"    p25-enforcer --print  --api URL --token-file FILE --jwks-pin FILE [OPTIONS]\n"
"    p25-enforcer --print  --offline --jwks-pin FILE [--state-dir DIR]\n"
"    p25-enforcer --help | --version\n"
"\n"
"DESCRIPTION\n"
"    p25-enforcer runs on each hypervisor or edge firewall.  It takes the\n"
"    snapshot of every valid exemption token from the p25 API, verifies each\n"
"    token offline (Ed25519, alg and typ pinned, issuer, validity window,\n"
"    scope) against the keys it trusts, then follows the enforcement feed\n"
"    with long-polls: grant and renew events add or replace an exemption\n"
"    once their token verifies, revoke events remove it.  A token that does\n"
"    not verify is logged and skipped, never applied.\n"
"\n"
"    From its state it renders one nftables table, inet p25, and loads it\n"
"    as one nftables transaction (through libnftables in process, or\n"
"    `nft -f`): the table is deleted and recreated atomically, so there is\n"
"    never a moment without it:\n"
"\n"
"      - sets p25_v4 and p25_v6 (flags interval,timeout) hold the exempted\n"
"        source prefixes; each element carries a kernel timeout at its\n"
"        token's expiry, so even a dead agent closes the port in time;\n"
"      - tokens with a dest scope get their own rules matching source and\n"
"        destination; tokens with a rate scope get a limit rule (see RATE);\n"
"      - TCP destination port 25 from an exempted source is accepted in the\n"
"        forward chain (traffic the node routes for tenants) and the output\n"
"        chain (the node's own connections); every other TCP port-25\n"
"        packet is answered with a TCP reset: a clear refusal, not a\n"
"        timeout.  Matching is per packet, so a revocation also cuts\n"
"        connections already open.  Other traffic is not touched.\n"
"\n"
"    Expired tokens leave the set by the clock at every pass of the loop,\n"
"    also while the API is unreachable; meanwhile the last verified state\n"
"    stays loaded and the agent retries with exponential backoff (equal\n"
"    jitter, capped by --backoff-max).  After each successful load it\n"
"    acknowledges the feed position (POST /v1/enforcement/ack), which the\n"
"    API shows as the exemption's applied_nodes.\n"
"\n"
"    The state (feed position and verified tokens) is kept in\n"
"    STATE_DIR/state.json, written atomically (temporary file, fsync,\n"
"    rename, fsync of the directory): right after a load that removed an\n"
"    exemption, so a restart never re-opens it, and at most every 30\n"
"    seconds for additions.  Tokens, not conclusions, are stored: they are\n"
"    verified again when the file is read.  At start the saved state is\n"
"    loaded before the API is asked, so a node that boots while the API is\n"
"    down enforces its last verified state (a fresh node blocks port 25\n"
"    for everyone).\n"
"\n"
"  KEYS\n"
"    The pinned JWKS (--jwks-pin) is the trust root, provisioned by the\n"
"    operator out of band (e.g. a copy of the API's /.well-known/jwks.json\n"
"    checked by hand).  The agent never writes it.  By default only pinned\n"
"    keys are trusted: after `p25ctl keys rotate` the operator adds the new\n"
"    key to the pin file and sends SIGHUP (the API keeps publishing the old\n"
"    key until its last token expired, so pinning both keeps every token\n"
"    verifying).  A token signed by an unpinned key is refused with a log\n"
"    line naming its kid; after SIGHUP the agent takes a full snapshot, so\n"
"    tokens skipped meanwhile are picked up.\n"
"\n"
"    With --accept-new-keys the agent also trusts the Ed25519 keys the API\n"
"    publishes at /.well-known/jwks.json, but only when the API URL is\n"
"    https (certificate and host verified) or a loopback address: key\n"
"    additions are then as trustworthy as the channel the bearer token\n"
"    already relies on.  The JWKS is fetched at start, every 10 minutes and\n"
"    when a token names an unknown kid (before that token is checked, so a\n"
"    rotation causes no failed verification).  Learned keys are kept in\n"
"    STATE_DIR/jwks.learned.json and leave when the API stops publishing\n"
"    them; a fetched key that re-binds a pinned kid to another public key\n"
"    is refused with the whole document.  Pinned keys are never removed.\n"
"\n"
"  RATE\n"
"    A token's rate (messages per hour) is enforced as new TCP connections\n"
"    per hour (`ct state new limit rate R/hour burst min(R,10) packets`),\n"
"    for the token as a whole (one bucket for its cidr).  An SMTP\n"
"    connection can carry several messages, so this bounds connections, not\n"
"    messages; the bucket restarts full when the rule set is reloaded.\n"
"\n"
"OPTIONS\n"
"    --apply          load the rule set and keep following the feed (daemon)\n"
"    --once           take the snapshot, load the rule set, acknowledge, exit\n"
"                     (API unreachable: load the saved state, exit 1)\n"
"    --print          write the rule set to stdout once and exit (nothing is\n"
"                     loaded or saved); fetches the snapshot unless --offline\n"
"    --offline        with --print: render from STATE_DIR/state.json only\n"
"    --api URL        the p25 API, e.g. https://p25.example.net\n"
"                     (env P25_ENFORCER_API)\n"
"    --token-file FILE\n"
"                     the bearer token (role enforcer); re-read when it\n"
"                     changes; never logged (env P25_ENFORCER_TOKEN_FILE)\n"
"    --node NAME      this node's name in acknowledgements: letters, digits,\n"
"                     . _ : - (env P25_ENFORCER_NODE; default: host name)\n"
"    --jwks-pin FILE  the JWKS of trusted signing keys (env\n"
"                     P25_ENFORCER_JWKS_PIN; required)\n"
"    --accept-new-keys\n"
"                     also trust keys the API publishes, over https or\n"
"                     loopback only (see KEYS; env\n"
"                     P25_ENFORCER_ACCEPT_NEW_KEYS=1; default off)\n"
"    --issuer ISS     the expected token issuer (env P25_TOKEN_ISSUER;\n"
"                     default p25)\n"
"    --state-dir DIR  where state.json, jwks.learned.json and ruleset.nft\n"
"                     live (env P25_ENFORCER_STATE_DIR; default\n"
"                     /var/lib/p25-enforcer; created 0700 if missing)\n"
"    --nft PROGRAM    load rule sets by running PROGRAM -f FILE (env\n"
"                     P25_ENFORCER_NFT).  Default: libnftables in process\n"
"                     (a load is one netlink transaction, no process start),\n"
"                     or the program nft when the library is missing\n"
"    --check-only     with --apply/--once: check the rule set against the\n"
"                     kernel without changing anything (libnftables dry run,\n"
"                     or `nft -c -f`); no acknowledgements; for staging\n"
"    --wait SECONDS   long-poll wait, 1..120 (default 60)\n"
"    --backoff-max SECONDS\n"
"                     cap of the retry backoff, 1..3600 (default 60)\n"
"    --skew SECONDS   clock skew allowed on nbf/exp when verifying, 0..300\n"
"                     (default 60); removal at exp has no skew\n"
"    --cacert FILE    CA certificates for an https API\n"
"    --log-level LEVEL\n"
"                     debug, info, warn or error (env P25_LOG_LEVEL;\n"
"                     default info)\n"
"    -h, --help       this manual\n"
"    --version        the version\n"
"\n"
"    Command-line options override the environment.\n"
"\n"
"FILES\n"
"    STATE_DIR/state.json        feed position and verified tokens\n"
"    STATE_DIR/jwks.learned.json keys learned with --accept-new-keys\n"
"    STATE_DIR/ruleset.nft       the rule set last rendered\n"
"    STATE_DIR/lock              held by the running --apply/--once agent\n"
"\n"
"SIGNALS\n"
"    SIGTERM, SIGINT  stop (the loaded rule set stays; its timeouts run on)\n"
"    SIGHUP           re-read the pinned JWKS and the token file, then take\n"
"                     a full snapshot\n"
"\n"
"LOGS\n"
"    One JSON object a line on stderr: ts, level, component, event and\n"
"    fields (seq, exemption, cidr, kid, reason ...).  The bearer token,\n"
"    tokens and keys are never logged.\n"
"\n"
"EXIT STATUS\n"
"    0  --print/--once done, or --apply stopped by a signal\n"
"    1  a runtime failure: API unreachable or refused (--print, --once),\n"
"       nft failed, state directory unusable, the pinned JWKS unreadable\n"
"    2  usage or configuration error\n"
"\n"
"EXAMPLES\n"
"    Follow the feed and enforce (systemd ExecStart):\n"
"        p25-enforcer --apply --api https://p25.example.net \\\n"
"            --token-file /etc/p25/enforcer.token --jwks-pin /etc/p25/jwks.json \\\n"
"            --node hv-017\n"
"\n"
"    Look at the rule set the node would load:\n"
"        p25-enforcer --print --api https://p25.example.net \\\n"
"            --token-file /etc/p25/enforcer.token --jwks-pin /etc/p25/jwks.json\n"
"\n"
"    Load the last saved state at boot, before the network is up:\n"
"        p25-enforcer --print --offline --jwks-pin /etc/p25/jwks.json | nft -f -\n"
"\n"
"    Re-pin after a key rotation:\n"
"        curl -s https://p25.example.net/.well-known/jwks.json >/etc/p25/jwks.json.new\n"
"        # compare the kids with `p25ctl keys list` on the control plane, then\n"
"        mv /etc/p25/jwks.json.new /etc/p25/jwks.json && pkill -HUP -x p25-enforcer\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "p25-enforcer: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry `p25-enforcer --help'.\n");
}

/* ------------------------------------------------------------ signals */

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		g_reload = 1;
	else
		g_stop = 1;
	g_wake = 1;
}

static void
signals_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static long long
now_s(void)
{
	return (long long)time(NULL);
}

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CPU time of the process (all threads), for the timing logs. */
static long long
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms, in slices, returning early on a signal. */
static void
nap_ms(long ms)
{
	struct timespec ts;

	while (ms > 0 && !g_stop && !g_reload) {
		long step = ms < 100 ? ms : 100;

		ts.tv_sec = 0;
		ts.tv_nsec = step * 1000000L;
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/*
 * Expires by the clock, then renders and loads the rule set when its
 * structure changed, when a loaded timeout must carry a renewal, or when
 * the last load failed.  force: load regardless.  0 loaded or nothing to
 * do, -1 failed (the kernel keeps what it had).
 */
static int
apply_rules(struct agent *a, bool force)
{
	unsigned char digest[32];
	struct enf_render_info info;
	struct enf_buf b;
	char out[2048];
	long long now = now_s(), t0, c0;
	size_t gone;
	int rc;

	gone = enf_state_expire(&a->st, now);
	if (gone)
		a->dirty = true;
	enf_state_digest(&a->st, now, digest);
	if (!force && a->applied_ok && memcmp(digest, a->applied_digest, 32) == 0 &&
	    !enf_state_refresh_due(&a->st, now, RENEW_MARGIN))
		return 0;
	t0 = mono_ms();
	c0 = cpu_ms();
	enf_buf_init(&b, ENF_RENDER_MAX);
	if (enf_render_ex(&a->st, now, &b, &info) != 0) {
		enf_log(ENF_ERROR, "render_failed", "{s:s}", "error", "rule set too large");
		enf_buf_free(&b);
		a->applied_ok = false;
		return -1;
	}
	/* not fsync'd: the kernel holds what counts, and this file is re-rendered */
	if (enf_write_replace(a->ruleset_path, b.p, b.len) != 0) {
		enf_log(ENF_ERROR, "ruleset_write_failed", "{s:s, s:s}", "file", a->ruleset_path,
			"error", strerror(errno));
		enf_buf_free(&b);
		a->applied_ok = false;
		return -1;
	}
	rc = enf_nft_load(a->nft, a->ruleset_path, b.p, out, sizeof(out));
	enf_buf_free(&b);
	if (rc != 0) {
		enf_log(ENF_ERROR, "nft_failed", "{s:s, s:i, s:s}", "nft", enf_nft_how(a->nft),
			"status", rc, "output", out);
		a->applied_ok = false;
		return -1;
	}
	memcpy(a->applied_digest, digest, 32);
	a->applied_ok = true;
	enf_state_mark_applied(&a->st, now);
	enf_log(ENF_INFO, a->cfg->check_only ? "checked" : "applied",
		"{s:I, s:i, s:i, s:i, s:i, s:I, s:I}", "seq", (json_int_t)a->st.seq,
		"exemptions", (int)a->st.n, "v4", (int)info.v4, "v6", (int)info.v6, "scoped",
		(int)info.scoped, "ms", (json_int_t)(mono_ms() - t0), "cpu_ms",
		(json_int_t)(cpu_ms() - c0));
	return 0;
}

/* ------------------------------------------------------------ state */

static void
save_state(struct agent *a, bool now_required)
{
	long long now = now_s();

	if (a->st.gen == a->saved_gen && !a->dirty)
		return;
	if (!now_required && now - a->last_save < STATE_SAVE_EVERY)
		return;
	if (enf_state_save(&a->st, a->state_path, now) != 0) {
		enf_log(ENF_ERROR, "state_save_failed", "{s:s, s:s}", "file", a->state_path, "error",
			strerror(errno));
		return;
	}
	a->saved_gen = a->st.gen;
	a->dirty = false;
	a->save_urgent = false;
	a->last_save = now;
}

static void
log_stats(const char *event, const struct agent *a, const struct enf_stats *s)
{
	enf_log(ENF_INFO, event, "{s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "seq",
		(json_int_t)a->st.seq, "exemptions", (int)a->st.n, "added", (int)s->added,
		"replaced", (int)s->replaced, "removed", (int)s->removed, "unchanged",
		(int)s->unchanged, "rejected", (int)s->rejected, "unknown_kid", (int)s->unknown_kid,
		"ignored", (int)s->ignored);
}

/* ------------------------------------------------------------ keys */

static void
verifier_update(struct agent *a)
{
	a->vf.ks = a->keys.ks;
	a->vf.issuer = a->cfg->issuer;
	a->vf.skew = a->cfg->skew;
}

/*
 * Fetches the API's JWKS and merges new keys (only with --accept-new-keys,
 * only over a channel allowed for it).  0 when the key set is current.
 */
static int
refresh_keys(struct agent *a, const char *why)
{
	struct enf_resp r;
	unsigned added = 0, removed = 0;
	char err[256];
	size_t gone;
	int rc = -1;

	if (!a->cfg->accept_new_keys || !a->http)
		return -1;
	if (!enf_http_base_trusted_for_keys(a->http)) {
		enf_log(ENF_ERROR, "keys_not_fetched", "{s:s}", "hint",
			"--accept-new-keys needs an https or loopback API URL; keys stay as pinned");
		return -1;
	}
	a->last_keys_fetch = now_s();
	enf_resp_init(&r, P25_JWKS_MAX);
	if (enf_http_get(a->http, "/.well-known/jwks.json", false, NULL, 30, &r) != 0 ||
	    r.status != 200) {
		enf_log(ENF_WARN, "keys_fetch_failed", "{s:s, s:i, s:s}", "why", why, "status",
			(int)r.status, "error", r.error);
		goto out;
	}
	if (enf_keys_merge(&a->keys, r.body.p, r.body.len, &added, &removed, err,
			   sizeof(err)) != 0) {
		enf_log(ENF_ERROR, "keys_refused", "{s:s, s:s}", "why", why, "error", err);
		goto out;
	}
	verifier_update(a);
	rc = 0;
	if (added || removed) {
		enf_log(ENF_INFO, "keys_refreshed", "{s:s, s:i, s:i, s:i}", "why", why, "added",
			(int)added, "removed", (int)removed, "trusted",
			(int)p25_keyset_count(a->keys.ks));
		if (removed) {
			gone = enf_state_reverify(&a->st, &a->vf, now_s());
			if (gone)
				a->dirty = true;
		}
		if (added && a->skipped_unknown_kid) {
			/* tokens skipped for want of this key: take them from a full snapshot */
			a->need_snapshot = a->full_snapshot = true;
			a->skipped_unknown_kid = false;
		}
	}
out:
	enf_resp_free(&r);
	return rc;
}

/*
 * Learns the keys a batch of tokens needs before verifying it (accept mode
 * only), so a rotation causes no failed verification.  At most one fetch a
 * batch; a kid already fetched for is not fetched for again within
 * KEYS_REFRESH_MIN seconds (a token naming a kid the API does not publish
 * must not turn every feed answer into a JWKS fetch).
 */
static void
keys_for_batch(struct agent *a, char *const *tokens, size_t n)
{
	char kid[64];
	size_t i;

	if (!a->cfg->accept_new_keys)
		return;
	for (i = 0; i < n; i++) {
		if (!tokens[i] || enf_token_kid(tokens[i], kid, sizeof(kid)) != 0 ||
		    p25_keyset_has(a->keys.ks, kid))
			continue;
		if (strcmp(kid, a->last_unknown_kid) == 0 &&
		    now_s() - a->last_unknown_fetch < KEYS_REFRESH_MIN)
			return;
		snprintf(a->last_unknown_kid, sizeof(a->last_unknown_kid), "%s", kid);
		a->last_unknown_fetch = now_s();
		refresh_keys(a, "unknown_kid");
		return;
	}
}

static int
reload(struct agent *a)
{
	char err[512];
	size_t gone;

	if (enf_keys_load(&a->keys, a->cfg->pin,
			  a->cfg->accept_new_keys ? a->learned_path : NULL, err, sizeof(err)) != 0) {
		enf_log(ENF_ERROR, "reload_failed", "{s:s}", "error", err);
		return -1;
	}
	verifier_update(a);
	gone = enf_state_reverify(&a->st, &a->vf, now_s());
	if (gone)
		a->dirty = true;
	if (a->http && enf_http_reload_token(a->http, err, sizeof(err)) != 0)
		enf_log(ENF_ERROR, "token_reload_failed", "{s:s}", "error", err);
	a->need_snapshot = a->full_snapshot = true;
	a->skipped_unknown_kid = false;
	enf_log(ENF_INFO, "reloaded", "{s:i, s:i}", "trusted_keys",
		(int)p25_keyset_count(a->keys.ks), "dropped", (int)gone);
	return 0;
}

/* ------------------------------------------------------------ API */

static void
log_http_failure(const char *what, const struct enf_resp *r)
{
	const char *hint = NULL;

	if (r->status == 401)
		hint = "the API refused the bearer token: check the token file";
	else if (r->status == 403)
		hint = "the bearer token lacks the enforcer role";
	enf_log(r->status == 401 || r->status == 403 ? ENF_ERROR : ENF_WARN, "api_failed",
		"{s:s, s:i, s:s, s:s*}", "call", what, "status", (int)r->status, "error",
		r->status ? "unexpected status" : r->error, "hint", hint);
}

/* 0: the state holds the snapshot (or it was unchanged), -1: failure. */
static int
do_snapshot(struct agent *a)
{
	struct enf_snapshot snap;
	struct enf_stats stats = { 0 };
	struct enf_resp r;
	char etag[40] = "", err[256];
	long long t0 = mono_ms(), t_fetch = t0, t_parse = t0, c_parse = 0, c_fetch = 0;
	size_t before = a->st.n;
	int rc = -1;

	if (!a->full_snapshot && a->st.seq > 0)
		snprintf(etag, sizeof(etag), "\"s%lld\"", a->st.seq);
	enf_resp_init(&r, ENF_SNAPSHOT_MAX);
	if (enf_http_get(a->http, "/v1/enforcement/snapshot", true, etag, 300, &r) != 0 ||
	    (r.status != 200 && r.status != 304)) {
		log_http_failure("snapshot", &r);
		goto out;
	}
	a->last_snapshot = now_s();
	a->need_snapshot = false;
	if (r.status == 304) {
		enf_log(ENF_DEBUG, "snapshot_unchanged", "{s:I}", "seq", (json_int_t)a->st.seq);
		rc = 0;
		goto out;
	}
	t_fetch = mono_ms();
	c_fetch = cpu_ms();
	if (enf_snapshot_parse(r.body.p, r.body.len, &snap, err, sizeof(err)) != 0) {
		enf_log(ENF_ERROR, "snapshot_invalid", "{s:s}", "error", err);
		a->need_snapshot = true;
		goto out;
	}
	keys_for_batch(a, snap.tokens, snap.n);
	t_parse = mono_ms();
	c_parse = cpu_ms();
	if (enf_state_from_snapshot(&a->st, &snap, &a->vf, now_s(), &stats) != 0) {
		enf_log(ENF_ERROR, "out_of_memory", "{s:s}", "in", "snapshot");
		enf_snapshot_free(&snap);
		a->need_snapshot = true;
		goto out;
	}
	enf_snapshot_free(&snap);
	a->full_snapshot = false;
	if (stats.unknown_kid)
		a->skipped_unknown_kid = true;
	stats.expired = 0;
	log_stats("snapshot", a, &stats);
	/* fetch: the HTTP exchange; parse: the JSON; verify: verification and the new state */
	enf_log(ENF_DEBUG, "snapshot_timing", "{s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:I}",
		"ms", (json_int_t)(mono_ms() - t0), "fetch_ms", (json_int_t)(t_fetch - t0),
		"parse_ms", (json_int_t)(t_parse - t_fetch), "parse_cpu_ms",
		(json_int_t)(c_parse - c_fetch), "verify_ms", (json_int_t)(mono_ms() - t_parse),
		"verify_cpu_ms", (json_int_t)(cpu_ms() - c_parse), "before", (int)before,
		"tokens", (json_int_t)a->st.n, "reused", (json_int_t)stats.reused);
	a->dirty = a->save_urgent = true;	/* saved by the caller, after the load */
	rc = 0;
out:
	enf_resp_free(&r);
	return rc;
}

/* Seconds the next long-poll may wait: up to --wait, cut at the next deadline. */
static long
poll_wait(const struct agent *a)
{
	long long dl = enf_state_next_deadline(&a->st, RENEW_MARGIN), now = now_s();
	long w = a->cfg->wait_s;

	if (dl > 0 && dl - now < w)
		w = (long)(dl - now);
	return w < 1 ? 1 : w;
}

/* Number of events applied (>= 0), or -1 on failure. */
static int
do_feed(struct agent *a)
{
	struct enf_feed f;
	struct enf_stats stats = { 0 };
	struct enf_resp r;
	char path[160], err[256];
	long w = poll_wait(a);
	size_t i, nt = 0;
	char **toks = NULL;
	int rc = -1;

	snprintf(path, sizeof(path), "/v1/enforcement/feed?after=%lld&wait=%ld&limit=%d",
		 a->st.seq, w, FEED_LIMIT);
	enf_resp_init(&r, ENF_FEED_MAX);
	if (enf_http_get(a->http, path, true, NULL, w + 30, &r) != 0 || r.status != 200) {
		if (g_wake)
			goto out;	/* a signal cut it short: not the API's fault */
		log_http_failure("feed", &r);
		if (r.status == 400 || r.status == 404 || r.status == 410)
			a->need_snapshot = true;
		goto out;
	}
	if (enf_feed_parse(r.body.p, r.body.len, a->st.seq, &f, err, sizeof(err)) != 0) {
		enf_log(ENF_ERROR, "feed_invalid", "{s:s}", "error", err);
		a->need_snapshot = true;
		goto out;
	}
	if (f.n > 0) {
		toks = calloc(f.n, sizeof(*toks));
		for (i = 0; toks && i < f.n; i++)
			if (f.ev[i].token)
				toks[nt++] = f.ev[i].token;
		if (toks)
			keys_for_batch(a, toks, nt);
		free(toks);
	}
	for (i = 0; i < f.n; i++) {
		if (enf_state_apply(&a->st, &f.ev[i], &a->vf, now_s(), &stats) != 0) {
			enf_log(ENF_ERROR, "out_of_memory", "{s:s}", "in", "feed");
			a->need_snapshot = true;
			enf_feed_free(&f);
			goto out;
		}
	}
	if (f.next > a->st.seq)
		a->st.seq = f.next;
	if (stats.unknown_kid)
		a->skipped_unknown_kid = true;
	rc = (int)f.n;
	enf_feed_free(&f);
	if (rc > 0) {
		a->dirty = true;
		/* a removal is saved right after the load (run_follow): a restart
		   must not re-open it, and the fsyncs must not delay closing it */
		if (stats.removed > 0)
			a->save_urgent = true;
	}
out:
	enf_resp_free(&r);
	return rc;
}

static void
do_ack(struct agent *a)
{
	struct enf_resp r;
	json_t *o;
	char *body;
	const char *code;

	if (!a->applied_ok || a->st.seq == a->acked_seq || a->cfg->check_only)
		return;
	o = json_pack("{s:s, s:I}", "node", a->cfg->node, "seq", (json_int_t)a->st.seq);
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return;
	enf_resp_init(&r, 64 * 1024);
	if (enf_http_post_json(a->http, "/v1/enforcement/ack", body, 30, &r) == 0 &&
	    r.status == 200) {
		a->acked_seq = a->st.seq;
		enf_log(ENF_DEBUG, "acked", "{s:I}", "seq", (json_int_t)a->st.seq);
	} else if (r.status == 422) {
		/* our position is beyond the feed's: a different or restored database */
		json_t *p = json_loadb(r.body.p ? r.body.p : "", r.body.len, 0, NULL);

		code = json_string_value(json_object_get(p, "code"));
		enf_log(ENF_WARN, "ack_refused", "{s:I, s:s*, s:s}", "seq", (json_int_t)a->st.seq,
			"code", code, "action", "full snapshot");
		json_decref(p);
		a->need_snapshot = a->full_snapshot = true;
	} else {
		log_http_failure("ack", &r);
	}
	enf_resp_free(&r);
	free(body);
}

/* ------------------------------------------------------------ modes */

static void
backoff(struct agent *a)
{
	long ms = enf_backoff_ms(a->fails, 1000, a->cfg->backoff_max_s * 1000,
				 (double)randombytes_uniform(1000000) / 1e6);
	long long until = mono_ms() + ms, dl;

	a->fails++;
	enf_log(ENF_INFO, "retry", "{s:i, s:i}", "attempt", (int)a->fails, "in_ms", (int)ms);
	while (!g_stop && !g_reload && mono_ms() < until) {
		nap_ms(until - mono_ms() < 1000 ? (long)(until - mono_ms()) : 1000);
		/* the clock keeps enforcing while the API is away */
		dl = enf_state_next_deadline(&a->st, RENEW_MARGIN);
		if (dl > 0 && now_s() >= dl)
			apply_rules(a, false);
	}
}

static int
run_follow(struct agent *a)
{
	long long now;
	bool api_ok;

	a->need_snapshot = true;
	while (!g_stop) {
		if (g_reload) {
			g_reload = 0;
			g_wake = g_stop;
			reload(a);
		}
		/* expiry and renewed timeouts, by the clock (cheap when nothing is due) */
		apply_rules(a, false);
		now = now_s();
		if (a->cfg->accept_new_keys && now - a->last_keys_fetch >= KEYS_REFRESH_EVERY)
			refresh_keys(a, "periodic");
		if (a->need_snapshot || now - a->last_snapshot >= RESYNC_EVERY)
			api_ok = do_snapshot(a) == 0;
		else
			api_ok = do_feed(a) >= 0;
		if (g_stop)
			break;
		if (g_reload)
			continue;	/* the transfer was cut short for it */
		/* the state is followed even when nft fails: acks wait for a load */
		if (apply_rules(a, false) != 0 || !api_ok) {
			save_state(a, a->save_urgent);
			backoff(a);
			continue;
		}
		save_state(a, a->save_urgent);
		a->fails = 0;
		do_ack(a);
	}
	save_state(a, true);
	enf_log(ENF_INFO, "stopped", "{s:I}", "seq", (json_int_t)a->st.seq);
	return 0;
}

static int
run_once(struct agent *a)
{
	int ok;

	a->full_snapshot = true;
	ok = do_snapshot(a) == 0;
	if (apply_rules(a, true) != 0)
		return 1;
	if (ok)
		do_ack(a);
	save_state(a, true);
	return ok ? 0 : 1;
}

static int
run_print(struct agent *a)
{
	struct enf_buf b;
	long long t0, c0;
	int rc = 0;

	if (!a->cfg->offline) {
		a->full_snapshot = true;
		if (a->cfg->accept_new_keys)
			refresh_keys(a, "start");
		if (do_snapshot(a) != 0)
			return 1;
	}
	enf_state_expire(&a->st, now_s());
	enf_buf_init(&b, ENF_RENDER_MAX);
	t0 = mono_ms();
	c0 = cpu_ms();
	if (enf_render(&a->st, now_s(), &b) != 0) {
		enf_log(ENF_ERROR, "render_failed", "{s:s}", "error", "rule set too large");
		rc = 1;
	} else {
		enf_log(ENF_DEBUG, "render_timing", "{s:I, s:I, s:I}", "ms",
			(json_int_t)(mono_ms() - t0), "cpu_ms", (json_int_t)(cpu_ms() - c0),
			"bytes", (json_int_t)b.len);
		if (fwrite(b.p, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
			rc = 1;
	}
	enf_buf_free(&b);
	return rc;
}

/* ------------------------------------------------------------ options */

static int
parse_long(const char *name, const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "p25-enforcer: %s must be a whole number from %ld to %ld (got \"%s\")\n",
			name, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

static bool
node_name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || (i > 0 && strchr("._:-", s[i]))))
			return false;
	return i > 0 && i <= 128;
}

static bool
env_true(const char *name)
{
	const char *v = getenv(name);

	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

enum { O_API = 256, O_TOKEN, O_NODE, O_PIN, O_ACCEPT, O_ISSUER, O_STATE, O_NFT, O_CHECK,
       O_WAIT, O_BACKOFF, O_SKEW, O_CACERT, O_LEVEL, O_PRINT, O_APPLY, O_ONCE, O_OFFLINE,
       O_VERSION };

static int
parse_args(int argc, char **argv, struct cfg *c)
{
	static const struct option opts[] = {
		{ "api", required_argument, NULL, O_API },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "node", required_argument, NULL, O_NODE },
		{ "jwks-pin", required_argument, NULL, O_PIN },
		{ "accept-new-keys", no_argument, NULL, O_ACCEPT },
		{ "issuer", required_argument, NULL, O_ISSUER },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "nft", required_argument, NULL, O_NFT },
		{ "check-only", no_argument, NULL, O_CHECK },
		{ "wait", required_argument, NULL, O_WAIT },
		{ "backoff-max", required_argument, NULL, O_BACKOFF },
		{ "skew", required_argument, NULL, O_SKEW },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ "log-level", required_argument, NULL, O_LEVEL },
		{ "print", no_argument, NULL, O_PRINT },
		{ "apply", no_argument, NULL, O_APPLY },
		{ "once", no_argument, NULL, O_ONCE },
		{ "offline", no_argument, NULL, O_OFFLINE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *level = getenv("P25_LOG_LEVEL");
	enum enf_level lv;
	long v;
	int o, modes = 0;

	c->api = getenv("P25_ENFORCER_API");
	c->token_file = getenv("P25_ENFORCER_TOKEN_FILE");
	c->node = getenv("P25_ENFORCER_NODE");
	c->pin = getenv("P25_ENFORCER_JWKS_PIN");
	c->state_dir = getenv("P25_ENFORCER_STATE_DIR");
	c->issuer = getenv("P25_TOKEN_ISSUER");
	c->nft = getenv("P25_ENFORCER_NFT");
	c->accept_new_keys = env_true("P25_ENFORCER_ACCEPT_NEW_KEYS");
	c->wait_s = 60;
	c->backoff_max_s = 60;
	c->skew = 60;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case O_API: c->api = optarg; break;
		case O_TOKEN: c->token_file = optarg; break;
		case O_NODE: c->node = optarg; break;
		case O_PIN: c->pin = optarg; break;
		case O_ACCEPT: c->accept_new_keys = true; break;
		case O_ISSUER: c->issuer = optarg; break;
		case O_STATE: c->state_dir = optarg; break;
		case O_NFT: c->nft = optarg; break;
		case O_CHECK: c->check_only = true; break;
		case O_CACERT: c->cacert = optarg; break;
		case O_LEVEL: level = optarg; break;
		case O_OFFLINE: c->offline = true; break;
		case O_PRINT: c->mode = MODE_PRINT; modes++; break;
		case O_APPLY: c->mode = MODE_APPLY; modes++; break;
		case O_ONCE: c->mode = MODE_ONCE; modes++; break;
		case O_WAIT:
			if (parse_long("--wait", optarg, 1, 120, &c->wait_s) != 0)
				return -1;
			break;
		case O_BACKOFF:
			if (parse_long("--backoff-max", optarg, 1, 3600, &c->backoff_max_s) != 0)
				return -1;
			break;
		case O_SKEW:
			if (parse_long("--skew", optarg, 0, 300, &v) != 0)
				return -1;
			c->skew = (int)v;
			break;
		case 'h':
			fputs(help_text, stdout);
			exit(0);
		case O_VERSION:
			printf("p25-enforcer %s\n", ENF_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try `p25-enforcer --help'.\n");
			return -1;
		}
	}
	if (optind < argc) {
		usage_error("unexpected argument \"%s\"", argv[optind]);
		return -1;
	}
	if (modes != 1) {
		usage_error("%s", "give exactly one of --apply, --once, --print");
		return -1;
	}
	if (level) {
		if (enf_log_parse_level(level, &lv) != 0) {
			usage_error("unknown log level \"%s\"", level);
			return -1;
		}
		enf_log_set_level(lv);
	}
	if (c->offline && c->mode != MODE_PRINT) {
		usage_error("%s", "--offline goes with --print only");
		return -1;
	}
	if (c->check_only && c->mode == MODE_PRINT) {
		usage_error("%s", "--check-only goes with --apply or --once");
		return -1;
	}
	if (!c->pin || !*c->pin) {
		usage_error("%s", "--jwks-pin FILE is required: the keys this node trusts");
		return -1;
	}
	if (!c->offline) {
		if (!c->api || !*c->api) {
			usage_error("%s", "--api URL is required");
			return -1;
		}
		if (!c->token_file || !*c->token_file) {
			usage_error("%s", "--token-file FILE is required (a bearer token, role enforcer)");
			return -1;
		}
	}
	if (!c->state_dir || !*c->state_dir)
		c->state_dir = "/var/lib/p25-enforcer";
	if (!c->issuer || !*c->issuer)
		c->issuer = "p25";
	if (c->nft && !*c->nft)
		c->nft = NULL;	/* NULL: libnftables, else the program nft */
	if (!c->node || !*c->node) {
		if (gethostname(c->hostname, sizeof(c->hostname) - 1) != 0)
			snprintf(c->hostname, sizeof(c->hostname), "node");
		c->node = c->hostname;
	}
	if (!node_name_ok(c->node)) {
		usage_error("node name \"%s\" must be 1 to 128 letters, digits and . _ : -",
			    c->node);
		return -1;
	}
	return 0;
}

/* Creates the state directory (0700) if needed and takes its lock. */
static int
state_dir_open(struct agent *a, bool lock)
{
	char path[PATH_MAX];
	int fd;

	if (mkdir(a->cfg->state_dir, 0700) != 0 && errno != EEXIST) {
		enf_log(ENF_ERROR, "state_dir_failed", "{s:s, s:s}", "dir", a->cfg->state_dir,
			"error", strerror(errno));
		return -1;
	}
	if (!lock)
		return 0;
	snprintf(path, sizeof(path), "%s/lock", a->cfg->state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
		enf_log(ENF_ERROR, "state_dir_locked", "{s:s, s:s}", "dir", a->cfg->state_dir,
			"error", fd < 0 ? strerror(errno)
					: "another p25-enforcer uses this state directory");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return 0;	/* fd stays open (and locked) until exit */
}

int
main(int argc, char **argv)
{
	static struct cfg cfg;
	static struct agent a;
	struct enf_stats stats = { 0 };
	char err[512];
	int rc = 1;

	if (parse_args(argc, argv, &cfg) != 0)
		return EXIT_USAGE;
	if (sodium_init() < 0) {
		enf_log(ENF_ERROR, "sodium_init_failed", NULL);
		return 1;
	}
	signals_init();
	a.cfg = &cfg;
	enf_state_init(&a.st);
	if (snprintf(a.state_path, sizeof(a.state_path), "%s/state.json", cfg.state_dir) >=
		    (int)sizeof(a.state_path) ||
	    snprintf(a.learned_path, sizeof(a.learned_path), "%s/jwks.learned.json",
		     cfg.state_dir) >= (int)sizeof(a.learned_path) ||
	    snprintf(a.ruleset_path, sizeof(a.ruleset_path), "%s/ruleset.nft", cfg.state_dir) >=
		    (int)sizeof(a.ruleset_path)) {
		usage_error("%s", "--state-dir is too long");
		return EXIT_USAGE;
	}
	if (state_dir_open(&a, cfg.mode != MODE_PRINT) != 0)
		return 1;
	if (enf_keys_load(&a.keys, cfg.pin, cfg.accept_new_keys ? a.learned_path : NULL, err,
			  sizeof(err)) != 0) {
		enf_log(ENF_ERROR, "keys_failed", "{s:s}", "error", err);
		return 1;
	}
	verifier_update(&a);
	if (cfg.mode == MODE_PRINT) {
		/* --print changes nothing on disk: keys it learns are used, not kept */
		free(a.keys.learned_path);
		a.keys.learned_path = NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		enf_log(ENF_ERROR, "curl_init_failed", NULL);
		goto out;
	}
	if (!cfg.offline) {
		a.http = enf_http_new(cfg.api, cfg.token_file, cfg.cacert, &g_wake, err, sizeof(err));
		if (!a.http) {
			enf_log(ENF_ERROR, "config_failed", "{s:s}", "error", err);
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (cfg.mode != MODE_PRINT) {
		a.nft = enf_nft_new(cfg.nft, cfg.check_only);
		if (!a.nft) {
			enf_log(ENF_ERROR, "out_of_memory", NULL);
			goto out;
		}
	}
	enf_log(ENF_INFO, "start", "{s:s, s:s, s:s*, s:s, s:s, s:b, s:b, s:i, s:s, s:s*}", "mode",
		cfg.mode == MODE_APPLY ? "apply" : cfg.mode == MODE_ONCE ? "once" : "print",
		"node", cfg.node, "api", cfg.offline ? NULL : cfg.api, "state_dir", cfg.state_dir,
		"jwks_pin", cfg.pin, "accept_new_keys", cfg.accept_new_keys, "check_only",
		cfg.check_only, "pinned_keys", (int)p25_keyset_count(a.keys.ks), "version",
		ENF_VERSION, "nft", a.nft ? enf_nft_how(a.nft) : NULL);

	/* --print without --offline renders from the API alone: the state file is not read */
	if (cfg.mode != MODE_PRINT || cfg.offline) {
		if (enf_state_load(&a.st, a.state_path, &a.vf, now_s(), &stats, err,
				   sizeof(err)) != 0) {
			enf_log(ENF_WARN, "state_unreadable", "{s:s, s:s}", "error", err, "action",
				"starting empty");
			enf_state_cleanup(&a.st);
			enf_state_init(&a.st);
		} else {
			enf_log(ENF_INFO, "state_loaded", "{s:I, s:i, s:i}", "seq",
				(json_int_t)a.st.seq, "exemptions", (int)a.st.n, "rejected",
				(int)stats.rejected);
		}
		a.saved_gen = a.st.gen;
	}
	switch (cfg.mode) {
	case MODE_PRINT:
		rc = run_print(&a);
		break;
	case MODE_ONCE:
		if (cfg.accept_new_keys)
			refresh_keys(&a, "start");
		rc = run_once(&a);
		break;
	case MODE_APPLY:
		/* enforce what we know before asking anyone */
		apply_rules(&a, true);
		if (cfg.accept_new_keys)
			refresh_keys(&a, "start");
		rc = run_follow(&a);
		break;
	case MODE_NONE:
		break;
	}
out:
	enf_http_free(a.http);
	enf_nft_free(a.nft);
	enf_keys_free(&a.keys);
	enf_state_cleanup(&a.st);
	curl_global_cleanup();
	return rc;
}
