/*
 * routes.c — the route table: the API surface as data.  Every row must be
 * an operation in openapi.yaml and every operation a row; a test
 * (tests/integration/routes.test.mjs) compares `p25-api --routes` with the
 * spec both ways.
 */
#include "api.h"

#define T P25_ROLE_TENANT
#define R P25_ROLE_REVIEWER
#define A P25_ROLE_ADMIN
#define E P25_ROLE_ENFORCER
#define P P25_ROLE_REPORTER


const struct api_route api_routes[] = {
	{ "GET", "/healthz", sys_healthz, 0, ROUTE_PUBLIC },
	{ "GET", "/readyz", sys_readyz, 0, ROUTE_PUBLIC | ROUTE_DB | ROUTE_DB_OPTIONAL },
	{ "GET", "/metrics", metrics_render, 0, ROUTE_PUBLIC | ROUTE_DB | ROUTE_DB_OPTIONAL },
	{ "GET", "/openapi.yaml", sys_openapi, 0, ROUTE_PUBLIC },
	{ "GET", "/.well-known/jwks.json", jwks_get, 0, ROUTE_PUBLIC | ROUTE_DB },
	{ "GET", "/v1/whoami", sys_whoami, 0, 0 },
	{ "GET", "/", sys_page, 0, ROUTE_PUBLIC },
	{ "GET", "/console", sys_page, 0, ROUTE_PUBLIC },
	{ "GET", "/static/{file}", sys_static, 0, ROUTE_PUBLIC },

	{ "POST", "/v1/requests", req_submit, T, ROUTE_DB | ROUTE_BODY | ROUTE_GROUP | ROUTE_GROUP_TENANTS },
	{ "GET", "/v1/requests", req_list, T, ROUTE_DB },
	{ "GET", "/v1/requests/{id}", req_get, T, ROUTE_DB | ROUTE_GROUP },
	{ "POST", "/v1/requests/{id}/withdraw", req_withdraw, T, ROUTE_DB },
	{ "POST", "/v1/requests/{id}/messages", req_message, T, ROUTE_DB | ROUTE_BODY },
	{ "POST", "/v1/requests/{id}/recheck", req_recheck, T, ROUTE_DB },
	{ "POST", "/v1/readiness", readiness, T, ROUTE_DB | ROUTE_BODY },
	{ "GET", "/v1/addresses/{ip}", addr_status, T, ROUTE_DB },

	{ "GET", "/v1/exemptions", exm_list, T, ROUTE_DB },
	{ "GET", "/v1/exemptions/{id}", exm_get, T, ROUTE_DB },
	{ "DELETE", "/v1/exemptions/{id}", exm_delete, T, ROUTE_DB },

	{ "POST", "/v1/exemptions/{id}/revoke", exm_revoke, R, ROUTE_DB | ROUTE_BODY },
	{ "POST", "/v1/exemptions/{id}/reinstate", exm_reinstate, R, ROUTE_DB | ROUTE_BODY },
	{ "GET", "/v1/webhook-deliveries", deliveries_list, T, ROUTE_DB },
	{ "GET", "/v1/webhook", webhook_get, T, ROUTE_DB },
	{ "POST", "/v1/webhook/secret", webhook_secret_rotate, T, ROUTE_DB },

	{ "GET", "/v1/review/queue", review_queue, R | A, ROUTE_DB },
	{ "GET", "/v1/review/requests/{id}", review_get, R | A, ROUTE_DB },
	{ "POST", "/v1/review/requests/{id}/claim", review_claim, R, ROUTE_DB },
	{ "POST", "/v1/review/requests/{id}/decision", review_decide, R, ROUTE_DB | ROUTE_BODY },
	{ "GET", "/v1/audit", audit_list, R | A, ROUTE_DB },
	{ "POST", "/v1/abuse-reports", abuse_report, P | R, ROUTE_DB | ROUTE_BODY },

	{ "GET", "/v1/enforcement/snapshot", enf_snapshot, E, ROUTE_DB },
	{ "GET", "/v1/enforcement/feed", enf_feed, E, ROUTE_DB | ROUTE_LONGPOLL },
	{ "POST", "/v1/enforcement/ack", enf_ack, E, ROUTE_DB | ROUTE_BODY },

	{ "PUT", "/v1/admin/tenants/{id}", admin_tenant_put, A, ROUTE_DB | ROUTE_BODY },
	{ "GET", "/v1/admin/tenants/{id}", admin_tenant_get, A, ROUTE_DB },
	{ "PUT", "/v1/admin/tenants/{id}/addresses", admin_addresses_put, A, ROUTE_DB | ROUTE_BODY },
	{ "GET", "/v1/admin/tenants/{id}/addresses", admin_addresses_get, A, ROUTE_DB },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
