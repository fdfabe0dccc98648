-- 0017_lean_indexes.sql
-- SandboxBroker schema, step 17: fewer index entries per lease.
--
-- Every status change of a sandbox or a claim writes a new row version of its index row. Because the status column is
-- indexed, Postgres cannot make that a heap-only update: the new version gets an entry in every index whose predicate
-- it satisfies, and each entry is written to the WAL. Benchmark round 8 counted 217,698 sandbox updates, none
-- heap-only, each entering seven indexes: most of the broker's 4 KB of WAL per lease against the baseline's 1.7 KB.
--
-- The full indexes on status go. Partial indexes keep what the sweeps and pools look up, so a row version enters them
-- only while it is in one of the statuses they serve (src/Storage/BrokerIndex.cs names the index each query reads; the
-- statuses are SandboxLifecycle's, written into the queries as literals so the planner can match these predicates):
--   ix_broker_sandboxes_waiting   a pool's ready and provisioning sandboxes (its restore, its stray-ready check);
--   ix_broker_sandboxes_pending   sandboxes pending deletion, oldest change first (the admin's deletion sweep);
--   ix_broker_sandboxes_tenant_listed  a tenant's sandboxes in creation order (a pool's spares have no tenant yet);
--   ix_broker_claims_tenant_active     a tenant's active claims (its grain counts them when it activates).
-- The audit log's time index becomes a BRIN index: rows are appended in time order, so a summary per range of pages
-- finds the rows past retention (its only reader), and an append to the unsummarized end of the table writes no index
-- entry at all. A warm acquire appends about four audit rows; their time-index entries and that index's page splits
-- were a tenth of its WAL.
-- Counting every row by status (the level gauges, the admin summary) reads the table whichever index exists.
--
-- Idempotent. On a large table each CREATE INDEX holds off writes to it while it builds: apply during a quiet moment.

DROP INDEX IF EXISTS ix_broker_sandboxes_status;
DROP INDEX IF EXISTS ix_broker_sandboxes_pool_status;
DROP INDEX IF EXISTS ix_broker_sandboxes_tenant_created;
DROP INDEX IF EXISTS ix_broker_claims_status;
DROP INDEX IF EXISTS ix_broker_claims_tenant;
DROP INDEX IF EXISTS ix_broker_audit_log_occurred_at;

CREATE INDEX IF NOT EXISTS ix_broker_sandboxes_waiting
    ON broker_sandboxes (pool, updated_at) WHERE status IN ('ready', 'provisioning');
CREATE INDEX IF NOT EXISTS ix_broker_sandboxes_pending
    ON broker_sandboxes (updated_at) WHERE status IN ('releasing', 'deleting');
CREATE INDEX IF NOT EXISTS ix_broker_sandboxes_tenant_listed
    ON broker_sandboxes (tenant, created_at, sandbox_id) WHERE tenant IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_broker_claims_tenant_active
    ON broker_claims (tenant) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS ix_broker_audit_log_occurred_brin
    ON broker_audit_log USING brin (occurred_at) WITH (autosummarize = on);
