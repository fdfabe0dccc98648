-- 0002_orleans_clustering.sql
-- SandboxBroker schema, step 2: Orleans cluster membership (Microsoft.Orleans.Clustering.AdoNet 10.4.2).
--
-- DeploymentId is ClusterOptions.ClusterId. A silo is identified by (@Address, @Port, @Generation).
-- Status values are Orleans' SiloStatus: 0 None, 1 Created, 2 Joining, 3 Active, 4 ShuttingDown,
-- 5 Stopping, 6 Dead.
--
-- Concurrency model (the Orleans "extended membership protocol"): the whole table of a deployment has
-- one version row in OrleansMembershipVersionTable. Readers get that version as the ETag of every
-- row. Every insert/update of a membership row names the version it read (@Version) and must, in
-- one transaction, (a) find the version row still at @Version, (b) change the membership row and
-- (c) bump the version. If any part does not happen, nothing happens and the query answers 0.
-- This is what keeps two silos from both winning a membership change.
--
-- Parameter types as the 10.4.2 provider binds them (Npgsql):
--   @DeploymentId text, @Address text (an IP address string), @Port int4, @Generation int4,
--   @SiloName text, @HostName text, @Status int4, @ProxyPort int4, @SuspectTimes text (NULL or
--   "silo,date|silo,date"), @StartTime and @IAmAliveTime timestamptz (UTC DateTime), @Version int4.
--
-- Idempotent: tables/indexes IF NOT EXISTS, functions CREATE OR REPLACE, query rows upserted.

-- ---------------------------------------------------------------------------------------------------
-- tables
-- ---------------------------------------------------------------------------------------------------

-- One row per deployment (cluster id): the version of that deployment's membership table.
CREATE TABLE IF NOT EXISTS OrleansMembershipVersionTable
(
    DeploymentId text        NOT NULL,
    Timestamp    timestamptz NOT NULL DEFAULT now(),
    Version      integer     NOT NULL DEFAULT 0,

    CONSTRAINT PK_OrleansMembershipVersionTable_DeploymentId PRIMARY KEY (DeploymentId)
);

-- One row per silo instance (address, port, generation) of a deployment.
CREATE TABLE IF NOT EXISTS OrleansMembershipTable
(
    DeploymentId text        NOT NULL,
    Address      text        NOT NULL,
    Port         integer     NOT NULL,
    Generation   integer     NOT NULL,
    SiloName     text        NOT NULL,
    HostName     text        NOT NULL,
    Status       integer     NOT NULL,
    ProxyPort    integer     NOT NULL DEFAULT 0,
    SuspectTimes text        NULL,
    StartTime    timestamptz NOT NULL,
    IAmAliveTime timestamptz NOT NULL,

    CONSTRAINT PK_MembershipTable_DeploymentId PRIMARY KEY (DeploymentId, Address, Port, Generation),
    CONSTRAINT FK_MembershipTable_MembershipVersionTable_DeploymentId
        FOREIGN KEY (DeploymentId) REFERENCES OrleansMembershipVersionTable (DeploymentId)
);

-- ---------------------------------------------------------------------------------------------------
-- functions (the two writes that must be atomic with the version row)
-- ---------------------------------------------------------------------------------------------------

-- Inserts a silo row if, and only if, the deployment's version is still p_version and the silo row
-- does not exist yet; then bumps the version. Returns 1 when it did all of that, 0 when it did
-- nothing (stale version, unknown deployment, or the silo row already exists).
CREATE OR REPLACE FUNCTION orleans_membership_insert(
    p_deployment_id   text,
    p_address         text,
    p_port            integer,
    p_generation      integer,
    p_silo_name       text,
    p_host_name       text,
    p_status          integer,
    p_proxy_port      integer,
    p_start_time      timestamptz,
    p_i_am_alive_time timestamptz,
    p_version         integer)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_rows integer;
BEGIN
    -- Lock the version row, but only while it is still at the version the caller read. Concurrent
    -- writers of the same deployment queue here; after the winner commits, the others re-check
    -- the version, see it moved, and find nothing.
    PERFORM 1
    FROM OrleansMembershipVersionTable
    WHERE DeploymentId = p_deployment_id
      AND Version = p_version
      AND Version < 2147483647
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;

    INSERT INTO OrleansMembershipTable
        (DeploymentId, Address, Port, Generation, SiloName, HostName, Status, ProxyPort,
         SuspectTimes, StartTime, IAmAliveTime)
    VALUES
        (p_deployment_id, p_address, p_port, p_generation, p_silo_name, p_host_name, p_status,
         COALESCE(p_proxy_port, 0), NULL, p_start_time, p_i_am_alive_time)
    ON CONFLICT (DeploymentId, Address, Port, Generation) DO NOTHING;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows = 0 THEN
        RETURN 0;   -- nothing written, version untouched
    END IF;

    UPDATE OrleansMembershipVersionTable
    SET Version = Version + 1,
        Timestamp = now()
    WHERE DeploymentId = p_deployment_id;
    RETURN 1;
END
$fn$;

-- Updates a silo row (status, suspect times, I-am-alive time) if, and only if, the deployment's
-- version is still p_version and the row exists; then bumps the version. Returns 1 or 0 as above.
-- IAmAliveTime never moves backwards.
CREATE OR REPLACE FUNCTION orleans_membership_update(
    p_deployment_id   text,
    p_address         text,
    p_port            integer,
    p_generation      integer,
    p_status          integer,
    p_suspect_times   text,
    p_i_am_alive_time timestamptz,
    p_version         integer)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_rows integer;
BEGIN
    PERFORM 1
    FROM OrleansMembershipVersionTable
    WHERE DeploymentId = p_deployment_id
      AND Version = p_version
      AND Version < 2147483647
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;

    UPDATE OrleansMembershipTable
    SET Status = p_status,
        SuspectTimes = p_suspect_times,
        IAmAliveTime = GREATEST(IAmAliveTime, p_i_am_alive_time)
    WHERE DeploymentId = p_deployment_id
      AND Address = p_address
      AND Port = p_port
      AND Generation = p_generation;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows = 0 THEN
        RETURN 0;   -- no such silo row: nothing written, version untouched
    END IF;

    UPDATE OrleansMembershipVersionTable
    SET Version = Version + 1,
        Timestamp = now()
    WHERE DeploymentId = p_deployment_id;
    RETURN 1;
END
$fn$;

-- ---------------------------------------------------------------------------------------------------
-- stored queries
-- ---------------------------------------------------------------------------------------------------
INSERT INTO OrleansQuery (QueryKey, QueryText)
VALUES

-- Creates the deployment's version row (Version 0) unless it exists.
-- Result: one row, one column; 1 = created, 0 = was already there.
('InsertMembershipVersionKey', $q$
    WITH created AS (
        INSERT INTO OrleansMembershipVersionTable (DeploymentId)
        VALUES (@DeploymentId)
        ON CONFLICT (DeploymentId) DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::integer AS row_count FROM created;
$q$),

-- Inserts this silo's row, atomically with the version check and bump (see orleans_membership_insert).
-- Result: one row, one column; 1 = inserted, 0 = stale @Version or row exists (nothing changed).
('InsertMembershipKey', $q$
    SELECT orleans_membership_insert(
        @DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName,
        @Status, @ProxyPort, @StartTime, @IAmAliveTime, @Version) AS row_count;
$q$),

-- Updates a silo row, atomically with the version check and bump (see orleans_membership_update).
-- Result: one row, one column; 1 = updated, 0 = stale @Version or no such row (nothing changed).
('UpdateMembershipKey', $q$
    SELECT orleans_membership_update(
        @DeploymentId, @Address, @Port, @Generation,
        @Status, @SuspectTimes, @IAmAliveTime, @Version) AS row_count;
$q$),

-- Heartbeat: moves IAmAliveTime forward (never backwards). Does not touch the version: it is not a
-- membership change. No result is read.
('UpdateIAmAlivetimeKey', $q$
    UPDATE OrleansMembershipTable
    SET IAmAliveTime = GREATEST(IAmAliveTime, @IAmAliveTime)
    WHERE DeploymentId = @DeploymentId AND @DeploymentId IS NOT NULL
      AND Address = @Address AND @Address IS NOT NULL
      AND Port = @Port AND @Port IS NOT NULL
      AND Generation = @Generation AND @Generation IS NOT NULL;
$q$),

-- One silo's row plus the table version. The version row is always returned (LEFT JOIN), with NULL
-- member columns when the silo has no row; no row at all when the deployment has no version row.
-- Columns read by name: DeploymentId, Address, Port, Generation, SiloName, HostName, Status,
-- ProxyPort, SuspectTimes, StartTime, IAmAliveTime, Version.
('MembershipReadRowKey', $q$
    SELECT
        v.DeploymentId,
        m.Address,
        m.Port,
        m.Generation,
        m.SiloName,
        m.HostName,
        m.Status,
        m.ProxyPort,
        m.SuspectTimes,
        m.StartTime,
        m.IAmAliveTime,
        v.Version
    FROM OrleansMembershipVersionTable v
    LEFT JOIN OrleansMembershipTable m
           ON m.DeploymentId = v.DeploymentId
          AND m.Address = @Address AND @Address IS NOT NULL
          AND m.Port = @Port AND @Port IS NOT NULL
          AND m.Generation = @Generation AND @Generation IS NOT NULL
    WHERE v.DeploymentId = @DeploymentId AND @DeploymentId IS NOT NULL;
$q$),

-- All silo rows of the deployment plus the table version, read in one snapshot; one row with NULL
-- member columns when there are no silos. Same columns as MembershipReadRowKey.
('MembershipReadAllKey', $q$
    SELECT
        v.DeploymentId,
        m.Address,
        m.Port,
        m.Generation,
        m.SiloName,
        m.HostName,
        m.Status,
        m.ProxyPort,
        m.SuspectTimes,
        m.StartTime,
        m.IAmAliveTime,
        v.Version
    FROM OrleansMembershipVersionTable v
    LEFT JOIN OrleansMembershipTable m
           ON m.DeploymentId = v.DeploymentId
    WHERE v.DeploymentId = @DeploymentId AND @DeploymentId IS NOT NULL;
$q$),

-- Deletes the whole deployment: its silo rows, then its version row.
('DeleteMembershipTableEntriesKey', $q$
    DELETE FROM OrleansMembershipTable
    WHERE DeploymentId = @DeploymentId AND @DeploymentId IS NOT NULL;
    DELETE FROM OrleansMembershipVersionTable
    WHERE DeploymentId = @DeploymentId AND @DeploymentId IS NOT NULL;
$q$),

-- Gateways for clients: silos with @Status (the provider passes 3 = Active) and a proxy port.
-- Columns read by name: Address, ProxyPort, Generation.
('GatewaysQueryKey', $q$
    SELECT Address, ProxyPort, Generation
    FROM OrleansMembershipTable
    WHERE DeploymentId = @DeploymentId AND @DeploymentId IS NOT NULL
      AND Status = @Status AND @Status IS NOT NULL
      AND ProxyPort > 0;
$q$),

-- Bulk clean-up of defunct silos (required key): deletes the deployment's rows whose IAmAliveTime is
-- before the cut-off @IAmAliveTime and that are not Active (3). 10.4.2 runs this only when
-- CleanupDefunctSiloEntryKey (below) is absent.
('CleanupDefunctSiloEntriesKey', $q$
    DELETE FROM OrleansMembershipTable
    WHERE DeploymentId = @DeploymentId AND @DeploymentId IS NOT NULL
      AND IAmAliveTime < @IAmAliveTime
      AND Status <> 3;
$q$),

-- Single-row clean-up (optional key; 10.4.2 prefers it when present): the provider reads all rows,
-- picks Dead (6) rows whose StartTime and IAmAliveTime are before the cut-off and that have no suspect
-- vote at or after it, and deletes each one here only if the row still holds exactly the values it
-- read (@StartTime, @IAmAliveTime, @SuspectTimes), so a row that changed meanwhile is kept.
-- An empty SuspectTimes and a NULL one are the same (the provider sends NULL for both).
('CleanupDefunctSiloEntryKey', $q$
    DELETE FROM OrleansMembershipTable
    WHERE DeploymentId = @DeploymentId AND @DeploymentId IS NOT NULL
      AND Address = @Address
      AND Port = @Port
      AND Generation = @Generation
      AND Status = 6
      AND StartTime = @StartTime
      AND IAmAliveTime = @IAmAliveTime
      AND COALESCE(SuspectTimes, '') = COALESCE(@SuspectTimes, '');
$q$)

ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText;
