/*
 * migrations.h — the SQL migrations embedded at build time
 * (cmake/embed_migrations.cmake) and the runner behind `p25ctl migrate`.
 */
#ifndef P25_MIGRATIONS_H
#define P25_MIGRATIONS_H

#include <stddef.h>

struct p25_db;
struct p25_err;

struct p25_migration {
	int version;
	const char *name;
	const char *sql;
	size_t len;
};

extern const struct p25_migration p25_migrations[];
extern const int p25_nmigrations;
extern const int p25_schema_version;	/* highest embedded version */

/*
 * Applies pending migrations in order, each in its own transaction with its
 * checksum row; refuses (-1, err 409 "migration_edited") when an applied
 * migration's checksum differs from the embedded one.  Serialized against
 * concurrent runs by an advisory lock.  *applied counts what was applied.
 */
int p25_migrate(struct p25_db *db, int *applied, struct p25_err *err);

/* Highest applied version (0 when none), or -1 with err. */
int p25_schema_applied(struct p25_db *db, struct p25_err *err);

#endif
