-- 0016 — p25_submit writes in one statement and builds its answer itself.
--
-- A submit's cost is PostgreSQL's CPU (bench/run.sh), and much of it was
-- per statement: four INSERTs, each its own executor start and end inside
-- the function, and then p25_request_json, which reads the request back
-- from six tables (one row and five empty lists for a request just made).
-- The four INSERTs are now one statement (data-modifying WITH: the
-- request, its addresses, the vetting job, the audit row), and the answer
-- is built from the rows that statement wrote.  Same rows, same locks,
-- same rights (security invoker, row-level security), same answers: the
-- answer is the object p25_request_json gives for the new request, which
-- the tests check byte for byte against GET /v1/requests/{id}.
--
-- The open-request count read every request the tenant ever filed: the
-- only index it could use was requests_tenant_created (tenant_id, ...),
-- and the status filter needed a heap visit per row, so a submit's cost
-- grew with the tenant's whole history, open or not (pgbench, one
-- client, groups of eight: 0.72 ms a submit at ~200 requests per tenant,
-- 0.49 ms once the count had nothing to read).  With requests_tenant_status
-- the count visits the tenant's open requests only: at most the cap's
-- worth.  (Not a partial index of the open requests: that one is small
-- enough that the planner took it to filter the review queue by status,
-- in a bitmap AND that then had to sort the queue — review.test.mjs.)

CREATE INDEX requests_tenant_status ON requests (tenant_id, status);

CREATE OR REPLACE FUNCTION p25_submit(
    p_tenant text, p_actor text, p_key text, p_hash text,
    p_use_case text, p_description text, p_domains jsonb, p_volume integer,
    p_email text, p_cidrs cidr[], p_details jsonb,
    p_rate_limit bigint, p_max_open bigint)
    RETURNS TABLE (o_kind text, o_status integer, o_body text, o_etag text,
                   o_location text, o_headers text, o_hash text)
    LANGUAGE plpgsql VOLATILE AS $f$
DECLARE
    v_standing text;
    v_recent bigint;
    v_wait bigint;
    v_open bigint;
    v_missing text;
    v_id uuid;
    v_n bigint;
    v_body text;
    v_version bigint;
    v_etag text;
    v_location text;
BEGIN
    IF p_key IS NOT NULL THEN
        IF NOT pg_try_advisory_xact_lock(hashtext('p25.idem:' || p_tenant || ':' || p_key)) THEN
            RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'idempotency_in_flight';
        END IF;
        RETURN QUERY
            SELECT 'replay'::text, k.status, convert_from(k.body, 'UTF8'), NULL::text,
                   NULL::text, k.headers::text, encode(k.body_hash, 'hex')
              FROM idempotency_keys k
             WHERE k.tenant_id = p_tenant AND k.key = p_key AND k.expires_at > now();
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    -- the rate limit and the open-request cap hold under concurrency
    PERFORM pg_advisory_xact_lock(hashtext('p25.submit:' || p_tenant));
    SELECT (SELECT t.standing FROM tenants t WHERE t.id = p_tenant),
           CASE WHEN p_rate_limit > 0 THEN
               (SELECT count(*) FROM (SELECT 1 FROM requests r WHERE r.tenant_id = p_tenant
                   AND r.created_at > now() - interval '1 hour' LIMIT p_rate_limit) x)
           ELSE 0 END,
           (SELECT count(*) FROM (SELECT 1 FROM requests r WHERE r.tenant_id = p_tenant
               AND r.status = ANY ('{pending,vetting,needs_review,needs_info}')
               LIMIT p_max_open) y),
           (SELECT ',' || string_agg(a::text, ',') || ',' FROM unnest(p_cidrs) a
             WHERE NOT EXISTS (SELECT 1 FROM tenant_addresses t
                                WHERE t.tenant_id = p_tenant AND t.prefix >>= a))
      INTO v_standing, v_recent, v_open, v_missing;
    IF v_standing IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'tenant_unknown';
    ELSIF p_rate_limit > 0 AND v_recent >= p_rate_limit THEN
        SELECT ceil(extract(epoch FROM min(r.created_at) + interval '1 hour' - now()))
          INTO v_wait
          FROM requests r WHERE r.tenant_id = p_tenant
           AND r.created_at > now() - interval '1 hour';
        RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'rate_limited',
            DETAIL = coalesce(v_wait, 1)::text;
    ELSIF v_open >= p_max_open THEN
        RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'too_many_open_requests';
    ELSIF v_missing IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'P2501', MESSAGE = 'address_not_held',
            DETAIL = v_missing;
    END IF;

    -- the request, its addresses, the vetting job (its NOTIFY is sent by
    -- p25-api after the commit) and the audit row in one statement; the
    -- answer is built from the rows as written: a new request has no
    -- checks, decision, exemptions or messages yet.  The same object as
    -- p25_request_json(id) (requests.test.mjs compares the two byte for byte).
    WITH r AS (
        INSERT INTO requests (tenant_id, use_case, description, sender_domains,
                              expected_daily_volume, contact_email, vetting_round)
        VALUES (p_tenant, p_use_case, coalesce(p_description, ''),
                ARRAY(SELECT jsonb_array_elements_text(p_domains)), p_volume, p_email, 1)
        RETURNING *
    ), a AS (
        INSERT INTO request_addresses (request_id, tenant_id, prefix, position)
        SELECT r.id, p_tenant, x.a, x.o FROM r, unnest(p_cidrs) WITH ORDINALITY AS x(a, o)
        RETURNING prefix, position
    ), j AS (
        INSERT INTO jobs (kind, payload)
        SELECT 'vet', jsonb_build_object('request', r.id, 'round', 1) FROM r
    ), l AS (
        INSERT INTO audit_log (actor, action, object_type, object_id, tenant_id, details)
        SELECT p_actor, 'request.submit', 'request', r.id::text, p_tenant,
               coalesce(p_details, '{}') FROM r
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
      INTO v_id, v_version, v_n, v_body
      FROM r;
    IF v_n <> coalesce(cardinality(p_cidrs), 0) THEN
        RAISE EXCEPTION 'p25_submit: % of % addresses written', v_n, cardinality(p_cidrs);
    END IF;
    v_etag := '"' || v_version || '"';
    v_location := '/v1/requests/' || v_id;
    IF p_key IS NOT NULL THEN
        DELETE FROM idempotency_keys
         WHERE tenant_id = p_tenant AND key = p_key AND expires_at <= now();
        INSERT INTO idempotency_keys (tenant_id, key, body_hash, state, status, headers, body)
        VALUES (p_tenant, p_key, decode(p_hash, 'hex'), 'done', 202,
                jsonb_build_object('Location', v_location, 'ETag', v_etag),
                convert_to(v_body, 'UTF8'));
    END IF;
    RETURN QUERY SELECT 'created'::text, 202, v_body, v_etag, v_location, NULL::text, NULL::text;
END
$f$;

