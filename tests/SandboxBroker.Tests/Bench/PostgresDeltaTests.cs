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

    private static PostgresCounters Counters(long commits, WalCounters? wal) =>
        new("db", commits, 0, 0, 0, 0, 0, 0, new Dictionary<string, TableCounters>(), Wal: wal);
}
