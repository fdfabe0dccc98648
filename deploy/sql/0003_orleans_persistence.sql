-- 0003_orleans_persistence.sql
-- SandboxBroker schema, step 3: Orleans grain state (Microsoft.Orleans.Persistence.AdoNet 10.4.2).
--
-- One row per (ServiceId, state name, grain id). NOTE: the provider's "grain type" (@GrainTypeString,
-- @GrainTypeHash) is the STATE NAME given to [PersistentState("name", ...)], not the grain class
-- (dotnet/orleans#8746): two grain classes using the same state name and key share one row. Every
-- grain type needs its own state name.
--
-- Grain id columns, as the provider fills them:
--   integer key:  GrainIdN0 = 0, GrainIdN1 = the key, GrainIdExtensionString = key extension or NULL
--   Guid key:     GrainIdN0/GrainIdN1 = the Guid's two halves, GrainIdExtensionString = extension or NULL
--   string key:   GrainIdN0 = GrainIdN1 = 0, GrainIdExtensionString = the key itself
-- GrainIdHash and GrainTypeHash are int4 hashes (narrowing only; the full key is always compared).
--
-- The version contract (the ETag; it is the duplicate-activation backstop, so it is exact):
--   * Version is an int4 starting at 1 on the first write and +1 on every write or clear.
--   * Write with @GrainStateVersion NULL (nothing read from storage) inserts only if no row exists.
--   * Write with @GrainStateVersion = n updates only the row whose Version is still n.
--   * On success the write returns the new version in column NewGrainStateVersion; when nothing
--     was written it returns NULL there, and Orleans throws InconsistentStateException.
--   * Clear sets the payload to NULL and bumps the version (same WHERE Version = n rule), returning
--     the new version; a cleared row reads back as "no record" but keeps its version.
--   * Delete (only with DeleteStateOnClear = true) removes the row when Version = n.
-- A unique index over the full key makes concurrent first writes safe: exactly one INSERT wins.
--
-- Parameter types as bound by the provider (Npgsql): @GrainIdHash int4, @GrainIdN0 int8,
-- @GrainIdN1 int8, @GrainTypeHash int4, @GrainTypeString text, @GrainIdExtensionString text (may be
-- NULL), @ServiceId text, @GrainStateVersion int4 (may be NULL), @PayloadBinary bytea.
-- Only the binary payload is used (the 10.4.2 provider reads and writes PayloadBinary only).
--
-- Idempotent: table/index IF NOT EXISTS, functions CREATE OR REPLACE, query rows upserted.

CREATE TABLE IF NOT EXISTS OrleansStorage
(
    GrainIdHash            integer     NOT NULL,
    GrainIdN0              bigint      NOT NULL,
    GrainIdN1              bigint      NOT NULL,
    GrainTypeHash          integer     NOT NULL,
    GrainTypeString        text        NOT NULL,
    GrainIdExtensionString text        NULL,
    ServiceId              text        NOT NULL,
    PayloadBinary          bytea       NULL,
    ModifiedOn             timestamptz NOT NULL DEFAULT now(),
    Version                integer     NOT NULL
);

-- The identity of a state row. Long strings are indexed through md5() so that no key length can
-- exceed the btree entry limit; a NULL extension maps to '' (an md5 is never empty), so "no
-- extension" is one value and two first writes of the same grain conflict here.
CREATE UNIQUE INDEX IF NOT EXISTS UX_OrleansStorage_Key
    ON OrleansStorage (
        GrainIdHash,
        GrainTypeHash,
        ServiceId,
        GrainIdN0,
        GrainIdN1,
        md5(GrainTypeString),
        COALESCE(md5(GrainIdExtensionString), ''));

-- Writes a grain's state under the version contract above. Returns the new version, or NULL when
-- nothing was written (a row already exists for a first write, or the version moved on).
CREATE OR REPLACE FUNCTION orleans_storage_write(
    p_grain_id_hash             integer,
    p_grain_id_n0               bigint,
    p_grain_id_n1               bigint,
    p_grain_type_hash           integer,
    p_grain_type_string         text,
    p_grain_id_extension_string text,
    p_service_id                text,
    p_grain_state_version       integer,
    p_payload_binary            bytea)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_new_version integer;
BEGIN
    IF p_grain_state_version IS NULL THEN
        -- First write: only when there is no row at all. A concurrent first write of the same
        -- grain waits on the unique index and then does nothing.
        INSERT INTO OrleansStorage
            (GrainIdHash, GrainIdN0, GrainIdN1, GrainTypeHash, GrainTypeString,
             GrainIdExtensionString, ServiceId, PayloadBinary, ModifiedOn, Version)
        VALUES
            (p_grain_id_hash, p_grain_id_n0, p_grain_id_n1, p_grain_type_hash, p_grain_type_string,
             p_grain_id_extension_string, p_service_id, p_payload_binary, now(), 1)
        ON CONFLICT (GrainIdHash, GrainTypeHash, ServiceId, GrainIdN0, GrainIdN1,
                     md5(GrainTypeString), COALESCE(md5(GrainIdExtensionString), ''))
        DO NOTHING
        RETURNING Version INTO v_new_version;
    ELSE
        -- Later writes: only over the version the grain read or last wrote.
        UPDATE OrleansStorage
        SET PayloadBinary = p_payload_binary,
            ModifiedOn = now(),
            Version = Version + 1
        WHERE GrainIdHash = p_grain_id_hash
          AND GrainTypeHash = p_grain_type_hash
          AND ServiceId = p_service_id
          AND GrainIdN0 = p_grain_id_n0
          AND GrainIdN1 = p_grain_id_n1
          AND GrainTypeString = p_grain_type_string
          AND GrainIdExtensionString IS NOT DISTINCT FROM p_grain_id_extension_string
          AND Version = p_grain_state_version
        RETURNING Version INTO v_new_version;
    END IF;
    RETURN v_new_version;   -- NULL when no row was inserted or updated
END
$fn$;

INSERT INTO OrleansQuery (QueryKey, QueryText)
VALUES

-- Reads a grain's state. Zero rows = never written. Columns read by name: PayloadBinary (NULL after
-- a clear = "no record") and Version (the ETag).
('ReadFromStorageKey', $q$
    SELECT
        PayloadBinary,
        ModifiedOn,
        Version
    FROM OrleansStorage
    WHERE GrainIdHash = @GrainIdHash AND @GrainIdHash IS NOT NULL
      AND GrainTypeHash = @GrainTypeHash AND @GrainTypeHash IS NOT NULL
      AND ServiceId = @ServiceId AND @ServiceId IS NOT NULL
      AND GrainIdN0 = @GrainIdN0 AND @GrainIdN0 IS NOT NULL
      AND GrainIdN1 = @GrainIdN1 AND @GrainIdN1 IS NOT NULL
      AND GrainTypeString = @GrainTypeString AND @GrainTypeString IS NOT NULL
      AND GrainIdExtensionString IS NOT DISTINCT FROM @GrainIdExtensionString;
$q$),

-- Writes a grain's state (see orleans_storage_write). Exactly one row, column NewGrainStateVersion:
-- the new version, or NULL when nothing was written (Orleans then throws InconsistentStateException).
('WriteToStorageKey', $q$
    SELECT orleans_storage_write(
        @GrainIdHash, @GrainIdN0, @GrainIdN1, @GrainTypeHash, @GrainTypeString,
        @GrainIdExtensionString, @ServiceId, @GrainStateVersion, @PayloadBinary) AS NewGrainStateVersion;
$q$),

-- Clears a grain's state: payload to NULL and version + 1, only over @GrainStateVersion. Returns the
-- new version (first column), or no row when nothing matched (InconsistentStateException).
('ClearStorageKey', $q$
    UPDATE OrleansStorage
    SET PayloadBinary = NULL,
        ModifiedOn = now(),
        Version = Version + 1
    WHERE GrainIdHash = @GrainIdHash AND @GrainIdHash IS NOT NULL
      AND GrainTypeHash = @GrainTypeHash AND @GrainTypeHash IS NOT NULL
      AND ServiceId = @ServiceId AND @ServiceId IS NOT NULL
      AND GrainIdN0 = @GrainIdN0 AND @GrainIdN0 IS NOT NULL
      AND GrainIdN1 = @GrainIdN1 AND @GrainIdN1 IS NOT NULL
      AND GrainTypeString = @GrainTypeString AND @GrainTypeString IS NOT NULL
      AND GrainIdExtensionString IS NOT DISTINCT FROM @GrainIdExtensionString
      AND Version = @GrainStateVersion AND @GrainStateVersion IS NOT NULL
    RETURNING Version AS NewGrainStateVersion;
$q$),

-- Deletes a grain's state row (used only with DeleteStateOnClear = true), only over
-- @GrainStateVersion. Returns a value different from the old version (old + 1) when a row was
-- deleted, no row otherwise (InconsistentStateException). The next write then inserts afresh.
('DeleteStorageKey', $q$
    DELETE FROM OrleansStorage
    WHERE GrainIdHash = @GrainIdHash AND @GrainIdHash IS NOT NULL
      AND GrainTypeHash = @GrainTypeHash AND @GrainTypeHash IS NOT NULL
      AND ServiceId = @ServiceId AND @ServiceId IS NOT NULL
      AND GrainIdN0 = @GrainIdN0 AND @GrainIdN0 IS NOT NULL
      AND GrainIdN1 = @GrainIdN1 AND @GrainIdN1 IS NOT NULL
      AND GrainTypeString = @GrainTypeString AND @GrainTypeString IS NOT NULL
      AND GrainIdExtensionString IS NOT DISTINCT FROM @GrainIdExtensionString
      AND Version = @GrainStateVersion AND @GrainStateVersion IS NOT NULL
    RETURNING Version + 1 AS NewGrainStateVersion;
$q$)

ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText;
