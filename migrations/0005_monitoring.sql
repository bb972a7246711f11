-- 0005 — watching after approval: scheduled re-checks, suspension causes,
-- expiry warnings.

-- When each active exemption is re-checked next.  New exemptions start at a
-- random point of the interval, so re-checks spread evenly over it instead
-- of arriving in bursts; after each check the time moves on by one interval.
ALTER TABLE exemptions
    ADD COLUMN next_check_at timestamptz NOT NULL DEFAULT now() + random() * interval '1 hour',
    ADD COLUMN check_errors integer NOT NULL DEFAULT 0,
    ADD COLUMN suspended_cause text,
    ADD COLUMN expiry_warned_at timestamptz;
CREATE INDEX exemptions_next_check ON exemptions (next_check_at) WHERE status = 'active';
CREATE INDEX exemptions_tenant_prefix ON exemptions (tenant_id, prefix);

-- the exemption as tenants and reviewers see it, now with the monitoring
-- fields: how often it was suspended, why, and whether it expires soon
CREATE OR REPLACE FUNCTION p25_exemption_json(x exemptions) RETURNS jsonb
    LANGUAGE sql STABLE AS $$
SELECT jsonb_build_object(
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
    'nodes', (SELECT count(*) FROM enforcement_nodes))
$$;

-- a suspension (listing, abuse report) records what caused it
ALTER TABLE exemptions ADD CONSTRAINT exemptions_suspended_cause
    CHECK (suspended_cause IS NULL OR suspended_cause IN ('listing', 'abuse_report', 'review'));
