-- 0001 — the p25 data model.
--
-- Applied by `p25ctl migrate` as the table owner, in one transaction.  The
-- services connect as a login role that is a member of p25_service and owns
-- nothing, so row-level security applies to them (owners bypass it).
--
-- Row-level security: every transaction of a service sets p25.role
-- ('tenant', 'staff' or 'system') and, for tenants, p25.tenant with
-- set_config(..., true).  A transaction that sets neither sees no
-- tenant-owned row at all: the second wall fails closed.

CREATE EXTENSION IF NOT EXISTS btree_gist;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'p25_service') THEN
        CREATE ROLE p25_service NOLOGIN;
    END IF;
END
$$;

-- true when the current transaction may see rows of tenant t
CREATE FUNCTION p25_visible(t text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT current_setting('p25.role', true) IN ('staff', 'system')
        OR (t IS NOT NULL AND current_setting('p25.role', true) = 'tenant'
            AND t = current_setting('p25.tenant', true))
$$;

CREATE TABLE tenants (
    id                 text PRIMARY KEY
                       CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    account_created_at timestamptz NOT NULL,
    verified           boolean NOT NULL DEFAULT false,
    standing           text NOT NULL DEFAULT 'good'
                       CHECK (standing IN ('good', 'delinquent', 'suspended')),
    webhook_url        text CHECK (webhook_url ~ '^https?://'),
    webhook_secret     text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- What each tenant holds.  No prefix may overlap another tenant's.
CREATE TABLE tenant_addresses (
    tenant_id  text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    prefix     cidr NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, prefix),
    CONSTRAINT tenant_addresses_no_overlap
        EXCLUDE USING gist (tenant_id WITH <>, prefix inet_ops WITH &&)
);
CREATE INDEX tenant_addresses_prefix ON tenant_addresses USING gist (prefix inet_ops);

CREATE TABLE requests (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             text NOT NULL REFERENCES tenants(id),
    status                text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'vetting', 'approved', 'denied',
                                            'needs_review', 'needs_info', 'withdrawn')),
    use_case              text NOT NULL
                          CHECK (use_case IN ('transactional', 'marketing', 'relay',
                                              'personal', 'other')),
    description           text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    sender_domains        text[] NOT NULL DEFAULT '{}',
    expected_daily_volume integer CHECK (expected_daily_volume >= 0),
    contact_email         text,
    version               integer NOT NULL DEFAULT 1,
    vetting_round         integer NOT NULL DEFAULT 0,
    claimed_by            text,
    claimed_until         timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    decided_at            timestamptz
);
CREATE INDEX requests_tenant_created ON requests (tenant_id, created_at DESC, id DESC);
CREATE INDEX requests_open ON requests (status, updated_at)
    WHERE status IN ('pending', 'vetting', 'needs_review', 'needs_info');

CREATE TABLE request_addresses (
    request_id uuid NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    tenant_id  text NOT NULL REFERENCES tenants(id),
    prefix     cidr NOT NULL,
    position   integer NOT NULL,
    PRIMARY KEY (request_id, prefix)
);
CREATE INDEX request_addresses_prefix ON request_addresses USING gist (prefix inet_ops);
CREATE INDEX request_addresses_tenant ON request_addresses (tenant_id);

-- Evidence: one row per check per subject per vetting round.
CREATE TABLE checks (
    id         bigserial PRIMARY KEY,
    request_id uuid NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    tenant_id  text NOT NULL REFERENCES tenants(id),
    round      integer NOT NULL,
    name       text NOT NULL,
    subject    text NOT NULL DEFAULT '',
    outcome    text NOT NULL CHECK (outcome IN ('pass', 'fail', 'warn', 'error')),
    evidence   jsonb NOT NULL DEFAULT '{}',
    hint       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checks_request ON checks (request_id, round);

CREATE TABLE decisions (
    id             bigserial PRIMARY KEY,
    request_id     uuid NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    tenant_id      text NOT NULL REFERENCES tenants(id),
    round          integer NOT NULL,
    decision       text NOT NULL
                   CHECK (decision IN ('approve', 'deny', 'needs_review', 'needs_info')),
    actor          text NOT NULL,
    reason_codes   text[] NOT NULL DEFAULT '{}',
    message        text NOT NULL DEFAULT '',
    policy_version text,
    reapply_after  timestamptz,
    scope          jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- the policy decides a vetting round once, even when two workers race
CREATE UNIQUE INDEX decisions_policy_once ON decisions (request_id, round) WHERE actor = 'policy';
CREATE INDEX decisions_request ON decisions (request_id, id);
CREATE INDEX decisions_tenant ON decisions (tenant_id, created_at);

CREATE TABLE messages (
    id         bigserial PRIMARY KEY,
    request_id uuid NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    tenant_id  text NOT NULL REFERENCES tenants(id),
    author     text NOT NULL,
    role       text NOT NULL CHECK (role IN ('tenant', 'reviewer', 'system')),
    body       text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_request ON messages (request_id, id);

CREATE TABLE exemptions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        text NOT NULL REFERENCES tenants(id),
    request_id       uuid NOT NULL REFERENCES requests(id),
    prefix           cidr NOT NULL,
    status           text NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'suspended', 'revoked', 'expired')),
    status_reason    text,
    dest             cidr[],
    rate             integer CHECK (rate > 0),
    expires_at       timestamptz NOT NULL,
    suspensions      integer NOT NULL DEFAULT 0,
    cooldown_until   timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- one live exemption per tenant and prefix
CREATE UNIQUE INDEX exemptions_one_live ON exemptions (tenant_id, prefix)
    WHERE status IN ('active', 'suspended');
CREATE INDEX exemptions_prefix ON exemptions USING gist (prefix inet_ops)
    WHERE status IN ('active', 'suspended');
CREATE INDEX exemptions_request ON exemptions (request_id);
CREATE INDEX exemptions_expiry ON exemptions (expires_at) WHERE status = 'active';

CREATE TABLE signing_keys (
    kid            text PRIMARY KEY,
    public_key     bytea NOT NULL CHECK (length(public_key) = 32),
    sealed_private bytea NOT NULL,
    nonce          bytea NOT NULL,
    status         text NOT NULL CHECK (status IN ('active', 'retiring', 'retired')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    retired_at     timestamptz,
    -- the last token this key signed expires then; it stays published until
    verify_until   timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE status = 'active';

CREATE TABLE tokens (
    id           bigserial PRIMARY KEY,
    exemption_id uuid NOT NULL REFERENCES exemptions(id),
    tenant_id    text NOT NULL REFERENCES tenants(id),
    kid          text NOT NULL REFERENCES signing_keys(kid),
    jws          text NOT NULL,
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    current      boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX tokens_one_current ON tokens (exemption_id) WHERE current;
CREATE INDEX tokens_expiry ON tokens (expires_at) WHERE current;

-- The feed: append-only for the service (insert and read, never change).
-- seq is the position nodes follow.  It is assigned at commit, under a
-- transaction-level advisory lock, by a deferred trigger: so seq order is
-- commit order, and a reader that sees seq N will never later see a new
-- event below N (a plain sequence value is taken at insert time, and a
-- transaction that took 10 could commit after one that took 11 — a node
-- already past 11 would miss 10 forever).  The lock is held only from the
-- trigger to the end of the commit.
CREATE TABLE feed_events (
    id           bigserial PRIMARY KEY,
    seq          bigint UNIQUE,
    type         text NOT NULL CHECK (type IN ('grant', 'renew', 'revoke')),
    exemption_id uuid NOT NULL REFERENCES exemptions(id),
    tenant_id    text NOT NULL,
    prefix       cidr NOT NULL,
    token        text,
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((type = 'revoke') = (token IS NULL))
);
CREATE SEQUENCE feed_seq;

CREATE FUNCTION p25_feed_sequence() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    s bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(25025025);
    s := nextval('feed_seq');
    UPDATE feed_events SET seq = s WHERE id = NEW.id;
    PERFORM pg_notify('p25_feed', s::text);
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER feed_events_sequence AFTER INSERT ON feed_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION p25_feed_sequence();
REVOKE ALL ON FUNCTION p25_feed_sequence() FROM PUBLIC;

CREATE TABLE enforcement_nodes (
    node       text PRIMARY KEY CHECK (node ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'),
    acked_seq  bigint NOT NULL DEFAULT 0,
    first_seen timestamptz NOT NULL DEFAULT now(),
    acked_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE abuse_reports (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source            text NOT NULL,
    report_id         text NOT NULL,
    format            text NOT NULL CHECK (format IN ('json', 'arf')),
    address           inet NOT NULL,
    category          text NOT NULL,
    evidence          jsonb NOT NULL DEFAULT '{}',
    observed_at       timestamptz,
    received_at       timestamptz NOT NULL DEFAULT now(),
    times_seen        integer NOT NULL DEFAULT 1,
    tenant_id         text REFERENCES tenants(id),
    exemption_id      uuid REFERENCES exemptions(id),
    UNIQUE (source, report_id)
);
CREATE INDEX abuse_reports_address ON abuse_reports USING gist (address inet_ops);
CREATE INDEX abuse_reports_tenant ON abuse_reports (tenant_id, received_at);

-- Idempotency-Key replays: the first answer, byte for byte, for 24 h.
CREATE TABLE idempotency_keys (
    tenant_id    text NOT NULL REFERENCES tenants(id),
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    body_hash    bytea NOT NULL,
    state        text NOT NULL DEFAULT 'in_flight' CHECK (state IN ('in_flight', 'done')),
    status       integer,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- The job queue (see workers/README.md).
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,31}$'),
    payload      jsonb NOT NULL DEFAULT '{}',
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'done', 'parked')),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 8 CHECK (max_attempts >= 1),
    run_at       timestamptz NOT NULL DEFAULT now(),
    locked_by    text,
    locked_until timestamptz,
    lease        bigint NOT NULL DEFAULT 0,
    last_error   text,
    dedupe_key   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX jobs_ready ON jobs (run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_dedupe ON jobs (kind, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.01,
                      autovacuum_analyze_scale_factor = 0.02);

-- The audit log: one row per state change, written in the same transaction
-- as the change.  Rows are chained afterwards, in (xid, seq) order, into
-- audit_chain by the sealer (BLAKE2b over the previous hash and the
-- canonical entry): a row only enters the chain once every transaction that
-- could still add a row before it has ended, so the chain order is final.
CREATE TABLE audit_log (
    seq         bigserial PRIMARY KEY,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   text NOT NULL,
    tenant_id   text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_object ON audit_log (object_id, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_xid ON audit_log (xid, seq);

CREATE TABLE audit_chain (
    pos        bigint PRIMARY KEY,
    seq        bigint NOT NULL UNIQUE REFERENCES audit_log(seq),
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL,
    sealed_at  timestamptz NOT NULL DEFAULT now()
);

-- ------------------------------------------------------------ security
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE request_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE checks ENABLE ROW LEVEL SECURITY;
ALTER TABLE decisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE exemptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE abuse_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE feed_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_rows ON tenants USING (p25_visible(id)) WITH CHECK (p25_visible(id));
CREATE POLICY tenant_rows ON tenant_addresses USING (p25_visible(tenant_id)) WITH CHECK (p25_visible(tenant_id));
CREATE POLICY tenant_rows ON requests USING (p25_visible(tenant_id)) WITH CHECK (p25_visible(tenant_id));
CREATE POLICY tenant_rows ON request_addresses USING (p25_visible(tenant_id)) WITH CHECK (p25_visible(tenant_id));
CREATE POLICY tenant_rows ON checks USING (p25_visible(tenant_id)) WITH CHECK (p25_visible(tenant_id));
CREATE POLICY tenant_rows ON decisions USING (p25_visible(tenant_id)) WITH CHECK (p25_visible(tenant_id));
CREATE POLICY tenant_rows ON messages USING (p25_visible(tenant_id)) WITH CHECK (p25_visible(tenant_id));
CREATE POLICY tenant_rows ON exemptions USING (p25_visible(tenant_id)) WITH CHECK (p25_visible(tenant_id));
CREATE POLICY tenant_rows ON tokens USING (p25_visible(tenant_id)) WITH CHECK (p25_visible(tenant_id));
CREATE POLICY tenant_rows ON idempotency_keys USING (p25_visible(tenant_id)) WITH CHECK (p25_visible(tenant_id));
CREATE POLICY staff_rows ON abuse_reports USING (current_setting('p25.role', true) IN ('staff', 'system'));
-- staff and system see the whole feed, a tenant the events of its own exemptions
CREATE POLICY read_rows ON feed_events FOR SELECT USING (p25_visible(tenant_id));
-- a tenant giving up its own exemption writes the revoke event
CREATE POLICY write_rows ON feed_events FOR INSERT WITH CHECK (p25_visible(tenant_id));
-- tenants write audit rows for their own actions and read their own
CREATE POLICY audit_rows ON audit_log USING (p25_visible(tenant_id))
    WITH CHECK (p25_visible(tenant_id));

GRANT USAGE ON SCHEMA public TO p25_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, tenant_addresses, requests, request_addresses,
    checks, decisions, messages, exemptions, tokens, idempotency_keys, abuse_reports,
    enforcement_nodes, jobs TO p25_service;
GRANT SELECT, INSERT, UPDATE ON signing_keys TO p25_service;
GRANT SELECT, INSERT ON feed_events, audit_log, audit_chain TO p25_service;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO p25_service;
GRANT EXECUTE ON FUNCTION p25_visible(text) TO p25_service;
GRANT SELECT ON schema_migrations TO p25_service;
