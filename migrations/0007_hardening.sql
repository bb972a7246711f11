-- 0007 — hardening found by the tests.
--
-- The service inserts audit rows but must not choose where they sit in
-- the chain's order or when they claim to have happened: seq, xid and at
-- come from their defaults only.
REVOKE INSERT ON audit_log FROM p25_service;
GRANT INSERT (actor, action, object_type, object_id, tenant_id, details) ON audit_log TO p25_service;

-- "not spam" feedback (RFC 5965 not-spam) is stored as evidence and never
-- counts against the sender in the vetting history.
CREATE OR REPLACE FUNCTION p25_abuse_counts(category text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$ SELECT category <> 'not_spam' $$;
GRANT EXECUTE ON FUNCTION p25_abuse_counts(text) TO p25_service;
