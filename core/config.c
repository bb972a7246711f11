/*
 * config.c — parsing the configuration table (see config.h).  Numbers are
 * parsed with strtol and bounds, never atoi.  Called once at start-up,
 * before any thread exists.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "p25/config.h"
#include "p25/err.h"

static const char *const enum_values[] = {
	"P25_LOG_LEVEL", "debug|info|warn|error",
	"P25_AUTH_ALG", "ES256|RS256|HS256",
	NULL
};

const struct p25_cfg_def p25_cfg_defs[] = {
#define P25_CFG_DEF(NAME, field, type, def, lo, hi, secret, doc) \
	{ "P25_" #NAME, P25_CFG_##type, def, lo, hi, secret, doc, \
	  offsetof(struct p25_config, field) },
	P25_CONFIG_TABLE(P25_CFG_DEF)
#undef P25_CFG_DEF
};
const size_t p25_cfg_ndefs = sizeof(p25_cfg_defs) / sizeof(p25_cfg_defs[0]);

char *
p25_read_file(const char *path, size_t cap, size_t *len)
{
	FILE *f;
	char *buf;
	size_t n;

	f = fopen(path, "rb");
	if (!f)
		return NULL;
	buf = malloc(cap + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, cap + 1, f);
	fclose(f);
	if (n > cap) {		/* larger than allowed */
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static const char *
enum_allowed(const char *name)
{
	int i;

	for (i = 0; enum_values[i]; i += 2)
		if (strcmp(enum_values[i], name) == 0)
			return enum_values[i + 1];
	return "";
}

static int
enum_ok(const char *allowed, const char *v)
{
	size_t n = strlen(v);
	const char *p = allowed;

	while (*p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, v, n) == 0)
			return 1;
		if (!bar)
			break;
		p = bar + 1;
	}
	return 0;
}

/* The value from P25_CONFIG_FILE for name, if any (static buffer). */
static const char *
file_value(const char *file, const char *name, char *out, size_t outlen)
{
	const char *p = file;
	size_t n = strlen(name);

	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' '))
			len--;
		if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t vlen = len - n - 1;
			if (vlen >= outlen)
				vlen = outlen - 1;
			memcpy(out, p + n + 1, vlen);
			out[vlen] = '\0';
			return out;
		}
		p = eol ? eol + 1 : NULL;
	}
	return NULL;
}

int
p25_config_load(struct p25_config *cfg, struct p25_err *err)
{
	const char *path = getenv("P25_CONFIG_FILE");
	char *file = NULL;
	char fbuf[4096];
	size_t i;
	int rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (path && *path) {
		file = p25_read_file(path, 1 << 20, NULL);
		if (!file)
			return p25_err_set(err, 500, "bad_config",
			    "P25_CONFIG_FILE: cannot read %s: %s", path,
			    strerror(errno));
	}
	for (i = 0; i < p25_cfg_ndefs; i++) {
		const struct p25_cfg_def *d = &p25_cfg_defs[i];
		char *base = (char *)cfg + d->offset;
		const char *v = getenv(d->name);
		char *end;
		long n;

		if (!v && file)
			v = file_value(file, d->name, fbuf, sizeof(fbuf));
		if (!v)
			v = d->def;
		switch (d->type) {
		case P25_CFG_STR:
		case P25_CFG_ENUM:
			if (d->type == P25_CFG_ENUM &&
			    !enum_ok(enum_allowed(d->name), v)) {
				rc = p25_err_set(err, 500, "bad_config",
				    "%s: \"%s\" is not one of %s", d->name, v,
				    enum_allowed(d->name));
				goto out;
			}
			*(char **)base = strdup(v);
			break;
		case P25_CFG_INT:
			errno = 0;
			n = strtol(v, &end, 10);
			if (errno || end == v || *end != '\0' || n < d->lo ||
			    n > d->hi) {
				rc = p25_err_set(err, 500, "bad_config",
				    "%s: \"%s\" is not a whole number in [%ld, %ld]",
				    d->name, v, d->lo, d->hi);
				goto out;
			}
			*(long *)base = n;
			break;
		case P25_CFG_BOOL:
			if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
			    strcmp(v, "yes") == 0)
				*(bool *)base = true;
			else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
			    strcmp(v, "no") == 0)
				*(bool *)base = false;
			else {
				rc = p25_err_set(err, 500, "bad_config",
				    "%s: \"%s\" is not true or false", d->name, v);
				goto out;
			}
			break;
		}
	}
	if (!cfg->migrate_database_url[0]) {
		free(cfg->migrate_database_url);
		cfg->migrate_database_url = strdup(cfg->database_url);
	}
	if (!strchr(cfg->listen, ':'))
		rc = p25_err_set(err, 500, "bad_config",
		    "P25_LISTEN: \"%s\" is not host:port", cfg->listen);
out:
	free(file);
	return rc;
}

void
p25_config_free(struct p25_config *cfg)
{
	size_t i;

	for (i = 0; i < p25_cfg_ndefs; i++) {
		const struct p25_cfg_def *d = &p25_cfg_defs[i];
		if (d->type == P25_CFG_STR || d->type == P25_CFG_ENUM) {
			char **p = (char **)((char *)cfg + d->offset);
			free(*p);
			*p = NULL;
		}
	}
}

void
p25_config_dump(const struct p25_config *cfg, FILE *out)
{
	size_t i;

	for (i = 0; i < p25_cfg_ndefs; i++) {
		const struct p25_cfg_def *d = &p25_cfg_defs[i];
		const char *base = (const char *)cfg + d->offset;

		switch (d->type) {
		case P25_CFG_STR:
		case P25_CFG_ENUM: {
			const char *s = *(char *const *)base;
			fprintf(out, "%s=%s\n", d->name,
				d->secret && s && *s ? "****" : (s ? s : ""));
			break;
		}
		case P25_CFG_INT:
			fprintf(out, "%s=%ld\n", d->name, *(const long *)base);
			break;
		case P25_CFG_BOOL:
			fprintf(out, "%s=%s\n", d->name,
				*(const bool *)base ? "true" : "false");
			break;
		}
	}
}

/* A Markdown table cell: '|' would end the cell, so it is escaped. */
static void
md_cell(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputs("\\|", out);
		else
			fputc(*s, out);
	}
}

void
p25_config_doc(FILE *out)
{
	static const char *const tn[] = { "string", "integer", "boolean", "enum" };
	size_t i;

	fprintf(out, "| variable | type | default | bounds | secret | meaning |\n");
	fprintf(out, "|---|---|---|---|---|---|\n");
	for (i = 0; i < p25_cfg_ndefs; i++) {
		const struct p25_cfg_def *d = &p25_cfg_defs[i];
		char bounds[64] = "";

		if (d->type == P25_CFG_INT)
			snprintf(bounds, sizeof(bounds), "%ld–%ld", d->lo, d->hi);
		else if (d->type == P25_CFG_ENUM)
			snprintf(bounds, sizeof(bounds), "%s", enum_allowed(d->name));
		fprintf(out, "| `%s` | %s | `%s` | ", d->name, tn[d->type], d->def);
		md_cell(out, bounds);
		fprintf(out, " | %s | ", d->secret ? "yes" : "");
		md_cell(out, d->doc);
		fprintf(out, " |\n");
	}
}

void
p25_config_load_or_exit(struct p25_config *cfg)
{
	struct p25_err err = { 0 };

	if (p25_config_load(cfg, &err) != 0) {
		fprintf(stderr, "p25: configuration error: %s\n", err.detail);
		p25_err_clear(&err);
		p25_config_free(cfg);
		exit(P25_EX_CONFIG);
	}
}
