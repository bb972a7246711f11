/*
 * audit.c — writing audit rows, sealing them into the hash chain and
 * verifying the chain (see audit.h).  A row is one INSERT in the caller's
 * transaction; sealing and verifying run in transactions of their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <sodium.h>

#include "p25/audit.h"
#include "p25/db.h"
#include "p25/err.h"

int
p25_audit(struct p25_db *db, const char *actor, const char *action,
	  const char *object_type, const char *object_id, const char *tenant,
	  json_t *details, struct p25_err *err)
{
	P25_STMT(st, 6, "INSERT INTO audit_log (actor, action, object_type, object_id,"
			" tenant_id, details) VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb, '{}'))");
	char *dj = details ? json_dumps(details, JSON_COMPACT) : NULL;
	const char *p[6] = { actor, action, object_type, object_id, tenant, dj };
	long n;

	if (details && !dj)
		return p25_err_set(err, 500, "internal", "cannot encode audit details");
	n = p25_db_run(db, &st, p, err);
	free(dj);
	if (n == 1)
		return 0;
	/* fail closed, and say whose fault it is: never a 4xx for this */
	p25_err_clear(err);
	p25_err_set(err, 503, "audit_unavailable",
		    "the change was not made because its audit record could not be written");
	err->retry_after = 5;
	return -1;
}

/* ------------------------------------------------------------ the chain */

/*
 * The canonical entry: every field as an 8-byte little-endian length and its
 * bytes, in a fixed order; NULL is length 2^64-1.  Timestamps are rendered
 * by PostgreSQL in UTC with microseconds, details as jsonb's own text (which
 * is canonical for a value).
 */
#define AUDIT_COLS "a.seq::text, a.xid::text, to_char(a.at AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), a.actor, a.action, a.object_type, a.object_id," \
	" a.tenant_id, a.details::text"
#define AUDIT_NCOLS 9

static void
link_hash(const unsigned char prev[32], const PGresult *res, int row, unsigned char out[32])
{
	crypto_generichash_state st;
	int c;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, prev, 32);
	for (c = 0; c < AUDIT_NCOLS; c++) {
		unsigned char len[8];
		unsigned long long n = PQgetisnull(res, row, c) ? ~0ULL
				       : (unsigned long long)PQgetlength(res, row, c);
		int i;
		for (i = 0; i < 8; i++)
			len[i] = (unsigned char)(n >> (8 * i));
		crypto_generichash_update(&st, len, 8);
		if (!PQgetisnull(res, row, c))
			crypto_generichash_update(&st, (const unsigned char *)PQgetvalue(res, row, c),
						  (unsigned long long)PQgetlength(res, row, c));
	}
	crypto_generichash_final(&st, out, 32);
}

long
p25_audit_seal(struct p25_db *db, int limit, struct p25_err *err)
{
	P25_STMT(head, 0,
	    "SELECT c.pos, encode(c.hash, 'hex'), a.xid::text, a.seq FROM audit_chain c"
	    " JOIN audit_log a ON a.seq = c.seq ORDER BY c.pos DESC LIMIT 1");
	P25_STMT(rows, 3,
	    "SELECT " AUDIT_COLS " FROM audit_log a"
	    " WHERE a.xid < pg_snapshot_xmin(pg_current_snapshot())"
	    " AND ($1::xid8 IS NULL OR (a.xid, a.seq) > ($1::xid8, $2::bigint))"
	    " ORDER BY a.xid, a.seq LIMIT $3");
	P25_STMT(ins, 4, "INSERT INTO audit_chain (pos, seq, prev_hash, hash)"
			 " VALUES ($1::bigint, $2::bigint, decode($3, 'hex'), decode($4, 'hex'))");
	unsigned char prev[32] = { 0 }, h[32];
	char lim[16], posbuf[24], prevhex[65], hhex[65];
	PGresult *hr = NULL, *rr = NULL;
	long long pos = 0;
	long n = -1;
	int i;

	if (p25_db_begin(db, err) != 0)
		return -1;
	if (p25_db_set_actor(db, NULL, "system", err) != 0 ||
	    p25_db_command(db, "SELECT pg_advisory_xact_lock(25025026)", err) != 0)
		goto out;
	hr = p25_db_exec(db, &head, NULL, err);
	if (!hr)
		goto out;
	if (PQntuples(hr) == 1) {
		size_t blen;
		pos = strtoll(PQgetvalue(hr, 0, 0), NULL, 10);
		if (sodium_hex2bin(prev, 32, PQgetvalue(hr, 0, 1), 64, NULL, &blen, NULL) != 0 ||
		    blen != 32) {
			p25_err_set(err, 500, "audit_chain_corrupt", "the chain head is not a hash");
			goto out;
		}
	}
	snprintf(lim, sizeof(lim), "%d", limit);
	{
		const char *p[3] = { PQntuples(hr) ? PQgetvalue(hr, 0, 2) : NULL,
				     PQntuples(hr) ? PQgetvalue(hr, 0, 3) : NULL, lim };
		rr = p25_db_exec(db, &rows, p, err);
	}
	if (!rr)
		goto out;
	for (i = 0; i < PQntuples(rr); i++) {
		const char *p[4] = { posbuf, PQgetvalue(rr, i, 0), prevhex, hhex };
		link_hash(prev, rr, i, h);
		snprintf(posbuf, sizeof(posbuf), "%lld", ++pos);
		sodium_bin2hex(prevhex, sizeof(prevhex), prev, 32);
		sodium_bin2hex(hhex, sizeof(hhex), h, 32);
		if (p25_db_run(db, &ins, p, err) != 1)
			goto out;
		memcpy(prev, h, 32);
	}
	if (p25_db_commit(db, err) != 0)
		goto out;
	n = PQntuples(rr);
out:
	if (n < 0)
		p25_db_rollback(db);
	PQclear(hr);
	PQclear(rr);
	return n;
}

int
p25_audit_verify(struct p25_db *db, struct p25_audit_report *rep, struct p25_err *err)
{
	P25_STMT(walk, 2,
	    "SELECT " AUDIT_COLS ", c.pos, encode(c.prev_hash, 'hex'), encode(c.hash, 'hex'),"
	    " c.seq, a.seq IS NULL FROM audit_chain c LEFT JOIN audit_log a ON a.seq = c.seq"
	    " WHERE c.pos > $1::bigint ORDER BY c.pos LIMIT $2");
	P25_STMT(unsealed, 0,
	    "SELECT count(*) FROM audit_log a WHERE NOT EXISTS"
	    " (SELECT 1 FROM audit_chain c WHERE c.seq = a.seq)");
	unsigned char prev[32] = { 0 }, h[32];
	char after[24], hex[65];
	long long expect = 1;
	PGresult *res;
	int i, rc = -1;

	memset(rep, 0, sizeof(*rep));
	rep->broken_pos = -1;
	if (p25_db_begin_as(db, NULL, "system", err) != 0)
		goto out;
	for (;;) {
		const char *p[2] = { after, "5000" };
		int n;
		snprintf(after, sizeof(after), "%lld", expect - 1);
		res = p25_db_exec(db, &walk, p, err);
		if (!res)
			goto out;
		n = PQntuples(res);
		for (i = 0; i < n && rep->broken_pos < 0; i++, expect++) {
			long long pos = strtoll(PQgetvalue(res, i, AUDIT_NCOLS), NULL, 10);
			if (pos != expect) {
				rep->broken_pos = expect;
				snprintf(rep->problem, sizeof(rep->problem),
					 "link %lld is missing (the chain jumps to %lld)", expect, pos);
				break;
			}
			sodium_bin2hex(hex, sizeof(hex), prev, 32);
			if (strcmp(hex, PQgetvalue(res, i, AUDIT_NCOLS + 1)) != 0) {
				rep->broken_pos = pos;
				snprintf(rep->problem, sizeof(rep->problem),
					 "link %lld does not follow link %lld (prev_hash differs)",
					 pos, pos - 1);
				break;
			}
			if (strcmp(PQgetvalue(res, i, AUDIT_NCOLS + 4), "t") == 0) {
				rep->broken_pos = pos;
				snprintf(rep->problem, sizeof(rep->problem),
					 "audit row %s of link %lld was deleted",
					 PQgetvalue(res, i, AUDIT_NCOLS + 3), pos);
				break;
			}
			link_hash(prev, res, i, h);
			sodium_bin2hex(hex, sizeof(hex), h, 32);
			if (strcmp(hex, PQgetvalue(res, i, AUDIT_NCOLS + 2)) != 0) {
				rep->broken_pos = pos;
				snprintf(rep->problem, sizeof(rep->problem),
					 "audit row %s (link %lld) was changed after it was sealed",
					 PQgetvalue(res, i, 0), pos);
				break;
			}
			memcpy(prev, h, 32);
			rep->checked++;
		}
		PQclear(res);
		if (rep->broken_pos >= 0 || n < 5000)
			break;
	}
	res = p25_db_exec(db, &unsealed, NULL, err);
	if (!res)
		goto out;
	rep->unsealed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	rc = 0;
out:
	p25_db_rollback(db);
	return rc;
}
