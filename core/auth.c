/*
 * auth.c — bearer JWT verification (see auth.h for the why).
 *
 * Cache: a table of slots in sets of CACHE_WAYS, the set chosen by the
 * token's BLAKE2b-256 hash, the least recently used slot of a set giving
 * way, guarded by striped mutexes.  (Direct-mapped, 8000 tokens in 8192
 * slots left a third of them colliding, verified anew on every use.)  A
 * slot holds the hash, the principal and the expiry; a hit re-checks the
 * expiry, so a cached token stops working when it expires exactly like an
 * uncached one.  The token itself is never stored, logged or copied beyond
 * this stack frame.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <jwt.h>
#include <sodium.h>

#include "p25/auth.h"
#include "p25/config.h"
#include "p25/err.h"
#include "p25/log.h"

#define TOKEN_MAX 8192
#define STRIPES 64

#define CACHE_WAYS 4

struct cache_slot {
	unsigned char hash[32];
	unsigned long used;	/* last use (a->tick); 0: empty */
	struct p25_principal who;
};

struct p25_auth {
	jwt_alg_t alg;
	char alg_name[8];
	unsigned char *key;
	size_t key_len;
	char *iss;
	char *aud;
	long leeway;
	struct cache_slot *slots;
	size_t nslots, nsets, ways;
	atomic_ulong tick;
	pthread_mutex_t stripes[STRIPES];
	atomic_ulong hits, misses;
};

/* The set of the token with this hash. */
static size_t
cache_set(const struct p25_auth *a, const unsigned char *hash)
{
	size_t idx;

	memcpy(&idx, hash, sizeof(idx));
	return idx % a->nsets;
}

static const struct {
	const char *name;
	unsigned bit;
} role_names[] = {
	{ "tenant", P25_ROLE_TENANT },
	{ "reviewer", P25_ROLE_REVIEWER },
	{ "admin", P25_ROLE_ADMIN },
	{ "enforcer", P25_ROLE_ENFORCER },
	{ "reporter", P25_ROLE_REPORTER },
};

unsigned
p25_role_bit(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcmp(role_names[i].name, name) == 0)
			return role_names[i].bit;
	return 0;
}

void
p25_roles_format(unsigned roles, char *buf, unsigned long len)
{
	size_t i, used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
		if (!(roles & role_names[i].bit))
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "",
				 role_names[i].name);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

bool
p25_tenant_id_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
		return false;
	for (i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' &&
		    s[i] != '-')
			return false;
	return true;
}

struct p25_auth *
p25_auth_new(const struct p25_config *cfg, struct p25_err *err)
{
	struct p25_auth *a;
	size_t len = 0;
	int i;

	a = calloc(1, sizeof(*a));
	if (!a) {
		p25_err_set(err, 500, "out_of_memory", "out of memory");
		return NULL;
	}
	snprintf(a->alg_name, sizeof(a->alg_name), "%s", cfg->auth_alg);
	a->alg = jwt_str_alg(cfg->auth_alg);
	if (a->alg != JWT_ALG_HS256 && a->alg != JWT_ALG_RS256 &&
	    a->alg != JWT_ALG_ES256) {
		p25_err_set(err, 500, "bad_config", "P25_AUTH_ALG: unsupported");
		goto fail;
	}
	if (!cfg->auth_key_file[0]) {
		p25_err_set(err, 500, "bad_config", "P25_AUTH_KEY_FILE is not set");
		goto fail;
	}
	a->key = (unsigned char *)p25_read_file(cfg->auth_key_file, 65536, &len);
	if (!a->key) {
		p25_err_set(err, 500, "bad_config",
			    "P25_AUTH_KEY_FILE: cannot read %s", cfg->auth_key_file);
		goto fail;
	}
	if (a->alg == JWT_ALG_HS256) {
		while (len > 0 && (a->key[len - 1] == '\n' || a->key[len - 1] == '\r'))
			a->key[--len] = '\0';
		if (len < 32) {
			p25_err_set(err, 500, "bad_config",
			    "P25_AUTH_KEY_FILE: an HS256 secret needs at least 32 bytes");
			goto fail;
		}
	} else if (!strstr((char *)a->key, "-----BEGIN PUBLIC KEY-----")) {
		p25_err_set(err, 500, "bad_config",
		    "P25_AUTH_KEY_FILE: %s needs a PEM public key", a->alg_name);
		goto fail;
	}
	a->key_len = len;
	a->iss = strdup(cfg->auth_issuer);
	a->aud = strdup(cfg->auth_audience);
	a->leeway = cfg->auth_leeway;
	a->nslots = (size_t)cfg->auth_cache_size;
	a->ways = a->nslots >= CACHE_WAYS ? CACHE_WAYS : 1;
	a->nsets = a->nslots / a->ways;
	if (a->nslots) {
		a->slots = calloc(a->nslots, sizeof(*a->slots));
		if (!a->slots) {
			p25_err_set(err, 500, "out_of_memory", "out of memory");
			goto fail;
		}
	}
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&a->stripes[i], NULL);
	return a;
fail:
	if (a->key) {
		sodium_memzero(a->key, len);
		free(a->key);
	}
	free(a);
	return NULL;
}

void
p25_auth_free(struct p25_auth *a)
{
	int i;

	if (!a)
		return;
	sodium_memzero(a->key, a->key_len);
	free(a->key);
	free(a->iss);
	free(a->aud);
	free(a->slots);
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&a->stripes[i]);
	free(a);
}

void
p25_auth_stats(struct p25_auth *a, unsigned long *hits, unsigned long *misses)
{
	*hits = atomic_load(&a->hits);
	*misses = atomic_load(&a->misses);
}

static int
invalid(struct p25_err *err, const char *why)
{
	p25_err_set(err, 401, "invalid_token", "the bearer token is not valid: %s", why);
	p25_err_hint(err, "sign in again with a token from the identity provider");
	return -1;
}

/* Checks the JOSE header before libjwt sees the token. */
static int
check_header(struct p25_auth *a, const char *tok, size_t hlen, struct p25_err *err)
{
	unsigned char buf[1024];
	size_t blen;
	json_t *h;
	const char *alg;
	int rc = -1;

	if (hlen == 0 || hlen > 1300 ||
	    sodium_base642bin(buf, sizeof(buf) - 1, tok, hlen, NULL, &blen, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return invalid(err, "malformed header");
	buf[blen] = '\0';
	h = json_loadb((const char *)buf, blen, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(h)) {
		json_decref(h);
		return invalid(err, "malformed header");
	}
	alg = json_string_value(json_object_get(h, "alg"));
	if (!alg || strcmp(alg, a->alg_name) != 0)
		invalid(err, "algorithm not accepted");
	else if (json_object_get(h, "crit") || json_object_get(h, "jku") ||
		 json_object_get(h, "jwk") || json_object_get(h, "x5u") ||
		 json_object_get(h, "x5c"))
		invalid(err, "header parameters not accepted");
	else
		rc = 0;
	json_decref(h);
	return rc;
}

static int
aud_ok(json_t *aud, const char *want)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (json_is_array(aud))
		json_array_foreach(aud, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
				return 1;
	return 0;
}

/* Checks the claims; fills who.  g is the whole claim set. */
static int
check_claims(struct p25_auth *a, json_t *g, long long now,
	     struct p25_principal *who, struct p25_err *err)
{
	json_t *exp = json_object_get(g, "exp");
	json_t *nbf = json_object_get(g, "nbf");
	json_t *roles = json_object_get(g, "roles");
	const char *iss = json_string_value(json_object_get(g, "iss"));
	const char *sub = json_string_value(json_object_get(g, "sub"));
	const char *tenant = json_string_value(json_object_get(g, "tenant"));
	size_t i;
	json_t *r;

	if (!json_is_integer(exp))
		return invalid(err, "exp missing");
	if (json_integer_value(exp) + a->leeway < now) {
		p25_err_set(err, 401, "token_expired", "the bearer token has expired");
		p25_err_hint(err, "get a fresh token from the identity provider");
		return -1;
	}
	if (nbf && (!json_is_integer(nbf) || json_integer_value(nbf) - a->leeway > now))
		return invalid(err, "not valid yet");
	if (!iss || strcmp(iss, a->iss) != 0)
		return invalid(err, "issuer not accepted");
	if (!aud_ok(json_object_get(g, "aud"), a->aud))
		return invalid(err, "audience not accepted");
	if (!sub || !sub[0] || strlen(sub) >= sizeof(who->sub))
		return invalid(err, "sub missing");
	if (!json_is_array(roles))
		return invalid(err, "roles missing");
	memset(who, 0, sizeof(*who));
	snprintf(who->sub, sizeof(who->sub), "%s", sub);
	who->exp = json_integer_value(exp);
	json_array_foreach(roles, i, r)
		if (json_is_string(r))
			who->roles |= p25_role_bit(json_string_value(r));
	if (who->roles & P25_ROLE_TENANT) {
		if (!tenant || !p25_tenant_id_ok(tenant))
			return invalid(err, "tenant claim missing or malformed");
		snprintf(who->tenant, sizeof(who->tenant), "%s", tenant);
	}
	return 0;
}

int
p25_auth_verify(struct p25_auth *a, const char *header, long long now,
		struct p25_principal *who, struct p25_err *err)
{
	const char *tok, *dot1, *dot2;
	unsigned char hash[32];
	size_t len, i;
	jwt_t *jwt = NULL;
	char *grants = NULL;
	json_t *g = NULL;
	int rc = -1;

	if (!header || !header[0]) {
		p25_err_set(err, 401, "missing_token", "this call needs a bearer token");
		p25_err_hint(err, "send Authorization: Bearer <token>");
		return -1;
	}
	if (strncasecmp(header, "Bearer ", 7) != 0)
		return invalid(err, "the Authorization scheme must be Bearer");
	tok = header + 7;
	while (*tok == ' ')
		tok++;
	len = strlen(tok);
	if (len == 0 || len > TOKEN_MAX)
		return invalid(err, "malformed");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tok[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return invalid(err, "malformed");
	}
	dot1 = strchr(tok, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot1 || !dot2 || strchr(dot2 + 1, '.') || dot2[1] == '\0')
		return invalid(err, "malformed");

	crypto_generichash(hash, sizeof(hash), (const unsigned char *)tok, len,
			   NULL, 0);
	if (a->nslots) {
		size_t set = cache_set(a, hash), w;
		pthread_mutex_t *mu = &a->stripes[set % STRIPES];
		struct cache_slot *sl = &a->slots[set * a->ways];

		pthread_mutex_lock(mu);
		for (w = 0; w < a->ways; w++) {
			if (!sl[w].used || sodium_memcmp(sl[w].hash, hash, sizeof(hash)) != 0)
				continue;
			sl[w].used = atomic_fetch_add(&a->tick, 1) + 1;
			*who = sl[w].who;
			pthread_mutex_unlock(mu);
			atomic_fetch_add(&a->hits, 1);
			if (who->exp + a->leeway < now) {
				p25_err_set(err, 401, "token_expired",
					    "the bearer token has expired");
				p25_err_hint(err, "get a fresh token from the identity provider");
				return -1;
			}
			return 0;
		}
		pthread_mutex_unlock(mu);
	}
	atomic_fetch_add(&a->misses, 1);

	if (check_header(a, tok, (size_t)(dot1 - tok), err) != 0)
		return -1;
	if (jwt_decode(&jwt, tok, a->key, (int)a->key_len) != 0 || !jwt) {
		invalid(err, "signature or encoding");
		goto out;
	}
	if (jwt_get_alg(jwt) != a->alg) {	/* defence in depth */
		invalid(err, "algorithm not accepted");
		goto out;
	}
	grants = jwt_get_grants_json(jwt, NULL);
	g = grants ? json_loads(grants, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (!json_is_object(g)) {
		invalid(err, "malformed claims");
		goto out;
	}
	if (check_claims(a, g, now, who, err) != 0)
		goto out;
	if (a->nslots) {
		size_t set = cache_set(a, hash), w, victim = 0;
		pthread_mutex_t *mu = &a->stripes[set % STRIPES];
		struct cache_slot *sl = &a->slots[set * a->ways];

		pthread_mutex_lock(mu);
		/* the token itself if another thread cached it meanwhile, else an
		 * empty slot, else the least recently used */
		for (w = 0; w < a->ways; w++) {
			if (sl[w].used && sodium_memcmp(sl[w].hash, hash, sizeof(hash)) == 0) {
				victim = w;
				break;
			}
			if (sl[w].used < sl[victim].used)
				victim = w;
		}
		memcpy(sl[victim].hash, hash, sizeof(hash));
		sl[victim].who = *who;
		sl[victim].used = atomic_fetch_add(&a->tick, 1) + 1;
		pthread_mutex_unlock(mu);
	}
	rc = 0;
out:
	json_decref(g);
	free(grants);
	if (jwt)
		jwt_free(jwt);
	return rc;
}

char *
p25_auth_mint_dev(const struct p25_config *cfg, const char *sub,
		  const char *roles_csv, const char *tenant, long ttl,
		  struct p25_err *err)
{
	unsigned char *key = NULL;
	size_t len = 0;
	jwt_t *jwt = NULL;
	json_t *roles = NULL, *extra = NULL;
	char *out = NULL, *rcopy = NULL, *save = NULL, *tok, *ej = NULL;
	long long now = (long long)time(NULL);

	if (strcmp(cfg->auth_alg, "HS256") != 0 || !cfg->dev_mode) {
		p25_err_set(err, 400, "not_dev", "dev-token needs P25_AUTH_ALG=HS256 and P25_DEV_MODE=true");
		return NULL;
	}
	key = (unsigned char *)p25_read_file(cfg->auth_key_file, 65536, &len);
	if (!key) {
		p25_err_set(err, 500, "bad_config", "P25_AUTH_KEY_FILE: cannot read %s",
			    cfg->auth_key_file);
		return NULL;
	}
	while (len > 0 && (key[len - 1] == '\n' || key[len - 1] == '\r'))
		key[--len] = '\0';
	roles = json_array();
	rcopy = strdup(roles_csv);
	for (tok = rcopy ? strtok_r(rcopy, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!p25_role_bit(tok)) {
			p25_err_set(err, 400, "bad_role", "unknown role %s", tok);
			goto out;
		}
		json_array_append_new(roles, json_string(tok));
	}
	if (tenant && !p25_tenant_id_ok(tenant)) {
		p25_err_set(err, 400, "bad_tenant", "malformed tenant id");
		goto out;
	}
	extra = json_pack("{s:o}", "roles", json_incref(roles));
	if (tenant)
		json_object_set_new(extra, "tenant", json_string(tenant));
	ej = json_dumps(extra, JSON_COMPACT);
	if (jwt_new(&jwt) != 0 || !ej ||
	    jwt_add_grant(jwt, "iss", cfg->auth_issuer) != 0 ||
	    jwt_add_grant(jwt, "aud", cfg->auth_audience) != 0 ||
	    jwt_add_grant(jwt, "sub", sub) != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)(now + ttl)) != 0 ||
	    jwt_add_grants_json(jwt, ej) != 0 ||
	    jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)len) != 0) {
		p25_err_set(err, 500, "internal", "cannot build the token");
		goto out;
	}
	out = jwt_encode_str(jwt);
	if (!out)
		p25_err_set(err, 500, "internal", "cannot encode the token");
out:
	if (jwt)
		jwt_free(jwt);
	free(ej);
	json_decref(extra);
	json_decref(roles);
	free(rcopy);
	sodium_memzero(key, len);
	free(key);
	return out;
}
