-- 0020_lean_statistics.sql
-- SandboxBroker schema, step 20: the hot tables analyzed from a small sample, and only the columns queries filter on.
--
-- While leases are taken, autovacuum analyzes all four tables a lease writes at every visit (each is past its
-- threshold every minute at a few hundred leases a second), and on the 2-core machine a visit is the stall in a window
-- at 1,000 leases a second (docs/BENCHMARKS.md, rounds 21 and 24). Half of a visit's CPU was the analyzes: at the size
-- of a benchmark run (101k sandboxes), ANALYZE took about 290 ms on broker_sandboxes, 395 on broker_grain_state, 230 on
-- broker_audit_log and 170 on broker_claims. ANALYZE samples 300 rows per unit of the largest statistics target among
-- a table's columns (default 100: 30,000 rows) and computes statistics for every column with a target above 0.
--
-- Every query on these tables finds its rows through a primary key or a partial index whose predicate it repeats
-- (0017), and the columns they filter on have few distinct values (status, pool, provider) or are compared by range
-- (times): ten units (3,000 rows, an MCV list of ten, ten histogram buckets) describe them as well as the planner uses.
-- Columns no query filters on get no statistics. With this, the four took about 115, 115, 45 and 50 ms (round 25).
--
--   target 10: the columns in a WHERE, ORDER BY or join of src/Storage and src/Persistence;
--   target 0:  the rest (what a row carries: names, ids at the provider, owners, deadlines read with the row).
--
-- Idempotent. Takes a SHARE UPDATE EXCLUSIVE lock on each table for a moment (no effect on reads or writes).

ALTER TABLE broker_sandboxes
    ALTER COLUMN sandbox_id SET STATISTICS 10,
    ALTER COLUMN pool SET STATISTICS 10,
    ALTER COLUMN provider SET STATISTICS 10,
    ALTER COLUMN status SET STATISTICS 10,
    ALTER COLUMN tenant SET STATISTICS 10,
    ALTER COLUMN owner SET STATISTICS 10,
    ALTER COLUMN created_at SET STATISTICS 10,
    ALTER COLUMN updated_at SET STATISTICS 10,
    ALTER COLUMN wake_at SET STATISTICS 10,
    ALTER COLUMN name SET STATISTICS 0,
    ALTER COLUMN external_id SET STATISTICS 0,
    ALTER COLUMN claim_key SET STATISTICS 0,
    ALTER COLUMN expires_at SET STATISTICS 0,
    ALTER COLUMN details SET STATISTICS 0;

ALTER TABLE broker_claims
    ALTER COLUMN claim_key SET STATISTICS 10,
    ALTER COLUMN tenant SET STATISTICS 10,
    ALTER COLUMN pool SET STATISTICS 10,
    ALTER COLUMN sandbox_id SET STATISTICS 10,
    ALTER COLUMN status SET STATISTICS 10,
    ALTER COLUMN wake_at SET STATISTICS 10,
    ALTER COLUMN owner SET STATISTICS 0,
    ALTER COLUMN acquired_at SET STATISTICS 0,
    ALTER COLUMN expires_at SET STATISTICS 0,
    ALTER COLUMN last_activity_at SET STATISTICS 0,
    ALTER COLUMN updated_at SET STATISTICS 0;

ALTER TABLE broker_grain_state
    ALTER COLUMN service_id SET STATISTICS 10,
    ALTER COLUMN state_name SET STATISTICS 10,
    ALTER COLUMN grain_key SET STATISTICS 10,
    ALTER COLUMN version SET STATISTICS 0,
    ALTER COLUMN modified_on SET STATISTICS 0;

ALTER TABLE broker_audit_log
    ALTER COLUMN id SET STATISTICS 10,
    ALTER COLUMN occurred_at SET STATISTICS 10,
    ALTER COLUMN entity_type SET STATISTICS 10,
    ALTER COLUMN entity_id SET STATISTICS 10,
    ALTER COLUMN event SET STATISTICS 0,
    ALTER COLUMN from_state SET STATISTICS 0,
    ALTER COLUMN to_state SET STATISTICS 0,
    ALTER COLUMN actor SET STATISTICS 0;
