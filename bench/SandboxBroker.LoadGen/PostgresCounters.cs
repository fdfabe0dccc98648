using Npgsql;

namespace SandboxBroker.LoadGen;

/// <summary>
/// Cumulative counters of one database: statements executed (pg_stat_statements, when the server preloads it, as
/// deploy/pg.sh's does; null otherwise), transactions and rows (pg_stat_database) and row writes and scans per
/// table (pg_stat_user_tables, with its HOT updates, dead rows and vacuums). Every autocommit statement is also one transaction, so where statements cannot be
/// counted, transactions per operation is the closest server-side count of round trips. The WAL written (pg_stat_wal,
/// Postgres 14 and later; null before) is the whole server's: it is what a checkpoint's full-page images multiply.
/// <see cref="StatementsById"/> keeps each statement's own counters, so a window can say which statement its Postgres
/// time went to (a run whose Postgres cost per operation doubled showed it in one statement, docs/BENCHMARKS.md round 20).
/// </summary>
public sealed record PostgresCounters(
    string Database,
    long XactCommit,
    long XactRollback,
    long TupReturned,
    long TupFetched,
    long TupInserted,
    long TupUpdated,
    long TupDeleted,
    IReadOnlyDictionary<string, TableCounters> Tables,
    WalCounters? Wal = null,
    IReadOnlyDictionary<long, StatementCounters>? StatementsById = null)
{
    /// <summary>Every statement this database has executed; null without pg_stat_statements.</summary>
    public long? Statements => StatementsById?.Values.Sum(s => s.Calls);

    public static async Task<PostgresCounters> ReadAsync(string connectionString, CancellationToken ct)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, ApplicationName = "sandboxbroker-loadgen-stats" };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(ct);
        PostgresCounters result;
        await using (var db = new NpgsqlCommand("""
            SELECT current_database(), xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted
            FROM pg_stat_database WHERE datname = current_database()
            """, connection))
        await using (var reader = await db.ExecuteReaderAsync(ct))
        {
            await reader.ReadAsync(ct);
            result = new PostgresCounters(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3),
                reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7), new Dictionary<string, TableCounters>());
        }
        var tables = new Dictionary<string, TableCounters>();
        await using (var t = new NpgsqlCommand("""
            SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, coalesce(seq_scan, 0), coalesce(idx_scan, 0),
                   n_tup_hot_upd, n_dead_tup, vacuum_count + autovacuum_count, analyze_count + autoanalyze_count
            FROM pg_stat_user_tables
            """, connection))
        await using (var reader = await t.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                tables[reader.GetString(0)] = new TableCounters(reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                    reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7), reader.GetInt64(8), reader.GetInt64(9));
            }
        }
        return result with
        {
            Tables = tables,
            StatementsById = await TryReadStatementsAsync(connection, ct),
            Wal = await TryReadWalAsync(connection, ct),
        };
    }

    /// <summary>The server's WAL counters; null before Postgres 14, which has no pg_stat_wal.</summary>
    private static async Task<WalCounters?> TryReadWalAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        if (connection.PostgreSqlVersion.Major < 14)
        {
            return null;
        }
        await using var wal = new NpgsqlCommand("SELECT wal_records, wal_fpi, wal_bytes::bigint FROM pg_stat_wal", connection);
        await using var reader = await wal.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new WalCounters(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    /// <summary>The statements this database has executed, by query id, from pg_stat_statements; null when the server does
    /// not preload it.</summary>
    private static async Task<IReadOnlyDictionary<long, StatementCounters>?> TryReadStatementsAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using (var loaded = new NpgsqlCommand("SELECT current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'", connection))
        {
            if (await loaded.ExecuteScalarAsync(ct) is not true)
            {
                return null;
            }
        }
        try
        {
            await using (var create = new NpgsqlCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", connection))
            {
                await create.ExecuteNonQueryAsync(ct);
            }
            // One row per query id (the view has one per role and nesting level as well).
            await using var read = new NpgsqlCommand("""
                SELECT coalesce(queryid, 0), sum(calls)::bigint, sum(total_exec_time), sum(shared_blks_hit)::bigint,
                       left(regexp_replace(min(query), '\s+', ' ', 'g'), 2000)
                FROM pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                GROUP BY 1
                """, connection);
            var statements = new Dictionary<long, StatementCounters>();
            await using var reader = await read.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                statements[reader.GetInt64(0)] = new StatementCounters(reader.GetInt64(1), reader.GetDouble(2), reader.GetInt64(3), reader.GetString(4));
            }
            return statements;
        }
        catch (PostgresException)
        {
            return null; // no right to create the extension, or to read other roles' statements
        }
    }

    /// <summary>The statements that took the most execution time between two readings, most first.</summary>
    public static IReadOnlyList<StatementDelta>? TopStatements(PostgresCounters before, PostgresCounters after, long ops, int count = 5)
    {
        if (before.StatementsById is not { } b || after.StatementsById is not { } a)
        {
            return null;
        }
        double Per(double v) => ops == 0 ? 0 : v / ops;
        return
        [
            .. (from pair in a
                let was = b.GetValueOrDefault(pair.Key)
                let calls = pair.Value.Calls - (was?.Calls ?? 0)
                let ms = pair.Value.ExecMs - (was?.ExecMs ?? 0)
                where calls > 0
                orderby ms descending
                select new StatementDelta(pair.Value.Query, Math.Round(Per(calls), 3), Math.Round(1000 * ms / calls, 1), Math.Round(Per(1000 * ms), 1),
                    Math.Round((double)(pair.Value.BlocksHit - (was?.BlocksHit ?? 0)) / calls, 1))).Take(count),
        ];
    }

    /// <summary>after − before, divided by <paramref name="ops"/> where it says "per op".</summary>
    public static PostgresDelta Delta(PostgresCounters before, PostgresCounters after, long ops, double seconds, long? clientStatements)
    {
        double Per(long v) => ops == 0 ? 0 : Math.Round((double)v / ops, 3);
        var tables = new SortedDictionary<string, TableDelta>(StringComparer.Ordinal);
        foreach (var (name, a) in after.Tables)
        {
            var b = before.Tables.GetValueOrDefault(name) ?? new TableCounters(0, 0, 0, 0, 0);
            var d = new TableCounters(a.Inserted - b.Inserted, a.Updated - b.Updated, a.Deleted - b.Deleted, a.SeqScans - b.SeqScans,
                a.IdxScans - b.IdxScans, a.HotUpdated - b.HotUpdated, b.DeadRows, a.Vacuums - b.Vacuums, a.Analyzes - b.Analyzes);
            if (d.Inserted + d.Updated + d.Deleted + d.SeqScans + d.IdxScans + d.Vacuums + d.Analyzes > 0)
            {
                tables[name] = new TableDelta(d.Inserted, d.Updated, d.Deleted, d.SeqScans, d.IdxScans,
                    Per(d.Inserted + d.Updated + d.Deleted), Per(d.SeqScans + d.IdxScans), d.HotUpdated, d.DeadRows, d.Vacuums, d.Analyzes);
            }
        }
        var commits = after.XactCommit - before.XactCommit;
        var rollbacks = after.XactRollback - before.XactRollback;
        var written = (after.TupInserted - before.TupInserted) + (after.TupUpdated - before.TupUpdated) + (after.TupDeleted - before.TupDeleted);
        var statements = after.Statements - before.Statements;
        var wal = after.Wal is { } wa && before.Wal is { } wb ? new WalDelta(Per(wa.Records - wb.Records), Per(wa.FullPageImages - wb.FullPageImages),
            Per(wa.Bytes - wb.Bytes)) : null;
        return new PostgresDelta(
            after.Database, Math.Round(seconds, 1), ops, commits, rollbacks,
            after.TupInserted - before.TupInserted, after.TupUpdated - before.TupUpdated, after.TupDeleted - before.TupDeleted,
            after.TupReturned - before.TupReturned, after.TupFetched - before.TupFetched,
            Per(commits + rollbacks), Per(written), clientStatements is { } s ? Per(s) : null, tables,
            statements is { } n ? Per(n) : null, wal, TopStatements(before, after, ops));
    }
}

/// <summary>One statement's pg_stat_statements counters (summed over roles): calls, execution time, shared buffers hit.</summary>
public sealed record StatementCounters(long Calls, double ExecMs, long BlocksHit, string Query);

/// <summary>One statement between two readings: calls per successful operation, execution time per call and per operation
/// (wall time in the server, so it includes waits for locks and for the CPU), shared buffers hit per call.</summary>
public sealed record StatementDelta(string Query, double CallsPerOp, double ExecMicrosPerCall, double ExecMicrosPerOp, double BlocksHitPerCall);

/// <summary>pg_stat_wal's WAL records, full-page images and bytes since the server's statistics were reset.</summary>
public sealed record WalCounters(long Records, long FullPageImages, long Bytes);

/// <summary>WAL per successful operation: records, full-page images (written for a page's first change after a
/// checkpoint) and bytes.</summary>
public sealed record WalDelta(double RecordsPerOp, double FullPageImagesPerOp, double BytesPerOp);

/// <summary>
/// One table's cumulative counters, and its dead rows now (a level, not a count). Vacuums and analyzes count manual and
/// automatic ones; a vacuum is counted when it ends.
/// </summary>
public sealed record TableCounters(long Inserted, long Updated, long Deleted, long SeqScans, long IdxScans,
    long HotUpdated = 0, long DeadRows = 0, long Vacuums = 0, long Analyzes = 0);

/// <summary>
/// One table between two readings: its row writes and scans, the updates among them that were heap-only (HOT: no index
/// entry written), its dead rows at the first reading, and the vacuums and analyzes that ended between the readings (a
/// vacuum beside the window's writes competes with them for the same pages).
/// </summary>
public sealed record TableDelta(long Inserted, long Updated, long Deleted, long SeqScans, long IdxScans, double RowWritesPerOp, double ScansPerOp,
    long HotUpdated = 0, long DeadRowsAtStart = 0, long Vacuums = 0, long Analyzes = 0);

/// <summary>What Postgres did between two readings, and per successful operation.</summary>
public sealed record PostgresDelta(
    string Database,
    double WindowSeconds,
    long Ops,
    long XactCommit,
    long XactRollback,
    long TupInserted,
    long TupUpdated,
    long TupDeleted,
    long TupReturned,
    long TupFetched,
    double TransactionsPerOp,
    double RowWritesPerOp,
    double? ClientStatementsPerOp,
    IReadOnlyDictionary<string, TableDelta> Tables,
    double? StatementsPerOp,
    WalDelta? Wal = null,
    IReadOnlyList<StatementDelta>? TopStatements = null);
