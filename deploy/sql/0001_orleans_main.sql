-- 0001_orleans_main.sql
-- SandboxBroker schema, step 1: the table of Orleans' stored queries.
--
-- The Orleans ADO.NET providers (clustering, persistence, reminders; Microsoft.Orleans.*.AdoNet 10.4.2)
-- ship no SQL and issue no SQL of their own except `SELECT QueryKey, QueryText FROM OrleansQuery`:
-- every other statement they run is the QueryText stored here under a well-known QueryKey.
-- The providers bind parameters by name (@DeploymentId, @GrainIdHash, ...) and read result columns by
-- name (case-insensitively), so the files that follow keep those names exactly.
--
-- Idempotent: safe to run any number of times. Later files upsert their rows with
--   INSERT ... ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText
-- so re-applying a file replaces its queries with the current text.
--
-- Unquoted identifiers fold to lower case in PostgreSQL (orleansquery.querykey); Npgsql matches
-- column names case-insensitively, which is what the providers rely on.

CREATE TABLE IF NOT EXISTS OrleansQuery
(
    QueryKey  varchar(64) NOT NULL,
    QueryText text        NOT NULL,

    CONSTRAINT OrleansQuery_Key PRIMARY KEY (QueryKey)
);

COMMENT ON TABLE OrleansQuery IS
    'Orleans ADO.NET stored queries (QueryKey -> QueryText), read by the providers at start-up. Managed by deploy/sql.';
