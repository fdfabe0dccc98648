-- 0004_orleans_reminders.sql
-- SandboxBroker schema, step 4: Orleans reminders (Microsoft.Orleans.Reminders.AdoNet 10.4.2).
--
-- One row per (ServiceId, grain, reminder name). Version is the reminder's ETag: 0 on insert, +1 on
-- every upsert; a delete must name the current version.
--
-- Parameter types as bound by the provider (Npgsql):
--   @ServiceId text, @GrainId text (GrainId.ToString(), e.g. "claim/github:octo/repo#42"),
--   @ReminderName text, @StartTime timestamptz (UTC DateTime),
--   @Period = the period in MILLISECONDS, bound as int4 when it fits in int4 and as int8 otherwise
--             (stored as bigint, read back with GetInt64),
--   @GrainHash, @BeginHash, @EndHash = int4: the grain's uint uniform hash cast to a signed int,
--   @Version int4.
-- Range reads: the provider picks ReadRangeRows1Key when (int)begin < (int)end (a plain range
-- (begin, end]) and ReadRangeRows2Key otherwise (a range that wraps around the ring:
-- above begin OR at/below end; begin = end means the whole ring).
-- Columns read by name: GrainId, ReminderName, StartTime, Period, Version.
--
-- Idempotent: table/index IF NOT EXISTS, query rows upserted.

CREATE TABLE IF NOT EXISTS OrleansRemindersTable
(
    ServiceId    text        NOT NULL,
    GrainId      text        NOT NULL,
    ReminderName text        NOT NULL,
    StartTime    timestamptz NOT NULL,
    Period       bigint      NOT NULL,
    GrainHash    integer     NOT NULL,
    Version      integer     NOT NULL,

    CONSTRAINT PK_RemindersTable_ServiceId_GrainId_ReminderName PRIMARY KEY (ServiceId, GrainId, ReminderName)
);

-- Range reads by the silos that own a slice of the hash ring.
CREATE INDEX IF NOT EXISTS IX_RemindersTable_ServiceId_GrainHash
    ON OrleansRemindersTable (ServiceId, GrainHash);

INSERT INTO OrleansQuery (QueryKey, QueryText)
VALUES

-- Inserts a reminder (Version 0) or replaces its start time, period and hash (Version + 1).
-- Returns one row with the new Version (the new ETag).
('UpsertReminderRowKey', $q$
    INSERT INTO OrleansRemindersTable AS r
        (ServiceId, GrainId, ReminderName, StartTime, Period, GrainHash, Version)
    VALUES
        (@ServiceId, @GrainId, @ReminderName, @StartTime, CAST(@Period AS bigint), @GrainHash, 0)
    ON CONFLICT (ServiceId, GrainId, ReminderName) DO UPDATE
    SET StartTime = EXCLUDED.StartTime,
        Period = EXCLUDED.Period,
        GrainHash = EXCLUDED.GrainHash,
        Version = r.Version + 1
    RETURNING r.Version AS Version;
$q$),

-- All reminders of one grain.
('ReadReminderRowsKey', $q$
    SELECT GrainId, ReminderName, StartTime, Period, Version
    FROM OrleansRemindersTable
    WHERE ServiceId = @ServiceId AND @ServiceId IS NOT NULL
      AND GrainId = @GrainId AND @GrainId IS NOT NULL;
$q$),

-- One reminder of one grain (no row when it does not exist).
('ReadReminderRowKey', $q$
    SELECT GrainId, ReminderName, StartTime, Period, Version
    FROM OrleansRemindersTable
    WHERE ServiceId = @ServiceId AND @ServiceId IS NOT NULL
      AND GrainId = @GrainId AND @GrainId IS NOT NULL
      AND ReminderName = @ReminderName AND @ReminderName IS NOT NULL;
$q$),

-- Reminders whose grain hash is in (@BeginHash, @EndHash] (non-wrapping range).
('ReadRangeRows1Key', $q$
    SELECT GrainId, ReminderName, StartTime, Period, Version
    FROM OrleansRemindersTable
    WHERE ServiceId = @ServiceId AND @ServiceId IS NOT NULL
      AND GrainHash > @BeginHash AND @BeginHash IS NOT NULL
      AND GrainHash <= @EndHash AND @EndHash IS NOT NULL;
$q$),

-- Reminders whose grain hash is above @BeginHash or at/below @EndHash (wrapping range).
('ReadRangeRows2Key', $q$
    SELECT GrainId, ReminderName, StartTime, Period, Version
    FROM OrleansRemindersTable
    WHERE ServiceId = @ServiceId AND @ServiceId IS NOT NULL
      AND ((GrainHash > @BeginHash AND @BeginHash IS NOT NULL)
        OR (GrainHash <= @EndHash AND @EndHash IS NOT NULL));
$q$),

-- Deletes one reminder if its version is still @Version. One row, one column: 1 = deleted,
-- 0 = not found or version moved on.
('DeleteReminderRowKey', $q$
    WITH deleted AS (
        DELETE FROM OrleansRemindersTable
        WHERE ServiceId = @ServiceId AND @ServiceId IS NOT NULL
          AND GrainId = @GrainId AND @GrainId IS NOT NULL
          AND ReminderName = @ReminderName AND @ReminderName IS NOT NULL
          AND Version = @Version AND @Version IS NOT NULL
        RETURNING 1
    )
    SELECT count(*)::integer AS row_count FROM deleted;
$q$),

-- Deletes every reminder of the service.
('DeleteReminderRowsKey', $q$
    DELETE FROM OrleansRemindersTable
    WHERE ServiceId = @ServiceId AND @ServiceId IS NOT NULL;
$q$)

ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText;
