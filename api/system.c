/*
 * system.c — the public operational endpoints: /healthz, /readyz,
 * /openapi.yaml, the embedded static files, and GET /v1/whoami (the
 * caller's identity as the API sees it; no database).
 */
#include <string.h>

#include "api.h"
#include "static.h"
#include "p25/migrations.h"

const struct static_file *
static_find(const char *name)
{
	size_t i;

	for (i = 0; i < static_nfiles; i++)
		if (strcmp(static_files[i].name, name) == 0)
			return &static_files[i];
	return NULL;
}


void
sys_healthz(struct api_req *r, struct p25_db *db)
{
	api_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* Ready when the database answers and carries every migration we know. */
void
sys_readyz(struct api_req *r, struct p25_db *db)
{
	struct p25_err err = { 0 };
	int v = db ? p25_schema_applied(db, &err) : -1;

	if (v < 0) {
		p25_err_clear(&err);
		api_reply_json(r, 503, json_pack("{s:s, s:s}", "status", "unavailable",
		    "reason", "database not reachable"));
		api_header(r, "Retry-After", "2");
		return;
	}
	if (v < p25_schema_version) {
		api_reply_json(r, 503, json_pack("{s:s, s:s, s:i, s:i}",
		    "status", "unavailable", "reason", "migrations pending",
		    "schema", v, "wanted", p25_schema_version));
		api_header(r, "Retry-After", "5");
		return;
	}
	api_reply_json(r, 200, json_pack("{s:s, s:i}", "status", "ready", "schema", v));
}

static void
serve(struct api_req *r, const struct static_file *f, const char *cache)
{
	if (!f) {
		api_reply_problem(r, 404, "not_found", "no such file");
		return;
	}
	api_reply(r, 200, f->ctype, f->data, f->len);
	api_header(r, "Cache-Control", cache);
	if (strncmp(f->ctype, "text/html", 9) == 0)
		api_header(r, "Content-Security-Policy",
		    "default-src 'self'; script-src 'self'; style-src 'self'; "
		    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
		    "base-uri 'none'; form-action 'self'");
}

void
sys_openapi(struct api_req *r, struct p25_db *db)
{
	serve(r, static_find("openapi.yaml"), "public, max-age=300");
}

void
sys_static(struct api_req *r, struct p25_db *db)
{
	/* no-cache: a page and its scripts must change together after a deploy */
	serve(r, static_find(r->params[0]), "no-cache");
}

/* "/" → index.html, "/console" → console.html */
void
sys_page(struct api_req *r, struct p25_db *db)
{
	serve(r, static_find(strcmp(r->path, "/") == 0 ? "index.html" : "console.html"),
	      "no-cache");
}

void
sys_whoami(struct api_req *r, struct p25_db *db)
{
	json_t *roles = json_array();
	unsigned bit;

	for (bit = 1; bit <= P25_ROLE_REPORTER; bit <<= 1) {
		char name[32];
		if (!(r->who.roles & bit))
			continue;
		p25_roles_format(bit, name, sizeof(name));
		json_array_append_new(roles, json_string(name));
	}
	json_t *o = json_pack("{s:s, s:o, s:I}", "sub", r->who.sub, "roles", roles,
			      "expires_at", (json_int_t)r->who.exp);
	if (r->who.tenant[0])
		json_object_set_new(o, "tenant", json_string(r->who.tenant));
	else
		json_object_set_new(o, "tenant", json_null());
	api_reply_json(r, 200, o);
}
