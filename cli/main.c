/*
 * main.c — p25ctl, the operator CLI.  The commands are a table; each is a
 * function taking its own argv.  Exit codes: 0 ok, 1 failure, 64 usage,
 * 78 configuration (sysexits.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "p25/auth.h"
#include "p25/config.h"
#include "p25/db.h"
#include "p25/err.h"
#include "p25/log.h"
#include "p25/migrations.h"
#include "cli.h"

struct p25_config cli_cfg;

int
cli_fail(struct p25_err *err)
{
	fprintf(stderr, "p25ctl: %s\n", err->detail[0] ? err->detail : err->code);
	if (err->hint[0])
		fprintf(stderr, "hint: %s\n", err->hint);
	p25_err_clear(err);
	return 1;
}

struct p25_db *
cli_connect(const char *url)
{
	struct p25_err err = { 0 };
	struct p25_db *db = p25_db_connect(url, "p25ctl", &err);

	if (!db) {
		fprintf(stderr, "p25ctl: cannot connect to the database (%s)\n", err.detail);
		p25_err_clear(&err);
	}
	return db;
}

/* Finds "--name value" in argv; NULL when absent. */
const char *
cli_opt(int argc, char **argv, const char *name)
{
	int i;

	for (i = 1; i < argc - 1; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int
cmd_migrate(int argc, char **argv)
{
	struct p25_err err = { 0 };
	struct p25_db *db = cli_connect(cli_cfg.migrate_database_url);
	int applied = 0, rc;

	if (!db)
		return 1;
	rc = p25_migrate(db, &applied, &err);
	p25_db_close(db);
	if (rc != 0)
		return cli_fail(&err);
	printf("migrations: %d applied, schema at version %d\n", applied,
	       p25_schema_version);
	return 0;
}

static int
cmd_check_config(int argc, char **argv)
{
	/* loading already succeeded (or we exited 78): show what we run with */
	p25_config_dump(&cli_cfg, stdout);
	printf("configuration ok\n");
	return 0;
}

static int
cmd_config_doc(int argc, char **argv)
{
	p25_config_doc(stdout);
	return 0;
}

/*
 * dev-token: a development bearer token.  With --count N, N tokens, one a
 * line: the i-th (from 1) for --sub and --tenant with i appended (the
 * benchmark's many tenants, minted in one process).
 */
static int
cmd_dev_token(int argc, char **argv)
{
	struct p25_err err = { 0 };
	const char *sub = cli_opt(argc, argv, "--sub");
	const char *roles = cli_opt(argc, argv, "--roles");
	const char *tenant = cli_opt(argc, argv, "--tenant");
	const char *ttl_s = cli_opt(argc, argv, "--ttl");
	const char *count_s = cli_opt(argc, argv, "--count");
	long ttl = 3600, count = 0, i;
	char *end;

	if (!sub || !roles) {
		fprintf(stderr, "usage: p25ctl dev-token --sub S --roles R[,R…] [--tenant T] [--ttl SECONDS]"
			" [--count N]\n");
		return 64;
	}
	if (ttl_s) {
		ttl = strtol(ttl_s, &end, 10);
		if (*end || ttl < 1 || ttl > 90L * 86400) {
			fprintf(stderr, "p25ctl: --ttl must be 1..7776000 seconds\n");
			return 64;
		}
	}
	if (count_s) {
		count = strtol(count_s, &end, 10);
		if (*end || count < 1 || count > 1000000) {
			fprintf(stderr, "p25ctl: --count must be 1..1000000\n");
			return 64;
		}
	}
	for (i = count ? 1 : 0; i <= count; i++) {
		char s[256], t[256];
		char *tok;

		if (count && ((size_t)snprintf(s, sizeof(s), "%s%ld", sub, i) >= sizeof(s) ||
			      (tenant && (size_t)snprintf(t, sizeof(t), "%s%ld", tenant, i) >= sizeof(t)))) {
			fprintf(stderr, "p25ctl: --sub or --tenant too long for --count\n");
			return 64;
		}
		tok = p25_auth_mint_dev(&cli_cfg, count ? s : sub, roles,
					count && tenant ? t : tenant, ttl, &err);
		if (!tok)
			return cli_fail(&err);
		printf("%s\n", tok);
		free(tok);
	}
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "migrate", cmd_migrate, "apply migrations/ in order (as P25_MIGRATE_DATABASE_URL)" },
	{ "--check-config", cmd_check_config, "validate the configuration and print it, secrets masked" },
	{ "config-doc", cmd_config_doc, "print the configuration table (Markdown)" },
	{ "dev-token", cmd_dev_token, "--sub S --roles R[,R] [--tenant T] [--ttl S] [--count N]: a development bearer token (N tokens, i appended to S and T)" },
	{ "keys", cmd_keys, "generate | rotate | list: exemption-token signing keys" },
	{ "token", cmd_token, "verify JWS --jwks FILE [--issuer ISS]: check an exemption token offline" },
	{ "audit", cmd_audit, "verify | seal: walk the audit hash chain and report the first broken link" },
	{ "policy", cmd_policy, "check FILE | defaults: validate a vetting policy, print the built-in one" },
};

static void
usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: p25ctl COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-15s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\nconfiguration (P25_* environment variables, or KEY=VALUE lines in P25_CONFIG_FILE):\n");
	for (i = 0; i < p25_cfg_ndefs; i++)
		fprintf(out, "  %-26s %s (default \"%s\")\n", p25_cfg_defs[i].name,
			p25_cfg_defs[i].doc, p25_cfg_defs[i].def);
	fprintf(out, "\nexit status: 0 ok, 1 failure, 64 usage, 78 bad configuration\n");
}

int
main(int argc, char **argv)
{
	size_t i;
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 64 : 0;
	}
	if (sodium_init() < 0)
		return 1;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		p25_config_load_or_exit(&cli_cfg);
		p25_log_init("p25ctl", cli_cfg.log_level);
		rc = commands[i].fn(argc - 1, argv + 1);
		p25_config_free(&cli_cfg);
		return rc;
	}
	fprintf(stderr, "p25ctl: unknown command %s\n", argv[1]);
	usage(stderr);
	return 64;
}
