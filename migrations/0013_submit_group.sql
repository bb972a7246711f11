-- 0013 — submits committed in groups.
--
-- A submit's cost is its commit's WAL flush, and PostgreSQL shares one
-- flush only among the transactions committing at that moment: at most
-- the size of p25-api's pool, where pgbench's 64 clients commit 64 at a
-- time.  p25-api therefore takes the submits waiting for a pool connection
-- together (api/http.c, api_group) and files them in one transaction with
-- one call of this function: one flush for the group.
--
-- Each submit still runs p25_submit whole, with the caller's own
-- row-level-security identity (set here, transaction-local, before the
-- call) and inside its own subtransaction (the EXCEPTION block): a submit
-- that is refused, or fails, rolls back alone — its rows, its audit row,
-- its locks — and comes back as an 'error' row carrying the SQLSTATE,
-- message, detail, constraint and context p25-api words the answer from,
-- exactly as from a p25_submit call of its own.  The others commit
-- together, each with its audit row.
--
-- Locks: p25_submit takes its tenant's submit lock, held to the commit.
-- Two groups taking the locks of tenants A and B in opposite orders would
-- wait on each other, so every tenant's lock of the group is taken first,
-- in the order of the lock keys (p25_submit's own call is then a re-entry
-- that never waits).  The Idempotency-Key lock is a try-lock: a key being
-- filed by another transaction answers idempotency_in_flight at once; the
-- same key twice in one group is a replay of the first answer.
--
-- p_items: a JSON array of objects, one per submit: rls_tenant, rls_role
-- (the identity), and p25_submit's arguments by name.  Rows come back in
-- the order of p_items, o_idx counting from 0.

CREATE FUNCTION p25_submit_group(p_items jsonb, p_rate_limit bigint, p_max_open bigint)
    RETURNS TABLE (o_idx integer, o_kind text, o_status integer, o_body text, o_etag text,
                   o_location text, o_headers text, o_hash text, o_sqlstate text,
                   o_message text, o_detail text, o_constraint text, o_context text)
    LANGUAGE plpgsql VOLATILE AS $f$
DECLARE
    v_item jsonb;
    v_idx integer;
    r record;
BEGIN
    IF jsonb_typeof(p_items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'p25_submit_group: p_items must be a JSON array';
    END IF;
    PERFORM pg_advisory_xact_lock(k.key)
       FROM (SELECT DISTINCT hashtext('p25.submit:' || (e->>'tenant')) AS key
               FROM jsonb_array_elements(p_items) e) k
      ORDER BY k.key;

    FOR v_item, v_idx IN
        SELECT x.e, (x.o - 1)::integer
          FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(e, o) ORDER BY x.o
    LOOP
        PERFORM set_config('p25.tenant', coalesce(v_item->>'rls_tenant', ''), true),
                set_config('p25.role', v_item->>'rls_role', true);
        o_idx := v_idx;
        BEGIN
            SELECT * INTO r
              FROM p25_submit(v_item->>'tenant', v_item->>'actor', v_item->>'key',
                              v_item->>'hash', v_item->>'use_case', v_item->>'description',
                              v_item->'domains', (v_item->>'volume')::integer,
                              v_item->>'email', (v_item->>'cidrs')::cidr[],
                              v_item->'details', p_rate_limit, p_max_open);
            o_kind := r.o_kind;
            o_status := r.o_status;
            o_body := r.o_body;
            o_etag := r.o_etag;
            o_location := r.o_location;
            o_headers := r.o_headers;
            o_hash := r.o_hash;
            o_sqlstate := NULL;
            o_message := NULL;
            o_detail := NULL;
            o_constraint := NULL;
            o_context := NULL;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS o_sqlstate = RETURNED_SQLSTATE,
                                    o_message = MESSAGE_TEXT,
                                    o_detail = PG_EXCEPTION_DETAIL,
                                    o_constraint = CONSTRAINT_NAME,
                                    o_context = PG_EXCEPTION_CONTEXT;
            o_kind := 'error';
            o_status := NULL;
            o_body := NULL;
            o_etag := NULL;
            o_location := NULL;
            o_headers := NULL;
            o_hash := NULL;
        END;
        RETURN NEXT;
    END LOOP;
END
$f$;

REVOKE ALL ON FUNCTION p25_submit_group(jsonb, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION p25_submit_group(jsonb, bigint, bigint) TO p25_service;
