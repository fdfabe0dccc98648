using Npgsql;

namespace SandboxBroker.LoadGen;

/// <summary>Where the baseline keeps its tables (a database of its own, created when missing).</summary>
public sealed record BaselineSettings(string ConnectionString, string Pool, int TtlSeconds, int MaxPoolSize);

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

    private readonly BaselineSettings _settings;
    private readonly NpgsqlDataSource _data;
    private long _statements;

    private BaselineBackend(BaselineSettings settings, NpgsqlDataSource data)
    {
        _settings = settings;
        _data = data;
    }

    public string Target => "baseline";
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
            await using var schema = new NpgsqlCommand("SELECT pg_advisory_lock(74210); " + Schema + " SELECT pg_advisory_unlock(74210);", connection);
            await schema.ExecuteNonQueryAsync(ct);
        }
        return new BaselineBackend(settings with { ConnectionString = target.ConnectionString }, data);
    }

    public async ValueTask<OpResult> AcquireAsync(string key, string owner, CancellationToken ct)
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

    public async ValueTask<OpResult> ReleaseAsync(string key, CancellationToken ct)
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

    /// <summary>Tops the pool up to <paramref name="ready"/> ready rows at once: the baseline has no provider to wait for.</summary>
    public async Task<PoolFill> FillPoolAsync(int ready, TimeSpan timeout, Action<string> progress, CancellationToken ct)
    {
        var started = TimeProvider.System.GetTimestamp();
        var before = (await PoolLevelsAsync(ct)).GetValueOrDefault("ready");
        if (before < ready)
        {
            await using var connection = await _data.OpenConnectionAsync(ct);
            await using var insert = new NpgsqlCommand(
                "INSERT INTO baseline_sandboxes (pool, status) SELECT $1, 'ready' FROM generate_series(1, $2)", connection)
            {
                Parameters = { new() { Value = _settings.Pool }, new() { Value = (int)(ready - before) } },
                CommandTimeout = 300,
            };
            await insert.ExecuteNonQueryAsync(ct);
        }
        // What a careful team schedules anyway: without it, the ready-sandbox index keeps the entries of every
        // sandbox checked out since the last autovacuum, and each checkout scans past them.
        await using (var connection = await _data.OpenConnectionAsync(ct))
        await using (var vacuum = new NpgsqlCommand("VACUUM (ANALYZE) baseline_sandboxes, baseline_claims", connection) { CommandTimeout = 300 })
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
            "SELECT status, count(*) FROM baseline_sandboxes WHERE pool = $1 GROUP BY status", connection)
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

    /// <summary>Ends every active claim whose key starts with <paramref name="prefix"/> in one statement (cleanup, not measured).</summary>
    public async Task<long> ReleaseAllAsync(string prefix, CancellationToken ct)
    {
        await using var connection = await _data.OpenConnectionAsync(ct);
        await using var release = new NpgsqlCommand("""
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
