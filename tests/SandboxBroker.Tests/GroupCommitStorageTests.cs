using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using SandboxBroker.Persistence;
using SandboxBroker.Storage;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// The broker's group-committed grain storage on real Postgres: the ETag contract the ADO.NET provider keeps (a stale
/// writer is rejected, of two first writes one wins), per-write isolation inside a batch, rows recorded with the state,
/// and no acknowledged write lost when connections die with batches in flight.
/// </summary>
public sealed class GroupCommitStorageTests
{
    private const string Service = "svc";

    [Fact]
    public async Task A_writer_over_a_stale_version_is_rejected_and_changes_nothing()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);
        var v1 = await writer.WriteAsync(Write("claim", "k", null, "first"));
        var v2 = await writer.WriteAsync(Write("claim", "k", v1, "second"));
        Assert.Equal((1, 2), (v1, v2));

        // A second activation still holding version 1 writes: nothing is written, and it is told.
        Assert.Null(await writer.WriteAsync(Write("claim", "k", v1, "stale")));
        Assert.Equal("second", Payload(await writer.ReadAsync("claim", "k")));
        // A clear at a stale version fails the same way; at the current one it deletes the row.
        Assert.False(await writer.ClearAsync(new ClearOperation("claim", "k", 1, null)));
        Assert.True(await writer.ClearAsync(new ClearOperation("claim", "k", 2, null)));
        Assert.Null(await writer.ReadAsync("claim", "k"));
    }

    [Fact]
    public async Task Of_concurrent_first_writes_of_one_grain_exactly_one_wins()
    {
        await using var db = await TestDatabase.CreateAsync();
        // Two silos' writers, so the two first writes race in separate transactions, not in one batch.
        await using var a = Writer(db);
        await using var b = Writer(db);
        for (var round = 0; round < 20; round++)
        {
            var key = $"k{round}";
            var results = await Task.WhenAll(a.WriteAsync(Write("claim", key, null, "a")), b.WriteAsync(Write("claim", key, null, "b")));
            Assert.Single(results, r => r == 1);
            Assert.Single(results, r => r is null);
            var stored = Payload(await a.ReadAsync("claim", key));
            Assert.Equal(results[0] == 1 ? "a" : "b", stored);
        }
    }

    [Fact]
    public async Task A_conflict_in_a_batch_fails_only_its_own_write_and_the_others_commit_with_their_rows()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);
        await writer.WriteAsync(Write("claim", "taken", null, "winner"));

        // Enough writes at once that they share batches with the conflicting one.
        var writes = Enumerable.Range(0, 50).Select(i => writer.WriteAsync(Write("claim", $"k{i}", null, $"v{i}", Row($"k{i}"), Event($"k{i}")))).ToList();
        var conflict = writer.WriteAsync(Write("claim", "taken", null, "loser", Row("taken"), Event("taken")));
        writes.AddRange(Enumerable.Range(50, 50).Select(i => writer.WriteAsync(Write("claim", $"k{i}", null, $"v{i}", Row($"k{i}"), Event($"k{i}")))));
        var done = await Task.WhenAll(writes);

        Assert.Null(await conflict);
        Assert.All(done, version => Assert.Equal(1, version));
        Assert.True(writer.Counters.Batches < writer.Counters.Operations, "the writes went in shared batches");
        Assert.Equal("winner", Payload(await writer.ReadAsync("claim", "taken")));
        // Each committed write brought its index row and audit event; the conflicting one brought neither.
        Assert.Equal(100L, await db.ScalarAsync<long>("SELECT count(*) FROM broker_claims WHERE claim_key LIKE 'k%'"));
        Assert.Equal(100L, await db.ScalarAsync<long>("SELECT count(*) FROM broker_audit_log WHERE entity_id LIKE 'k%'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM broker_claims WHERE claim_key = 'taken'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM broker_audit_log WHERE entity_id = 'taken'"));
    }

    [Fact]
    public async Task A_write_names_its_transaction_and_only_a_count_read_after_its_commit_includes_it()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);
        var index = new BrokerIndex(db.DataSource);
        var before = await index.CountLiveAsync("p", [], CancellationToken.None);

        var leased = new WriteOperation("sandbox", "s1", null, Bytes("leased"), SandboxRowOf("s1", "leased"), []);
        Assert.Equal(1, await writer.WriteAsync(leased));
        var after = await index.CountLiveAsync("p", [], CancellationToken.None);
        var deleting = new WriteOperation("sandbox", "s1", 1, Bytes("deleting"), SandboxRowOf("s1", "deleting"), []);
        Assert.Equal(2, await writer.WriteAsync(deleting));

        // What the pool relies on: the count that saw the lease names a snapshot that includes the lease's transaction and
        // not the later move to deleting, so it can tell which notices it already counted.
        Assert.NotEqual(0UL, leased.Transaction);
        Assert.True(deleting.Transaction > leased.Transaction);
        Assert.False(before.Snapshot.Includes(leased.Transaction));
        Assert.Equal(1L, after.ByStatus["leased"]);
        Assert.True(after.Snapshot.Includes(leased.Transaction));
        Assert.False(after.Snapshot.Includes(deleting.Transaction));
        Assert.True((await index.CountLiveAsync("p", [], CancellationToken.None)).Snapshot.Includes(deleting.Transaction));
    }

    [Fact]
    public async Task A_statement_error_fails_only_the_write_at_fault()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);
        // Details that are not JSON fail their statement; the neighbours in its batch are run again alone and commit.
        var bad = new AuditEvent("claim", "bad", "lease.acquired", null, "active", null, "{not json", DateTimeOffset.UtcNow);
        var writes = Enumerable.Range(0, 30).Select(i => writer.WriteAsync(Write("claim", $"k{i}", null, "v", Row($"k{i}")))).ToList();
        var failing = writer.WriteAsync(new WriteOperation("claim", "bad", null, Bytes("v"), Row("bad"), [bad]));
        await Task.WhenAll(writes);

        await Assert.ThrowsAsync<PostgresException>(() => failing);
        Assert.Equal(30L, await db.ScalarAsync<long>("SELECT count(*) FROM broker_grain_state WHERE grain_key LIKE 'k%'"));
        Assert.Null(await writer.ReadAsync("claim", "bad"));
    }

    [Fact]
    public async Task A_write_records_its_index_row_and_audit_rows_column_by_column()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);
        var at = new DateTimeOffset(2026, 12, 3, 8, 0, 0, TimeSpan.FromHours(2)); // not UTC: stored as the same instant
        var claim = new ClaimRow("ck", "tn", "ow", "pl", "sb", "active", at, at.AddMinutes(5), null, at.AddSeconds(1), at.AddMinutes(6));
        AuditEvent[] events =
        [
            new("claim", "ck", "lease.acquired", null, "active", "first", """{"n":1}""", at),
            new("claim", "ck", "lease.renewed", "active", "active", "second", """{"n":2}""", at.AddSeconds(2)),
        ];
        await writer.WriteAsync(new WriteOperation("claim", "ck", null, Bytes("v"), claim, events));
        var sandbox = new SandboxRow("sx", "pl", "local", "ready", "nm", "ext", "tn", "ow", "ck", at, at.AddSeconds(3), null, at.AddHours(1));
        await writer.WriteAsync(new WriteOperation("sandbox", "sx", null, Bytes("v"), sandbox, []));

        Assert.Equal("ck|tn|ow|pl|sb|active|2026-12-03 06:00:00|2026-12-03 06:05:00||2026-12-03 06:00:01|2026-12-03 06:06:00",
            await db.ScalarAsync<string>("""
                SELECT concat_ws('|', claim_key, tenant, owner, pool, sandbox_id, status, acquired_at AT TIME ZONE 'UTC', expires_at AT TIME ZONE 'UTC',
                                 coalesce(last_activity_at::text, ''), updated_at AT TIME ZONE 'UTC', wake_at AT TIME ZONE 'UTC')
                FROM broker_claims
                """));
        Assert.Equal("sx|pl|local|ready|nm|ext|tn|ow|ck|2026-12-03 06:00:00|2026-12-03 06:00:03||2026-12-03 07:00:00",
            await db.ScalarAsync<string>("""
                SELECT concat_ws('|', sandbox_id, pool, provider, status, name, external_id, tenant, owner, claim_key,
                                 created_at AT TIME ZONE 'UTC', updated_at AT TIME ZONE 'UTC', coalesce(expires_at::text, ''), wake_at AT TIME ZONE 'UTC')
                FROM broker_sandboxes
                """));
        Assert.Equal("2026-12-03 06:00:00 claim ck lease.acquired - active first 1; 2026-12-03 06:00:02 claim ck lease.renewed active active second 2",
            await db.ScalarAsync<string>("""
                SELECT string_agg(concat_ws(' ', occurred_at AT TIME ZONE 'UTC', entity_type, entity_id, event, coalesce(from_state, '-'), to_state, actor,
                                            details->>'n'), '; ' ORDER BY id)
                FROM broker_audit_log
                """));
    }

    [Fact]
    public async Task A_NUL_in_a_recorded_string_never_fails_the_state_change()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);
        var audit = new AuditEvent("claim", "k", "lease.released", "active", "released", "a\0b",
            System.Text.Json.JsonSerializer.Serialize(new { detail = "reason a\0b" }), DateTimeOffset.UtcNow);
        Assert.Equal(1, await writer.WriteAsync(new WriteOperation("claim", "k", null, Bytes("v"), Row("k") with { Status = "released" }, [audit])));
        Assert.Equal("released", await db.ScalarAsync<string>("SELECT status FROM broker_claims WHERE claim_key = 'k'"));
        Assert.Equal("reason a\uFFFDb", await db.ScalarAsync<string>("SELECT details->>'detail' FROM broker_audit_log WHERE entity_id = 'k'"));
    }

    [Fact]
    public async Task Connections_killed_with_batches_in_flight_lose_no_acknowledged_write()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);
        using var stop = new CancellationTokenSource();
        // Kills the writer's backends again and again while it works: batches die in flight, before and after their Sync.
        var killer = Task.Run(async () =>
        {
            var kills = 0;
            while (!stop.IsCancellationRequested)
            {
                kills += (int)await db.ScalarAsync<long>(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'group-commit-test') t");
                await Task.Delay(Random.Shared.Next(5, 40));
            }
            return kills;
        });

        // Each key is written in sequence, as a grain writes: the next write goes over the version the last one returned.
        var acknowledged = await Task.WhenAll(Enumerable.Range(0, 40).Select(async k =>
        {
            int? version = null;
            var last = (Version: 0, Value: "");
            for (var i = 0; i < 25; i++)
            {
                try
                {
                    var value = $"k{k}-{i}";
                    if (await writer.WriteAsync(Write("claim", $"k{k}", version, value, Row($"k{k}"))) is { } written)
                    {
                        version = written;
                        last = (written, value);
                        continue;
                    }
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
                {
                    // Outcome unknown: a grain drops its activation and reads what was stored, as here.
                }
                var stored = await RetryRead(writer, $"k{k}");
                version = stored?.Version;
                Assert.True(stored is null || stored.Version >= last.Version, $"k{k}: an acknowledged version {last.Version} was lost");
                if (stored is not null && stored.Version > last.Version)
                {
                    last = (stored.Version, Payload(stored)!);
                }
            }
            return (Key: $"k{k}", last.Version, last.Value);
        }));
        await stop.CancelAsync();
        Assert.True(await killer > 0, "the test killed connections with batches in flight");

        foreach (var (key, version, value) in acknowledged)
        {
            var stored = await RetryRead(writer, key);
            Assert.Equal((version, value), (stored?.Version ?? 0, Payload(stored) ?? ""));
        }
    }

    private static async Task<StoredState?> RetryRead(GroupCommitWriter writer, string key)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await writer.ReadAsync("claim", key);
            }
            catch (Exception e) when (attempt < 1000 && e is NpgsqlException or InvalidOperationException)
            {
                await Task.Delay(10);
            }
        }
    }

    [Fact]
    public async Task Reads_stay_primary_key_lookups_when_the_table_grows_after_they_were_planned()
    {
        await using var db = await TestDatabase.CreateAsync();
        // One connection, configured as the silo's writer is, so every read runs the statement prepared on it. Its generic
        // plan is used from the first run: under load the batches carry many keys and Postgres chooses the generic plan on
        // its own, which a test reading a key at a time would not get to.
        var session = new NpgsqlConnectionStringBuilder(GroupCommitRegistration.GrainStateConnectionString(db.ConnectionString)) { MaxPoolSize = 1 };
        session.Options = $"{session.Options} -c plan_cache_mode=force_generic_plan";
        await using var dataSource = NpgsqlDataSource.Create(session.ConnectionString);
        await using var writer = new GroupCommitWriter(dataSource, Service, Options.Create(new GroupCommitOptions()),
            NullLogger<GroupCommitWriter>.Instance, new StorageTelemetry());
        // Planned while the table holds two rows, as on a new database (Npgsql prepares a statement at its fifth use); the
        // plan is kept until the table is analyzed again.
        await writer.WriteAsync(Write("claim", "a", null, "x"));
        await writer.WriteAsync(Write("claim", "b", null, "y"));
        await db.ScalarAsync<int>("ANALYZE broker_grain_state");
        for (var i = 0; i < 30; i++)
        {
            await writer.ReadAsync("claim", "a");
        }
        // The table grows (a pool filling) and is not analyzed again before the next reads.
        await db.ScalarAsync<int>("""
            INSERT INTO broker_grain_state (service_id, state_name, grain_key, version, payload)
            SELECT $1, 'sandbox', 'bulk-' || i, 1, '\x00'::bytea FROM generate_series(1, 20000) i
            """, Service);

        var before = await RowsReadAsync(db, dataSource);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("x", Payload(await writer.ReadAsync("claim", "a")));
        }
        var read = await RowsReadAsync(db, dataSource) - before;
        // A primary-key lookup reads one row per read; a scan of the service would read 20,002 each.
        Assert.True(read <= 40, $"20 reads of one key read {read} rows of broker_grain_state");
    }

    /// <summary>Rows of broker_grain_state read so far, with the writer's session's counters flushed first.</summary>
    private static async Task<long> RowsReadAsync(TestDatabase db, NpgsqlDataSource writerSession)
    {
        await using (var connection = await writerSession.OpenConnectionAsync())
        await using (var flush = new NpgsqlCommand("SELECT pg_stat_force_next_flush()", connection))
        {
            await flush.ExecuteNonQueryAsync();
        }
        long last = -1;
        for (var attempt = 0; attempt < 50; attempt++)
        {
            // Counters reach the shared statistics a moment after the session's transaction ends; read until they settle.
            var now = await db.ScalarAsync<long>("""
                SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables WHERE relname = 'broker_grain_state'
                """);
            if (now == last)
            {
                return now;
            }
            last = now;
            await Task.Delay(100);
        }
        return last;
    }

    private static GroupCommitWriter Writer(TestDatabase db)
    {
        var builder = new NpgsqlConnectionStringBuilder(db.ConnectionString) { ApplicationName = "group-commit-test" };
        var dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        return new GroupCommitWriter(dataSource, Service, Options.Create(new GroupCommitOptions()), NullLogger<GroupCommitWriter>.Instance, new StorageTelemetry());
    }

    private static WriteOperation Write(string state, string key, int? version, string value, ClaimRow? row = null, AuditEvent? audit = null) =>
        new(state, key, version, Bytes(value), row, audit is null ? [] : [audit]);

    private static ClaimRow Row(string key) =>
        new(key, "tenant", "owner", "default", "sbx", "active", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddHours(1), DateTimeOffset.UtcNow, DateTimeOffset.UtcNow);

    private static SandboxRow SandboxRowOf(string id, string status) =>
        new(id, "p", "local", status, null, null, null, null, null, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, null);

    private static AuditEvent Event(string key) =>
        new("claim", key, "lease.acquired", null, "active", "test", """{"lease":1}""", DateTimeOffset.UtcNow);

    private static byte[] Bytes(string value) => System.Text.Encoding.UTF8.GetBytes(value);

    private static string? Payload(StoredState? stored) => stored is null ? null : System.Text.Encoding.UTF8.GetString(stored.Payload);
}
