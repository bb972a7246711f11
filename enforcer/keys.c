/*
 * keys.c — the keys a node trusts to sign exemption tokens.
 *
 * Trust model (also in `p25-enforcer --help`, "KEYS"):
 *
 *   - The pinned JWKS (--jwks-pin FILE) is the trust root.  The operator
 *     provisions it out of band; the agent only reads it (at start and on
 *     SIGHUP) and never changes it.  Its keys are always trusted.
 *   - By default nothing else is: a token signed by a key that is not
 *     pinned is refused (logged with its kid and a hint) until the operator
 *     adds the key to the pin file and sends SIGHUP.  Rotation without a
 *     refused token then means re-pinning right after `p25ctl keys rotate`
 *     (the JWKS publishes the new key at once; the old key stays published
 *     until its last token expired).
 *   - With --accept-new-keys, the agent also trusts the Ed25519 keys the
 *     API publishes at /.well-known/jwks.json, but only when that document
 *     comes over https (certificate and host name verified) or from a
 *     loopback address — the channel the node already trusts for its
 *     bearer token.  Learned keys are kept in STATE_DIR/jwks.learned.json
 *     (so a restart while the API is down still verifies), and leave when
 *     the API stops publishing them.  A fetched key whose kid is pinned
 *     with a different public key refuses the whole document: a pinned kid
 *     is never re-bound.
 *
 * Keys are only ever OKP/Ed25519 (verify.h); everything else in a JWKS is
 * dropped before it is stored.  Pure but for enf_keys_load/enf_keys_merge,
 * which read and write the files.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "enforcer.h"

static void kerr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
kerr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/*
 * The OKP/Ed25519 keys of a JWKS text, reduced to kty/crv/kid/x, as a new
 * array.  The text must pass p25_keyset_parse() first (strict checks); NULL
 * with err otherwise.
 */
static json_t *
ed_keys(const char *text, size_t len, const char *what, bool allow_empty, char *err,
	size_t errlen)
{
	struct p25_keyset *ks = NULL;
	char perr[200];
	json_t *doc, *arr, *k;
	size_t i;

	if (allow_empty) {
		/* {"keys":[]}: valid, and means "no key" (p25_keyset_parse wants one) */
		doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
		k = json_object_get(doc, "keys");
		if (json_is_array(k) && json_array_size(k) == 0 && json_object_size(doc) == 1) {
			json_decref(doc);
			return json_array();
		}
		json_decref(doc);
	}
	if (p25_keyset_parse(text, len, &ks, perr, sizeof(perr)) != 0) {
		kerr(err, errlen, "%s: %s", what, perr);
		return NULL;
	}
	p25_keyset_free(ks);
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	arr = json_array();
	if (!doc || !arr) {
		json_decref(doc);
		json_decref(arr);
		kerr(err, errlen, "%s: cannot read", what);
		return NULL;
	}
	json_array_foreach(json_object_get(doc, "keys"), i, k) {
		const char *kty = json_string_value(json_object_get(k, "kty"));
		const char *crv = json_string_value(json_object_get(k, "crv"));

		if (!kty || !crv || strcmp(kty, "OKP") != 0 || strcmp(crv, "Ed25519") != 0)
			continue;
		json_array_append_new(arr, json_pack("{s:s, s:s, s:O, s:O}", "kty", "OKP",
						     "crv", "Ed25519", "kid",
						     json_object_get(k, "kid"), "x",
						     json_object_get(k, "x")));
	}
	json_decref(doc);
	return arr;
}

static json_t *
find_kid(json_t *arr, const char *kid)
{
	json_t *k;
	size_t i;

	json_array_foreach(arr, i, k) {
		const char *s = json_string_value(json_object_get(k, "kid"));

		if (s && strcmp(s, kid) == 0)
			return k;
	}
	return NULL;
}

static char *
doc_text(json_t *arr)
{
	json_t *doc = json_pack("{s:O}", "keys", arr);
	char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(doc);
	return s;
}

char *
enf_keys_learned_from(const char *pin_json, const char *fetched_json, size_t fetched_len,
		      unsigned *nkeys, char *err, size_t errlen)
{
	json_t *pin = NULL, *got = NULL, *out = NULL, *k, *p;
	char *text = NULL;
	size_t i;

	pin = ed_keys(pin_json, strlen(pin_json), "pinned JWKS", false, err, errlen);
	if (!pin)
		goto done;
	got = ed_keys(fetched_json, fetched_len, "fetched JWKS", true, err, errlen);
	if (!got)
		goto done;
	out = json_array();
	if (!out)
		goto done;
	json_array_foreach(got, i, k) {
		const char *kid = json_string_value(json_object_get(k, "kid"));

		p = find_kid(pin, kid);
		if (p) {
			if (!json_equal(json_object_get(p, "x"), json_object_get(k, "x"))) {
				kerr(err, errlen, "fetched JWKS binds pinned kid %s to another key: "
				     "refused", kid);
				goto done;
			}
			continue;	/* pinned already */
		}
		json_array_append(out, k);
	}
	text = doc_text(out);
	if (!text)
		kerr(err, errlen, "out of memory");
	else if (nkeys)
		*nkeys = (unsigned)json_array_size(out);
done:
	json_decref(pin);
	json_decref(got);
	json_decref(out);
	return text;
}

/* pin ∪ learned as one keyset (kids are disjoint by construction). */
static struct p25_keyset *
union_keyset(const char *pin_text, const char *learned_text, char *err, size_t errlen)
{
	json_t *pin, *learned = NULL, *k;
	struct p25_keyset *ks = NULL;
	char perr[200], *text;
	size_t i;

	pin = json_loads(pin_text, 0, NULL);
	if (learned_text)
		learned = json_loads(learned_text, 0, NULL);
	if (!pin || (learned_text && !learned)) {
		kerr(err, errlen, "key set: cannot read");
		goto out;
	}
	json_array_foreach(json_object_get(learned, "keys"), i, k)
		if (!find_kid(json_object_get(pin, "keys"),
			      json_string_value(json_object_get(k, "kid"))))
			json_array_append(json_object_get(pin, "keys"), k);
	text = json_dumps(pin, JSON_COMPACT);
	if (!text) {
		kerr(err, errlen, "out of memory");
		goto out;
	}
	if (p25_keyset_parse(text, strlen(text), &ks, perr, sizeof(perr)) != 0) {
		kerr(err, errlen, "key set: %s", perr);
		ks = NULL;
	}
	free(text);
out:
	json_decref(pin);
	json_decref(learned);
	return ks;
}

void
enf_keys_free(struct enf_keys *k)
{
	free(k->pin_path);
	free(k->learned_path);
	free(k->pin_text);
	free(k->learned_text);
	p25_keyset_free(k->ks);
	memset(k, 0, sizeof(*k));
}

int
enf_keys_load(struct enf_keys *k, const char *pin_path, const char *learned_path,
	      char *err, size_t errlen)
{
	struct enf_keys nk = { 0 };
	json_t *arr;
	char *text, lerr[256];
	size_t len;

	text = enf_read_file(pin_path, P25_JWKS_MAX, &len);
	if (!text) {
		kerr(err, errlen, "cannot read the pinned JWKS %s: %s", pin_path, strerror(errno));
		return -1;
	}
	arr = ed_keys(text, len, pin_path, false, err, errlen);
	free(text);
	if (!arr)
		return -1;
	nk.pin_text = doc_text(arr);
	json_decref(arr);
	nk.pin_path = strdup(pin_path);
	if (learned_path)
		nk.learned_path = strdup(learned_path);
	if (!nk.pin_text || !nk.pin_path || (learned_path && !nk.learned_path)) {
		kerr(err, errlen, "out of memory");
		enf_keys_free(&nk);
		return -1;
	}
	if (learned_path) {
		text = enf_read_file(learned_path, P25_JWKS_MAX, &len);
		if (text) {
			/* re-derived against the current pin: a kid pinned since is dropped */
			nk.learned_text = enf_keys_learned_from(nk.pin_text, text, len, NULL,
								lerr, sizeof(lerr));
			if (!nk.learned_text)
				enf_log(ENF_WARN, "learned_keys_ignored", "{s:s, s:s}", "file",
					learned_path, "error", lerr);
			free(text);
		}
	}
	nk.ks = union_keyset(nk.pin_text, nk.learned_text, err, errlen);
	if (!nk.ks) {
		enf_keys_free(&nk);
		return -1;
	}
	enf_keys_free(k);
	*k = nk;
	return 0;
}

/* kids of a {"keys":[...]} text, for counting differences */
static json_t *
kids_of(const char *text)
{
	json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
	json_t *set = json_object(), *key;
	size_t i;

	json_array_foreach(json_object_get(doc, "keys"), i, key) {
		const char *kid = json_string_value(json_object_get(key, "kid"));

		if (kid)
			json_object_set(set, kid, json_object_get(key, "x"));
	}
	json_decref(doc);
	return set;
}

int
enf_keys_merge(struct enf_keys *k, const char *jwks, size_t len, unsigned *added,
	       unsigned *removed, char *err, size_t errlen)
{
	struct p25_keyset *ks;
	json_t *before, *after, *v;
	const char *kid;
	char *learned;
	unsigned a = 0, r = 0;

	learned = enf_keys_learned_from(k->pin_text, jwks, len, NULL, err, errlen);
	if (!learned)
		return -1;
	before = kids_of(k->learned_text);
	after = kids_of(learned);
	json_object_foreach(after, kid, v)
		if (!json_equal(json_object_get(before, kid), v))
			a++;
	json_object_foreach(before, kid, v)
		if (!json_equal(json_object_get(after, kid), v))
			r++;
	json_decref(before);
	json_decref(after);
	if (added)
		*added = a;
	if (removed)
		*removed = r;
	if (a == 0 && r == 0) {
		free(learned);
		return 0;
	}
	ks = union_keyset(k->pin_text, learned, err, errlen);
	if (!ks) {
		free(learned);
		return -1;
	}
	if (k->learned_path && enf_write_atomic(k->learned_path, learned, strlen(learned)) != 0)
		enf_log(ENF_WARN, "learned_keys_not_saved", "{s:s, s:s}", "file", k->learned_path,
			"error", strerror(errno));
	p25_keyset_free(k->ks);
	k->ks = ks;
	free(k->learned_text);
	k->learned_text = learned;
	return 0;
}
