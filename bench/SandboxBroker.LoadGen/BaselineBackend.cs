using Npgsql;

namespace SandboxBroker.LoadGen;

/// <summary>Which baseline: the minimal one (the floor) or the fair one (also the audit row and the refill the broker writes).</summary>
public enum BaselineVariant
{
    Minimal,
    Fair,
}

public static class BaselineVariants
{
    /// <summary>The target name in tables and JSON: "baseline" stays the minimal one, so its figures line up with earlier rounds.</summary>
    public static string Target(BaselineVariant variant) => variant == BaselineVariant.Fair ? "baseline-fair" : "baseline";

    /// <summary>Parses "minimal,fair" (the order is the run order; repeats are dropped).</summary>
    public static IReadOnlyList<BaselineVariant> Parse(string text)
    {
        var result = new List<BaselineVariant>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var variant = part switch
            {
                "minimal" => BaselineVariant.Minimal,
                "fair" => BaselineVariant.Fair,
                _ => throw new FormatException($"baselines are minimal and fair, not '{part}'"),
            };
            if (!result.Contains(variant))
            {
                result.Add(variant);
            }
        }
        if (result.Count == 0)
        {
            throw new FormatException("name at least one baseline (minimal, fair), or pass --skip-baseline");
        }
        return result;
    }
}

/// <summary>Where the baseline keeps its tables (a database of its own, created when missing).</summary>
public sealed record BaselineSettings(string ConnectionString, string Pool, int TtlSeconds, int MaxPoolSize,
    BaselineVariant Variant = BaselineVariant.Minimal);

/// <summary>
/// The same job done directly on Postgres, the way a careful team would without a broker:
/// <list type="bullet">
/// <item>a partial unique index on active claims (one active claim per key, ended claims stay as history);</item>
/// <item>acquire: a read of the active claim (a repeat needs nothing else); otherwise one transaction that takes a
/// ready sandbox with <c>FOR UPDATE SKIP LOCKED</c>, inserts the claim with <c>INSERT … ON CONFLICT DO NOTHING</c> and
/// marks the sandbox leased (one statement), and commits; a lost race rolls back and reads the winner;</item>
/// <item>release: one statement that ends the claim and marks its sandbox for deletion.</item>
/// </list>
/// Pooled connections, auto-prepared statements. No audit log, no expiry machinery and no real provider behind the
/// sandbox rows: the baseline is the floor of what one key-per-row design costs on this Postgres.
/// <para>
/// The fair variant (<see cref="BaselineVariant.Fair"/>, target "baseline-fair") does in addition what the broker
/// writes on the same path and a careful team would too: an audit row per acquire and per release, and a new ready
/// sandbox for each one handed out (the pool's refill). It has tables of its own (<c>baseline_fair_*</c>), so the
/// minimal variant's tables, statements and figures stay what earlier rounds measured.
/// </para>
/// </summary>
public sealed class BaselineBackend : IClaimsBackend
{
    public const string Schema = """
        CREATE TABLE IF NOT EXISTS baseline_sandboxes (
            id          bigserial PRIMARY KEY,
            pool        text        NOT NULL,
            status      text        NOT NULL CHECK (status IN ('ready', 'leased', 'deleting', 'deleted')),
            claim_key   text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS baseline_sandboxes_ready ON baseline_sandboxes (pool, id) WHERE status = 'ready';
        CREATE TABLE IF NOT EXISTS baseline_claims (
            id          bigserial PRIMARY KEY,
            claim_key   text        NOT NULL,
            sandbox_id  bigint      NOT NULL REFERENCES baseline_sandboxes (id),
            pool        text        NOT NULL,
            owner       text        NOT NULL,
            status      text        NOT NULL CHECK (status IN ('active', 'released', 'expired')),
            acquired_at timestamptz NOT NULL DEFAULT now(),
            expires_at  timestamptz NOT NULL,
            ended_at    timestamptz
        );
        CREATE UNIQUE INDEX IF NOT EXISTS baseline_claims_active ON baseline_claims (claim_key) WHERE status = 'active';
        """;

    private const string FindActive =
        "SELECT sandbox_id, expires_at > now() FROM baseline_claims WHERE claim_key = $1 AND status = 'active'";
    private const string ExpireActive =
        "UPDATE baseline_claims SET status = 'expired', ended_at = now() WHERE claim_key = $1 AND status = 'active' AND expires_at <= now()";
    private const string PickReady =
        "SELECT id FROM baseline_sandboxes WHERE pool = $1 AND status = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";
    private const string InsertClaimAndLease = """
        WITH c AS (
            INSERT INTO baseline_claims (claim_key, sandbox_id, pool, owner, status, expires_at)
            VALUES ($1, $2, $3, $4, 'active', now() + make_interval(secs => $5))
            ON CONFLICT (claim_key) WHERE status = 'active' DO NOTHING
            RETURNING sandbox_id)
        UPDATE baseline_sandboxes s SET status = 'leased', claim_key = $1, updated_at = now()
        FROM c WHERE s.id = c.sandbox_id
        RETURNING s.id
        """;
    private const string Release = """
        WITH c AS (
            UPDATE baseline_claims SET status = 'released', ended_at = now()
            WHERE claim_key = $1 AND status = 'active'
            RETURNING sandbox_id)
        UPDATE baseline_sandboxes s SET status = 'deleting', claim_key = NULL, updated_at = now()
        FROM c WHERE s.id = c.sandbox_id
        RETURNING s.id
        """;

    /// <summary>The fair variant's tables: the same two, plus an audit log shaped like the broker's
    /// <c>broker_audit_log</c> with its two indexes (the broker's update-forbidding trigger is left out: it fires on
    /// UPDATE only, and the audit log is only inserted into).</summary>
    public const string FairSchema = """
        CREATE TABLE IF NOT EXISTS baseline_fair_sandboxes (
            id          bigserial PRIMARY KEY,
            pool        text        NOT NULL,
            status      text        NOT NULL CHECK (status IN ('ready', 'leased', 'deleting', 'deleted')),
            claim_key   text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS baseline_fair_sandboxes_ready ON baseline_fair_sandboxes (pool, id) WHERE status = 'ready';
        CREATE TABLE IF NOT EXISTS baseline_fair_claims (
            id          bigserial PRIMARY KEY,
            claim_key   text        NOT NULL,
            sandbox_id  bigint      NOT NULL REFERENCES baseline_fair_sandboxes (id),
            pool        text        NOT NULL,
            owner       text        NOT NULL,
            status      text        NOT NULL CHECK (status IN ('active', 'released', 'expired')),
            acquired_at timestamptz NOT NULL DEFAULT now(),
            expires_at  timestamptz NOT NULL,
            ended_at    timestamptz
        );
        CREATE UNIQUE INDEX IF NOT EXISTS baseline_fair_claims_active ON baseline_fair_claims (claim_key) WHERE status = 'active';
        CREATE TABLE IF NOT EXISTS baseline_fair_audit_log (
            id          bigserial   PRIMARY KEY,
            occurred_at timestamptz NOT NULL DEFAULT now(),
            entity_type text        NOT NULL,
            entity_id   text        NOT NULL,
            event       text        NOT NULL,
            from_state  text        NULL,
            to_state    text        NULL,
            actor       text        NULL,
            details     jsonb       NULL
        );
        CREATE INDEX IF NOT EXISTS baseline_fair_audit_log_entity ON baseline_fair_audit_log (entity_type, entity_id, id);
        CREATE INDEX IF NOT EXISTS baseline_fair_audit_log_occurred_at ON baseline_fair_audit_log (occurred_at);
        """;

    private const string FairFindActive =
        "SELECT sandbox_id, expires_at > now() FROM baseline_fair_claims WHERE claim_key = $1 AND status = 'active'";

    /// <summary>
    /// A new or warm acquire of the fair variant: one statement, so one transaction and one round trip. It takes a
    /// ready sandbox, inserts the active claim, marks the sandbox leased, inserts the refill and appends the audit row.
    /// <para>
    /// A lost race (another acquire of the same key inserts its claim first) consumes nothing: the claim's
    /// <c>INSERT … ON CONFLICT DO NOTHING</c> waits for the other transaction and, when it commits, returns no row;
    /// the sandbox update, the refill and the audit row all read that empty <c>RETURNING</c>, so none of them happens,
    /// and the ready sandbox this statement picked was only row-locked, a lock its commit ends. The statement then
    /// answers (picked, null), and the caller reads the winner's claim. If the other transaction rolls back instead,
    /// the insert goes ahead and this acquire wins. All sub-statements share one snapshot, so the refill is never the
    /// sandbox picked by the same statement. <c>pick</c> is MATERIALIZED so that <c>FOR UPDATE SKIP LOCKED</c> runs
    /// exactly once (it is referenced twice).
    /// </para>
    /// $1 claim key, $2 pool, $3 owner (also the audit row's actor), $4 TTL in seconds.
    /// Answers (picked sandbox or null when none was ready, leased sandbox or null when the race was lost).
    /// </summary>
    private const string FairAcquire = """
        WITH pick AS MATERIALIZED (
            SELECT id FROM baseline_fair_sandboxes
            WHERE pool = $2 AND status = 'ready'
            ORDER BY id LIMIT 1
            FOR UPDATE SKIP LOCKED),
        claim AS (
            INSERT INTO baseline_fair_claims (claim_key, sandbox_id, pool, owner, status, expires_at)
            SELECT $1, pick.id, $2, $3, 'active', now() + make_interval(secs => $4) FROM pick
            ON CONFLICT (claim_key) WHERE status = 'active' DO NOTHING
            RETURNING sandbox_id, expires_at),
        leased AS (
            UPDATE baseline_fair_sandboxes s SET status = 'leased', claim_key = $1, updated_at = now()
            FROM claim WHERE s.id = claim.sandbox_id
            RETURNING s.id),
        refill AS (
            INSERT INTO baseline_fair_sandboxes (pool, status)
            SELECT $2, 'ready' FROM leased
            RETURNING id),
        audit AS (
            INSERT INTO baseline_fair_audit_log (entity_type, entity_id, event, from_state, to_state, actor, details)
            SELECT 'claim', $1, 'lease.acquired', NULL, 'active', $3,
                   jsonb_build_object('pool', $2, 'sandbox_id', leased.id, 'refill_sandbox_id', refill.id, 'expires_at', claim.expires_at)
            FROM claim, leased, refill)
        SELECT (SELECT id FROM pick), (SELECT id FROM leased)
        """;

    /// <summary>The fair release: ends the claim, marks its sandbox for deletion and appends the audit row, in one
    /// statement. A second release of the same key waits for the first and then finds no active claim: no row, no audit.</summary>
    private const string FairRelease = """
        WITH claim AS (
            UPDATE baseline_fair_claims SET status = 'released', ended_at = now()
            WHERE claim_key = $1 AND status = 'active'
            RETURNING sandbox_id, owner),
        deleting AS (
            UPDATE baseline_fair_sandboxes s SET status = 'deleting', claim_key = NULL, updated_at = now()
            FROM claim WHERE s.id = claim.sandbox_id
            RETURNING s.id),
        audit AS (
            INSERT INTO baseline_fair_audit_log (entity_type, entity_id, event, from_state, to_state, actor, details)
            SELECT 'claim', $1, 'lease.released', 'active', 'released', claim.owner, jsonb_build_object('sandbox_id', claim.sandbox_id)
            FROM claim)
        SELECT id FROM deleting
        """;

    /// <summary>Ends an expired active claim of the fair variant (its sandbox to deletion, an audit row). Its own
    /// statement before the acquire, not one transaction with it: the claim is expired whatever the acquire then
    /// finds, and a concurrent acquire of the key in between is the lost race the acquire handles. Not on the
    /// measured path (the benchmark's TTL outlasts its runs).</summary>
    private const string FairExpireActive = """
        WITH claim AS (
            UPDATE baseline_fair_claims SET status = 'expired', ended_at = now()
            WHERE claim_key = $1 AND status = 'active' AND expires_at <= now()
            RETURNING sandbox_id, owner),
        deleting AS (
            UPDATE baseline_fair_sandboxes s SET status = 'deleting', claim_key = NULL, updated_at = now()
            FROM claim WHERE s.id = claim.sandbox_id)
        INSERT INTO baseline_fair_audit_log (entity_type, entity_id, event, from_state, to_state, actor, details)
        SELECT 'claim', $1, 'lease.expired', 'active', 'expired', claim.owner, jsonb_build_object('sandbox_id', claim.sandbox_id)
        FROM claim
        """;

    private readonly BaselineSettings _settings;
    private readonly NpgsqlDataSource _data;
    private readonly bool _fair;
    private readonly string _sandboxes;
    private readonly string _claims;
    private long _statements;

    private BaselineBackend(BaselineSettings settings, NpgsqlDataSource data)
    {
        _settings = settings;
        _data = data;
        _fair = settings.Variant == BaselineVariant.Fair;
        _sandboxes = _fair ? "baseline_fair_sandboxes" : "baseline_sandboxes";
        _claims = _fair ? "baseline_fair_claims" : "baseline_claims";
    }

    public string Target => BaselineVariants.Target(_settings.Variant);
    public bool SettlesInBackground => false;
    public string StatsConnectionString => _settings.ConnectionString;
    public long? ClientStatements => Interlocked.Read(ref _statements);

    /// <summary>Creates the database (when missing) and the schema, and opens the pool.</summary>
    public static async Task<BaselineBackend> OpenAsync(BaselineSettings settings, CancellationToken ct)
    {
        var target = new NpgsqlConnectionStringBuilder(settings.ConnectionString);
        var admin = new NpgsqlConnectionStringBuilder(settings.ConnectionString) { Database = "postgres", Pooling = false };
        await using (var connection = new NpgsqlConnection(admin.ConnectionString))
        {
            await connection.OpenAsync(ct);
            await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", connection) { Parameters = { new() { Value = target.Database } } };
            if (await exists.ExecuteScalarAsync(ct) is null)
            {
                await using var create = new NpgsqlCommand($"CREATE DATABASE \"{target.Database!.Replace("\"", "\"\"")}\"", connection);
                await create.ExecuteNonQueryAsync(ct);
            }
        }
        target.MaxPoolSize = settings.MaxPoolSize;
        target.MinPoolSize = 0;
        target.MaxAutoPrepare = 16;
        target.AutoPrepareMinUsages = 2;
        target.NoResetOnClose = true;
        target.ApplicationName ??= "sandboxbroker-baseline";
        var data = NpgsqlDataSource.Create(target.ConnectionString);
        await using (var connection = await data.OpenConnectionAsync(ct))
        {
            var ddl = settings.Variant == BaselineVariant.Fair ? FairSchema : Schema;
            await using var schema = new NpgsqlCommand("SELECT pg_advisory_lock(74210); " + ddl + " SELECT pg_advisory_unlock(74210);", connection);
            await schema.ExecuteNonQueryAsync(ct);
        }
        return new BaselineBackend(settings with { ConnectionString = target.ConnectionString }, data);
    }

    public ValueTask<OpResult> AcquireAsync(string key, string owner, CancellationToken ct) =>
        _fair ? AcquireFairAsync(key, owner, ct) : AcquireMinimalAsync(key, owner, ct);

    public ValueTask<OpResult> ReleaseAsync(string key, CancellationToken ct) =>
        _fair ? ReleaseFairAsync(key, ct) : ReleaseMinimalAsync(key, ct);

    private async ValueTask<OpResult> AcquireMinimalAsync(string key, string owner, CancellationToken ct)
    {
        try
        {
            await using var connection = await _data.OpenConnectionAsync(ct);
            var expired = false;
            await using (var find = new NpgsqlCommand(FindActive, connection) { Parameters = { new() { Value = key } } })
            {
                Interlocked.Increment(ref _statements);
                await using var reader = await find.ExecuteReaderAsync(ct);
                if (await reader.ReadAsync(ct))
                {
                    if (reader.GetBoolean(1))
                    {
                        return OpResult.Ok("acquire", "repeat");
                    }
                    expired = true;
                }
            }

            await using var tx = await connection.BeginTransactionAsync(ct);
            if (expired)
            {
                await using var expire = new NpgsqlCommand(ExpireActive, connection, tx) { Parameters = { new() { Value = key } } };
                Interlocked.Increment(ref _statements);
                await expire.ExecuteNonQueryAsync(ct);
            }
            long sandbox;
            await using (var pick = new NpgsqlCommand(PickReady, connection, tx) { Parameters = { new() { Value = _settings.Pool } } })
            {
                Interlocked.Increment(ref _statements);
                if (await pick.ExecuteScalarAsync(ct) is not long id)
                {
                    Interlocked.Increment(ref _statements);
                    await tx.RollbackAsync(ct);
                    return OpResult.Fail("acquire", "NO_SANDBOXES_AVAILABLE");
                }
                sandbox = id;
            }
            await using (var insert = new NpgsqlCommand(InsertClaimAndLease, connection, tx)
                         {
                             Parameters =
                             {
                                 new() { Value = key }, new() { Value = sandbox }, new() { Value = _settings.Pool },
                                 new() { Value = owner }, new() { Value = (double)_settings.TtlSeconds },
                             },
                         })
            {
                Interlocked.Increment(ref _statements);
                if (await insert.ExecuteScalarAsync(ct) is null)
                {
                    // Another acquire of this key committed first: ours took nothing, the winner's claim stands.
                    Interlocked.Increment(ref _statements);
                    await tx.RollbackAsync(ct);
                    return OpResult.Ok("acquire", "repeat_after_race");
                }
            }
            Interlocked.Increment(ref _statements);
            await tx.CommitAsync(ct);
            return OpResult.Ok("acquire", "warm");
        }
        catch (PostgresException e)
        {
            return OpResult.Fail("acquire", "pg_" + e.SqlState);
        }
        catch (NpgsqlException e) when (e.InnerException is TimeoutException)
        {
            return OpResult.Fail("acquire", "timeout");
        }
    }

    private async ValueTask<OpResult> ReleaseMinimalAsync(string key, CancellationToken ct)
    {
        try
        {
            await using var connection = await _data.OpenConnectionAsync(ct);
            await using var release = new NpgsqlCommand(Release, connection) { Parameters = { new() { Value = key } } };
            Interlocked.Increment(ref _statements);
            return await release.ExecuteScalarAsync(ct) is null
                ? OpResult.Fail("release", "NOT_FOUND")
                : OpResult.Ok("release", "released");
        }
        catch (PostgresException e)
        {
            return OpResult.Fail("release", "pg_" + e.SqlState);
        }
        catch (NpgsqlException e) when (e.InnerException is TimeoutException)
        {
            return OpResult.Fail("release", "timeout");
        }
    }

    private async ValueTask<OpResult> AcquireFairAsync(string key, string owner, CancellationToken ct)
    {
        try
        {
            await using var connection = await _data.OpenConnectionAsync(ct);
            // A repeat stays one read, as in the minimal variant.
            var expired = false;
            await using (var find = new NpgsqlCommand(FairFindActive, connection) { Parameters = { new() { Value = key } } })
            {
                Interlocked.Increment(ref _statements);
                await using var reader = await find.ExecuteReaderAsync(ct);
                if (await reader.ReadAsync(ct))
                {
                    if (reader.GetBoolean(1))
                    {
                        return OpResult.Ok("acquire", "repeat");
                    }
                    expired = true;
                }
            }
            if (expired)
            {
                await using var expire = new NpgsqlCommand(FairExpireActive, connection) { Parameters = { new() { Value = key } } };
                Interlocked.Increment(ref _statements);
                await expire.ExecuteNonQueryAsync(ct);
            }

            // No explicit transaction: the one statement is its own (autocommit), so BEGIN and COMMIT cost no round trips.
            await using (var acquire = new NpgsqlCommand(FairAcquire, connection)
                         {
                             Parameters =
                             {
                                 new() { Value = key }, new() { Value = _settings.Pool }, new() { Value = owner },
                                 new() { Value = (double)_settings.TtlSeconds },
                             },
                         })
            {
                Interlocked.Increment(ref _statements);
                await using var reader = await acquire.ExecuteReaderAsync(ct);
                await reader.ReadAsync(ct);
                if (reader.IsDBNull(0))
                {
                    return OpResult.Fail("acquire", "NO_SANDBOXES_AVAILABLE");
                }
                if (!reader.IsDBNull(1))
                {
                    return OpResult.Ok("acquire", "warm");
                }
            }

            // Lost the race: this statement changed nothing (see FairAcquire); answer with the winner's claim, which a
            // new statement sees (the acquire's own snapshot predates the winner's commit).
            await using var winner = new NpgsqlCommand(FairFindActive, connection) { Parameters = { new() { Value = key } } };
            Interlocked.Increment(ref _statements);
            return await winner.ExecuteScalarAsync(ct) is long
                ? OpResult.Ok("acquire", "repeat_after_race")
                : OpResult.Fail("acquire", "RACE_LOST_AND_WINNER_GONE");
        }
        catch (PostgresException e)
        {
            return OpResult.Fail("acquire", "pg_" + e.SqlState);
        }
        catch (NpgsqlException e) when (e.InnerException is TimeoutException)
        {
            return OpResult.Fail("acquire", "timeout");
        }
    }

    private async ValueTask<OpResult> ReleaseFairAsync(string key, CancellationToken ct)
    {
        try
        {
            await using var connection = await _data.OpenConnectionAsync(ct);
            await using var release = new NpgsqlCommand(FairRelease, connection) { Parameters = { new() { Value = key } } };
            Interlocked.Increment(ref _statements);
            return await release.ExecuteScalarAsync(ct) is null
                ? OpResult.Fail("release", "NOT_FOUND")
                : OpResult.Ok("release", "released");
        }
        catch (PostgresException e)
        {
            return OpResult.Fail("release", "pg_" + e.SqlState);
        }
        catch (NpgsqlException e) when (e.InnerException is TimeoutException)
        {
            return OpResult.Fail("release", "timeout");
        }
    }

    /// <summary>Tops the pool up to <paramref name="ready"/> ready rows at once: the baseline has no provider to wait for.</summary>
    public async Task<PoolFill> FillPoolAsync(int ready, TimeSpan timeout, Action<string> progress, CancellationToken ct)
    {
        var started = TimeProvider.System.GetTimestamp();
        var before = (await PoolLevelsAsync(ct)).GetValueOrDefault("ready");
        if (before < ready)
        {
            await using var connection = await _data.OpenConnectionAsync(ct);
            await using var insert = new NpgsqlCommand(
                $"INSERT INTO {_sandboxes} (pool, status) SELECT $1, 'ready' FROM generate_series(1, $2)", connection)
            {
                Parameters = { new() { Value = _settings.Pool }, new() { Value = (int)(ready - before) } },
                CommandTimeout = 300,
            };
            await insert.ExecuteNonQueryAsync(ct);
        }
        // What a careful team schedules anyway: without it, the ready-sandbox index keeps the entries of every
        // sandbox checked out since the last autovacuum, and each checkout scans past them.
        await using (var connection = await _data.OpenConnectionAsync(ct))
        await using (var vacuum = new NpgsqlCommand($"VACUUM (ANALYZE) {_sandboxes}, {_claims}", connection) { CommandTimeout = 300 })
        {
            await vacuum.ExecuteNonQueryAsync(ct);
        }
        var after = (await PoolLevelsAsync(ct)).GetValueOrDefault("ready");
        return new PoolFill(before, after, TimeProvider.System.GetElapsedTime(started).TotalSeconds, after >= ready);
    }

    public async Task<IReadOnlyDictionary<string, long>> PoolLevelsAsync(CancellationToken ct)
    {
        await using var connection = await _data.OpenConnectionAsync(ct);
        await using var levels = new NpgsqlCommand(
            $"SELECT status, count(*) FROM {_sandboxes} WHERE pool = $1 GROUP BY status", connection)
        {
            Parameters = { new() { Value = _settings.Pool } },
        };
        var result = new Dictionary<string, long>();
        await using var reader = await levels.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            result[reader.GetString(0)] = reader.GetInt64(1);
        }
        return result;
    }

    /// <summary>Ends every active claim whose key starts with <paramref name="prefix"/> in one statement (cleanup, not
    /// measured). The fair variant writes the audit rows its release writes, so its log stays a complete history.</summary>
    public async Task<long> ReleaseAllAsync(string prefix, CancellationToken ct)
    {
        await using var connection = await _data.OpenConnectionAsync(ct);
        await using var release = new NpgsqlCommand(_fair ? """
            WITH claim AS (
                UPDATE baseline_fair_claims SET status = 'released', ended_at = now()
                WHERE status = 'active' AND claim_key LIKE $1 || '%'
                RETURNING claim_key, sandbox_id, owner),
            deleting AS (
                UPDATE baseline_fair_sandboxes s SET status = 'deleting', claim_key = NULL, updated_at = now()
                FROM claim WHERE s.id = claim.sandbox_id)
            INSERT INTO baseline_fair_audit_log (entity_type, entity_id, event, from_state, to_state, actor, details)
            SELECT 'claim', claim.claim_key, 'lease.released', 'active', 'released', claim.owner, jsonb_build_object('sandbox_id', claim.sandbox_id)
            FROM claim
            """ : """
            WITH c AS (
                UPDATE baseline_claims SET status = 'released', ended_at = now()
                WHERE status = 'active' AND claim_key LIKE $1 || '%'
                RETURNING sandbox_id)
            UPDATE baseline_sandboxes s SET status = 'deleting', claim_key = NULL, updated_at = now()
            FROM c WHERE s.id = c.sandbox_id
            """, connection)
        {
            Parameters = { new() { Value = prefix } },
            CommandTimeout = 300,
        };
        return await release.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Closing the pooled sessions makes their backends publish their counters now.</summary>
    public async Task<TimeSpan> FlushPostgresStatsAsync(CancellationToken ct)
    {
        _data.Clear();
        await Task.Delay(TimeSpan.FromMilliseconds(300), ct);
        return TimeSpan.FromMilliseconds(200);
    }

    public async ValueTask DisposeAsync() => await _data.DisposeAsync();
}
