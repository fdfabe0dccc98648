using SandboxBroker.LoadGen;

namespace SandboxBroker.Tests.Bench;

/// <summary>What a scenario reports of Postgres' work per operation, from two readings of its counters.</summary>
public sealed class PostgresDeltaTests
{
    [Fact]
    public void The_WAL_per_operation_is_what_the_server_wrote_between_the_readings()
    {
        var before = Counters(commits: 100, wal: new WalCounters(Records: 1_000, FullPageImages: 10, Bytes: 1_000_000));
        var after = Counters(commits: 2_100, wal: new WalCounters(Records: 21_000, FullPageImages: 510, Bytes: 5_000_000));

        var delta = PostgresCounters.Delta(before, after, ops: 1_000, seconds: 10, clientStatements: null);

        Assert.Equal(new WalDelta(RecordsPerOp: 20, FullPageImagesPerOp: 0.5, BytesPerOp: 4_000), delta.Wal);
        Assert.Equal(2, delta.TransactionsPerOp);
    }

    [Fact]
    public void Without_WAL_counters_in_both_readings_the_WAL_is_not_reported()
    {
        var older = Counters(commits: 0, wal: null); // a server before Postgres 14
        var after = Counters(commits: 10, wal: new WalCounters(1, 0, 100));

        Assert.Null(PostgresCounters.Delta(older, after, ops: 10, seconds: 1, clientStatements: null).Wal);
    }

    [Fact]
    public void The_statements_that_took_the_most_time_in_the_window_come_first_per_operation()
    {
        var before = Counters(commits: 0, wal: null) with
        {
            StatementsById = new Dictionary<long, StatementCounters>
            {
                [1] = new(Calls: 5_000, ExecMs: 900_000, BlocksHit: 50_000, Query: "old and slow, idle in the window"),
                [2] = new(Calls: 100, ExecMs: 10, BlocksHit: 1_000, Query: "update"),
            },
        };
        var after = Counters(commits: 0, wal: null) with
        {
            StatementsById = new Dictionary<long, StatementCounters>
            {
                [1] = new(Calls: 5_000, ExecMs: 900_000, BlocksHit: 50_000, Query: "old and slow, idle in the window"),
                [2] = new(Calls: 1_100, ExecMs: 230, BlocksHit: 31_000, Query: "update"),
                [3] = new(Calls: 1_000, ExecMs: 120, BlocksHit: 28_000, Query: "insert, new in the window"),
            },
        };

        var top = PostgresCounters.TopStatements(before, after, ops: 1_000);

        Assert.Equal(
            [new StatementDelta("update", CallsPerOp: 1, ExecMicrosPerCall: 220, ExecMicrosPerOp: 220, BlocksHitPerCall: 30),
             new StatementDelta("insert, new in the window", CallsPerOp: 1, ExecMicrosPerCall: 120, ExecMicrosPerOp: 120, BlocksHitPerCall: 28)],
            top);
        Assert.Null(PostgresCounters.TopStatements(Counters(commits: 0, wal: null), after, ops: 1_000)); // no per-statement counters before
    }

    [Fact]
    public void Each_table_says_how_many_updates_were_HOT_its_dead_rows_at_the_start_and_the_vacuums_in_the_window()
    {
        var before = Counters(commits: 0, wal: null) with
        {
            Tables = new Dictionary<string, TableCounters>
            {
                ["sandboxes"] = new(Inserted: 100, Updated: 200, Deleted: 0, SeqScans: 0, IdxScans: 300, HotUpdated: 0, DeadRows: 150, Vacuums: 1, Analyzes: 2),
                ["idle"] = new(Inserted: 5, Updated: 5, Deleted: 0, SeqScans: 1, IdxScans: 1, HotUpdated: 5, DeadRows: 5, Vacuums: 3, Analyzes: 3),
            },
        };
        var after = Counters(commits: 0, wal: null) with
        {
            Tables = new Dictionary<string, TableCounters>
            {
                ["sandboxes"] = new(Inserted: 100, Updated: 1_200, Deleted: 0, SeqScans: 0, IdxScans: 1_300, HotUpdated: 400, DeadRows: 20, Vacuums: 2, Analyzes: 2),
                ["idle"] = new(Inserted: 5, Updated: 5, Deleted: 0, SeqScans: 1, IdxScans: 1, HotUpdated: 5, DeadRows: 5, Vacuums: 3, Analyzes: 3),
                ["vacuumed only"] = new(Inserted: 0, Updated: 0, Deleted: 0, SeqScans: 0, IdxScans: 0, DeadRows: 0, Vacuums: 1),
            },
        };

        var tables = PostgresCounters.Delta(before, after, ops: 1_000, seconds: 10, clientStatements: null).Tables;

        Assert.Equal(new TableDelta(0, 1_000, 0, 0, 1_000, RowWritesPerOp: 1, ScansPerOp: 1, HotUpdated: 400, DeadRowsAtStart: 150, Vacuums: 1, Analyzes: 0),
            tables["sandboxes"]);
        Assert.Equal(1, tables["vacuumed only"].Vacuums); // a vacuum alone is worth a line
        Assert.False(tables.ContainsKey("idle"));
    }

    private static PostgresCounters Counters(long commits, WalCounters? wal) =>
        new("db", commits, 0, 0, 0, 0, 0, 0, new Dictionary<string, TableCounters>(), Wal: wal);
}
