-- 0010 — the vetting fast path (issue 4, throughput).
--
-- Partial indexes for the history facts read before every decision
-- (core/vetting.c, p25_facts_load): a tenant's recent denials and its
-- abuse suspensions are a handful of rows, found without visiting every
-- decision and exemption the tenant ever had.
CREATE INDEX decisions_tenant_denied ON decisions (tenant_id, created_at)
    WHERE decision = 'deny';
CREATE INDEX exemptions_tenant_abuse ON exemptions (tenant_id)
    WHERE suspended_cause = 'abuse_report';

-- The database half of issuance (core/issue.c, p25_issue): for each of the
-- request's addresses (all, or those in p_prefixes), in request order,
-- supersedes the tenant's live exemption of that prefix (revoked, with its
-- revoke feed event) and creates the new active one, carrying the prefix's
-- repeat-offence count and cooldown over.  Returns what the tokens need.
-- One round trip instead of three per prefix; runs with the caller's
-- rights (row-level security applies as to the statements it replaces).
CREATE FUNCTION p25_issue_exemptions(p_request uuid, p_tenant text, p_prefixes cidr[],
    p_days integer, p_dest jsonb, p_rate integer, p_monitor integer)
    RETURNS TABLE (ex_id uuid, ex_prefix text, ex_iat bigint, ex_exp bigint,
                   ex_dest text, ex_rate integer)
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    a cidr;
BEGIN
    FOR a IN SELECT ra.prefix FROM request_addresses ra
             WHERE ra.request_id = p_request AND ra.tenant_id = p_tenant
               AND (p_prefixes IS NULL OR ra.prefix = ANY (p_prefixes))
             ORDER BY ra.position LOOP
        WITH old AS (
            UPDATE exemptions o SET status = 'revoked', updated_at = now(),
                   status_reason = 'superseded by request ' || p_request::text
             WHERE o.tenant_id = p_tenant AND o.prefix = a AND o.status IN ('active', 'suspended')
            RETURNING o.id, o.tenant_id, o.prefix)
        INSERT INTO feed_events (type, exemption_id, tenant_id, prefix, reason)
            SELECT 'revoke', old.id, old.tenant_id, old.prefix, 'superseded' FROM old;
        RETURN QUERY
            INSERT INTO exemptions AS x (tenant_id, request_id, prefix, expires_at, dest, rate,
                                         suspensions, cooldown_until, next_check_at)
            VALUES (p_tenant, p_request, a, now() + p_days * interval '1 day',
                    (SELECT array_agg(d::cidr) FROM jsonb_array_elements_text(p_dest) d),
                    p_rate,
                    (SELECT coalesce(max(o.suspensions), 0) FROM exemptions o
                      WHERE o.tenant_id = p_tenant AND o.prefix = a),
                    (SELECT max(o.cooldown_until) FROM exemptions o
                      WHERE o.tenant_id = p_tenant AND o.prefix = a),
                    now() + random() * p_monitor * interval '1 second')
            RETURNING x.id, x.prefix::text, floor(extract(epoch FROM now()))::bigint,
                      floor(extract(epoch FROM x.expires_at))::bigint, to_jsonb(x.dest)::text,
                      x.rate;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION p25_issue_exemptions(uuid, text, cidr[], integer, jsonb, integer, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION p25_issue_exemptions(uuid, text, cidr[], integer, jsonb, integer, integer)
    TO p25_service;

-- The rows of a policy decision (workers/vet.c), in one round trip: every
-- check row (p_checks: the JSON array of p25_checks_json), the decision,
-- the request's new status and the request.decide audit row.  The caller
-- holds the request's row lock and has checked that it is still vetting in
-- p_round; the job's fenced completion, the webhook and — on approval —
-- issuance follow in the same transaction.  Returns the check rows written.
CREATE FUNCTION p25_vet_record(p_request uuid, p_tenant text, p_round integer, p_checks jsonb,
    p_decision text, p_codes jsonb, p_message text, p_policy_version text,
    p_reapply_days integer, p_status text, p_details jsonb)
    RETURNS integer
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO checks (request_id, tenant_id, round, name, subject, outcome, evidence, hint)
        SELECT p_request, p_tenant, p_round, x->>'name', x->>'subject', x->>'outcome',
               coalesce(x->'evidence', '{}'), coalesce(x->>'hint', '')
          FROM jsonb_array_elements(p_checks) x;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO decisions (request_id, tenant_id, round, decision, actor, reason_codes,
                           message, policy_version, reapply_after)
        VALUES (p_request, p_tenant, p_round, p_decision, 'policy',
                ARRAY(SELECT jsonb_array_elements_text(p_codes)), p_message, p_policy_version,
                CASE WHEN p_decision = 'deny' THEN now() + p_reapply_days * interval '1 day' END);
    UPDATE requests SET status = p_status, version = version + 1, updated_at = now(),
           decided_at = CASE WHEN p_status IN ('approved', 'denied') THEN now() ELSE decided_at END
     WHERE id = p_request;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % vanished while being decided', p_request;
    END IF;
    INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, details)
        VALUES ('system:vetting', 'request.decide', 'request', p_request::text, p_tenant,
                coalesce(p_details, '{}'));
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION p25_vet_record(uuid, text, integer, jsonb, text, jsonb, text, text,
    integer, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION p25_vet_record(uuid, text, integer, jsonb, text, jsonb, text, text,
    integer, text, jsonb) TO p25_service;
