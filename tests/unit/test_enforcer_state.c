/*
 * test_enforcer_state.c — the agent's verified state (enforcer/state.c):
 * snapshots and feed events go through p25_token_verify (a bad token is
 * skipped, never held), renewals never roll back, revocations remove,
 * expiry by the clock, and the state file round trip (atomic write, tokens
 * verified again on load).  Also the trusted key set (enforcer/keys.c).
 *
 * Tokens are signed here with p25core's issuing side (core/jws.c) and two
 * fixed Ed25519 keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>

#include "enforcer.h"
#include "p25/jws.h"

#define ISS "https://p25.test"
#define NOW 1767225600LL

struct fixture {
	unsigned char pk[32], sk[64], pk2[32], sk2[64];
	char kid[P25_KID_LEN], kid2[P25_KID_LEN];
	struct p25_keyset *ks;		/* key 1 only */
	struct p25_keyset *ks12;	/* both */
	struct enf_verifier vf;
	char dir[64];
};

static char *
jwks_of(struct fixture *f, bool both)
{
	const char *kids[2] = { f->kid, f->kid2 };
	unsigned char pks[2][32];

	memcpy(pks[0], f->pk, 32);
	memcpy(pks[1], f->pk2, 32);
	return p25_jwks_json(kids, (const unsigned char (*)[32])pks, both ? 2 : 1);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	unsigned char seed[32];
	char *j;

	assert_non_null(f);
	assert_true(sodium_init() >= 0);
	memset(seed, 0x11, sizeof(seed));
	crypto_sign_seed_keypair(f->pk, f->sk, seed);
	memset(seed, 0x22, sizeof(seed));
	crypto_sign_seed_keypair(f->pk2, f->sk2, seed);
	assert_int_equal(p25_jwk_thumbprint(f->pk, f->kid, sizeof(f->kid)), 0);
	assert_int_equal(p25_jwk_thumbprint(f->pk2, f->kid2, sizeof(f->kid2)), 0);
	j = jwks_of(f, false);
	assert_int_equal(p25_keyset_parse(j, strlen(j), &f->ks, NULL, 0), 0);
	free(j);
	j = jwks_of(f, true);
	assert_int_equal(p25_keyset_parse(j, strlen(j), &f->ks12, NULL, 0), 0);
	free(j);
	f->vf.ks = f->ks;
	f->vf.issuer = ISS;
	f->vf.skew = 60;
	snprintf(f->dir, sizeof(f->dir), "/tmp/p25-enf-unit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	p25_keyset_free(f->ks);
	p25_keyset_free(f->ks12);
	free(f);
	return 0;
}

/* A token: key 1 or 2, jti, cidr, iat, exp; iss as given. */
static char *
tok(struct fixture *f, int key, const char *iss, const char *jti, const char *cidr,
    long long iat, long long exp)
{
	char h[256], p[1024], *out = NULL;

	snprintf(h, sizeof(h), "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}",
		 key == 2 ? f->kid2 : f->kid);
	snprintf(p, sizeof(p),
		 "{\"iss\":\"%s\",\"sub\":\"tenant-a\",\"jti\":\"%s\",\"iat\":%lld,\"nbf\":%lld,"
		 "\"exp\":%lld,\"p25\":{\"cidr\":\"%s\",\"port\":25,\"proto\":\"tcp\","
		 "\"dir\":\"egress\",\"request\":\"req-1\"}}",
		 iss, jti, iat, iat, exp, cidr);
	assert_int_equal(p25_jws_sign_ed25519(h, p, key == 2 ? f->sk2 : f->sk, &out), 0);
	return out;
}

static char *
good(struct fixture *f, const char *jti, const char *cidr, long long iat, long long exp)
{
	return tok(f, 1, ISS, jti, cidr, iat, exp);
}

static void
snap_free(struct enf_snapshot *s)
{
	enf_snapshot_free(s);
}

/* A snapshot: only what verifies is held; one entry per jti (the newest). */
static void
test_snapshot(void **state)
{
	struct fixture *f = *state;
	struct enf_state st;
	struct enf_stats stats = { 0 };
	struct enf_snapshot snap = { 0 };
	char *bad;

	snap.seq = 42;
	snap.n = 8;
	snap.tokens = calloc(snap.n, sizeof(char *));
	snap.tokens[0] = good(f, "ex-b", "81.2.69.6/32", NOW - 10, NOW + 3600);
	snap.tokens[1] = good(f, "ex-a", "81.2.69.5/32", NOW - 10, NOW + 3600);
	bad = good(f, "ex-c", "81.2.69.7/32", NOW - 10, NOW + 3600);
	bad[strlen(bad) - 5] ^= 1;	/* a flipped signature bit */
	snap.tokens[2] = bad;
	snap.tokens[3] = tok(f, 1, "https://evil.test", "ex-d", "81.2.69.8/32", NOW, NOW + 60);
	snap.tokens[4] = good(f, "ex-e", "81.2.69.9/32", NOW - 7200, NOW - 3600);	/* expired */
	snap.tokens[5] = tok(f, 2, ISS, "ex-f", "81.2.69.10/32", NOW, NOW + 60);	/* unknown kid */
	snap.tokens[6] = good(f, "ex-a", "81.2.69.5/32", NOW - 100, NOW + 1000);	/* older twin */
	snap.tokens[7] = strdup("not.a.token");

	enf_state_init(&st);
	assert_int_equal(enf_state_from_snapshot(&st, &snap, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.seq, 42);
	assert_int_equal(st.n, 2);
	assert_string_equal(st.v[0].c.jti, "ex-a");	/* sorted by jti */
	assert_int_equal(st.v[0].c.exp, NOW + 3600);	/* the newer of the twins */
	assert_string_equal(st.v[1].c.jti, "ex-b");
	assert_string_equal(st.v[1].c.cidr, "81.2.69.6/32");
	assert_int_equal(stats.added, 2);
	assert_int_equal(stats.rejected, 5);
	assert_int_equal(stats.unknown_kid, 1);
	assert_int_equal(stats.ignored, 1);
	assert_null(enf_state_find(&st, "ex-c"));
	assert_non_null(enf_state_find(&st, "ex-b"));

	/* a second snapshot replaces the set: ex-a gone, ex-b the same, ex-g new */
	snap_free(&snap);
	snap.seq = 50;
	snap.n = 2;
	snap.tokens = calloc(snap.n, sizeof(char *));
	snap.tokens[0] = strdup(st.v[1].token);
	snap.tokens[1] = good(f, "ex-g", "2a02:ff0:1::/48", NOW, NOW + 60);
	memset(&stats, 0, sizeof(stats));
	assert_int_equal(enf_state_from_snapshot(&st, &snap, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.seq, 50);
	assert_int_equal(st.n, 2);
	assert_int_equal(stats.added, 1);
	assert_int_equal(stats.unchanged, 1);
	assert_int_equal(stats.removed, 1);
	assert_null(enf_state_find(&st, "ex-a"));
	snap_free(&snap);
	enf_state_cleanup(&st);
}

/* A snapshot large enough to be verified on several threads: same result. */
static void
test_big_snapshot(void **state)
{
	struct fixture *f = *state;
	struct enf_state st;
	struct enf_stats stats = { 0 };
	struct enf_snapshot snap = { 0 };
	char jti[32], cidr[32];
	size_t i;

	snap.seq = 9;
	snap.n = 5000;
	snap.tokens = calloc(snap.n, sizeof(char *));
	assert_non_null(snap.tokens);
	for (i = 0; i < snap.n; i++) {
		snprintf(jti, sizeof(jti), "ex-%05zu", snap.n - i);	/* reverse order */
		snprintf(cidr, sizeof(cidr), "81.2.%zu.%zu/32", i / 256, i % 256);
		if (i % 1000 == 7)	/* every 1000th signed by the untrusted key */
			snap.tokens[i] = tok(f, 2, ISS, jti, cidr, NOW, NOW + 600);
		else
			snap.tokens[i] = good(f, jti, cidr, NOW, NOW + 600 + (long long)i);
	}
	enf_state_init(&st);
	assert_int_equal(enf_state_from_snapshot(&st, &snap, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.n, 4995);
	assert_int_equal(stats.rejected, 5);
	assert_int_equal(stats.unknown_kid, 5);
	assert_int_equal(stats.added, 4995);
	for (i = 1; i < st.n; i++)
		assert_true(strcmp(st.v[i - 1].c.jti, st.v[i].c.jti) < 0);
	assert_null(enf_state_find(&st, "ex-04993"));	/* i = 7 */
	assert_string_equal(enf_state_find(&st, "ex-00001")->c.cidr, "81.2.19.135/32");
	snap_free(&snap);
	enf_state_cleanup(&st);
}

/*
 * A second snapshot of the same tokens reuses what the state verified
 * (no second signature check) — but only while the key that verified a
 * token is still trusted under its kid with the same bytes, and the clock
 * still allows the token; the state file never reuses (verified on load).
 */
static void
test_snapshot_reuse(void **state)
{
	struct fixture *f = *state;
	struct enf_state st, st2;
	struct enf_stats stats;
	struct enf_snapshot snap = { 0 };
	struct enf_verifier vf2 = f->vf;
	struct p25_keyset *swapped = NULL;
	const char *kids[1] = { f->kid };
	char jti[32], cidr[32], path[128], err[256], *j;
	size_t i;

	snap.seq = 11;
	snap.n = 3000;	/* past VERIFY_THREADS_FROM: the threaded path */
	snap.tokens = calloc(snap.n, sizeof(char *));
	assert_non_null(snap.tokens);
	for (i = 0; i < snap.n; i++) {
		snprintf(jti, sizeof(jti), "ex-%05zu", i);
		snprintf(cidr, sizeof(cidr), "81.3.%zu.%zu/32", i / 256, i % 256);
		snap.tokens[i] = good(f, jti, cidr, NOW, NOW + 600);
	}
	enf_state_init(&st);
	memset(&stats, 0, sizeof(stats));
	assert_int_equal(enf_state_from_snapshot(&st, &snap, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.n, 3000);
	assert_int_equal(stats.reused, 0);
	assert_int_equal(stats.added, 3000);

	/* the same tokens again: all reused, same claims */
	memset(&stats, 0, sizeof(stats));
	assert_int_equal(enf_state_from_snapshot(&st, &snap, &f->vf, NOW + 10, &stats), 0);
	assert_int_equal(st.n, 3000);
	assert_int_equal(stats.reused, 3000);
	assert_int_equal(stats.unchanged, 3000);
	assert_int_equal(stats.rejected, 0);
	assert_string_equal(enf_state_find(&st, "ex-00300")->c.cidr, "81.3.1.44/32");
	assert_int_equal(enf_state_find(&st, "ex-00300")->c.exp, NOW + 600);

	/* a larger key set that still holds key 1 unchanged: reused */
	vf2.ks = f->ks12;
	memset(&stats, 0, sizeof(stats));
	assert_int_equal(enf_state_from_snapshot(&st, &snap, &vf2, NOW + 20, &stats), 0);
	assert_int_equal(stats.reused, 3000);
	assert_int_equal(st.n, 3000);

	/* past exp + skew: not reused, verified, refused as expired */
	memset(&stats, 0, sizeof(stats));
	enf_state_init(&st2);
	assert_int_equal(enf_state_from_snapshot(&st2, &snap, &f->vf, NOW, NULL), 0);
	assert_int_equal(enf_state_from_snapshot(&st2, &snap, &f->vf, NOW + 600 + 60, &stats), 0);
	assert_int_equal(stats.reused, 0);
	assert_int_equal(stats.rejected, 3000);
	assert_int_equal(st2.n, 0);
	enf_state_cleanup(&st2);

	/* kid 1 now names another key: nothing reused, every signature fails */
	j = p25_jwks_json(kids, (const unsigned char (*)[32])f->pk2, 1);
	assert_non_null(j);
	assert_int_equal(p25_keyset_parse(j, strlen(j), &swapped, NULL, 0), 0);
	free(j);
	vf2.ks = swapped;
	memset(&stats, 0, sizeof(stats));
	enf_state_init(&st2);
	assert_int_equal(enf_state_from_snapshot(&st2, &snap, &f->vf, NOW, NULL), 0);
	assert_int_equal(st2.n, 3000);
	assert_int_equal(enf_state_from_snapshot(&st2, &snap, &vf2, NOW + 10, &stats), 0);
	assert_int_equal(stats.reused, 0);
	assert_int_equal(stats.rejected, 3000);
	assert_int_equal(st2.n, 0);
	/* and the same through a re-verification of the held state */
	assert_int_equal(enf_state_from_snapshot(&st2, &snap, &f->vf, NOW, NULL), 0);
	assert_int_equal(enf_state_reverify(&st2, &vf2, NOW + 10), 3000);
	assert_int_equal(st2.n, 0);
	assert_int_equal(enf_state_from_snapshot(&st2, &snap, &f->vf, NOW, NULL), 0);
	assert_int_equal(enf_state_reverify(&st2, &f->vf, NOW + 10), 0);
	assert_int_equal(st2.n, 3000);
	assert_int_equal(enf_state_reverify(&st2, &f->vf, NOW + 600 + 60), 3000);
	enf_state_cleanup(&st2);
	p25_keyset_free(swapped);

	/* the state file: verified again on load, nothing reused */
	snprintf(path, sizeof(path), "%s/reuse.json", f->dir);
	assert_int_equal(enf_state_save(&st, path, NOW), 0);
	enf_state_init(&st2);
	memset(&stats, 0, sizeof(stats));
	assert_int_equal(enf_state_load(&st2, path, &f->vf, NOW, &stats, err, sizeof(err)), 0);
	assert_int_equal(st2.n, 3000);
	assert_int_equal(stats.reused, 0);
	enf_state_cleanup(&st2);

	snap_free(&snap);
	enf_state_cleanup(&st);
}

/*
 * A scoped token (destinations and a rate) keeps its claims in the entry's
 * compact form: after verification, after reuse by a second snapshot (the
 * block copied, its pointers moved: the first state is freed before the
 * claims are read again), and through a feed renewal.
 */
static void
test_scoped_entry(void **state)
{
	struct fixture *f = *state;
	struct enf_state st;
	struct enf_stats stats;
	struct enf_snapshot snap = { 0 };
	struct p25_claims want, got;
	const struct enf_entry *e;
	char h[256], p[1024], *t;

	snprintf(h, sizeof(h), "{\"alg\":\"EdDSA\",\"typ\":\"p25-exemption+jwt\",\"kid\":\"%s\"}",
		 f->kid);
	snprintf(p, sizeof(p),
		 "{\"iss\":\"%s\",\"sub\":\"tenant-a\",\"jti\":\"ex-scoped\",\"iat\":%lld,"
		 "\"nbf\":%lld,\"exp\":%lld,\"p25\":{\"cidr\":\"81.2.69.7/32\",\"port\":25,"
		 "\"proto\":\"tcp\",\"dir\":\"egress\",\"request\":\"req-1\","
		 "\"dest\":[\"192.0.2.0/24\",\"2001:db8::/32\",\"198.51.100.1/32\"],\"rate\":120}}",
		 ISS, NOW, NOW, NOW + 600);
	assert_int_equal(p25_jws_sign_ed25519(h, p, f->sk, &t), 0);
	assert_int_equal(p25_token_verify(f->ks, t, ISS, NOW, 60, &want), P25_VERIFY_OK);
	snap.seq = 5;
	snap.n = 2;
	snap.tokens = calloc(2, sizeof(char *));
	assert_non_null(snap.tokens);
	snap.tokens[0] = t;
	snap.tokens[1] = good(f, "ex-plain", "81.2.69.8/32", NOW, NOW + 600);

	enf_state_init(&st);
	for (int round = 0; round < 2; round++) {
		memset(&stats, 0, sizeof(stats));
		assert_int_equal(enf_state_from_snapshot(&st, &snap, &f->vf, NOW + round, &stats), 0);
		assert_int_equal(stats.reused, round ? 2 : 0);
		assert_int_equal(st.n, 2);
		e = enf_state_find(&st, "ex-scoped");
		assert_non_null(e);
		assert_string_equal(e->token, t);
		assert_string_equal(e->c.iss, ISS);
		assert_string_equal(e->c.kid, f->kid);
		assert_string_equal(e->c.cidr, "81.2.69.7/32");
		assert_int_equal(e->c.ndest, 3);
		assert_string_equal(e->c.dest[0], "192.0.2.0/24");
		assert_string_equal(e->c.dest[1], "2001:db8::/32");
		assert_string_equal(e->c.dest[2], "198.51.100.1/32");
		assert_int_equal(e->c.rate, 120);
		assert_int_equal(e->c.exp, NOW + 600);
		assert_memory_equal(e->pk, f->pk, 32);
		enf_entry_claims(e, &got);
		assert_string_equal(got.jti, want.jti);
		assert_string_equal(got.cidr, want.cidr);
		assert_int_equal(got.ndest, want.ndest);
		for (int k = 0; k < want.ndest; k++)
			assert_string_equal(got.dest[k], want.dest[k]);
		assert_int_equal(got.rate, want.rate);
		assert_int_equal(got.iat, want.iat);
		assert_int_equal(got.nbf, want.nbf);
		e = enf_state_find(&st, "ex-plain");
		assert_non_null(e);
		assert_int_equal(e->c.ndest, 0);
		assert_null(e->c.dest);
		assert_int_equal(e->c.rate, -1);
	}
	snap_free(&snap);
	enf_state_cleanup(&st);
}

static struct enf_event
ev(long long seq, enum enf_event_type type, const char *exemption, char *token)
{
	struct enf_event e;

	memset(&e, 0, sizeof(e));
	e.seq = seq;
	e.type = type;
	snprintf(e.exemption, sizeof(e.exemption), "%s", exemption);
	e.token = token;
	return e;
}

/* Feed events: grant, renew (never backwards), revoke, bad tokens skipped. */
static void
test_events(void **state)
{
	struct fixture *f = *state;
	struct enf_state st;
	struct enf_stats stats = { 0 };
	struct enf_event e;
	char *t1, *t2, *t0, *bad;

	enf_state_init(&st);
	st.seq = 10;
	t1 = good(f, "ex-a", "81.2.69.5/32", NOW - 10, NOW + 3600);
	e = ev(11, ENF_EV_GRANT, "ex-a", t1);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.seq, 11);
	assert_int_equal(st.n, 1);
	assert_int_equal(stats.added, 1);

	/* a renewal replaces */
	t2 = good(f, "ex-a", "81.2.69.5/32", NOW, NOW + 7200);
	e = ev(12, ENF_EV_RENEW, "ex-a", t2);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.n, 1);
	assert_int_equal(st.v[0].c.exp, NOW + 7200);
	assert_int_equal(stats.replaced, 1);

	/* the same token again: unchanged; an older one: ignored */
	e = ev(13, ENF_EV_RENEW, "ex-a", t2);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, &stats), 0);
	assert_int_equal(stats.unchanged, 1);
	t0 = good(f, "ex-a", "81.2.69.5/32", NOW - 20, NOW + 60);
	e = ev(14, ENF_EV_RENEW, "ex-a", t0);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.v[0].c.exp, NOW + 7200);
	assert_int_equal(stats.ignored, 1);
	assert_int_equal(st.seq, 14);

	/* a token that fails verification: skipped, the position still moves */
	bad = tok(f, 2, ISS, "ex-b", "81.2.69.6/32", NOW, NOW + 60);
	e = ev(15, ENF_EV_GRANT, "ex-b", bad);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.n, 1);
	assert_int_equal(st.seq, 15);
	assert_int_equal(stats.rejected, 1);
	assert_int_equal(stats.unknown_kid, 1);
	/* ... and with the key trusted it verifies */
	{
		struct enf_verifier vf2 = f->vf;

		vf2.ks = f->ks12;
		e = ev(16, ENF_EV_GRANT, "ex-b", bad);
		assert_int_equal(enf_state_apply(&st, &e, &vf2, NOW, &stats), 0);
		assert_int_equal(st.n, 2);
		/* dropping the key again: reverify removes its token */
		assert_int_equal(enf_state_reverify(&st, &f->vf, NOW), 1);
		assert_int_equal(st.n, 1);
	}

	/* unknown event types are consumed, never applied */
	e = ev(17, ENF_EV_UNKNOWN, "", NULL);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.seq, 17);
	assert_int_equal(st.n, 1);

	/* revoke removes; revoking what is not held is harmless */
	e = ev(18, ENF_EV_REVOKE, "ex-a", NULL);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.n, 0);
	assert_int_equal(stats.removed, 1);
	e = ev(19, ENF_EV_REVOKE, "ex-zzz", NULL);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.seq, 19);

	/* a reinstatement (a new grant after the revoke) adds it back */
	e = ev(20, ENF_EV_GRANT, "ex-a", t2);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, &stats), 0);
	assert_int_equal(st.n, 1);

	/* expiry by the clock alone */
	assert_int_equal(enf_state_expire(&st, NOW + 7199), 0);
	assert_int_equal(enf_state_expire(&st, NOW + 7200), 1);
	assert_int_equal(st.n, 0);
	free(t0);
	free(t1);
	free(t2);
	free(bad);
	enf_state_cleanup(&st);
}

/* Many out-of-order grants keep the array sorted and searchable. */
static void
test_many(void **state)
{
	struct fixture *f = *state;
	struct enf_state st;
	struct enf_event e;
	char jti[32], cidr[32], *t;
	int i;

	enf_state_init(&st);
	for (i = 0; i < 200; i++) {
		int k = (i * 37) % 200;

		snprintf(jti, sizeof(jti), "ex-%03d", k);
		snprintf(cidr, sizeof(cidr), "81.2.%d.%d/32", 60 + k / 100, k % 100);
		t = good(f, jti, cidr, NOW, NOW + 100 + k);
		e = ev(i + 1, ENF_EV_GRANT, jti, t);
		assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, NULL), 0);
		free(t);
	}
	assert_int_equal(st.n, 200);
	for (i = 1; i < 200; i++)
		assert_true(strcmp(st.v[i - 1].c.jti, st.v[i].c.jti) < 0);
	assert_non_null(enf_state_find(&st, "ex-123"));
	assert_int_equal(enf_state_next_expiry(&st), NOW + 100);
	assert_int_equal(enf_state_expire(&st, NOW + 150), 51);	/* exp <= now: k 0..50 */
	assert_null(enf_state_find(&st, "ex-050"));
	assert_non_null(enf_state_find(&st, "ex-051"));
	assert_int_equal(st.n, 149);
	enf_state_cleanup(&st);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* The state file: atomic write, round trip, tokens verified on load. */
static void
test_state_file(void **state)
{
	struct fixture *f = *state;
	struct enf_state st, back;
	struct enf_stats stats = { 0 };
	struct enf_event e;
	char path[128], tmp[160], err[256], *t, *text;
	struct stat sb;
	size_t len;

	snprintf(path, sizeof(path), "%s/state.json", f->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);

	/* missing file: empty, fine */
	enf_state_init(&back);
	assert_int_equal(enf_state_load(&back, path, &f->vf, NOW, NULL, err, sizeof(err)), 0);
	assert_int_equal(back.n, 0);
	assert_int_equal(back.seq, 0);

	enf_state_init(&st);
	t = good(f, "ex-a", "81.2.69.5/32", NOW, NOW + 3600);
	e = ev(5, ENF_EV_GRANT, "ex-a", t);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, NULL), 0);
	free(t);
	t = good(f, "ex-b", "2a02:ff0:1::/48", NOW, NOW + 60);
	e = ev(9, ENF_EV_GRANT, "ex-b", t);
	assert_int_equal(enf_state_apply(&st, &e, &f->vf, NOW, NULL), 0);
	free(t);
	assert_int_equal(enf_state_save(&st, path, NOW), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_not_equal(access(tmp, F_OK), 0);	/* no temporary left */

	assert_int_equal(enf_state_load(&back, path, &f->vf, NOW, &stats, err, sizeof(err)), 0);
	assert_int_equal(back.seq, 9);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.v[0].token, st.v[0].token);
	assert_string_equal(back.v[1].c.cidr, "2a02:ff0:1::/48");
	assert_int_equal(back.v[0].applied_exp, 0);	/* nothing is loaded yet */
	enf_state_cleanup(&back);

	/* read later: the expired token is dropped on load */
	enf_state_init(&back);
	assert_int_equal(enf_state_load(&back, path, &f->vf, NOW + 600, NULL, err, sizeof(err)), 0);
	assert_int_equal(back.n, 1);
	assert_string_equal(back.v[0].c.jti, "ex-a");
	enf_state_cleanup(&back);

	/* a tampered token in the file is not trusted */
	text = enf_read_file(path, 1 << 20, &len);
	assert_non_null(text);
	{
		char *p = strstr(text, st.v[0].token);

		assert_non_null(p);
		p[strlen(st.v[0].token) - 3] = p[strlen(st.v[0].token) - 3] == 'A' ? 'B' : 'A';
	}
	write_file(path, text);
	free(text);
	enf_state_init(&back);
	memset(&stats, 0, sizeof(stats));
	assert_int_equal(enf_state_load(&back, path, &f->vf, NOW, &stats, err, sizeof(err)), 0);
	assert_int_equal(back.n, 1);
	assert_int_equal(stats.rejected, 1);
	enf_state_cleanup(&back);

	/* malformed files are errors the caller survives */
	write_file(path, "{\"format\":\"something-else\",\"seq\":1,\"tokens\":[]}");
	enf_state_init(&back);
	assert_int_equal(enf_state_load(&back, path, &f->vf, NOW, NULL, err, sizeof(err)), -1);
	enf_state_cleanup(&back);
	write_file(path, "{\"format\":\"p25-enforcer-state/1\",\"seq\":1,\"tok");
	enf_state_init(&back);
	assert_int_equal(enf_state_load(&back, path, &f->vf, NOW, NULL, err, sizeof(err)), -1);
	enf_state_cleanup(&back);
	write_file(path, "{\"format\":\"p25-enforcer-state/1\",\"seq\":-3,\"tokens\":[]}");
	enf_state_init(&back);
	assert_int_equal(enf_state_load(&back, path, &f->vf, NOW, NULL, err, sizeof(err)), -1);
	enf_state_cleanup(&back);
	/* non-string entries are dropped, not fatal */
	write_file(path, "{\"format\":\"p25-enforcer-state/1\",\"seq\":3,\"tokens\":[1,null]}");
	enf_state_init(&back);
	assert_int_equal(enf_state_load(&back, path, &f->vf, NOW, NULL, err, sizeof(err)), 0);
	assert_int_equal(back.n, 0);
	assert_int_equal(back.seq, 3);
	enf_state_cleanup(&back);

	/* an empty state saves and loads */
	enf_state_cleanup(&st);
	enf_state_init(&st);
	st.seq = 77;
	assert_int_equal(enf_state_save(&st, path, NOW), 0);
	enf_state_init(&back);
	assert_int_equal(enf_state_load(&back, path, &f->vf, NOW, NULL, err, sizeof(err)), 0);
	assert_int_equal(back.seq, 77);
	assert_int_equal(back.n, 0);
	enf_state_cleanup(&back);
	enf_state_cleanup(&st);

	/* an unwritable place fails cleanly */
	assert_int_equal(enf_write_atomic("/nonexistent-dir/x/state.json", "x", 1), -1);
}

/* Keys: the pin is the root; learned keys never re-bind a pinned kid. */
static void
test_keys(void **state)
{
	struct fixture *f = *state;
	struct enf_keys k = { 0 };
	char pin[128], learned[128], err[256], *j1, *j12, *text;
	unsigned n = 99, added, removed;
	char *t2;

	snprintf(pin, sizeof(pin), "%s/pin.json", f->dir);
	snprintf(learned, sizeof(learned), "%s/learned.json", f->dir);
	j1 = jwks_of(f, false);
	j12 = jwks_of(f, true);
	write_file(pin, j1);
	unlink(learned);

	/* the pure part: what the fetched document adds to the pin */
	text = enf_keys_learned_from(j1, j12, strlen(j12), &n, err, sizeof(err));
	assert_non_null(text);
	assert_int_equal(n, 1);
	assert_non_null(strstr(text, f->kid2));
	assert_null(strstr(text, f->kid));
	free(text);
	text = enf_keys_learned_from(j1, j1, strlen(j1), &n, err, sizeof(err));
	assert_non_null(text);
	assert_int_equal(n, 0);
	free(text);
	text = enf_keys_learned_from(j1, "{\"keys\":[]}", 11, &n, err, sizeof(err));
	assert_non_null(text);
	assert_int_equal(n, 0);
	free(text);
	assert_null(enf_keys_learned_from(j1, "{\"keys\":[{\"kty\":\"OKP\"}]}", 24, &n, err,
					  sizeof(err)));
	{
		/* the pinned kid bound to another key: refused */
		const char *kids[1] = { f->kid };
		unsigned char pks[1][32];
		char *evil;

		memcpy(pks[0], f->pk2, 32);
		evil = p25_jwks_json(kids, (const unsigned char (*)[32])pks, 1);
		assert_non_null(evil);
		assert_null(enf_keys_learned_from(j1, evil, strlen(evil), &n, err, sizeof(err)));
		assert_non_null(strstr(err, "refused"));
		free(evil);
	}

	/* the files: pin only, then a merge learns key 2 and saves it */
	assert_int_equal(enf_keys_load(&k, pin, learned, err, sizeof(err)), 0);
	assert_int_equal(p25_keyset_count(k.ks), 1);
	t2 = tok(f, 2, ISS, "ex-2", "81.2.69.6/32", NOW, NOW + 60);
	assert_int_equal(p25_token_verify(k.ks, t2, ISS, NOW, 60, NULL), P25_VERIFY_UNKNOWN_KID);
	assert_int_equal(enf_keys_merge(&k, j12, strlen(j12), &added, &removed, err, sizeof(err)), 0);
	assert_int_equal(added, 1);
	assert_int_equal(removed, 0);
	assert_int_equal(p25_token_verify(k.ks, t2, ISS, NOW, 60, NULL), P25_VERIFY_OK);
	assert_int_equal(access(learned, F_OK), 0);
	enf_keys_free(&k);

	/* a restart keeps the learned key; without a learned path it is not trusted */
	assert_int_equal(enf_keys_load(&k, pin, learned, err, sizeof(err)), 0);
	assert_int_equal(p25_keyset_count(k.ks), 2);
	enf_keys_free(&k);
	assert_int_equal(enf_keys_load(&k, pin, NULL, err, sizeof(err)), 0);
	assert_int_equal(p25_keyset_count(k.ks), 1);
	enf_keys_free(&k);

	/* the API stops publishing key 2: it leaves; the pin stays whatever happens */
	assert_int_equal(enf_keys_load(&k, pin, learned, err, sizeof(err)), 0);
	assert_int_equal(enf_keys_merge(&k, "{\"keys\":[]}", 11, &added, &removed, err,
					sizeof(err)), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(p25_keyset_count(k.ks), 1);
	assert_int_equal(p25_token_verify(k.ks, t2, ISS, NOW, 60, NULL), P25_VERIFY_UNKNOWN_KID);
	/* a broken document changes nothing */
	assert_int_equal(enf_keys_merge(&k, "nope", 4, &added, &removed, err, sizeof(err)), -1);
	assert_int_equal(p25_keyset_count(k.ks), 1);
	enf_keys_free(&k);

	/* a pin that is not a key set is an error */
	write_file(pin, "{\"keys\":[]}");
	assert_int_equal(enf_keys_load(&k, pin, NULL, err, sizeof(err)), -1);
	unlink(pin);
	assert_int_equal(enf_keys_load(&k, pin, NULL, err, sizeof(err)), -1);
	free(t2);
	free(j1);
	free(j12);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_big_snapshot),
		cmocka_unit_test(test_snapshot_reuse),
		cmocka_unit_test(test_scoped_entry),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_state_file),
		cmocka_unit_test(test_keys),
	};

	enf_log_set_level((enum enf_level)(ENF_ERROR + 1));	/* quiet: refusals are expected */
	return cmocka_run_group_tests(tests, setup, teardown);
}
