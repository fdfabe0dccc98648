-- 0010_broker.sql
-- SandboxBroker schema, step 10: the broker's own tables.
--
-- The source of truth for claims and sandboxes is grain state (OrleansStorage). These tables are
-- an append-only audit log and queryable indexes for admin listing, stats and the gateway; the
-- index tables can be rebuilt from grain state. All times are timestamptz (UTC from .NET).
--
-- Idempotent: tables/indexes IF NOT EXISTS, function CREATE OR REPLACE, trigger dropped and re-created.

-- ---------------------------------------------------------------------------------------------------
-- audit log: append-only history of lifecycle events
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS broker_audit_log
(
    id          bigserial   PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    entity_type text        NOT NULL,   -- e.g. 'claim', 'sandbox', 'pool'
    entity_id   text        NOT NULL,   -- claim key, sandbox id, pool name
    event       text        NOT NULL,   -- e.g. 'acquired', 'transition', 'released'
    from_state  text        NULL,
    to_state    text        NULL,
    actor       text        NULL,       -- who caused it: a tenant/token, 'webhook', 'reminder', ...
    details     jsonb       NULL
);

-- History of one entity in order; retention pruning and time-range queries.
CREATE INDEX IF NOT EXISTS ix_broker_audit_log_entity
    ON broker_audit_log (entity_type, entity_id, id);
CREATE INDEX IF NOT EXISTS ix_broker_audit_log_occurred_at
    ON broker_audit_log (occurred_at);

-- Rows are never changed once written. DELETE stays allowed (retention pruning).
CREATE OR REPLACE FUNCTION broker_audit_log_forbid_update()
RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    RAISE EXCEPTION 'broker_audit_log is append-only: UPDATE of row % is not allowed', OLD.id;
END
$fn$;

DROP TRIGGER IF EXISTS broker_audit_log_no_update ON broker_audit_log;
CREATE TRIGGER broker_audit_log_no_update
    BEFORE UPDATE ON broker_audit_log
    FOR EACH ROW EXECUTE FUNCTION broker_audit_log_forbid_update();

-- ---------------------------------------------------------------------------------------------------
-- sandbox index: one row per sandbox the broker knows, for listing/filtering with a cursor
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS broker_sandboxes
(
    sandbox_id  text        PRIMARY KEY,    -- broker-assigned, stable before the provider is called
    pool        text        NOT NULL,
    provider    text        NOT NULL,
    status      text        NOT NULL,       -- provisioning|ready|leased|releasing|deleting|deleted|failed|stale
    name        text        NULL,
    external_id text        NULL,           -- the provider's own id
    tenant      text        NULL,
    owner       text        NULL,
    claim_key   text        NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    expires_at  timestamptz NULL,
    details     jsonb       NULL
);

CREATE INDEX IF NOT EXISTS ix_broker_sandboxes_status
    ON broker_sandboxes (status);
CREATE INDEX IF NOT EXISTS ix_broker_sandboxes_pool_status
    ON broker_sandboxes (pool, status);
CREATE INDEX IF NOT EXISTS ix_broker_sandboxes_tenant_created
    ON broker_sandboxes (tenant, created_at, sandbox_id);
CREATE INDEX IF NOT EXISTS ix_broker_sandboxes_created
    ON broker_sandboxes (created_at, sandbox_id);

-- ---------------------------------------------------------------------------------------------------
-- claim index: one row per claim key (its current or last lease)
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS broker_claims
(
    claim_key        text        PRIMARY KEY,   -- e.g. 'github:octo/repo#42'
    tenant           text        NULL,
    owner            text        NULL,
    pool             text        NOT NULL,
    sandbox_id       text        NULL,
    status           text        NOT NULL,      -- active|expired|released
    acquired_at      timestamptz NULL,
    expires_at       timestamptz NULL,
    last_activity_at timestamptz NULL,
    updated_at       timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_broker_claims_tenant
    ON broker_claims (tenant);
CREATE INDEX IF NOT EXISTS ix_broker_claims_status
    ON broker_claims (status);

-- ---------------------------------------------------------------------------------------------------
-- API tokens: only a hash of each bearer token is stored
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS broker_api_tokens
(
    token_id     text        PRIMARY KEY,
    token_hash   bytea       NOT NULL,
    tenant       text        NOT NULL,
    scopes       text[]      NOT NULL,
    name         text        NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NULL,
    revoked_at   timestamptz NULL,
    last_used_at timestamptz NULL,

    CONSTRAINT broker_api_tokens_token_hash_key UNIQUE (token_hash)
);

-- ---------------------------------------------------------------------------------------------------
-- GitHub webhook deliveries: dedupe on X-GitHub-Delivery, asynchronous processing with retries
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS broker_webhook_deliveries
(
    delivery_id  text        PRIMARY KEY,   -- X-GitHub-Delivery
    event        text        NOT NULL,      -- X-GitHub-Event
    action       text        NULL,
    repository   text        NULL,
    received_at  timestamptz NOT NULL,
    status       text        NOT NULL,      -- e.g. received|processed|failed|ignored
    attempts     integer     NOT NULL DEFAULT 0,
    processed_at timestamptz NULL,
    error        text        NULL,
    payload      bytea       NOT NULL       -- the raw body, as signed
);

CREATE INDEX IF NOT EXISTS ix_broker_webhook_deliveries_status_received
    ON broker_webhook_deliveries (status, received_at);
