/*
 * migrate.c — applies the embedded migrations (see migrations.h).
 *
 * Runs as the table owner.  schema_migrations records version, name and the
 * SHA-256 of each applied file; an applied file whose text changed stops
 * everything, because the database no longer matches what the code in this
 * binary expects.  Each migration runs in its own transaction together
 * with its bookkeeping row, so a failed migration leaves nothing behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "p25/db.h"
#include "p25/err.h"
#include "p25/log.h"
#include "p25/migrations.h"

static void
checksum(const struct p25_migration *m, char hex[65])
{
	unsigned char h[32];

	crypto_hash_sha256(h, (const unsigned char *)m->sql, m->len);
	sodium_bin2hex(hex, 65, h, sizeof(h));
}

int
p25_schema_applied(struct p25_db *db, struct p25_err *err)
{
	P25_STMT(st, 0, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	PGresult *res = p25_db_exec(db, &st, NULL, err);
	int v;

	if (!res)
		return -1;
	v = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

int
p25_migrate(struct p25_db *db, int *applied, struct p25_err *err)
{
	P25_STMT(list, 0, "SELECT version, name, checksum FROM schema_migrations ORDER BY version");
	P25_STMT(record, 3, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)");
	PGresult *res = NULL;
	int i, j, rc = -1;

	*applied = 0;
	if (p25_db_command(db,
	    "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    " version integer PRIMARY KEY, name text NOT NULL,"
	    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())", err) != 0)
		return -1;
	if (p25_db_command(db, "SELECT pg_advisory_lock(hashtext('p25_migrate'))", err) != 0)
		return -1;
	res = p25_db_exec(db, &list, NULL, err);
	if (!res)
		goto out;
	/* every applied migration must still be the one we carry */
	for (i = 0; i < PQntuples(res); i++) {
		int v = (int)strtol(PQgetvalue(res, i, 0), NULL, 10);
		const struct p25_migration *m = NULL;
		char hex[65];

		for (j = 0; j < p25_nmigrations; j++)
			if (p25_migrations[j].version == v)
				m = &p25_migrations[j];
		if (!m) {
			p25_err_set(err, 409, "schema_newer",
			    "the database has migration %04d (%s) that this build does not know",
			    v, PQgetvalue(res, i, 1));
			p25_err_hint(err, "run a p25ctl built from the same or a newer tree");
			goto out;
		}
		checksum(m, hex);
		if (strcmp(hex, PQgetvalue(res, i, 2)) != 0) {
			p25_err_set(err, 409, "migration_edited",
			    "migration %s was edited after it was applied "
			    "(applied checksum %.12s…, file now %.12s…)",
			    m->name, PQgetvalue(res, i, 2), hex);
			p25_err_hint(err, "never edit an applied migration: "
			    "restore it and add a new one");
			goto out;
		}
	}
	for (j = 0; j < p25_nmigrations; j++) {
		const struct p25_migration *m = &p25_migrations[j];
		char hex[65], vbuf[16];
		const char *p[3];
		bool done = false;

		for (i = 0; i < PQntuples(res); i++)
			if ((int)strtol(PQgetvalue(res, i, 0), NULL, 10) == m->version)
				done = true;
		if (done)
			continue;
		checksum(m, hex);
		snprintf(vbuf, sizeof(vbuf), "%d", m->version);
		p[0] = vbuf;
		p[1] = m->name;
		p[2] = hex;
		if (p25_db_begin(db, err) != 0)
			goto out;
		if (p25_db_command(db, m->sql, err) != 0 ||
		    p25_db_run(db, &record, p, err) < 0) {
			char detail[sizeof(err->detail)];
			p25_db_rollback(db);
			snprintf(detail, sizeof(detail), "%.64s: %.400s", m->name, err->detail);
			snprintf(err->detail, sizeof(err->detail), "%s", detail);
			goto out;
		}
		if (p25_db_commit(db, err) != 0)
			goto out;
		p25_info("migrate.applied", "applied %s", m->name);
		(*applied)++;
	}
	rc = 0;
out:
	PQclear(res);
	{
		struct p25_err e2 = { 0 };
		p25_db_command(db, "SELECT pg_advisory_unlock(hashtext('p25_migrate'))", &e2);
		p25_err_clear(&e2);
	}
	return rc;
}
