-- 0012_grain_state.sql
-- SandboxBroker schema, step 12: the broker's own grain storage for the grains on the hot path (claims, sandboxes,
-- pools, owners, names), written by group commit (src/Persistence), and the deadline columns its sweeps read.
--
-- One row per (service, state name, grain key). The version is the ETag, with the same contract as OrleansStorage
-- (0003): a first write inserts only when no row exists, a later write updates only the row still at the version the
-- grain read or last wrote, and a write that changes nothing is that grain's InconsistentStateException. A clear
-- deletes the row (only at the grain's version), so forgotten claims leave nothing behind.
-- The payload starts with one format byte: 'B' Orleans' binary serializer, 'J' Orleans' JSON (rows carried over from
-- OrleansStorage, written by the ADO.NET provider's JSON serializer).
--
-- Idempotent: IF NOT EXISTS everywhere; the carry-over moves rows, so running it again finds none.

CREATE TABLE IF NOT EXISTS broker_grain_state
(
    service_id  text        NOT NULL,
    state_name  text        NOT NULL,   -- 'claim', 'sandbox', 'pool', 'owner', 'sandbox-name'
    grain_key   text        NOT NULL,   -- the grain's string key
    version     integer     NOT NULL,
    payload     bytea       NOT NULL,
    modified_on timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_id, state_name, grain_key)
) WITH (fillfactor = 80);             -- room for HOT updates: a write changes the payload, never the key

-- When the sweeps must wake a grain whose activation may be gone (its silo died): a lease's deadline, a release or
-- a deletion to retry, history to prune. NULL: nothing to do. Written with the state, in the same statement.
ALTER TABLE broker_claims ADD COLUMN IF NOT EXISTS wake_at timestamptz NULL;
ALTER TABLE broker_sandboxes ADD COLUMN IF NOT EXISTS wake_at timestamptz NULL;
CREATE INDEX IF NOT EXISTS ix_broker_claims_wake ON broker_claims (pool, wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_broker_sandboxes_wake ON broker_sandboxes (pool, wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_broker_sandboxes_pool_live ON broker_sandboxes (pool) WHERE status NOT IN ('deleted', 'stale');

-- Carry-over from the ADO.NET store, for a broker upgraded in place: the hot grains' rows move here (JSON payloads,
-- marked 'J'); the index rows of what they describe get a wake time so the sweeps take over from the per-lease and
-- per-sandbox reminders, whose rows go.
WITH moved AS (
    DELETE FROM OrleansStorage
    WHERE GrainTypeString IN ('claim', 'sandbox', 'pool', 'owner', 'sandbox-name')
      AND GrainIdN0 = 0 AND GrainIdN1 = 0 AND GrainIdExtensionString IS NOT NULL
    RETURNING ServiceId, GrainTypeString, GrainIdExtensionString, Version, PayloadBinary)
INSERT INTO broker_grain_state (service_id, state_name, grain_key, version, payload)
SELECT ServiceId, GrainTypeString, GrainIdExtensionString, Version, '\x4a'::bytea || PayloadBinary
FROM moved
WHERE PayloadBinary IS NOT NULL
ON CONFLICT DO NOTHING;

UPDATE broker_claims SET wake_at = expires_at WHERE status = 'active' AND wake_at IS NULL;
UPDATE broker_sandboxes SET wake_at = now() WHERE status IN ('releasing', 'deleting', 'failed') AND wake_at IS NULL;
DELETE FROM OrleansRemindersTable WHERE ReminderName IN ('claim', 'delete');
