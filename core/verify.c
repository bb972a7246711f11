/*
 * verify.c — offline verification of exemption tokens (see verify.h).
 *
 * Design.  This file is the whole trust decision of an enforcement node:
 * a token that passes here opens port 25 for a prefix.  So it is small,
 * allocation-light and paranoid, in this order (RFC 8725):
 *
 *   1. shape: at most P25_TOKEN_MAX bytes, only the base64url alphabet and
 *      exactly two dots — nothing else is ever handed to a decoder;
 *   2. header: strict base64url, a JSON object without duplicate members,
 *      alg pinned to "EdDSA", typ pinned to "p25-exemption+jwt" (explicit
 *      typing keeps the API's auth JWTs from ever passing as exemptions),
 *      a kid, and none of the members that let a token pick its own key
 *      (jku, jwk, x5u, x5c) or demand extensions we do not implement (crit,
 *      b64);
 *   3. key: by kid from the keyset the node loaded out of band — the token
 *      never chooses a key, and every key is Ed25519 only, so there is no
 *      algorithm confusion to be had;
 *   4. signature: crypto_sign_verify_detached() over the ASCII signing
 *      input (libsodium refuses non-canonical S, small-order R and keys);
 *   5. only now is the payload decoded and parsed: claim types, issuer,
 *      validity window with clock skew, and the scope.  An unknown member
 *      of the "p25" scope object fails the token: a scope is a restriction,
 *      and a node must not silently drop a restriction it does not know.
 *
 * Normalized CIDRs are checked here with inet_pton()/inet_ntop() rather
 * than with core/ipaddr.c, which lives in p25core: p25verify links only
 * libsodium and jansson.  A token's cidr is also refused when wider than
 * /8 (IPv4) or /16 (IPv6): no policy ever issues that, so such a token can
 * only come from a bug, and failing closed is cheap.
 *
 * Concurrency: no global state; a keyset is read-only after parsing.
 * Memory: decoded segments live on the stack (bounded by P25_TOKEN_MAX);
 * jansson's trees are freed on every path through one exit.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <jansson.h>
#include <sodium.h>

#include "p25/b64.h"
#include "p25/verify.h"

#define HEADER_MAX 1024				/* decoded header bytes */
#define PAYLOAD_MAX (P25_TOKEN_MAX / 4 * 3 + 3)	/* decoded payload bytes */
#define TIME_MAX 253402300799LL			/* 9999-12-31T23:59:59Z */
#define SKEW_MAX 86400

struct p25_key {
	char kid[64];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
};

struct p25_keyset {
	size_t n;
	struct p25_key keys[P25_KEYSET_MAX_KEYS];
};

/* ------------------------------------------------------------ keyset */

static void ks_err(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
ks_err(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Optional string member: NULL when absent; sets *bad on a wrong type. */
static const char *
opt_string(json_t *o, const char *name, bool *bad)
{
	json_t *v = json_object_get(o, name);

	if (!v)
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

static int
ks_add(struct p25_keyset *ks, json_t *k, size_t i, char *errbuf, size_t errlen)
{
	bool bad = false;
	const char *kid = opt_string(k, "kid", &bad);
	const char *x = opt_string(k, "x", &bad);
	const char *use = opt_string(k, "use", &bad);
	const char *alg = opt_string(k, "alg", &bad);
	unsigned char pk[crypto_sign_PUBLICKEYBYTES + 1];
	size_t pklen, j;

	if (bad) {
		ks_err(errbuf, errlen, "keys[%zu]: a member has the wrong type", i);
		return -1;
	}
	if (json_object_get(k, "d")) {
		ks_err(errbuf, errlen, "keys[%zu]: private key material (\"d\") in a key set", i);
		return -1;
	}
	if (!kid || kid[0] == '\0' || strlen(kid) >= sizeof(ks->keys[0].kid)) {
		ks_err(errbuf, errlen, "keys[%zu]: \"kid\" missing or longer than 63 characters", i);
		return -1;
	}
	if (use && strcmp(use, "sig") != 0) {
		ks_err(errbuf, errlen, "keys[%zu]: \"use\" is not \"sig\"", i);
		return -1;
	}
	if (alg && strcmp(alg, P25_TOKEN_ALG) != 0) {
		ks_err(errbuf, errlen, "keys[%zu]: \"alg\" is not \"EdDSA\"", i);
		return -1;
	}
	if (!x || p25_b64url_decode(pk, sizeof(pk), x, strlen(x), &pklen) != 0 ||
	    pklen != crypto_sign_PUBLICKEYBYTES) {
		ks_err(errbuf, errlen, "keys[%zu]: \"x\" is not 32 bytes of base64url", i);
		return -1;
	}
	if (!crypto_core_ed25519_is_valid_point(pk)) {
		ks_err(errbuf, errlen, "keys[%zu]: \"x\" is not a valid Ed25519 public key", i);
		return -1;
	}
	for (j = 0; j < ks->n; j++) {
		if (strcmp(ks->keys[j].kid, kid) == 0) {
			ks_err(errbuf, errlen, "keys[%zu]: duplicate kid", i);
			return -1;
		}
	}
	if (ks->n >= P25_KEYSET_MAX_KEYS) {
		ks_err(errbuf, errlen, "more than %d Ed25519 keys", P25_KEYSET_MAX_KEYS);
		return -1;
	}
	snprintf(ks->keys[ks->n].kid, sizeof(ks->keys[ks->n].kid), "%s", kid);
	memcpy(ks->keys[ks->n].pk, pk, crypto_sign_PUBLICKEYBYTES);
	ks->n++;
	return 0;
}

int
p25_keyset_parse(const char *jwks_json, size_t len, struct p25_keyset **out,
		 char *errbuf, size_t errlen)
{
	struct p25_keyset *ks = NULL;
	json_t *root = NULL, *keys, *k;
	json_error_t jerr;
	size_t i;
	int rc = -1;

	*out = NULL;
	ks_err(errbuf, errlen, "%s", "");
	if (sodium_init() < 0) {
		ks_err(errbuf, errlen, "libsodium failed to initialise");
		goto out;
	}
	if (!jwks_json || len == 0 || len > P25_JWKS_MAX) {
		ks_err(errbuf, errlen, "key set is empty or larger than %d bytes", P25_JWKS_MAX);
		goto out;
	}
	root = json_loadb(jwks_json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		ks_err(errbuf, errlen, "key set is not JSON: %s (line %d)", jerr.text, jerr.line);
		goto out;
	}
	keys = json_object_get(root, "keys");
	if (!json_is_object(root) || !json_is_array(keys)) {
		ks_err(errbuf, errlen, "key set is not an object with a \"keys\" array");
		goto out;
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		ks_err(errbuf, errlen, "out of memory");
		goto out;
	}
	json_array_foreach(keys, i, k) {
		const char *kty, *crv;

		if (!json_is_object(k) || !json_is_string(json_object_get(k, "kty"))) {
			ks_err(errbuf, errlen, "keys[%zu]: not an object with a \"kty\"", i);
			goto out;
		}
		kty = json_string_value(json_object_get(k, "kty"));
		crv = json_string_value(json_object_get(k, "crv"));
		/* other key types and curves are not ours: skip them */
		if (strcmp(kty, "OKP") != 0 || !crv || strcmp(crv, "Ed25519") != 0)
			continue;
		if (ks_add(ks, k, i, errbuf, errlen) != 0)
			goto out;
	}
	if (ks->n == 0) {
		ks_err(errbuf, errlen, "key set holds no Ed25519 key");
		goto out;
	}
	*out = ks;
	ks = NULL;
	rc = 0;
out:
	free(ks);
	json_decref(root);
	return rc;
}

void
p25_keyset_free(struct p25_keyset *ks)
{
	free(ks);
}

size_t
p25_keyset_count(const struct p25_keyset *ks)
{
	return ks ? ks->n : 0;
}

static const unsigned char *
ks_find(const struct p25_keyset *ks, const char *kid)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		if (strcmp(ks->keys[i].kid, kid) == 0)
			return ks->keys[i].pk;
	return NULL;
}

bool
p25_keyset_has(const struct p25_keyset *ks, const char *kid)
{
	return ks && kid && ks_find(ks, kid) != NULL;
}

const unsigned char *
p25_keyset_key(const struct p25_keyset *ks, const char *kid)
{
	return ks && kid ? ks_find(ks, kid) : NULL;
}

/* -------------------------------------------------------------- cidr */

bool
p25_cidr_normalized(const char *s, int *family, unsigned char addr[16], int *len)
{
	char abuf[INET6_ADDRSTRLEN], back[INET6_ADDRSTRLEN];
	const char *slash, *p;
	size_t alen;
	int fam, max, n = 0, i;

	if (!s)
		return false;
	slash = strchr(s, '/');
	if (!slash)
		return false;
	alen = (size_t)(slash - s);
	if (alen == 0 || alen >= sizeof(abuf))
		return false;
	memcpy(abuf, s, alen);
	abuf[alen] = '\0';
	p = slash + 1;
	/* 1..3 decimal digits, no leading zero, nothing after */
	if (p[0] < '0' || p[0] > '9' || (p[0] == '0' && p[1] != '\0'))
		return false;
	for (i = 0; p[i]; i++) {
		if (i >= 3 || p[i] < '0' || p[i] > '9')
			return false;
		n = n * 10 + (p[i] - '0');
	}
	fam = strchr(abuf, ':') ? AF_INET6 : AF_INET;
	max = fam == AF_INET ? 32 : 128;
	memset(addr, 0, 16);
	if (n > max || inet_pton(fam, abuf, addr) != 1)
		return false;
	if (!inet_ntop(fam, addr, back, sizeof(back)) || strcmp(back, abuf) != 0)
		return false;
	if (fam == AF_INET6) {
		static const unsigned char mapped[12] =
			{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(addr, mapped, sizeof(mapped)) == 0)
			return false;
	}
	for (i = n; i < max; i++)
		if (addr[i / 8] & (0x80 >> (i % 8)))
			return false;
	*family = fam;
	*len = n;
	return true;
}

/* ------------------------------------------------------------- token */

static bool
is_b64url(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

/* Required string claim copied into buf: false when absent, mistyped,
 * empty (when nonempty) or too long for buf. */
static bool
get_string(json_t *o, const char *name, char *buf, size_t len, bool nonempty)
{
	json_t *v = json_object_get(o, name);
	size_t n;

	if (!json_is_string(v))
		return false;
	n = json_string_length(v);
	if (n >= len || (nonempty && n == 0))
		return false;
	memcpy(buf, json_string_value(v), n + 1);
	return true;
}

static bool
get_time(json_t *o, const char *name, long long *out)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_integer(v))
		return false;
	*out = json_integer_value(v);
	return *out >= 0 && *out <= TIME_MAX;
}

static enum p25_verify_result
check_header(const unsigned char *hdr, size_t len, char *kid, size_t kidlen)
{
	static const char *const forbidden[] = { "crit", "jku", "jwk", "x5u", "x5c", "b64" };
	enum p25_verify_result r = P25_VERIFY_BAD_HEADER;
	json_t *root;
	json_error_t jerr;
	const char *s;
	size_t i;

	root = json_loadb((const char *)hdr, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		r = P25_VERIFY_MALFORMED;
		goto out;
	}
	s = json_string_value(json_object_get(root, "alg"));
	if (!s || strcmp(s, P25_TOKEN_ALG) != 0)
		goto out;
	s = json_string_value(json_object_get(root, "typ"));
	if (!s || strcmp(s, P25_TOKEN_TYP) != 0)
		goto out;
	for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		if (json_object_get(root, forbidden[i]))
			goto out;
	if (!get_string(root, "kid", kid, kidlen, true))
		goto out;
	r = P25_VERIFY_OK;
out:
	json_decref(root);
	return r;
}

static enum p25_verify_result
check_scope(json_t *scope, struct p25_claims *c)
{
	static const char *const known[] =
		{ "cidr", "port", "proto", "dir", "request", "dest", "rate" };
	unsigned char addr[16];
	const char *key;
	json_t *v, *dest, *rate;
	int fam, len;
	size_t i, k;

	if (!json_is_object(scope))
		return P25_VERIFY_BAD_SCOPE;
	json_object_foreach(scope, key, v) {
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strcmp(key, known[k]) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0]))
			return P25_VERIFY_BAD_SCOPE;
	}
	if (!get_string(scope, "cidr", c->cidr, sizeof(c->cidr), true) ||
	    !p25_cidr_normalized(c->cidr, &fam, addr, &len) ||
	    len < (fam == AF_INET ? 8 : 16))
		return P25_VERIFY_BAD_SCOPE;
	v = json_object_get(scope, "port");
	if (!json_is_integer(v) || json_integer_value(v) != 25)
		return P25_VERIFY_BAD_SCOPE;
	c->port = 25;
	if (!get_string(scope, "proto", c->proto, sizeof(c->proto), true) ||
	    strcmp(c->proto, "tcp") != 0)
		return P25_VERIFY_BAD_SCOPE;
	if (!get_string(scope, "dir", c->dir, sizeof(c->dir), true) ||
	    strcmp(c->dir, "egress") != 0)
		return P25_VERIFY_BAD_SCOPE;
	if (!get_string(scope, "request", c->request, sizeof(c->request), true))
		return P25_VERIFY_BAD_SCOPE;
	dest = json_object_get(scope, "dest");
	if (dest) {
		/* an empty list would read as "nowhere" to one node and
		 * "anywhere" to another: refuse it */
		if (!json_is_array(dest) || json_array_size(dest) == 0 ||
		    json_array_size(dest) > P25_MAX_DEST)
			return P25_VERIFY_BAD_SCOPE;
		json_array_foreach(dest, i, v) {
			char *d = c->dest[i];
			if (!json_is_string(v) || json_string_length(v) >= sizeof(c->dest[0]))
				return P25_VERIFY_BAD_SCOPE;
			memcpy(d, json_string_value(v), json_string_length(v) + 1);
			if (!p25_cidr_normalized(d, &fam, addr, &len))
				return P25_VERIFY_BAD_SCOPE;
		}
		c->ndest = (int)json_array_size(dest);
	}
	rate = json_object_get(scope, "rate");
	if (rate) {
		if (!json_is_integer(rate) || json_integer_value(rate) <= 0 ||
		    json_integer_value(rate) > INT32_MAX)
			return P25_VERIFY_BAD_SCOPE;
		c->rate = json_integer_value(rate);
	}
	return P25_VERIFY_OK;
}

static enum p25_verify_result
check_payload(const unsigned char *pl, size_t len, const char *expected_iss,
	      long long now, int skew, struct p25_claims *c)
{
	enum p25_verify_result r = P25_VERIFY_MALFORMED;
	json_t *root;
	json_error_t jerr;

	root = json_loadb((const char *)pl, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root))
		goto out;
	if (!get_string(root, "iss", c->iss, sizeof(c->iss), true) ||
	    !get_string(root, "sub", c->sub, sizeof(c->sub), true) ||
	    !get_string(root, "jti", c->jti, sizeof(c->jti), true) ||
	    !get_time(root, "iat", &c->iat) || !get_time(root, "nbf", &c->nbf) ||
	    !get_time(root, "exp", &c->exp) || c->exp <= c->nbf)
		goto out;
	if (strcmp(c->iss, expected_iss) != 0) {
		r = P25_VERIFY_BAD_ISSUER;
		goto out;
	}
	/* both sides bounded: nbf, exp <= TIME_MAX and skew <= SKEW_MAX */
	if (now < c->nbf - skew) {
		r = P25_VERIFY_NOT_YET_VALID;
		goto out;
	}
	if (now >= c->exp + skew) {
		r = P25_VERIFY_EXPIRED;
		goto out;
	}
	r = check_scope(json_object_get(root, "p25"), c);
out:
	json_decref(root);
	return r;
}

/* -------------------------------------------------- payload fast path */

/*
 * The claims of one token, read without jansson: p25 writes them compact
 * with plain ASCII strings, integers and the members it knows, and a JSON
 * tree costs more than everything else around the signature.  The scanner
 * below accepts only that subset — strings of printable ASCII without
 * escapes, integers of at most 18 digits, exactly the members p25 defines,
 * each at most once, dest a non-empty array of at most P25_MAX_DEST
 * strings — and says "other shape" for everything else, which then goes
 * through jansson and check_payload() as before.  On what it accepts the
 * checks are those of check_payload()/check_scope(), in the same order, so
 * both paths give the same answer; tests/unit/test_verify.c compares them
 * on mutated payloads (p25_payload_check).
 */
struct fstr {
	const char *p;
	size_t len;
	bool set;
};

struct fint {
	long long v;
	bool set;
};

struct fclaims {
	struct fstr iss, sub, jti;
	struct fint iat, nbf, exp;
	bool scope;
	struct fstr cidr, proto, dir, request;
	struct fint port, rate;
	bool has_dest;
	size_t ndest;
	struct fstr dest[P25_MAX_DEST];
};

struct fscan {
	const unsigned char *p, *end;
};

static void
fs_ws(struct fscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool
fs_char(struct fscan *s, unsigned char ch)
{
	fs_ws(s);
	if (s->p < s->end && *s->p == ch) {
		s->p++;
		return true;
	}
	return false;
}

/* A string of printable ASCII without escapes; false: another shape. */
static bool
fs_string(struct fscan *s, struct fstr *out)
{
	const unsigned char *q;

	if (out->set || !fs_char(s, '"'))
		return false;
	for (q = s->p; q < s->end && *q != '"'; q++)
		if (*q < 0x20 || *q > 0x7e || *q == '\\')
			return false;
	if (q == s->end)
		return false;
	out->p = (const char *)s->p;
	out->len = (size_t)(q - s->p);
	out->set = true;
	s->p = q + 1;
	return true;
}

/* An integer of at most 18 digits, no fraction or exponent. */
static bool
fs_int(struct fscan *s, struct fint *out)
{
	bool neg = false;
	long long v = 0;
	int d;

	if (out->set)
		return false;
	fs_ws(s);
	if (s->p < s->end && *s->p == '-') {
		neg = true;
		s->p++;
	}
	for (d = 0; s->p < s->end && *s->p >= '0' && *s->p <= '9'; d++, s->p++)
		if (d < 18)	/* more digits: another shape, below */
			v = v * 10 + (*s->p - '0');
	if (d == 0 || d > 18 || (d > 1 && s->p[-d] == '0'))
		return false;
	if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))
		return false;
	out->v = neg ? -v : v;
	out->set = true;
	return true;
}

/* A member name: the text between quotes (printable ASCII, no escapes). */
static bool
fs_key(struct fscan *s, struct fstr *k)
{
	k->set = false;
	return fs_string(s, k) && fs_char(s, ':');
}

static bool
fs_is(const struct fstr *k, const char *name)
{
	return k->len == strlen(name) && memcmp(k->p, name, k->len) == 0;
}

static bool
fs_scope(struct fscan *s, struct fclaims *f)
{
	struct fstr k;

	if (f->scope || !fs_char(s, '{'))
		return false;
	f->scope = true;
	if (fs_char(s, '}'))
		return true;
	do {
		if (!fs_key(s, &k))
			return false;
		if (fs_is(&k, "cidr")) {
			if (!fs_string(s, &f->cidr))
				return false;
		} else if (fs_is(&k, "proto")) {
			if (!fs_string(s, &f->proto))
				return false;
		} else if (fs_is(&k, "dir")) {
			if (!fs_string(s, &f->dir))
				return false;
		} else if (fs_is(&k, "request")) {
			if (!fs_string(s, &f->request))
				return false;
		} else if (fs_is(&k, "port")) {
			if (!fs_int(s, &f->port))
				return false;
		} else if (fs_is(&k, "rate")) {
			if (!fs_int(s, &f->rate))
				return false;
		} else if (fs_is(&k, "dest")) {
			if (f->has_dest || !fs_char(s, '['))
				return false;
			f->has_dest = true;
			do {
				if (f->ndest == P25_MAX_DEST || !fs_string(s, &f->dest[f->ndest]))
					return false;
				f->ndest++;
			} while (fs_char(s, ','));
			if (!fs_char(s, ']'))
				return false;
		} else {
			return false;
		}
	} while (fs_char(s, ','));
	return fs_char(s, '}');
}

/* true: the payload is of the simple shape, read into f. */
static bool
fs_payload(const unsigned char *pl, size_t len, struct fclaims *f)
{
	struct fscan s = { pl, pl + len };
	struct fstr k;

	memset(f, 0, sizeof(*f));
	if (!fs_char(&s, '{'))
		return false;
	do {
		if (!fs_key(&s, &k))
			return false;
		if (fs_is(&k, "iss")) {
			if (!fs_string(&s, &f->iss))
				return false;
		} else if (fs_is(&k, "sub")) {
			if (!fs_string(&s, &f->sub))
				return false;
		} else if (fs_is(&k, "jti")) {
			if (!fs_string(&s, &f->jti))
				return false;
		} else if (fs_is(&k, "iat")) {
			if (!fs_int(&s, &f->iat))
				return false;
		} else if (fs_is(&k, "nbf")) {
			if (!fs_int(&s, &f->nbf))
				return false;
		} else if (fs_is(&k, "exp")) {
			if (!fs_int(&s, &f->exp))
				return false;
		} else if (fs_is(&k, "p25")) {
			if (!fs_scope(&s, f))
				return false;
		} else {
			return false;	/* other claims: jansson's path reads past them */
		}
	} while (fs_char(&s, ','));
	if (!fs_char(&s, '}'))
		return false;
	fs_ws(&s);
	return s.p == s.end;
}

/* get_string() of the fast path: present, fits buf, non-empty if asked. */
static bool
fs_copy(const struct fstr *v, char *buf, size_t len, bool nonempty)
{
	if (!v->set || v->len >= len || (nonempty && v->len == 0))
		return false;
	memcpy(buf, v->p, v->len);
	buf[v->len] = '\0';
	return true;
}

static bool
fs_time(const struct fint *v, long long *out)
{
	if (!v->set)
		return false;
	*out = v->v;
	return *out >= 0 && *out <= TIME_MAX;
}

/* check_scope() on the fast path's reading. */
static enum p25_verify_result
fs_check_scope(const struct fclaims *f, struct p25_claims *c)
{
	unsigned char addr[16];
	int fam, len;
	size_t i;

	if (!f->scope)
		return P25_VERIFY_BAD_SCOPE;
	if (!fs_copy(&f->cidr, c->cidr, sizeof(c->cidr), true) ||
	    !p25_cidr_normalized(c->cidr, &fam, addr, &len) ||
	    len < (fam == AF_INET ? 8 : 16))
		return P25_VERIFY_BAD_SCOPE;
	if (!f->port.set || f->port.v != 25)
		return P25_VERIFY_BAD_SCOPE;
	c->port = 25;
	if (!fs_copy(&f->proto, c->proto, sizeof(c->proto), true) || strcmp(c->proto, "tcp") != 0)
		return P25_VERIFY_BAD_SCOPE;
	if (!fs_copy(&f->dir, c->dir, sizeof(c->dir), true) || strcmp(c->dir, "egress") != 0)
		return P25_VERIFY_BAD_SCOPE;
	if (!fs_copy(&f->request, c->request, sizeof(c->request), true))
		return P25_VERIFY_BAD_SCOPE;
	if (f->has_dest) {
		/* the scanner saw 1..P25_MAX_DEST strings */
		for (i = 0; i < f->ndest; i++)
			if (!fs_copy(&f->dest[i], c->dest[i], sizeof(c->dest[0]), false) ||
			    !p25_cidr_normalized(c->dest[i], &fam, addr, &len))
				return P25_VERIFY_BAD_SCOPE;
		c->ndest = (int)f->ndest;
	}
	if (f->rate.set) {
		if (f->rate.v <= 0 || f->rate.v > INT32_MAX)
			return P25_VERIFY_BAD_SCOPE;
		c->rate = f->rate.v;
	}
	return P25_VERIFY_OK;
}

/* check_payload() on the fast path's reading. */
static enum p25_verify_result
fs_check_payload(const struct fclaims *f, const char *expected_iss, long long now, int skew,
		 struct p25_claims *c)
{
	if (!fs_copy(&f->iss, c->iss, sizeof(c->iss), true) ||
	    !fs_copy(&f->sub, c->sub, sizeof(c->sub), true) ||
	    !fs_copy(&f->jti, c->jti, sizeof(c->jti), true) ||
	    !fs_time(&f->iat, &c->iat) || !fs_time(&f->nbf, &c->nbf) ||
	    !fs_time(&f->exp, &c->exp) || c->exp <= c->nbf)
		return P25_VERIFY_MALFORMED;
	if (strcmp(c->iss, expected_iss) != 0)
		return P25_VERIFY_BAD_ISSUER;
	if (now < c->nbf - skew)
		return P25_VERIFY_NOT_YET_VALID;
	if (now >= c->exp + skew)
		return P25_VERIFY_EXPIRED;
	return fs_check_scope(f, c);
}

/* The claims of a decoded payload: the fast path when it applies. */
static enum p25_verify_result
payload_claims(const unsigned char *pl, size_t len, const char *expected_iss, long long now,
	       int skew, struct p25_claims *c, bool fast)
{
	struct fclaims f;

	if (fast && fs_payload(pl, len, &f))
		return fs_check_payload(&f, expected_iss, now, skew, c);
	return check_payload(pl, len, expected_iss, now, skew, c);
}

enum p25_verify_result
p25_payload_check(const char *json, size_t len, const char *expected_iss, long long now,
		  int skew, struct p25_claims *claims, bool fast)
{
	struct p25_claims c;
	enum p25_verify_result r;

	memset(&c, 0, sizeof(c));
	c.rate = -1;
	if (claims)
		memset(claims, 0, sizeof(*claims));
	if (!json || !expected_iss || len > PAYLOAD_MAX)
		return P25_VERIFY_MALFORMED;
	skew = skew < 0 ? 0 : skew > SKEW_MAX ? SKEW_MAX : skew;
	r = payload_claims((const unsigned char *)json, len, expected_iss, now, skew, &c, fast);
	if (r == P25_VERIFY_OK && claims)
		*claims = c;
	return r;
}

/* The last header a thread accepted: its base64url text and its kid. */
static _Thread_local struct {
	size_t len;		/* 0: none yet */
	char b64[256];
	char kid[64];
} last_hdr;

enum p25_verify_result
p25_token_verify(const struct p25_keyset *ks, const char *token,
		 const char *expected_iss, long long now, int skew,
		 struct p25_claims *claims)
{
	unsigned char hdr[HEADER_MAX];
	unsigned char sig[crypto_sign_BYTES + 1];
	unsigned char pl[PAYLOAD_MAX];
	struct p25_claims c;
	enum p25_verify_result r;
	const unsigned char *pk;
	size_t len, i, dots[2] = { 0, 0 }, ndots = 0, hlen, plen, slen;

	memset(&c, 0, sizeof(c));
	c.rate = -1;
	if (claims)
		memset(claims, 0, sizeof(*claims));
	if (!ks || !token || !expected_iss)
		return P25_VERIFY_MALFORMED;
	skew = skew < 0 ? 0 : skew > SKEW_MAX ? SKEW_MAX : skew;

	/* 1. shape */
	len = strnlen(token, P25_TOKEN_MAX + 1);
	if (len > P25_TOKEN_MAX)
		return P25_VERIFY_MALFORMED;
	for (i = 0; i < len; i++) {
		if (token[i] == '.') {
			if (ndots == 2)
				return P25_VERIFY_MALFORMED;
			dots[ndots++] = i;
		} else if (!is_b64url((unsigned char)token[i])) {
			return P25_VERIFY_MALFORMED;
		}
	}
	if (ndots != 2 || dots[0] == 0 || dots[1] == dots[0] + 1)
		return P25_VERIFY_MALFORMED;

	/* 2. header: one issuer's tokens share a handful of headers (one per
	 * key), so the last one this thread accepted is remembered: the same
	 * bytes give the same kid without decoding and parsing them again */
	if (dots[0] <= sizeof(last_hdr.b64) && last_hdr.len == dots[0] &&
	    memcmp(last_hdr.b64, token, dots[0]) == 0) {
		memcpy(c.kid, last_hdr.kid, sizeof(c.kid));
	} else {
		if (p25_b64url_decode(hdr, sizeof(hdr), token, dots[0], &hlen) != 0)
			return P25_VERIFY_MALFORMED;
		r = check_header(hdr, hlen, c.kid, sizeof(c.kid));
		if (r != P25_VERIFY_OK)
			return r;
		if (dots[0] <= sizeof(last_hdr.b64)) {
			memcpy(last_hdr.b64, token, dots[0]);
			memcpy(last_hdr.kid, c.kid, sizeof(c.kid));
			last_hdr.len = dots[0];
		}
	}

	/* 3. key, 4. signature over "header.payload" exactly as sent */
	if (p25_b64url_decode(sig, sizeof(sig), token + dots[1] + 1,
			      len - dots[1] - 1, &slen) != 0 ||
	    slen != crypto_sign_BYTES)
		return P25_VERIFY_MALFORMED;
	pk = ks_find(ks, c.kid);
	if (!pk)
		return P25_VERIFY_UNKNOWN_KID;
	if (crypto_sign_verify_detached(sig, (const unsigned char *)token,
					dots[1], pk) != 0)
		return P25_VERIFY_BAD_SIGNATURE;

	/* 5. claims */
	if (p25_b64url_decode(pl, sizeof(pl), token + dots[0] + 1,
			      dots[1] - dots[0] - 1, &plen) != 0)
		return P25_VERIFY_MALFORMED;
	r = payload_claims(pl, plen, expected_iss, now, skew, &c, true);
	if (r == P25_VERIFY_OK && claims)
		*claims = c;
	return r;
}

const char *
p25_verify_result_str(enum p25_verify_result r)
{
	switch (r) {
	case P25_VERIFY_OK: return "ok";
	case P25_VERIFY_MALFORMED: return "malformed";
	case P25_VERIFY_BAD_HEADER: return "bad_header";
	case P25_VERIFY_UNKNOWN_KID: return "unknown_kid";
	case P25_VERIFY_BAD_SIGNATURE: return "bad_signature";
	case P25_VERIFY_BAD_ISSUER: return "bad_issuer";
	case P25_VERIFY_NOT_YET_VALID: return "not_yet_valid";
	case P25_VERIFY_EXPIRED: return "expired";
	case P25_VERIFY_BAD_SCOPE: return "bad_scope";
	}
	return "unknown";
}
