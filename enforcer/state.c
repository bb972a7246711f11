/*
 * state.c — what the node enforces: a feed position and the exemption
 * tokens that verified, one per exemption id (jti), kept sorted by jti.
 *
 * Design.  Every token enters through verify_token(), which calls
 * p25_token_verify() with the trusted key set and the expected issuer; a
 * token that fails is logged (kid, jti when readable, the reason — never
 * the token) and skipped, and the state keeps what it had.  The state file
 * holds tokens, not claims, and loading it verifies them again: the disk
 * is never trusted more than the feed was, and a key the operator unpins
 * takes its tokens with it at the next start.
 *
 * Expiry is by the clock alone: enf_state_expire() is called before every
 * rendering, whether or not the API answers, so a node that lost its API
 * still closes the port when a token's exp passes.  A renewal replaces a
 * token only when it is not older (iat) than the one held: a duplicate
 * delivered late cannot shorten an exemption's life or resurrect an old
 * scope.
 *
 * Memory: an entry is about 100 bytes plus one allocation holding its token
 * and its claims' strings (enf_entry_set); the array grows by doubling.
 * Not thread-safe (one agent thread); only the verification of a large
 * batch runs on helper threads, inside one call, each on its own slice.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <sodium.h>

#include "enforcer.h"

#define STATE_FORMAT "p25-enforcer-state/1"
#define VERIFY_THREADS_FROM 2048	/* tokens in a batch before threads help */
#define VERIFY_THREADS_MAX 16

void
enf_state_init(struct enf_state *st)
{
	memset(st, 0, sizeof(*st));
}

/* strings of a p25_claims, in the order they are laid out in a block */
static size_t
slen(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	return n < max ? n : max - 1;
}

static char *
put_str(char **at, const char *s, size_t max)
{
	char *r = *at;
	size_t n = slen(s, max);

	memcpy(r, s, n);
	r[n] = '\0';
	*at += n + 1;
	return r;
}

int
enf_entry_set(struct enf_entry *e, const char *token, const struct p25_claims *c,
	      const unsigned char pk[32])
{
	size_t tl = strlen(token), sz, nd, k, ptrs;
	char *blk, *at;
	const char **dv = NULL;

	nd = c->ndest < 0 ? 0 : c->ndest > P25_MAX_DEST ? P25_MAX_DEST : (size_t)c->ndest;
	sz = tl + 1 + slen(c->iss, sizeof(c->iss)) + 1 + slen(c->jti, sizeof(c->jti)) + 1 +
	     slen(c->kid, sizeof(c->kid)) + 1 + slen(c->cidr, sizeof(c->cidr)) + 1;
	for (k = 0; k < nd; k++)
		sz += slen(c->dest[k], sizeof(c->dest[k])) + 1;
	/* the dest pointers after the strings, aligned */
	ptrs = (sz + sizeof(char *) - 1) / sizeof(char *) * sizeof(char *);
	blk = malloc(nd ? ptrs + nd * sizeof(char *) : sz);
	if (!blk)
		return -1;
	memcpy(blk, token, tl + 1);
	at = blk + tl + 1;
	e->c.iss = put_str(&at, c->iss, sizeof(c->iss));
	e->c.jti = put_str(&at, c->jti, sizeof(c->jti));
	e->c.kid = put_str(&at, c->kid, sizeof(c->kid));
	e->c.cidr = put_str(&at, c->cidr, sizeof(c->cidr));
	if (nd) {
		dv = (const char **)(void *)(blk + ptrs);
		for (k = 0; k < nd; k++)
			dv[k] = put_str(&at, c->dest[k], sizeof(c->dest[k]));
	}
	e->c.dest = dv;
	e->c.ndest = (int)nd;
	e->c.iat = c->iat;
	e->c.nbf = c->nbf;
	e->c.exp = c->exp;
	e->c.rate = c->rate;
	memcpy(e->pk, pk, 32);
	free(e->token);
	e->token = blk;
	return 0;
}

void
enf_entry_claims(const struct enf_entry *e, struct p25_claims *out)
{
	int k;

	memset(out, 0, sizeof(*out));
	snprintf(out->iss, sizeof(out->iss), "%s", e->c.iss ? e->c.iss : "");
	snprintf(out->jti, sizeof(out->jti), "%s", e->c.jti ? e->c.jti : "");
	snprintf(out->kid, sizeof(out->kid), "%s", e->c.kid ? e->c.kid : "");
	snprintf(out->cidr, sizeof(out->cidr), "%s", e->c.cidr ? e->c.cidr : "");
	for (k = 0; k < e->c.ndest && k < P25_MAX_DEST; k++)
		snprintf(out->dest[k], sizeof(out->dest[k]), "%s", e->c.dest[k]);
	out->ndest = k;
	out->iat = e->c.iat;
	out->nbf = e->c.nbf;
	out->exp = e->c.exp;
	out->rate = e->c.rate;
	out->port = 25;
	snprintf(out->proto, sizeof(out->proto), "tcp");
	snprintf(out->dir, sizeof(out->dir), "egress");
}

/*
 * A copy of src's block for dst (an entry reused by a snapshot): one
 * allocation and one copy, the pointers moved along.  0 or -1 (OOM).
 */
static int
entry_copy(struct enf_entry *dst, const struct enf_entry *src)
{
	const char *sb = src->token, *end;
	size_t sz;
	char *blk;
	int k;

	/* the block ends after the cidr, or after the dest pointers (enf_entry_set) */
	if (src->c.ndest > 0)
		end = (const char *)(src->c.dest + src->c.ndest);
	else
		end = src->c.cidr + strlen(src->c.cidr) + 1;
	sz = (size_t)(end - sb);
	blk = malloc(sz);
	if (!blk)
		return -1;
	memcpy(blk, sb, sz);
	*dst = *src;
	dst->token = blk;
#define MOVE(p) (blk + ((const char *)(p) - sb))
	dst->c.iss = MOVE(src->c.iss);
	dst->c.jti = MOVE(src->c.jti);
	dst->c.kid = MOVE(src->c.kid);
	dst->c.cidr = MOVE(src->c.cidr);
	if (src->c.ndest > 0) {
		const char **dv = (const char **)(void *)MOVE(src->c.dest);

		for (k = 0; k < src->c.ndest; k++)
			dv[k] = MOVE(src->c.dest[k]);
		dst->c.dest = dv;
	}
#undef MOVE
	return 0;
}

static void
entries_free(struct enf_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].token);
	free(v);
}

void
enf_state_cleanup(struct enf_state *st)
{
	entries_free(st->v, st->n);
	memset(st, 0, sizeof(*st));
}

/* Index of jti, or where it would go (*found false). */
static size_t
find_pos(const struct enf_state *st, const char *jti, bool *found)
{
	size_t lo = 0, hi = st->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(st->v[mid].c.jti, jti);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

const struct enf_entry *
enf_state_find(const struct enf_state *st, const char *jti)
{
	bool found;
	size_t i = find_pos(st, jti, &found);

	return found ? &st->v[i] : NULL;
}

/* Verifies a token; logs a refusal.  true with *c filled on success. */
static bool
verify_token(const struct enf_verifier *vf, const char *token, long long now,
	     long long seq, struct p25_claims *c, unsigned char pk[32],
	     struct enf_stats *stats)
{
	enum p25_verify_result r;
	const unsigned char *key;
	char kid[64] = "";

	r = p25_token_verify(vf->ks, token, vf->issuer, now, vf->skew, c);
	if (r == P25_VERIFY_OK) {
		key = p25_keyset_key(vf->ks, c->kid);	/* found: it just verified */
		if (key)
			memcpy(pk, key, 32);
		else
			memset(pk, 0, 32);
		return true;
	}
	(void)enf_token_kid(token, kid, sizeof(kid));
	if (stats) {
		stats->rejected++;
		if (r == P25_VERIFY_UNKNOWN_KID)
			stats->unknown_kid++;
	}
	if (r == P25_VERIFY_EXPIRED) {
		/* routine when a snapshot or a state file is read late: not an alarm */
		enf_log(ENF_INFO, "token_expired", "{s:s, s:I}", "kid", kid, "seq", (json_int_t)seq);
	} else if (r == P25_VERIFY_UNKNOWN_KID) {
		enf_log(ENF_ERROR, "token_rejected",
			"{s:s, s:s, s:I, s:s}", "reason", p25_verify_result_str(r), "kid", kid,
			"seq", (json_int_t)seq, "hint",
			"the token is signed by a key this node does not trust: add the key to the "
			"pinned JWKS and send SIGHUP, or run with --accept-new-keys");
	} else {
		enf_log(ENF_ERROR, "token_rejected", "{s:s, s:s, s:I}", "reason",
			p25_verify_result_str(r), "kid", kid, "seq", (json_int_t)seq);
	}
	return false;
}

/*
 * Whether an entry, verified earlier, would verify now: the key that
 * verified it is in the set under the same kid with the same bytes (so
 * the signature over the same token bytes still holds), the issuer is the
 * one expected, and nbf/exp pass with the skew — the checks of
 * p25_token_verify() whose inputs may have changed since (the key set,
 * the configuration, the clock).  Everything else it checks depends on
 * the token bytes alone.
 */
static bool
still_valid(const struct enf_entry *e, const struct enf_verifier *vf, long long now)
{
	const unsigned char *key = p25_keyset_key(vf->ks, e->c.kid);
	long long skew = vf->skew < 0 ? 0 : vf->skew > 86400 ? 86400 : vf->skew;

	return key && sodium_memcmp(key, e->pk, 32) == 0 && vf->issuer &&
	       strcmp(e->c.iss, vf->issuer) == 0 && now >= e->c.nbf - skew &&
	       now < e->c.exp + skew;
}

/*
 * The tokens of a state by their text: an open-addressing table of entry
 * indexes (+1; 0 is empty), hashed on the token's last characters (its
 * signature, as good as random for a token that verified).  The hash only
 * finds candidates: a hit is confirmed by comparing the whole token.
 */
struct known {
	const struct enf_state *st;
	size_t *slot;
	size_t mask;
};

static uint64_t
tok_hash(const char *t, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i = len > 32 ? len - 32 : 0;

	for (; i < len; i++) {
		h ^= (unsigned char)t[i];
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

static bool
known_init(struct known *k, const struct enf_state *st)
{
	size_t cap = 16, i, j;

	memset(k, 0, sizeof(*k));
	if (!st || st->n == 0)
		return true;
	while (cap < st->n * 2)
		cap *= 2;
	k->slot = calloc(cap, sizeof(*k->slot));
	if (!k->slot)
		return false;	/* no reuse: everything is verified */
	k->st = st;
	k->mask = cap - 1;
	for (i = 0; i < st->n; i++) {
		j = (size_t)tok_hash(st->v[i].token, strlen(st->v[i].token)) & k->mask;
		while (k->slot[j])
			j = (j + 1) & k->mask;
		k->slot[j] = i + 1;
	}
	return true;
}

static const struct enf_entry *
known_find(const struct known *k, const char *token)
{
	size_t len, j;

	if (!k->slot)
		return NULL;
	len = strlen(token);
	for (j = (size_t)tok_hash(token, len) & k->mask; k->slot[j]; j = (j + 1) & k->mask) {
		const struct enf_entry *e = &k->st->v[k->slot[j] - 1];

		if (strcmp(e->token, token) == 0)
			return e;
	}
	return NULL;
}

static int
grow(struct enf_state *st, size_t want)
{
	struct enf_entry *nv;
	size_t ncap;

	if (want <= st->cap)
		return 0;
	ncap = st->cap ? st->cap : 16;
	while (ncap < want)
		ncap *= 2;
	nv = realloc(st->v, ncap * sizeof(*nv));
	if (!nv)
		return -1;
	st->v = nv;
	st->cap = ncap;
	return 0;
}

/*
 * Puts a verified token in (copied).  A held entry with a newer iat wins.
 * Returns 1 added, 2 replaced, 3 the same token again, 0 ignored (older),
 * -1 OOM (the state unchanged).
 */
static int
put(struct enf_state *st, const char *tok, const struct p25_claims *c,
    const unsigned char pk[32])
{
	struct enf_entry ne = { 0 };
	bool found;
	size_t i = find_pos(st, c->jti, &found);

	if (found) {
		if (c->iat < st->v[i].c.iat)
			return 0;
		if (strcmp(st->v[i].token, tok) == 0)
			return 3;
		/* applied_exp stays: what the kernel holds */
		if (enf_entry_set(&st->v[i], tok, c, pk) != 0)
			return -1;
		st->gen++;
		return 2;
	}
	if (grow(st, st->n + 1) != 0 || enf_entry_set(&ne, tok, c, pk) != 0)
		return -1;
	memmove(&st->v[i + 1], &st->v[i], (st->n - i) * sizeof(*st->v));
	st->v[i] = ne;
	st->n++;
	st->gen++;
	return 1;
}

static void
remove_at(struct enf_state *st, size_t i)
{
	free(st->v[i].token);
	memmove(&st->v[i], &st->v[i + 1], (st->n - i - 1) * sizeof(*st->v));
	st->n--;
	st->gen++;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct enf_entry *x = a, *y = b;
	int c = strcmp(x->c.jti, y->c.jti);

	if (c)
		return c;
	/* for one jti, the newest first: deduplication keeps it */
	return x->c.iat > y->c.iat ? -1 : x->c.iat < y->c.iat ? 1 : 0;
}

static const struct enf_entry *sort_base;	/* for cmp_index: one sort at a time */
static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

static int
cmp_index(const void *a, const void *b)
{
	return cmp_entry(&sort_base[*(const size_t *)a], &sort_base[*(const size_t *)b]);
}

/*
 * Sorts v[0, n) as cmp_entry says: sorts their indexes, then moves each
 * entry once, following the permutation's cycles in place (an entry is
 * ~110 bytes; qsort() on the entries would move each ~log2(n) times).  0, or -1 when out of
 * memory (v unchanged).
 */
static int
sort_entries(struct enf_entry *v, size_t n)
{
	struct enf_entry tmp;
	size_t *order, i, j, nx;

	order = malloc(n * sizeof(*order));
	if (!order)
		return -1;
	for (i = 0; i < n; i++)
		order[i] = i;
	pthread_mutex_lock(&sort_mu);
	sort_base = v;
	qsort(order, n, sizeof(*order), cmp_index);
	sort_base = NULL;
	pthread_mutex_unlock(&sort_mu);
	/* position i must receive v[order[i]]; a done position has order[i] == i */
	for (i = 0; i < n; i++) {
		if (order[i] == i)
			continue;
		tmp = v[i];
		j = i;
		for (;;) {
			nx = order[j];
			order[j] = j;
			if (nx == i) {
				v[j] = tmp;
				break;
			}
			v[j] = v[nx];
			j = nx;
		}
	}
	free(order);
	return 0;
}

/* One slice of a batch to verify: tokens[from, to) into v[from, to). */
struct vslice {
	const char *const *tokens;
	struct enf_entry *v;
	size_t from, to;
	const struct enf_verifier *vf;
	const struct known *known;	/* tokens verified before (may be empty) */
	long long now, seq;
	struct enf_stats stats;
	bool oom;
};

static void *
verify_slice(void *arg)
{
	struct vslice *sl = arg;
	struct p25_claims c;
	unsigned char pk[32];
	size_t i;
	const struct enf_entry *e;

	for (i = sl->from; i < sl->to; i++) {
		e = known_find(sl->known, sl->tokens[i]);
		if (e && still_valid(e, sl->vf, sl->now)) {
			if (entry_copy(&sl->v[i], e) != 0) {
				sl->oom = true;
				break;
			}
			sl->v[i].applied_exp = 0;
			sl->stats.reused++;
			continue;
		}
		if (!verify_token(sl->vf, sl->tokens[i], sl->now, sl->seq, &c, pk, &sl->stats))
			continue;
		if (enf_entry_set(&sl->v[i], sl->tokens[i], &c, pk) != 0) {
			sl->oom = true;
			break;
		}
	}
	return NULL;
}

/*
 * Verifies a batch into v (v[i].token NULL where token i failed).  A large
 * batch (a snapshot: up to 100,000 tokens, ~50-100 us of Ed25519 each) is
 * spread over the CPUs: p25_token_verify() is thread-safe and each thread
 * writes only its own slice and counters.  false when out of memory.
 */
static bool
verify_all(const char *const *tokens, size_t n, struct enf_entry *v,
	   const struct enf_verifier *vf, const struct known *known, long long now,
	   long long seq, struct enf_stats *stats)
{
	struct vslice sl[VERIFY_THREADS_MAX];
	pthread_t th[VERIFY_THREADS_MAX];
	bool started[VERIFY_THREADS_MAX] = { false };
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nt = 1, t, per;
	bool ok = true;

	if (n >= VERIFY_THREADS_FROM && cpus > 1)
		nt = (size_t)cpus < VERIFY_THREADS_MAX ? (size_t)cpus : VERIFY_THREADS_MAX;
	per = (n + nt - 1) / nt;
	for (t = 0; t < nt; t++) {
		sl[t] = (struct vslice){ .tokens = tokens, .v = v, .from = t * per,
					 .to = (t + 1) * per < n ? (t + 1) * per : n, .vf = vf,
					 .known = known, .now = now, .seq = seq };
		if (sl[t].from > sl[t].to)
			sl[t].from = sl[t].to;
	}
	/* slice 0 runs here; the others on threads (or here, if one cannot start) */
	for (t = 1; t < nt; t++)
		started[t] = pthread_create(&th[t], NULL, verify_slice, &sl[t]) == 0;
	verify_slice(&sl[0]);
	for (t = 1; t < nt; t++) {
		if (started[t])
			pthread_join(th[t], NULL);
		else
			verify_slice(&sl[t]);
	}
	for (t = 0; t < nt; t++) {
		ok = ok && !sl[t].oom;
		if (stats) {
			stats->rejected += sl[t].stats.rejected;
			stats->unknown_kid += sl[t].stats.unknown_kid;
			stats->reused += sl[t].stats.reused;
		}
	}
	return ok;
}

/*
 * Builds a sorted, deduplicated entry array from a list of token strings
 * (not owned: they are copied).  Used by the snapshot and the state file.
 */
static int
build(struct enf_state *out, const char *const *tokens, size_t n, long long seq,
      const struct enf_verifier *vf, const struct enf_state *held, long long now,
      struct enf_stats *stats)
{
	struct enf_entry *v = NULL;
	struct known known;
	size_t i, k = 0, w;
	bool ok;

	if (n == 0) {
		out->v = NULL;
		out->n = out->cap = 0;
		out->seq = seq;
		return 0;
	}
	v = calloc(n, sizeof(*v));
	if (!v)
		return -1;
	(void)known_init(&known, held);	/* without a table, everything is verified */
	ok = verify_all(tokens, n, v, vf, &known, now, seq, stats);
	free(known.slot);
	if (!ok) {
		entries_free(v, n);
		return -1;
	}
	for (i = 0; i < n; i++)		/* compact: the verified ones, in order */
		if (v[i].token) {
			if (k != i)
				v[k] = v[i];
			k++;
		}
	if (k > 1 && sort_entries(v, k) != 0) {
		entries_free(v, k);
		return -1;
	}
	for (i = 0, w = 0; i < k; i++) {
		if (w > 0 && strcmp(v[w - 1].c.jti, v[i].c.jti) == 0) {
			free(v[i].token);
			if (stats)
				stats->ignored++;
			continue;
		}
		v[w++] = v[i];
	}
	out->v = v;
	out->n = out->cap = w;
	out->seq = seq;
	return 0;
}

int
enf_state_from_snapshot(struct enf_state *st, const struct enf_snapshot *snap,
			const struct enf_verifier *vf, long long now,
			struct enf_stats *stats)
{
	struct enf_state nst;
	size_t i, j;
	int c;

	enf_state_init(&nst);
	if (build(&nst, (const char *const *)snap->tokens, snap->n, snap->seq, vf, st, now,
		  stats) != 0)
		return -1;
	/* one merge walk over both (each sorted by jti, no duplicates): the
	 * counts against what was held before, and what the kernel holds */
	for (i = 0, j = 0; i < nst.n || j < st->n;) {
		c = i == nst.n ? 1 : j == st->n ? -1 : strcmp(nst.v[i].c.jti, st->v[j].c.jti);
		if (c < 0) {
			nst.v[i++].applied_exp = 0;
			if (stats)
				stats->added++;
		} else if (c > 0) {
			j++;
			if (stats)
				stats->removed++;
		} else {
			nst.v[i].applied_exp = st->v[j].applied_exp;
			if (stats) {
				if (strcmp(st->v[j].token, nst.v[i].token) == 0)
					stats->unchanged++;
				else
					stats->replaced++;
			}
			i++;
			j++;
		}
	}
	nst.gen = st->gen + 1;
	enf_state_cleanup(st);
	*st = nst;
	return 0;
}

int
enf_state_apply(struct enf_state *st, const struct enf_event *ev,
		const struct enf_verifier *vf, long long now,
		struct enf_stats *stats)
{
	struct p25_claims c;
	unsigned char pk[32];
	bool found;
	size_t i;
	int r;

	if (ev->seq > st->seq)
		st->seq = ev->seq;
	switch (ev->type) {
	case ENF_EV_GRANT:
	case ENF_EV_RENEW:
		if (!ev->token || !verify_token(vf, ev->token, now, ev->seq, &c, pk, stats))
			return 0;
		if (ev->exemption[0] && strcmp(ev->exemption, c.jti) != 0)
			enf_log(ENF_WARN, "event_mismatch", "{s:I, s:s, s:s}", "seq",
				(json_int_t)ev->seq, "event_exemption", ev->exemption,
				"token_jti", c.jti);
		r = put(st, ev->token, &c, pk);
		if (r < 0)
			return -1;
		if (stats) {
			if (r == 1)
				stats->added++;
			else if (r == 2)
				stats->replaced++;
			else if (r == 3)
				stats->unchanged++;
			else
				stats->ignored++;
		}
		enf_log(ENF_INFO, ev->type == ENF_EV_GRANT ? "grant" : "renew",
			"{s:I, s:s, s:s, s:I, s:s, s:s}", "seq", (json_int_t)ev->seq,
			"exemption", c.jti, "cidr", c.cidr, "exp", (json_int_t)c.exp, "kid", c.kid,
			"result", r == 1 ? "added" : r == 2 ? "replaced" : r == 3 ? "unchanged"
				: "ignored_older");
		return 0;
	case ENF_EV_REVOKE:
		i = find_pos(st, ev->exemption, &found);
		if (found)
			remove_at(st, i);
		if (stats) {
			if (found)
				stats->removed++;
			else
				stats->ignored++;
		}
		enf_log(ENF_INFO, "revoke", "{s:I, s:s, s:s, s:s, s:b}", "seq", (json_int_t)ev->seq,
			"exemption", ev->exemption, "cidr", ev->cidr, "reason", ev->reason,
			"held", found);
		return 0;
	case ENF_EV_UNKNOWN:
	default:
		if (stats)
			stats->ignored++;
		enf_log(ENF_WARN, "event_unknown", "{s:I, s:s}", "seq", (json_int_t)ev->seq,
			"type", ev->type_name);
		return 0;
	}
}

size_t
enf_state_expire(struct enf_state *st, long long now)
{
	size_t i, w, gone = 0;

	for (i = 0, w = 0; i < st->n; i++) {
		if (st->v[i].c.exp <= now) {
			enf_log(ENF_INFO, "expired", "{s:s, s:s, s:I}", "exemption",
				st->v[i].c.jti, "cidr", st->v[i].c.cidr, "exp",
				(json_int_t)st->v[i].c.exp);
			free(st->v[i].token);
			gone++;
			continue;
		}
		st->v[w++] = st->v[i];
	}
	st->n = w;
	if (gone)
		st->gen++;
	return gone;
}

size_t
enf_state_reverify(struct enf_state *st, const struct enf_verifier *vf, long long now)
{
	struct p25_claims c;
	unsigned char pk[32];
	size_t i, w, gone = 0;

	for (i = 0, w = 0; i < st->n; i++) {
		/* same key, same bytes: the signature holds; otherwise verify again */
		if (!still_valid(&st->v[i], vf, now)) {
			if (!verify_token(vf, st->v[i].token, now, st->seq, &c, pk, NULL)) {
				free(st->v[i].token);
				gone++;
				continue;
			}
			memcpy(st->v[i].pk, pk, 32);	/* another key under the same kid */
		}
		st->v[w++] = st->v[i];
	}
	st->n = w;
	if (gone)
		st->gen++;
	return gone;
}

long long
enf_state_next_expiry(const struct enf_state *st)
{
	long long m = 0;
	size_t i;

	for (i = 0; i < st->n; i++)
		if (m == 0 || st->v[i].c.exp < m)
			m = st->v[i].c.exp;
	return m;
}

int
enf_state_save(const struct enf_state *st, const char *path, long long now)
{
	struct enf_buf b;
	size_t i;
	int rc;

	/* tokens are base64url and dots only (verified): no JSON escaping needed */
	enf_buf_init(&b, ENF_STATE_MAX);
	enf_buf_printf(&b, "{\"format\":\"%s\",\"seq\":%lld,\"saved_at\":%lld,\"tokens\":[",
		       STATE_FORMAT, st->seq, now);
	for (i = 0; i < st->n; i++)
		enf_buf_printf(&b, "%s\n\"%s\"", i ? "," : "", st->v[i].token);
	enf_buf_printf(&b, "]}\n");
	if (b.failed) {
		enf_buf_free(&b);
		errno = EFBIG;
		return -1;
	}
	rc = enf_write_atomic(path, b.p, b.len);
	enf_buf_free(&b);
	return rc;
}

int
enf_state_load(struct enf_state *st, const char *path, const struct enf_verifier *vf,
	       long long now, struct enf_stats *stats, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = NULL, *toks, *t;
	const char *fmt;
	const char **list = NULL;
	char *text;
	size_t len, i, n = 0;
	json_int_t seq;
	int rc = -1;

	text = enf_read_file(path, ENF_STATE_MAX, &len);
	if (!text) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!root) {
		snprintf(err, errlen, "%s is not JSON: %s", path, jerr.text);
		return -1;
	}
	fmt = json_string_value(json_object_get(root, "format"));
	toks = json_object_get(root, "tokens");
	if (!fmt || strcmp(fmt, STATE_FORMAT) != 0 || !json_is_array(toks) ||
	    !json_is_integer(json_object_get(root, "seq")) ||
	    (seq = json_integer_value(json_object_get(root, "seq"))) < 0) {
		snprintf(err, errlen, "%s is not a %s file", path, STATE_FORMAT);
		goto out;
	}
	if (json_array_size(toks) > 0) {
		list = calloc(json_array_size(toks), sizeof(*list));
		if (!list) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	json_array_foreach(toks, i, t) {
		/* a string we cannot take is dropped, like a token that fails */
		if (json_is_string(t) && json_string_length(t) <= P25_TOKEN_MAX)
			list[n++] = json_string_value(t);
		else if (stats)
			stats->rejected++;
	}
	/* the disk is trusted no more than the feed: no reuse, all verified */
	if (build(st, list, n, seq, vf, NULL, now, stats) != 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (stats)
		stats->added += (unsigned)st->n;
	st->gen++;
	rc = 0;
out:
	free(list);
	json_decref(root);
	return rc;
}

void
enf_state_digest(const struct enf_state *st, long long now, unsigned char out[32])
{
	crypto_generichash_state h;
	const struct enf_claims *c;
	char line[512];
	size_t i;
	int k, n;

	crypto_generichash_init(&h, NULL, 0, 32);
	for (i = 0; i < st->n; i++) {
		c = &st->v[i].c;
		if (c->exp <= now)
			continue;
		n = snprintf(line, sizeof(line), "%s\n%s\n%lld\n%d\n", c->jti, c->cidr, c->rate,
			     c->ndest);
		crypto_generichash_update(&h, (const unsigned char *)line, (size_t)n);
		for (k = 0; k < c->ndest && k < P25_MAX_DEST; k++)
			crypto_generichash_update(&h, (const unsigned char *)c->dest[k],
						  strlen(c->dest[k]) + 1);
	}
	crypto_generichash_final(&h, out, 32);
}

void
enf_state_mark_applied(struct enf_state *st, long long now)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		st->v[i].applied_exp = st->v[i].c.exp < now + ENF_TIMEOUT_MAX
				     ? st->v[i].c.exp : now + ENF_TIMEOUT_MAX;
}

/* when an entry needs a reload by the clock: its exp, or before its loaded expiry runs out */
static long long
entry_deadline(const struct enf_entry *e, long long margin)
{
	if (e->applied_exp > 0 && e->applied_exp < e->c.exp)
		return e->applied_exp - margin < e->c.exp ? e->applied_exp - margin : e->c.exp;
	return e->c.exp;
}

bool
enf_state_refresh_due(const struct enf_state *st, long long now, long long margin)
{
	size_t i;

	for (i = 0; i < st->n; i++) {
		const struct enf_entry *e = &st->v[i];

		if (e->c.exp > now && e->applied_exp > 0 && e->applied_exp < e->c.exp &&
		    e->applied_exp - margin <= now)
			return true;
	}
	return false;
}

long long
enf_state_next_deadline(const struct enf_state *st, long long margin)
{
	long long m = 0, d;
	size_t i;

	for (i = 0; i < st->n; i++) {
		d = entry_deadline(&st->v[i], margin);
		if (m == 0 || d < m)
			m = d;
	}
	return m;
}
