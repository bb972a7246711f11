-- 0019 — a submit costs less of PostgreSQL: one index fewer, no nested
-- function call, and the tenant's inventory read through its primary key.
--
-- Figures: pgbench, one client, p25_submit_group with groups of sixteen
-- submits of distinct tenants, synchronous_commit off, against copies of
-- the bench's database (16,000 tenants, ~200,000 requests), alternating
-- runs; wall time a submit, which for one client is the backend's time.
--
-- request_addresses_prefix, a GiST index of every requested prefix, served
-- no query: request_addresses is read by request (its primary key) and by
-- tenant (request_addresses_tenant, GET /v1/addresses/{ip} filters the
-- tenant's few rows by prefix).  Every submit paid a GiST insertion for
-- it: 301–390 µs a submit with it, 273–307 without (three pairs).  The
-- cross-tenant questions about an address ("who holds it", "is it
-- exempt") read tenant_addresses and exemptions, whose GiST indexes stay.
--
-- p25_submit's body now runs inside p25_submit_group's loop instead of as
-- a function called once per submit (a call through SPI, a tuplestore for
-- its RETURN QUERY, a second take of the tenant's lock the group already
-- holds): 278–293 µs against 317–443 before (six pairs, five faster).
-- p25_submit, which nothing else called, is dropped.
--
-- The "addresses not held" check asked tenant_addresses for the tenant's
-- prefixes containing each address.  For tenant_id = $1 the planner costs
-- the exclusion constraint's GiST index (tenant_id, prefix) a hair below
-- the primary key (4.29 against 4.31 on the bench cluster) and takes it;
-- that scan read 27 buffers a lookup where the primary key reads 3
-- (EXPLAIN ANALYZE of 40 random tenants: 1,064 buffers against 120).  With
-- both conditions as the GiST's index conditions it read as many (1,100).
-- The tenant's prefixes are now read in the primary key's order, and the
-- function plans its statements with sorting disabled (SET enable_sort =
-- off), so the B-tree, which gives that order without a sort, is the only
-- plan for it not penalized, however the two indexes' costs come out (in
-- a small table the GiST and a sort were costed lower; requests.test.mjs
-- checks the plan).  The function's other statements have no plan without
-- their sorts (the items' order, the locks' order) and keep them, costed
-- above jit_above_cost by the setting: the function also sets jit = off,
-- or each of those statements is compiled by LLVM at every call (64 ms a
-- group, 4.6 ms a submit, measured).  JIT never pays for these
-- statements, which read a few rows each.  The
-- addresses are compared with the prefixes in memory: an inventory is a
-- handful of prefixes, and at most P25_MAX_ADDRESSES addresses are asked.
-- (A helper function with the SET clause of its own cost 5-15 % more a
-- submit: a call and a setting changed and restored per submit.)  With the
-- prefixes read inline in key order: 242–250 µs a submit against 278–293
-- (three pairs).
--
-- Together, this migration as written against the database before it:
-- 285, 285, 332 and 405 µs a submit against 385, 467, 372 and 444 (four
-- pairs on a noisy host: 9-39 % less, each pair).
-- Rows, locks, rights (security invoker, row-level security per submit),
-- refusals, stored idempotent answers and the answer bytes are unchanged;
-- the integration tests (requests, idempotency, isolation, submit_group)
-- check them.

DROP INDEX request_addresses_prefix;

CREATE OR REPLACE FUNCTION p25_submit_group(p_items jsonb, p_rate_limit bigint, p_max_open bigint)
    RETURNS TABLE (o_idx integer, o_kind text, o_status integer, o_body text, o_etag text,
                   o_location text, o_headers text, o_hash text, o_sqlstate text,
                   o_message text, o_detail text, o_constraint text, o_context text)
    LANGUAGE plpgsql VOLATILE
    SET enable_sort = off
    SET jit = off
    AS $f$
DECLARE
    v_item jsonb;
    v_idx integer;
    v_tenant text;
    v_key text;
    v_cidrs cidr[];
    v_standing text;
    v_recent bigint;
    v_wait bigint;
    v_open bigint;
    v_missing text;
    v_id uuid;
    v_n bigint;
    v_version bigint;
BEGIN
    IF jsonb_typeof(p_items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'p25_submit_group: p_items must be a JSON array';
    END IF;
    PERFORM pg_advisory_xact_lock(k.key)
       FROM (SELECT DISTINCT hashtext('p25.submit:' || (e->>'tenant')) AS key
               FROM jsonb_array_elements(p_items) e) k
      ORDER BY k.key;

    -- one submit after the other, each under its own identity (row-level
    -- security) and in its own subtransaction: a refusal or a failure
    -- undoes that submit alone and becomes its row
    FOR v_item, v_idx IN
        SELECT x.e, (x.o - 1)::integer
          FROM jsonb_array_elements(p_items) WITH ORDINALITY AS x(e, o) ORDER BY x.o
    LOOP
        o_idx := v_idx;
        o_kind := NULL; o_status := NULL; o_body := NULL; o_etag := NULL;
        o_location := NULL; o_headers := NULL; o_hash := NULL; o_sqlstate := NULL;
        o_message := NULL; o_detail := NULL; o_constraint := NULL; o_context := NULL;
        v_tenant := v_item->>'tenant';
        v_key := v_item->>'key';
        PERFORM set_config('p25.tenant', coalesce(v_item->>'rls_tenant', ''), true),
                set_config('p25.role', v_item->>'rls_role', true);
        BEGIN
            v_cidrs := (v_item->>'cidrs')::cidr[];
            IF v_key IS NOT NULL THEN
                IF NOT pg_try_advisory_xact_lock(hashtext('p25.idem:' || v_tenant || ':' || v_key)) THEN
                    RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'idempotency_in_flight';
                END IF;
                SELECT 'replay', k.status, convert_from(k.body, 'UTF8'), k.headers::text,
                       encode(k.body_hash, 'hex')
                  INTO o_kind, o_status, o_body, o_headers, o_hash
                  FROM idempotency_keys k
                 WHERE k.tenant_id = v_tenant AND k.key = v_key AND k.expires_at > now();
            END IF;
            IF o_kind IS NULL THEN
                -- the group holds every tenant's submit lock (above), so the
                -- rate limit and the open-request cap hold under concurrency
                SELECT (SELECT t.standing FROM tenants t WHERE t.id = v_tenant),
                       CASE WHEN p_rate_limit > 0 THEN
                           (SELECT count(*) FROM (SELECT 1 FROM requests r WHERE r.tenant_id = v_tenant
                               AND r.created_at > now() - interval '1 hour' LIMIT p_rate_limit) x)
                       ELSE 0 END,
                       (SELECT count(*) FROM (SELECT 1 FROM requests r WHERE r.tenant_id = v_tenant
                           AND r.status = ANY ((SELECT '{pending,vetting,needs_review,needs_info}'::text[])::text[])
                           LIMIT p_max_open) y),
                       (SELECT ',' || string_agg(a::text, ',') || ',' FROM unnest(v_cidrs) a
                         WHERE NOT EXISTS (SELECT 1 FROM unnest(ARRAY(
                                               SELECT t.prefix FROM tenant_addresses t
                                                WHERE t.tenant_id = v_tenant
                                                ORDER BY t.tenant_id, t.prefix)) h
                                            WHERE h >>= a))
                  INTO v_standing, v_recent, v_open, v_missing;
                IF v_standing IS NULL THEN
                    RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'tenant_unknown';
                ELSIF p_rate_limit > 0 AND v_recent >= p_rate_limit THEN
                    SELECT ceil(extract(epoch FROM min(r.created_at) + interval '1 hour' - now()))
                      INTO v_wait
                      FROM requests r WHERE r.tenant_id = v_tenant
                       AND r.created_at > now() - interval '1 hour';
                    RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'rate_limited',
                        DETAIL = coalesce(v_wait, 1)::text;
                ELSIF v_open >= p_max_open THEN
                    RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'too_many_open_requests';
                ELSIF v_missing IS NOT NULL THEN
                    RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'address_not_held',
                        DETAIL = v_missing;
                END IF;

                -- the request, its addresses, the vetting job (its NOTIFY is
                -- sent by p25-api after the commit) and the audit row in one
                -- statement; the answer is built from the rows as written and
                -- is the object p25_request_json(id) gives (requests.test.mjs)
                WITH r AS (
                    INSERT INTO requests (tenant_id, use_case, description, sender_domains,
                                          expected_daily_volume, contact_email, vetting_round)
                    VALUES (v_tenant, v_item->>'use_case', coalesce(v_item->>'description', ''),
                            ARRAY(SELECT jsonb_array_elements_text(v_item->'domains')),
                            (v_item->>'volume')::integer, v_item->>'email', 1)
                    RETURNING *
                ), a AS (
                    INSERT INTO request_addresses (request_id, tenant_id, prefix, position)
                    SELECT r.id, v_tenant, x.a, x.o FROM r, unnest(v_cidrs) WITH ORDINALITY AS x(a, o)
                    RETURNING prefix, position
                ), j AS (
                    INSERT INTO jobs (kind, payload)
                    SELECT 'vet', jsonb_build_object('request', r.id, 'round', 1) FROM r
                ), l AS (
                    INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, details)
                    SELECT v_item->>'actor', 'request.submit', 'request', r.id::text, v_tenant,
                           coalesce(v_item->'details', '{}') FROM r
                )
                SELECT r.id, r.version, (SELECT count(*) FROM a),
                       jsonb_build_object(
                           'id', r.id,
                           'tenant', r.tenant_id,
                           'status', r.status,
                           'addresses', (SELECT coalesce(jsonb_agg(a.prefix::text ORDER BY a.position), '[]')
                                           FROM a),
                           'use_case', r.use_case,
                           'description', r.description,
                           'sender_domains', to_jsonb(r.sender_domains),
                           'expected_daily_volume', r.expected_daily_volume,
                           'contact_email', r.contact_email,
                           'version', r.version,
                           'created_at', r.created_at,
                           'updated_at', r.updated_at,
                           'checks', '[]'::jsonb,
                           'decision', NULL::jsonb,
                           'exemptions', '[]'::jsonb,
                           'messages', '[]'::jsonb)::text
                  INTO v_id, v_version, v_n, o_body
                  FROM r;
                IF v_n <> coalesce(cardinality(v_cidrs), 0) THEN
                    RAISE EXCEPTION 'p25_submit_group: % of % addresses written', v_n, cardinality(v_cidrs);
                END IF;
                o_kind := 'created';
                o_status := 202;
                o_etag := '"' || v_version || '"';
                o_location := '/v1/requests/' || v_id;
                IF v_key IS NOT NULL THEN
                    DELETE FROM idempotency_keys
                     WHERE tenant_id = v_tenant AND key = v_key AND expires_at <= now();
                    INSERT INTO idempotency_keys (tenant_id, key, body_hash, state, status, headers, body)
                    VALUES (v_tenant, v_key, decode(v_item->>'hash', 'hex'), 'done', 202,
                            jsonb_build_object('Location', o_location, 'ETag', o_etag),
                            convert_to(o_body, 'UTF8'));
                END IF;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS o_sqlstate = RETURNED_SQLSTATE,
                                    o_message = MESSAGE_TEXT,
                                    o_detail = PG_EXCEPTION_DETAIL,
                                    o_constraint = CONSTRAINT_NAME,
                                    o_context = PG_EXCEPTION_CONTEXT;
            o_kind := 'error';
            o_status := NULL; o_body := NULL; o_etag := NULL;
            o_location := NULL; o_headers := NULL; o_hash := NULL;
        END;
        RETURN NEXT;
    END LOOP;
END
$f$;

DROP FUNCTION p25_submit(text, text, text, text, text, text, jsonb, integer, text,
                         cidr[], jsonb, bigint, bigint);
