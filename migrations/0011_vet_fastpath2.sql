-- 0011 — feed events written with their position (issue 4, throughput).
--
-- Feed positions are assigned in commit order (migration 0001,
-- p25_feed_sequence): a deferred trigger takes the feed's advisory lock at
-- commit, draws the next seq and UPDATEs the event — every event is
-- written twice (a second row version, new index entries, more WAL).
--
-- p25_feed_append writes a transaction's events with their seq in one go:
-- it takes the same lock (held until the end of the commit, as before),
-- gives positions to the new events and to those this transaction inserted
-- earlier without one, in the order they were written (by id), inserting
-- the new ones with theirs, and notifies p25_feed per event.
-- Called as the last statement before COMMIT (workers/vet.c, a batch's
-- grant events), it holds the lock from that statement to the end of the
-- commit: one client round trip longer than the trigger did.
-- Positions are still drawn under a lock that is released only after the
-- commit is visible, so seq order is commit order and a reader that sees N
-- never later sees a new event below N.
--
-- Rows inserted without a position (every other writer) keep the deferred
-- trigger; it now fires only for them (WHEN seq IS NULL), and skips an
-- event that p25_feed_append sequenced meanwhile.  The service role can no
-- longer write seq itself (column privileges): only p25_feed_append, under
-- the lock, and the trigger set it.

CREATE OR REPLACE FUNCTION p25_feed_sequence() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    s bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(25025025);
    UPDATE feed_events SET seq = nextval('feed_seq') WHERE id = NEW.id AND seq IS NULL
        RETURNING seq INTO s;
    IF FOUND THEN
        PERFORM pg_notify('p25_feed', s::text);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER feed_events_sequence ON feed_events;
CREATE CONSTRAINT TRIGGER feed_events_sequence AFTER INSERT ON feed_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.seq IS NULL)
    EXECUTE FUNCTION p25_feed_sequence();

REVOKE INSERT ON feed_events FROM p25_service;
GRANT INSERT (id, type, exemption_id, tenant_id, prefix, token, reason, created_at)
    ON feed_events TO p25_service;

-- p_events: JSON array of {id, type, exemption_id, tenant_id, prefix,
-- token?, reason?}; id drawn by the caller from feed_events_id_seq when it
-- would have inserted the event, so that ordering by id puts every event of
-- the transaction — these and those it inserted earlier without a position
-- (a superseded exemption's revoke) — in the order they were written, and
-- positions follow that order as they did when each was inserted in turn.
-- Row-level security as for the caller's own insert: every event must be
-- visible to the caller (p25_visible), else nothing is written.  Returns
-- the number of events of p_events inserted.
CREATE FUNCTION p25_feed_append(p_events jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    s bigint;
    n integer := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_events) e
                WHERE NOT p25_visible(e->>'tenant_id')) THEN
        RAISE EXCEPTION 'feed event of a tenant not visible to the caller'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(25025025);
    -- rows without a position visible here are this transaction's own:
    -- other transactions' are not committed yet (a committed event always
    -- has its position)
    FOR r IN SELECT u.id, u.e FROM (
                 SELECT f.id, NULL::jsonb AS e FROM feed_events f WHERE f.seq IS NULL
                 UNION ALL
                 SELECT (j.e->>'id')::bigint, j.e FROM jsonb_array_elements(p_events) AS j(e)
             ) u ORDER BY u.id LOOP
        s := nextval('feed_seq');
        IF r.e IS NULL THEN
            UPDATE feed_events SET seq = s WHERE id = r.id;
        ELSE
            INSERT INTO feed_events (id, seq, type, exemption_id, tenant_id, prefix, token,
                                     reason)
                VALUES (r.id, s, r.e->>'type', (r.e->>'exemption_id')::uuid,
                        r.e->>'tenant_id', (r.e->>'prefix')::cidr, r.e->>'token',
                        r.e->>'reason');
            n := n + 1;
        END IF;
        PERFORM pg_notify('p25_feed', s::text);
    END LOOP;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION p25_feed_append(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION p25_feed_append(jsonb) TO p25_service;
