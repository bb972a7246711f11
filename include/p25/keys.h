/*
 * keys.h — exemption-token signing keys, stored in PostgreSQL sealed under
 * the key encryption key (KEK) from P25_KEK_FILE (DESIGN.md "Exemption
 * tokens", "Configuration").
 *
 * Life of a key (signing_keys.status):
 *   active    signs new tokens; at most one (a unique index holds that);
 *   retiring  published in the JWKS and verifying, not signing: either the
 *             previous active key until verify_until (its last token has
 *             expired by then), or a key generated without activation,
 *             published ahead of its use (verify_until NULL) so that every
 *             node has it before the next rotation makes it sign;
 *   retired   no longer needed; published only while verify_until is in
 *             the future.
 * Private material leaves this module only as libsodium secretbox
 * ciphertext, and in clear only inside a struct p25_signer.
 *
 * Functions taking a struct p25_db run on the caller's thread and own the
 * transaction they open; call them with no transaction open.  Every change
 * commits together with its audit_log row, or not at all.
 */
#ifndef P25_KEYS_H
#define P25_KEYS_H

#include <stdbool.h>

struct p25_db;
struct p25_err;
struct json_t;

#define P25_KEK_BYTES 32

/*
 * Reads the KEK file: exactly 64 hex characters, optionally followed by one
 * newline, into kek (caller memory; wipe it with sodium_memzero when done).
 * Errors (500, code "kek_invalid") name the file, never its content.  A
 * KEK file readable by group or others is logged as a warning.
 */
int p25_kek_load(const char *path, unsigned char kek[32], struct p25_err *err);

/*
 * Generates an Ed25519 key, kid = its RFC 7638 thumbprint, seals the
 * secret key under kek and stores it with an audit row ('key.generate') in
 * one transaction.  activate: the key becomes active — refused with 409
 * "key_already_active" if one is (use p25_keys_rotate); otherwise the key
 * is pre-published: stored 'retiring' with verify_until NULL (in the JWKS,
 * not signing) until p25_keys_rotate promotes it.  kid receives the kid.
 * actor: who asked (recorded in the audit log).
 */
int p25_keys_generate(struct p25_db *db, const unsigned char kek[32],
		      const char *actor, bool activate, char kid[64],
		      struct p25_err *err);

/*
 * Makes a new key active: the oldest pre-published key if there is one
 * (after checking that it unseals under kek: 500 "key_unseal_failed" and
 * no change otherwise), else a freshly generated one.  The previously
 * active key (if any) becomes 'retiring' with retired_at = now() and
 * verify_until = now() + token_ttl seconds (pass the longest token
 * lifetime plus the nodes' clock skew; 1..400 days, else 422
 * "invalid_ttl").  Retiring keys whose verify_until has passed become
 * 'retired' on the way.  One transaction with an audit row ('key.rotate'),
 * serialized against concurrent rotations.  kid receives the new active kid.
 */
int p25_keys_rotate(struct p25_db *db, const unsigned char kek[32],
		    const char *actor, long token_ttl, char kid[64],
		    struct p25_err *err);

/*
 * JSON array of {kid, status, created_at, retired_at, verify_until}, oldest
 * first — never any private material.  Caller json_decref()s.  NULL with
 * err filled on error.
 */
struct json_t *p25_keys_list(struct p25_db *db, struct p25_err *err);

/*
 * The JWKS text of the keys that verify: status active or retiring, and
 * retired keys whose verify_until is still in the future.  Malloc'd; the
 * caller frees.  NULL with err filled on error.
 */
char *p25_keys_jwks(struct p25_db *db, struct p25_err *err);

/*
 * A loaded signing key.  The secret key lives in sodium_malloc'd memory
 * (guard pages, locked, excluded from core dumps), read-only after load;
 * p25_signer_free wipes and releases it.  A signer is immutable after
 * load, so p25_signer_sign may be called from several threads at once.
 */
struct p25_signer;

/*
 * Loads and unseals the active key.  503 "no_active_key" when there is
 * none; 500 "key_unseal_failed" when kek does not open it (wrong KEK file)
 * or the row is inconsistent (public key or kid not matching the secret).
 */
int p25_signer_load(struct p25_db *db, const unsigned char kek[32],
		    struct p25_signer **out, struct p25_err *err);
const char *p25_signer_kid(const struct p25_signer *s);
/*
 * Signs payload_json under header_json (see p25_jws_sign_ed25519).  The
 * header must be a JSON object whose "alg" is "EdDSA" and whose "kid" is
 * this signer's kid, else -1.  *out is malloc'd; the caller frees.
 */
int p25_signer_sign(struct p25_signer *s, const char *header_json,
		    const char *payload_json, char **out);
void p25_signer_free(struct p25_signer *s);

#endif
