-- 0004 — review and tenant notifications.

-- One row per webhook POST a tenant should receive; the `webhook` job
-- delivers it, and the tenant sees failures here (GET /v1/webhook-deliveries).
CREATE TABLE webhook_deliveries (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text NOT NULL REFERENCES tenants(id),
    event        text NOT NULL,
    object_id    text NOT NULL,
    payload      jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    last_status  integer,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, created_at DESC);
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON webhook_deliveries USING (p25_visible(tenant_id))
    WITH CHECK (p25_visible(tenant_id));
GRANT SELECT, INSERT, UPDATE ON webhook_deliveries TO p25_service;

-- the review queue: open requests waiting for a person, oldest first
CREATE INDEX requests_review ON requests (updated_at, id)
    WHERE status IN ('needs_review', 'needs_info');
