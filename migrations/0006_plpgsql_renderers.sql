-- 0006 — the JSON renderers as PL/pgSQL.
--
-- p25_request_json, p25_request_summary and p25_exemption_json were plain
-- SQL functions that PostgreSQL cannot inline (they return a row-derived
-- jsonb with sub-selects), so their bodies were parsed and planned again on
-- every call — most of the database time of GET /v1/requests/{id}
-- (measured by the benchmark).  PL/pgSQL prepares the query once per
-- session and keeps the plan.  Same results, same rights (invoker, so
-- row-level security still applies).

CREATE OR REPLACE FUNCTION p25_request_json(rid uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $f$
BEGIN
    RETURN (SELECT jsonb_build_object(
    'id', r.id,
    'tenant', r.tenant_id,
    'status', r.status,
    'addresses', (SELECT coalesce(jsonb_agg(a.prefix::text ORDER BY a.position), '[]')
                    FROM request_addresses a WHERE a.request_id = r.id),
    'use_case', r.use_case,
    'description', r.description,
    'sender_domains', to_jsonb(r.sender_domains),
    'expected_daily_volume', r.expected_daily_volume,
    'contact_email', r.contact_email,
    'version', r.version,
    'created_at', r.created_at,
    'updated_at', r.updated_at,
    'checks', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'name', c.name, 'subject', c.subject, 'outcome', c.outcome,
                    'hint', c.hint, 'evidence', c.evidence) ORDER BY c.id), '[]')
                 FROM checks c WHERE c.request_id = r.id AND c.round = r.vetting_round),
    'decision', (SELECT jsonb_build_object(
                    'decision', d.decision, 'reason_codes', to_jsonb(d.reason_codes),
                    'message', d.message, 'policy_version', d.policy_version,
                    'reapply_after', d.reapply_after, 'decided_at', d.created_at)
                   FROM decisions d WHERE d.request_id = r.id
                  ORDER BY d.id DESC LIMIT 1),
    'exemptions', (SELECT coalesce(jsonb_agg(e.id ORDER BY e.created_at), '[]')
                     FROM exemptions e WHERE e.request_id = r.id),
    'messages', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'role', m.role, 'body', m.body, 'created_at', m.created_at)
                    ORDER BY m.id), '[]')
                   FROM messages m WHERE m.request_id = r.id))
  FROM requests r WHERE r.id = rid);
END
$f$;

CREATE OR REPLACE FUNCTION p25_request_summary(r requests) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $f$
BEGIN
    RETURN (SELECT jsonb_build_object(
    'id', r.id, 'tenant', r.tenant_id, 'status', r.status, 'use_case', r.use_case,
    'addresses', (SELECT coalesce(jsonb_agg(a.prefix::text ORDER BY a.position), '[]')
                    FROM request_addresses a WHERE a.request_id = r.id),
    'version', r.version, 'created_at', r.created_at, 'updated_at', r.updated_at));
END
$f$;

CREATE OR REPLACE FUNCTION p25_exemption_json(x exemptions) RETURNS jsonb
    LANGUAGE plpgsql STABLE AS $f$
BEGIN
    RETURN (SELECT jsonb_build_object(
    'id', x.id, 'tenant', x.tenant_id, 'request', x.request_id, 'cidr', x.prefix::text,
    'status', x.status, 'status_reason', x.status_reason, 'expires_at', x.expires_at,
    'created_at', x.created_at, 'updated_at', x.updated_at,
    'dest', to_jsonb(x.dest), 'rate', x.rate, 'cooldown_until', x.cooldown_until,
    'suspensions', x.suspensions, 'suspended_cause', x.suspended_cause,
    'expiring_soon', x.expiry_warned_at IS NOT NULL AND x.status = 'active',
    'token', (SELECT t.jws FROM tokens t WHERE t.exemption_id = x.id AND t.current
                AND x.status = 'active' AND t.expires_at > now()),
    'token_expires_at', (SELECT t.expires_at FROM tokens t WHERE t.exemption_id = x.id
                           AND t.current AND x.status = 'active'),
    'applied_nodes', (SELECT count(*) FROM enforcement_nodes n
                       WHERE n.acked_seq >= (SELECT max(f.seq) FROM feed_events f
                                              WHERE f.exemption_id = x.id)),
    'nodes', (SELECT count(*) FROM enforcement_nodes)));
END
$f$;
