-- 0015 — the version of a request, for p25-api's cache of request bodies.
--
-- GET /v1/requests/{id} serves a body p25-api rendered earlier (under the
-- caller's row-level-security identity, for the caller's tenant) once it
-- knows the request is still at that version and still the tenant's.  That
-- probe is this view: one prepared primary-key lookup, with no identity to
-- set first.  It runs with the owner's rights (a view is not
-- security_invoker by default), so row-level security does not filter it:
-- it shows ids, tenants and versions, nothing of a request's content, and
-- p25-api asks it only for the (id, tenant) pair whose body it already
-- holds for that tenant — a body itself is only ever read under row-level
-- security.
CREATE VIEW request_versions AS
    SELECT id, tenant_id, version FROM requests;

REVOKE ALL ON request_versions FROM PUBLIC;
GRANT SELECT ON request_versions TO p25_service;
