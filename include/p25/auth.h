/*
 * auth.h — bearer authentication of API callers (JWTs from the provider's
 * identity provider), on libjwt 1.10 behind the wrapper DESIGN.md asks for.
 *
 * libjwt takes the algorithm from the token and checks no claims, so this
 * module (1) checks the header's alg against the one configured algorithm
 * before libjwt sees the token, (2) checks jwt_get_alg() again after, and
 * (3) checks exp, nbf, iss, aud, sub, roles and tenant itself.  Verified
 * tokens are cached (keyed by their BLAKE2b hash, never the token) until
 * they expire, so a repeated token costs a hash and a lookup.
 * p25_auth_verify() is thread-safe.
 */
#ifndef P25_AUTH_H
#define P25_AUTH_H

#include <stdbool.h>

struct p25_config;
struct p25_err;

enum p25_role {
	P25_ROLE_TENANT = 1 << 0,
	P25_ROLE_REVIEWER = 1 << 1,
	P25_ROLE_ADMIN = 1 << 2,
	P25_ROLE_ENFORCER = 1 << 3,
	P25_ROLE_REPORTER = 1 << 4,
};

struct p25_principal {
	char sub[128];
	char tenant[65];	/* "" unless the tenant role is held */
	unsigned roles;		/* enum p25_role bits */
	long long exp;
};

struct p25_auth;

/* Reads the key file and sets up the cache.  NULL with err on failure. */
struct p25_auth *p25_auth_new(const struct p25_config *cfg, struct p25_err *err);
void p25_auth_free(struct p25_auth *auth);

/*
 * Verifies an Authorization header value ("Bearer <jwt>").  On success
 * fills *who and returns 0; otherwise -1 with err 401 (invalid_token,
 * token_expired, missing_token …).  now is the unix time.
 */
int p25_auth_verify(struct p25_auth *auth, const char *header, long long now,
		    struct p25_principal *who, struct p25_err *err);

/* Role bit for a role name, 0 when unknown. */
unsigned p25_role_bit(const char *name);
/* Comma-separated role names of bits into buf. */
void p25_roles_format(unsigned roles, char *buf, unsigned long len);

/* Cache statistics (for /metrics). */
void p25_auth_stats(struct p25_auth *auth, unsigned long *hits,
		    unsigned long *misses);

/*
 * Mints an HS256 development token (p25ctl dev-token).  Only when the
 * configuration is HS256.  Returns a malloc'd JWT or NULL with err.
 */
char *p25_auth_mint_dev(const struct p25_config *cfg, const char *sub,
			const char *roles_csv, const char *tenant, long ttl,
			struct p25_err *err);

/* True when s is a well-formed tenant id. */
bool p25_tenant_id_ok(const char *s);

#endif
