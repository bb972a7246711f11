/*
 * keys.c — signing keys sealed in PostgreSQL (see keys.h).
 *
 * Sealing.  A key's 64-byte libsodium secret key (seed || public key) is
 * sealed with crypto_secretbox_easy (XSalsa20-Poly1305) under the 32-byte
 * KEK with a fresh random 24-byte nonce, stored next to it.  The row's kid
 * and public key are not authenticated by the box; instead, on unsealing,
 * the public key inside the secret key must equal the row's public_key and
 * the kid must be the RFC 7638 thumbprint of that key.  So a row whose
 * ciphertext was swapped with another row's, or whose public half was
 * edited, fails to load rather than signing under the wrong kid — the
 * same binding an AEAD's associated data would give, checked where it
 * matters.  A wrong KEK fails the Poly1305 tag and is reported as such.
 *
 * Secrets in memory: a freshly generated secret key lives on the stack
 * only until it is sealed and is wiped with sodium_memzero on every path;
 * an unsealed key lives in sodium_malloc'd memory (guard pages, mlock,
 * MADV_DONTDUMP), made read-only once loaded and wiped by sodium_free.
 * Hex text of key material (public key, ciphertext, nonce) is the only form
 * that crosses into libpq; bytea parameters are sent as '\x…' text.
 *
 * Rotation.  Enforcement nodes cache the JWKS, so a token signed by a key
 * they have never seen fails until they refresh.  Hence pre-publication:
 * `generate` without activation stores a key as retiring with a NULL
 * verify_until — published, not signing — and `rotate` promotes the oldest
 * such key before it would generate a fresh one.  A key is only ever made
 * active after this process proved it can unseal it.
 *
 * Concurrency: every change is one transaction that first takes a
 * transaction-scoped advisory lock, so two rotations never interleave; the
 * unique index on the active key is the last word either way.  All
 * transactions set the RLS identity to role "system" first (audit_log has
 * row-level security).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <sodium.h>

#include "p25/audit.h"
#include "p25/db.h"
#include "p25/err.h"
#include "p25/jws.h"
#include "p25/keys.h"
#include "p25/log.h"

#define SK_BYTES crypto_sign_SECRETKEYBYTES
#define PK_BYTES crypto_sign_PUBLICKEYBYTES
#define SEALED_BYTES (crypto_secretbox_MACBYTES + SK_BYTES)
#define NONCE_BYTES crypto_secretbox_NONCEBYTES
#define TTL_MAX (400L * 86400)
/* bytea as text: "\x" + 2 hex digits a byte + NUL */
#define HEXLEN(n) (2 + 2 * (n) + 1)

struct p25_signer {
	char kid[64];
	unsigned char *sk;	/* sodium_malloc'd, SK_BYTES, read-only */
};

/* ------------------------------------------------------------- KEK */

int
p25_kek_load(const char *path, unsigned char kek[32], struct p25_err *err)
{
	char buf[68], ebuf[128];
	struct stat st;
	size_t total = 0, binlen = 0, i;
	ssize_t n;
	int fd = -1, rc = -1;
	unsigned char acc = 0;

	sodium_memzero(kek, P25_KEK_BYTES);
	if (!path || !path[0]) {
		p25_err_set(err, 500, "kek_invalid", "no KEK file is configured");
		p25_err_hint(err, "set P25_KEK_FILE to a file holding 64 hex characters");
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		p25_err_set(err, 500, "kek_invalid", "cannot read the KEK file %s: %s",
			    path, strerror_r(errno, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		p25_err_set(err, 500, "kek_invalid", "the KEK file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		p25_warn("kek.permissions", "the KEK file %s is accessible by group or others "
			 "(mode %03o); chmod 600 it", path, (unsigned)(st.st_mode & 0777));
	while (total < sizeof(buf)) {
		n = read(fd, buf + total, sizeof(buf) - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			p25_err_set(err, 500, "kek_invalid", "cannot read the KEK file %s: %s",
				    path, strerror_r(errno, ebuf, sizeof(ebuf)));
			goto out;
		}
		if (n == 0)
			break;
		total += (size_t)n;
	}
	if (!(total == 64 || (total == 65 && buf[64] == '\n')) ||
	    sodium_hex2bin(kek, P25_KEK_BYTES, buf, 64, NULL, &binlen, NULL) != 0 ||
	    binlen != P25_KEK_BYTES) {
		sodium_memzero(kek, P25_KEK_BYTES);
		p25_err_set(err, 500, "kek_invalid",
			    "the KEK file %s does not hold exactly 64 hex characters", path);
		p25_err_hint(err, "create one with: head -c 32 /dev/urandom | xxd -p -c 64 > FILE");
		goto out;
	}
	for (i = 0; i < P25_KEK_BYTES; i++)
		acc |= kek[i];
	if (acc == 0) {
		p25_err_set(err, 500, "kek_invalid", "the KEK in %s is all zeros", path);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---------------------------------------------------- key material */

struct sealed_key {
	char kid[64];
	char pk_hex[HEXLEN(PK_BYTES)];
	char sealed_hex[HEXLEN(SEALED_BYTES)];
	char nonce_hex[HEXLEN(NONCE_BYTES)];
};

static void
to_bytea(char *out, size_t outlen, const unsigned char *bin, size_t len)
{
	out[0] = '\\';
	out[1] = 'x';
	sodium_bin2hex(out + 2, outlen - 2, bin, len);
}

/* A new key pair, sealed; the secret never leaves this function in clear. */
static int
key_new(const unsigned char kek[32], struct sealed_key *k, struct p25_err *err)
{
	unsigned char pk[PK_BYTES], sk[SK_BYTES], nonce[NONCE_BYTES];
	unsigned char sealed[SEALED_BYTES];
	int rc = -1;

	memset(k, 0, sizeof(*k));
	if (sodium_init() < 0) {
		p25_err_set(err, 500, "internal", "libsodium failed to initialise");
		goto out;
	}
	if (crypto_sign_keypair(pk, sk) != 0 ||
	    p25_jwk_thumbprint(pk, k->kid, sizeof(k->kid)) != 0) {
		p25_err_set(err, 500, "internal", "cannot generate a signing key");
		goto out;
	}
	randombytes_buf(nonce, sizeof(nonce));
	if (crypto_secretbox_easy(sealed, sk, sizeof(sk), nonce, kek) != 0) {
		p25_err_set(err, 500, "internal", "cannot seal the signing key");
		goto out;
	}
	to_bytea(k->pk_hex, sizeof(k->pk_hex), pk, sizeof(pk));
	to_bytea(k->sealed_hex, sizeof(k->sealed_hex), sealed, sizeof(sealed));
	to_bytea(k->nonce_hex, sizeof(k->nonce_hex), nonce, sizeof(nonce));
	rc = 0;
out:
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

static int
hex_exact(const char *hex, unsigned char *bin, size_t want)
{
	size_t len = 0;

	return sodium_hex2bin(bin, want, hex, strlen(hex), NULL, &len, NULL) == 0 &&
	       len == want ? 0 : -1;
}

/*
 * Unseals a stored key (the hex columns of a signing_keys row) into sk
 * (SK_BYTES of caller memory) and checks that it is the key the row says:
 * its public half equals public_key and kid is the thumbprint of that.
 * On failure sk is wiped and err is 500 "key_unseal_failed".
 */
static int
key_unseal(const unsigned char kek[32], const char *kid, const char *pk_hex,
	   const char *sealed_hex, const char *nonce_hex, unsigned char *sk,
	   struct p25_err *err)
{
	unsigned char pk[PK_BYTES], inner_pk[PK_BYTES];
	unsigned char sealed[SEALED_BYTES], nonce[NONCE_BYTES];
	char thumb[P25_KID_LEN];

	if (strlen(kid) >= 64 || hex_exact(pk_hex, pk, sizeof(pk)) != 0 ||
	    hex_exact(sealed_hex, sealed, sizeof(sealed)) != 0 ||
	    hex_exact(nonce_hex, nonce, sizeof(nonce)) != 0) {
		p25_err_set(err, 500, "key_unseal_failed",
			    "the stored signing key %.63s is malformed", kid);
		goto fail;
	}
	if (crypto_secretbox_open_easy(sk, sealed, sizeof(sealed), nonce, kek) != 0) {
		p25_err_set(err, 500, "key_unseal_failed",
			    "signing key %s cannot be unsealed with this KEK", kid);
		p25_err_hint(err, "check P25_KEK_FILE: it must be the KEK the key was sealed with");
		goto fail;
	}
	/* the box does not cover kid and public_key: bind them here */
	crypto_sign_ed25519_sk_to_pk(inner_pk, sk);
	if (sodium_memcmp(inner_pk, pk, sizeof(pk)) != 0 ||
	    p25_jwk_thumbprint(pk, thumb, sizeof(thumb)) != 0 ||
	    strcmp(thumb, kid) != 0) {
		p25_err_set(err, 500, "key_unseal_failed",
			    "signing key %s does not match its stored public key or kid", kid);
		goto fail;
	}
	return 0;
fail:
	sodium_memzero(sk, SK_BYTES);
	return -1;
}

static int
key_insert(struct p25_db *db, const struct sealed_key *k, const char *status,
	   struct p25_err *err)
{
	P25_STMT(st, 5, "INSERT INTO signing_keys (kid, public_key, sealed_private, nonce, status)"
			" VALUES ($1, $2::bytea, $3::bytea, $4::bytea, $5)");
	const char *p[5] = { k->kid, k->pk_hex, k->sealed_hex, k->nonce_hex, status };

	return p25_db_run(db, &st, p, err) == 1 ? 0 : -1;
}

/* BEGIN, RLS identity, and the lock that serializes key changes. */
static int
keys_tx_begin(struct p25_db *db, struct p25_err *err)
{
	P25_STMT(lock, 0, "SELECT pg_advisory_xact_lock(hashtext('p25.signing_keys'))");

	if (p25_db_begin(db, err) != 0)
		return -1;
	if (p25_db_set_actor(db, NULL, "system", err) != 0 ||
	    p25_db_run(db, &lock, NULL, err) < 0) {
		p25_db_rollback(db);
		return -1;
	}
	return 0;
}

int
p25_keys_generate(struct p25_db *db, const unsigned char kek[32],
		  const char *actor, bool activate, char kid[64],
		  struct p25_err *err)
{
	P25_STMT(active, 0, "SELECT kid FROM signing_keys WHERE status = 'active'");
	struct sealed_key k;
	const char *status = activate ? "active" : "retiring";
	json_t *details = NULL;
	PGresult *res = NULL;
	bool tx = false;
	int rc = -1;

	kid[0] = '\0';
	if (key_new(kek, &k, err) != 0)
		goto out;
	if (keys_tx_begin(db, err) != 0)
		goto out;
	tx = true;
	if (activate) {
		res = p25_db_exec(db, &active, NULL, err);
		if (!res)
			goto out;
		if (PQntuples(res) > 0) {
			p25_err_set(err, 409, "key_already_active",
				    "signing key %s is already active", PQgetvalue(res, 0, 0));
			p25_err_hint(err, "rotate instead (p25ctl keys rotate), which keeps "
				     "the old key verifying until its tokens expire");
			goto out;
		}
	}
	if (key_insert(db, &k, status, err) != 0)
		goto out;
	details = json_pack("{s:s, s:b}", "status", status, "activated", activate);
	if (!details) {
		p25_err_set(err, 500, "internal", "out of memory");
		goto out;
	}
	if (p25_audit(db, actor ? actor : "system", "key.generate", "signing_key",
		      k.kid, NULL, details, err) != 0)
		goto out;
	tx = false;
	if (p25_db_commit(db, err) != 0)
		goto out;
	snprintf(kid, 64, "%s", k.kid);
	p25_info("key.generate", "signing key %s generated (%s)", k.kid, status);
	rc = 0;
out:
	if (tx)
		p25_db_rollback(db);
	PQclear(res);
	json_decref(details);
	sodium_memzero(&k, sizeof(k));
	return rc;
}

/*
 * The oldest pre-published key (retiring, verify_until NULL), locked, if
 * it unseals under kek; *found = false when there is none.
 */
static int
staged_key(struct p25_db *db, const unsigned char kek[32], char kid[64],
	   bool *found, struct p25_err *err)
{
	P25_STMT(st, 0, "SELECT kid, encode(public_key, 'hex'), encode(sealed_private, 'hex'),"
			" encode(nonce, 'hex') FROM signing_keys"
			" WHERE status = 'retiring' AND verify_until IS NULL"
			" ORDER BY created_at, kid LIMIT 1 FOR UPDATE");
	unsigned char *sk = NULL;
	PGresult *res;
	int rc = -1;

	*found = false;
	res = p25_db_exec(db, &st, NULL, err);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		rc = 0;
		goto out;
	}
	sk = sodium_malloc(SK_BYTES);
	if (!sk) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		goto out;
	}
	/* never activate a key this process could not sign with */
	if (key_unseal(kek, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
		       PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3), sk, err) != 0)
		goto out;
	snprintf(kid, 64, "%s", PQgetvalue(res, 0, 0));
	*found = true;
	rc = 0;
out:
	sodium_free(sk);
	PQclear(res);
	return rc;
}

int
p25_keys_rotate(struct p25_db *db, const unsigned char kek[32],
		const char *actor, long token_ttl, char kid[64],
		struct p25_err *err)
{
	P25_STMT(expire, 0, "UPDATE signing_keys SET status = 'retired',"
			    " retired_at = coalesce(retired_at, now())"
			    " WHERE status = 'retiring' AND verify_until < now()");
	P25_STMT(demote, 1, "UPDATE signing_keys SET status = 'retiring', retired_at = now(),"
			    " verify_until = now() + make_interval(secs => $1::bigint)"
			    " WHERE status = 'active'"
			    " RETURNING kid, to_json(verify_until)#>>'{}'");
	P25_STMT(promote, 1, "UPDATE signing_keys SET status = 'active'"
			     " WHERE kid = $1 AND status = 'retiring' AND verify_until IS NULL");
	struct sealed_key k;
	char ttl[24], newkid[64];
	const char *p[1] = { ttl };
	const char *pk[1] = { newkid };
	json_t *details = NULL;
	PGresult *res = NULL;
	bool tx = false, staged = false;
	int rc = -1;

	kid[0] = '\0';
	memset(&k, 0, sizeof(k));
	if (token_ttl <= 0 || token_ttl > TTL_MAX)
		return p25_err_set(err, 422, "invalid_ttl",
				   "the token lifetime must be 1..%ld seconds", TTL_MAX);
	snprintf(ttl, sizeof(ttl), "%ld", token_ttl);
	if (keys_tx_begin(db, err) != 0)
		goto out;
	tx = true;
	if (p25_db_run(db, &expire, NULL, err) < 0 ||
	    staged_key(db, kek, newkid, &staged, err) != 0)
		goto out;
	res = p25_db_exec(db, &demote, p, err);
	if (!res)
		goto out;
	if (staged) {
		/* published ahead of use: every node already knows it */
		if (p25_db_run(db, &promote, pk, err) != 1)
			goto out;
	} else {
		if (key_new(kek, &k, err) != 0 || key_insert(db, &k, "active", err) != 0)
			goto out;
		snprintf(newkid, sizeof(newkid), "%s", k.kid);
	}
	details = PQntuples(res) > 0
		? json_pack("{s:s, s:s, s:b}", "previous", PQgetvalue(res, 0, 0),
			    "previous_verify_until", PQgetvalue(res, 0, 1), "prepublished", staged)
		: json_pack("{s:n, s:b}", "previous", "prepublished", staged);
	if (!details) {
		p25_err_set(err, 500, "internal", "out of memory");
		goto out;
	}
	if (p25_audit(db, actor ? actor : "system", "key.rotate", "signing_key",
		      newkid, NULL, details, err) != 0)
		goto out;
	tx = false;
	if (p25_db_commit(db, err) != 0)
		goto out;
	snprintf(kid, 64, "%s", newkid);
	p25_info("key.rotate", "signing key %s is active%s%s%s", newkid,
		 staged ? " (pre-published)" : "",
		 PQntuples(res) > 0 ? "; retiring " : "",
		 PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	rc = 0;
out:
	if (tx)
		p25_db_rollback(db);
	PQclear(res);
	json_decref(details);
	sodium_memzero(&k, sizeof(k));
	return rc;
}

json_t *
p25_keys_list(struct p25_db *db, struct p25_err *err)
{
	/* the column list is the whole contract: no key material, ever */
	P25_STMT(st, 0, "SELECT coalesce(json_agg(json_build_object("
			"'kid', kid, 'status', status, 'created_at', created_at,"
			" 'retired_at', retired_at, 'verify_until', verify_until)"
			" ORDER BY created_at, kid), '[]')::text FROM signing_keys");
	json_error_t jerr;
	json_t *list;
	char *text;

	text = p25_db_text(db, &st, NULL, NULL, err);
	if (!text)
		return NULL;
	list = json_loads(text, 0, &jerr);
	free(text);
	if (!json_is_array(list)) {
		json_decref(list);
		p25_err_set(err, 500, "internal", "cannot read the key list");
		return NULL;
	}
	return list;
}

char *
p25_keys_jwks(struct p25_db *db, struct p25_err *err)
{
	P25_STMT(st, 0, "SELECT kid, encode(public_key, 'hex') FROM signing_keys"
			" WHERE status IN ('active', 'retiring')"
			"    OR (status = 'retired' AND verify_until > now())"
			" ORDER BY created_at, kid");
	const char **kids = NULL;
	unsigned char (*pks)[32] = NULL;
	PGresult *res;
	char *out = NULL;
	size_t n, i, len;

	res = p25_db_exec(db, &st, NULL, err);
	if (!res)
		return NULL;
	n = (size_t)PQntuples(res);
	kids = calloc(n ? n : 1, sizeof(*kids));
	pks = calloc(n ? n : 1, sizeof(*pks));
	if (!kids || !pks) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *hex = PQgetvalue(res, (int)i, 1);

		kids[i] = PQgetvalue(res, (int)i, 0);
		if (sodium_hex2bin(pks[i], 32, hex, strlen(hex), NULL, &len, NULL) != 0 ||
		    len != 32) {
			p25_err_set(err, 500, "internal", "signing key %s has a bad public key",
				    kids[i]);
			goto out;
		}
	}
	out = p25_jwks_json(kids, (const unsigned char (*)[32])pks, n);
	if (!out)
		p25_err_set(err, 503, "out_of_memory", "out of memory");
out:
	free(kids);
	free(pks);
	PQclear(res);
	return out;
}

/* ----------------------------------------------------------- signer */

int
p25_signer_load(struct p25_db *db, const unsigned char kek[32],
		struct p25_signer **out, struct p25_err *err)
{
	P25_STMT(st, 0, "SELECT kid, encode(public_key, 'hex'), encode(sealed_private, 'hex'),"
			" encode(nonce, 'hex') FROM signing_keys WHERE status = 'active'");
	struct p25_signer *s = NULL;
	PGresult *res = NULL;
	int rc = -1;

	*out = NULL;
	if (sodium_init() < 0) {
		p25_err_set(err, 500, "internal", "libsodium failed to initialise");
		goto out;
	}
	res = p25_db_exec(db, &st, NULL, err);
	if (!res)
		goto out;
	if (PQntuples(res) == 0) {
		p25_err_set(err, 503, "no_active_key", "there is no active signing key");
		p25_err_hint(err, "generate one: p25ctl keys generate");
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (s)
		s->sk = sodium_malloc(SK_BYTES);
	if (!s || !s->sk) {
		p25_err_set(err, 503, "out_of_memory", "out of memory");
		goto out;
	}
	if (key_unseal(kek, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
		       PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3), s->sk, err) != 0)
		goto out;
	snprintf(s->kid, sizeof(s->kid), "%s", PQgetvalue(res, 0, 0));
	sodium_mprotect_readonly(s->sk);
	*out = s;
	s = NULL;
	rc = 0;
out:
	p25_signer_free(s);
	PQclear(res);
	return rc;
}

const char *
p25_signer_kid(const struct p25_signer *s)
{
	return s->kid;
}

int
p25_signer_sign(struct p25_signer *s, const char *header_json,
		const char *payload_json, char **out)
{
	json_t *hdr;
	const char *alg, *kid;
	int ok;

	*out = NULL;
	if (!s || !header_json || !payload_json)
		return -1;
	hdr = json_loads(header_json, JSON_REJECT_DUPLICATES, NULL);
	alg = json_string_value(json_object_get(hdr, "alg"));
	kid = json_string_value(json_object_get(hdr, "kid"));
	ok = json_is_object(hdr) && alg && strcmp(alg, "EdDSA") == 0 && kid &&
	     strcmp(kid, s->kid) == 0;
	json_decref(hdr);
	if (!ok)
		return -1;
	return p25_jws_sign_ed25519(header_json, payload_json, s->sk, out);
}

void
p25_signer_free(struct p25_signer *s)
{
	if (!s)
		return;
	sodium_free(s->sk);	/* makes it writable, wipes, unmaps */
	free(s);
}
