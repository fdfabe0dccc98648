-- 0015_tenancy.sql
-- SandboxBroker schema, step 15: claim keys belong to their tenant, and tenants have quotas.
--
-- A claim grain's id became '{tenant}/{claim key}' (two tenants' acquires of one key are two claims), and a requested
-- sandbox name's grain '{tenant}/{name}' (names are unique per tenant). broker_claims.claim_key and the claim events'
-- entity_id in broker_audit_log hold that id from now on.
--
-- Carry-over, once (the first run of this file; a re-run finds it recorded in broker_schema_migrations and skips it):
-- every claim row moves to the id of the tenant that owns it, as its index row names it (the index row is written in
-- the same statement as the state, so every claim has one); a claim row without a tenant (never leased: nothing to
-- keep) is deleted. Every name row moves to the tenant of the live sandbox that carries the name; a name no live
-- sandbox carries is free, and its row is deleted. Owners were already per tenant ('{tenant}/{owner}') and keep their
-- rows; sandboxes keep theirs (they name their claim by key and tenant). Claim events written before stay under the
-- bare key: the audit log is append-only.
-- Stop every silo of the old version before starting a new one: an old silo would look for the old ids.

CREATE TABLE IF NOT EXISTS broker_tenant_quotas
(
    tenant                 text        PRIMARY KEY,
    max_active_leases      integer     NULL,       -- NULL: the default (Broker:Tenants:MaxActiveLeases)
    max_sandboxes_per_pool integer     NULL,       -- NULL: the default share of each pool's max total (Broker:Tenants:PoolShare)
    allowed_pools          text[]      NULL,       -- NULL: every pool
    updated_at             timestamptz NOT NULL DEFAULT now()
);

DO $carry$
BEGIN
    IF EXISTS (SELECT FROM broker_schema_migrations WHERE file_name LIKE '0015\_%') THEN
        RETURN;
    END IF;

    -- Claims: state rows first (joined to their index rows by the old key), then the index rows.
    UPDATE broker_grain_state g
    SET grain_key = c.tenant || '/' || g.grain_key
    FROM broker_claims c
    WHERE g.state_name = 'claim' AND c.claim_key = g.grain_key AND c.tenant IS NOT NULL;

    DELETE FROM broker_grain_state g
    WHERE g.state_name = 'claim'
      AND NOT EXISTS (SELECT FROM broker_claims c WHERE c.tenant IS NOT NULL AND c.tenant || '/' || c.claim_key = g.grain_key);

    UPDATE broker_claims SET claim_key = tenant || '/' || claim_key WHERE tenant IS NOT NULL;
    DELETE FROM broker_claims WHERE tenant IS NULL;

    -- Names: to the tenant of the live sandbox that carries the name; the rest are free.
    WITH holders AS (
        SELECT DISTINCT ON (name) name, tenant
        FROM broker_sandboxes
        WHERE name IS NOT NULL AND tenant IS NOT NULL AND status IN ('leased', 'releasing')
        ORDER BY name, updated_at DESC)
    UPDATE broker_grain_state g
    SET grain_key = h.tenant || '/' || g.grain_key
    FROM holders h
    WHERE g.state_name = 'sandbox-name' AND h.name = g.grain_key;

    DELETE FROM broker_grain_state g
    WHERE g.state_name = 'sandbox-name'
      AND NOT EXISTS (SELECT FROM broker_sandboxes s
                      WHERE s.name IS NOT NULL AND s.tenant IS NOT NULL AND s.status IN ('leased', 'releasing')
                        AND s.tenant || '/' || s.name = g.grain_key);
END
$carry$;
