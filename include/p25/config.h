/*
 * config.h — configuration as one table.
 *
 * Each row: variable (without the P25_ prefix), struct field, type, default,
 * lower and upper bound (numbers) or allowed values (enums), whether it is a
 * secret, and one line of documentation.  The table drives parsing,
 * `p25ctl --check-config`, the masked dump and the README's list
 * (`p25ctl config-doc`).  Values come from P25_* environment variables; a
 * file named by P25_CONFIG_FILE (KEY=VALUE lines) fills in what the
 * environment does not set.  A bad value is reported naming the variable and
 * the binaries exit with status 78 (EX_CONFIG).
 */
#ifndef P25_CONFIG_H
#define P25_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

struct p25_err;

#define P25_EX_CONFIG 78

/*      NAME                 field               type  default                 min  max        secret doc */
#define P25_CONFIG_TABLE(X) \
	X(DATABASE_URL, database_url, STR, "postgresql:///p25", 0, 0, true, \
	  "libpq URI the services connect with (a role that does not own the tables)") \
	X(MIGRATE_DATABASE_URL, migrate_database_url, STR, "", 0, 0, true, \
	  "libpq URI of the table owner for p25ctl migrate (default: P25_DATABASE_URL)") \
	X(LISTEN, listen, STR, "127.0.0.1:8025", 0, 0, false, \
	  "host:port p25-api listens on") \
	X(LOG_LEVEL, log_level, ENUM, "info", 0, 0, false, \
	  "debug|info|warn|error") \
	X(AUTH_ALG, auth_alg, ENUM, "HS256", 0, 0, false, \
	  "ES256|RS256|HS256: the only algorithm bearer tokens may use") \
	X(AUTH_KEY_FILE, auth_key_file, STR, "", 0, 0, false, \
	  "PEM public key of the identity provider, or the HS256 secret (>= 32 bytes)") \
	X(AUTH_ISSUER, auth_issuer, STR, "p25-dev-idp", 0, 0, false, \
	  "required iss of bearer tokens") \
	X(AUTH_AUDIENCE, auth_audience, STR, "p25", 0, 0, false, \
	  "required aud of bearer tokens") \
	X(AUTH_LEEWAY, auth_leeway, INT, "30", 0, 300, false, \
	  "seconds of clock skew allowed on exp/nbf") \
	X(AUTH_CACHE_SIZE, auth_cache_size, INT, "8192", 0, 1048576, false, \
	  "verified bearer tokens kept in memory (0 disables the cache)") \
	X(KEK_FILE, kek_file, STR, "", 0, 0, false, \
	  "file holding 64 hex characters: the key that seals signing keys") \
	X(TOKEN_ISSUER, token_issuer, STR, "p25", 0, 0, false, \
	  "iss of exemption tokens") \
	X(TOKEN_TTL, token_ttl, INT, "86400", 300, 2592000, false, \
	  "lifetime of an exemption token in seconds") \
	X(DNS_SERVERS, dns_servers, STR, "127.0.0.1:53", 0, 0, false, \
	  "host:port,... resolvers the vetting workers ask") \
	X(DNS_TIMEOUT_MS, dns_timeout_ms, INT, "1500", 50, 30000, false, \
	  "per-query DNS timeout in milliseconds") \
	X(DNS_TRIES, dns_tries, INT, "2", 1, 10, false, \
	  "DNS attempts per query") \
	X(DNS_MAX_INFLIGHT, dns_max_inflight, INT, "64", 1, 4096, false, \
	  "DNS queries in flight at once per resolver (one per thread); the rest wait, their timeout starting when sent") \
	X(DNSBL_ZONES, dnsbl_zones, STR, "zen.spamhaus.org", 0, 0, false, \
	  "comma-separated DNSBL zones (return codes read as Spamhaus ZEN's)") \
	X(POLICY_FILE, policy_file, STR, "", 0, 0, false, \
	  "JSON vetting policy (built-in defaults when empty)") \
	X(DB_POOL_SIZE, db_pool_size, INT, "8", 1, 512, false, \
	  "database connections (and threads) per process") \
	X(DB_QUEUE_MAX, db_queue_max, INT, "256", 0, 100000, false, \
	  "requests allowed to wait for a connection; beyond it 503") \
	X(DB_GROUPS, db_groups, INT, "0", 0, 512, false, \
	  "batched routes (submits, reads of one request): groups of a route in flight at once per process (0 = one per CPU; at most P25_DB_POOL_SIZE)") \
	X(HTTP_THREADS, http_threads, INT, "2", 1, 256, false, \
	  "libmicrohttpd epoll threads") \
	X(HTTP_MAX_CONNECTIONS, http_max_connections, INT, "8192", 16, 1000000, false, \
	  "open connections, including held long-polls") \
	X(HTTP_TIMEOUT, http_timeout, INT, "30", 1, 3600, false, \
	  "seconds an idle or slow connection may stay open") \
	X(BODY_MAX, body_max, INT, "65536", 1024, 16777216, false, \
	  "largest request body in bytes (413 above)") \
	X(MAX_ADDRESSES, max_addresses, INT, "64", 1, 4096, false, \
	  "address entries per request") \
	X(MAX_PREFIX_V4, max_prefix_v4, INT, "24", 0, 32, false, \
	  "widest IPv4 prefix a request may name") \
	X(MAX_PREFIX_V6, max_prefix_v6, INT, "48", 0, 128, false, \
	  "widest IPv6 prefix a request may name") \
	X(RATE_LIMIT, rate_limit, INT, "60", 0, 1000000, false, \
	  "requests filed per tenant per hour (0 = unlimited)") \
	X(MAX_OPEN_REQUESTS, max_open_requests, INT, "20", 1, 100000, false, \
	  "open (undecided) requests per tenant") \
	X(WORKER_THREADS, worker_threads, INT, "4", 1, 256, false, \
	  "job-running threads per p25-worker") \
	X(JOB_LEASE, job_lease, INT, "60", 5, 86400, false, \
	  "seconds a claimed job is leased before another worker may take it") \
	X(JOB_MAX_ATTEMPTS, job_max_attempts, INT, "8", 1, 100, false, \
	  "attempts before a job is parked") \
	X(JOB_POLL_INTERVAL, job_poll_interval, INT, "5", 1, 3600, false, \
	  "seconds between queue polls when no NOTIFY arrives") \
	X(JOB_BATCH, job_batch, INT, "8", 1, 1000, false, \
	  "jobs claimed per round trip") \
	X(ABUSE_SUSPEND_CATEGORIES, abuse_suspend_categories, STR, "spam,malware", 0, 0, false, \
	  "abuse report categories that suspend the covering exemption at once (others: review)") \
	X(EXPIRY_WARNING, expiry_warning, INT, "604800", 0, 31536000, false, \
	  "seconds before expiry at which the tenant is warned") \
	X(WEBHOOK_TIMEOUT, webhook_timeout, INT, "10", 1, 120, false, \
	  "seconds a tenant's webhook endpoint has to answer") \
	X(WEBHOOK_GIVE_UP, webhook_give_up, INT, "86400", 10, 604800, false, \
	  "seconds after which an undeliverable webhook is marked failed") \
	X(CLAIM_MINUTES, claim_minutes, INT, "10", 1, 240, false, \
	  "minutes a reviewer's claim on a request lasts") \
	X(DEV_MODE, dev_mode, BOOL, "false", 0, 0, false, \
	  "allow the development identity provider (p25ctl dev-token)")

enum p25_cfg_type { P25_CFG_STR, P25_CFG_INT, P25_CFG_BOOL, P25_CFG_ENUM };

#define P25_CFG_CTYPE_STR char *
#define P25_CFG_CTYPE_ENUM char *
#define P25_CFG_CTYPE_INT long
#define P25_CFG_CTYPE_BOOL bool

struct p25_config {
#define P25_CFG_FIELD(NAME, field, type, def, lo, hi, secret, doc) \
	P25_CFG_CTYPE_##type field;
	P25_CONFIG_TABLE(P25_CFG_FIELD)
#undef P25_CFG_FIELD
};

struct p25_cfg_def {
	const char *name;	/* with the P25_ prefix */
	enum p25_cfg_type type;
	const char *def;
	long lo, hi;
	bool secret;
	const char *doc;
	size_t offset;
};

extern const struct p25_cfg_def p25_cfg_defs[];
extern const size_t p25_cfg_ndefs;

/*
 * Loads cfg from the environment (and P25_CONFIG_FILE).  On failure fills
 * err naming the variable and returns -1; cfg is then partly filled and must
 * still be released with p25_config_free().
 */
int p25_config_load(struct p25_config *cfg, struct p25_err *err);
void p25_config_free(struct p25_config *cfg);
/* Masked dump, one NAME=value a line; secrets print as "****" when set. */
void p25_config_dump(const struct p25_config *cfg, FILE *out);
/* The documentation table (Markdown) for the README. */
void p25_config_doc(FILE *out);
/* Loads or exits with 78 after printing the error.  For main()s. */
void p25_config_load_or_exit(struct p25_config *cfg);

/* Reads a small file whole (cap bytes) into a NUL-terminated buffer. */
char *p25_read_file(const char *path, size_t cap, size_t *len);

#endif
