using Npgsql;
using SandboxBroker.Storage;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// The index reads that run while the broker is busy (the pools' restores and recounts, the deletion sweep, a tenant's
/// activation, a tenant's listing) find their answers through the partial indexes of deploy/sql/0017, and answer
/// right. Sequential scans are off for the reads here, so a query whose statuses no longer match its index's predicate
/// (which would read the whole table, noticed only once it is large) reads some other index and the test says which
/// index it should have read.
/// </summary>
public sealed class IndexPlanTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task The_deletion_sweep_reads_only_the_sandboxes_pending_deletion_oldest_first()
    {
        await using var db = await Seeded();
        var ids = await ReadsIndex(db, "ix_broker_sandboxes_pending", index => index.ListPendingDeletionAsync(10, CancellationToken.None));
        Assert.Equal(new[] { "deleting-old", "deleting-new" }, ids);
    }

    [Fact]
    public async Task A_pool_restores_its_ready_and_provisioning_sandboxes_from_their_own_index()
    {
        await using var db = await Seeded();
        var rows = await ReadsIndex(db, "ix_broker_sandboxes_waiting", index => index.ListReadyAndProvisioningAsync("p", CancellationToken.None));
        Assert.Equal(new[] { ("listed", "ready"), ("ready-1", "ready"), ("provisioning-1", "provisioning") }, rows.Select(r => (r.SandboxId, r.Status)));
    }

    [Fact]
    public async Task A_pool_restoring_its_lists_finds_the_sandboxes_its_active_leases_name_through_the_active_claims_index()
    {
        await using var db = await Seeded();
        var ids = await ReadsIndex(db, "ix_broker_claims_tenant_active", index => index.ListLeasedSandboxIdsAsync("p", CancellationToken.None));
        Assert.Equal(new[] { "claimed-1" }, ids.Order());
    }

    [Fact]
    public async Task A_pool_finds_its_stray_ready_sandboxes_from_the_same_index()
    {
        await using var db = await Seeded();
        var ids = await ReadsIndex(db, "ix_broker_sandboxes_waiting",
            index => index.ListStrayReadyAsync("p", ["listed"], T0 + TimeSpan.FromHours(1), CancellationToken.None));
        Assert.Equal(new[] { "ready-1" }, ids);
    }

    [Fact]
    public async Task A_pool_recounts_its_live_sandboxes_by_status()
    {
        await using var db = await Seeded();
        var counts = await ReadsIndex(db, "ix_broker_sandboxes_pool_live", index => index.CountLiveAsync("p", ["ready-1"], CancellationToken.None));
        Assert.Equal(
            new Dictionary<string, long> { ["provisioning"] = 1, ["leased"] = 1, ["deleting"] = 2, ["ready"] = 1 },
            counts.ByStatus.ToDictionary());
        Assert.Equal(new[] { "listed", "provisioning-1" }, counts.Waiting.Order());
    }

    [Fact]
    public async Task A_tenant_activating_reads_only_its_active_claims()
    {
        await using var db = await Seeded();
        var claims = await ReadsIndex(db, "ix_broker_claims_tenant_active", index => index.ListActiveClaimsAsync("acme", CancellationToken.None));
        Assert.Equal(new[] { ("acme/issue-1", "p", (string?)"alice") }, claims);
    }

    [Fact]
    public async Task A_tenant_lists_its_sandboxes_in_creation_order()
    {
        await using var db = await Seeded();
        var rows = await ReadsIndex(db, "ix_broker_sandboxes_tenant_listed",
            index => index.ListSandboxesAsync(new SandboxQuery("acme", null, null, null, null, 10), CancellationToken.None));
        Assert.Equal(new[] { "leased-1", "deleting-old" }, rows.Select(r => r.SandboxId));

        // Page by page, and with the other filters.
        var index = new BrokerIndex(db.DataSource);
        var first = Assert.Single(await index.ListSandboxesAsync(new SandboxQuery("acme", null, null, null, null, 1), CancellationToken.None));
        var next = await index.ListSandboxesAsync(
            new SandboxQuery("acme", null, null, null, new SandboxCursor(first.CreatedAt, first.SandboxId), 10), CancellationToken.None);
        Assert.Equal(new[] { "deleting-old" }, next.Select(r => r.SandboxId));
        var deleting = await index.ListSandboxesAsync(new SandboxQuery(null, "deleting", "p", null, null, 10), CancellationToken.None);
        Assert.Equal(new[] { "deleting-new", "deleting-old" }, deleting.Select(r => r.SandboxId));
        Assert.Empty(await index.ListSandboxesAsync(new SandboxQuery("acme", null, "q", null, null, 10), CancellationToken.None));
    }

    [Fact]
    public async Task Retention_finds_the_audit_rows_past_it_through_the_time_index()
    {
        await using var db = await Seeded();
        await using (var append = db.DataSource.CreateCommand("""
            INSERT INTO broker_audit_log (occurred_at, entity_type, entity_id, event)
            SELECT $1::timestamptz + n * interval '1 minute', 'sandbox', 's' || n, 'sandbox.ready' FROM generate_series(1, 100) n
            """))
        {
            append.Parameters.Add(new NpgsqlParameter { Value = T0.UtcDateTime });
            await append.ExecuteNonQueryAsync();
        }
        await using (var summarize = db.DataSource.CreateCommand("VACUUM ANALYZE broker_audit_log"))
        {
            await summarize.ExecuteNonQueryAsync();
        }

        var deleted = await ReadsIndex(db, "ix_broker_audit_log_occurred_brin",
            dataSource => new AuditLog(dataSource).PruneAsync(T0 + TimeSpan.FromMinutes(30.5), batch: 7, maxBatches: 100, CancellationToken.None));

        Assert.Equal(30, deleted); // the first of eight runs, in batches of 7; the runs after it find nothing more
        Assert.Equal(70L, await db.ScalarAsync<long>("SELECT count(*) FROM broker_audit_log"));
        Assert.Equal((T0 + TimeSpan.FromMinutes(31)).UtcDateTime, await db.ScalarAsync<DateTime>("SELECT min(occurred_at) FROM broker_audit_log"));
    }

    /// <summary>
    /// Runs <paramref name="query"/> with sequential scans off and waits until Postgres counts a scan of
    /// <paramref name="indexName"/> (its statistics arrive within about a second of the read).
    /// </summary>
    private static Task<T> ReadsIndex<T>(TestDatabase db, string indexName, Func<BrokerIndex, Task<T>> query) =>
        ReadsIndex(db, indexName, (NpgsqlDataSource dataSource) => query(new BrokerIndex(dataSource)));

    private static async Task<T> ReadsIndex<T>(TestDatabase db, string indexName, Func<NpgsqlDataSource, Task<T>> query)
    {
        var before = await Scans(db, indexName);
        var noSeqScan = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Options = "-c enable_seqscan=off", MaxAutoPrepare = 64, AutoPrepareMinUsages = 1 };
        await using var dataSource = NpgsqlDataSource.Create(noSeqScan.ConnectionString);
        // Several times: prepared statements switch to a generic plan after five runs, and the index must serve that plan too.
        var result = await query(dataSource);
        for (var i = 0; i < 7; i++)
        {
            await query(dataSource);
        }
        await dataSource.DisposeAsync(); // a session that ends sends its statistics
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (await Scans(db, indexName) < before + 8)
        {
            Assert.True(DateTime.UtcNow < deadline,
                $"the query did not read {indexName} ({await Scans(db, indexName) - before} of 8 runs did); its plan reads another index or the table");
            await Task.Delay(100);
        }
        return result;
    }

    private static async Task<long> Scans(TestDatabase db, string indexName)
    {
        await using var batch = db.DataSource.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT pg_stat_clear_snapshot()"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = $1") { Parameters = { new() { Value = indexName } } });
        await using var reader = await batch.ExecuteReaderAsync();
        await reader.NextResultAsync();
        Assert.True(await reader.ReadAsync(), $"no index {indexName}: deploy/sql/0017 names it");
        return reader.GetInt64(0);
    }

    /// <summary>One pool's sandboxes in every status, another pool's, and claims of two tenants.</summary>
    private static async Task<TestDatabase> Seeded()
    {
        var db = await TestDatabase.CreateAsync();
        await using var batch = db.DataSource.CreateBatch();
        void Sandbox(string id, string pool, string status, string? tenant, int createdMinute, int updatedMinute) =>
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO broker_sandboxes (sandbox_id, pool, provider, status, tenant, created_at, updated_at, wake_at)
                VALUES ($1, $2, 'local', $3, $4, $5, $6, CASE WHEN $3 = 'deleting' THEN $6 END)
                """)
            {
                Parameters =
                {
                    new() { Value = id }, new() { Value = pool }, new() { Value = status },
                    new() { Value = (object?)tenant ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text },
                    new() { Value = (T0 + TimeSpan.FromMinutes(createdMinute)).UtcDateTime },
                    new() { Value = (T0 + TimeSpan.FromMinutes(updatedMinute)).UtcDateTime },
                },
            });
        void Claim(string id, string tenant, string status, string owner, string? sandboxId = null) =>
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO broker_claims (claim_key, tenant, owner, pool, status, sandbox_id, updated_at, wake_at)
                VALUES ($1, $2, $3, 'p', $4, $5, now(), CASE WHEN $4 = 'active' THEN now() + interval '1 hour' END)
                """)
            {
                Parameters =
                {
                    new() { Value = id }, new() { Value = tenant }, new() { Value = owner }, new() { Value = status },
                    new() { Value = (object?)sandboxId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text },
                },
            });

        Sandbox("ready-1", "p", "ready", null, 1, 2);
        Sandbox("listed", "p", "ready", null, 1, 1);
        Sandbox("provisioning-1", "p", "provisioning", null, 3, 3);
        Sandbox("leased-1", "p", "leased", "acme", 4, 5);
        Sandbox("deleting-new", "p", "deleting", "other", 6, 9);
        Sandbox("deleting-old", "p", "deleting", "acme", 7, 8);
        Sandbox("deleted-1", "p", "deleted", "other", 0, 1);
        Sandbox("ready-q", "q", "ready", null, 1, 1);
        Claim("acme/issue-1", "acme", "active", "alice");
        Claim("acme/issue-2", "acme", "released", "alice");
        Claim("other/issue-1", "other", "active", "bob", "claimed-1"); // a sandbox whose own leased write never landed
        Claim("other/issue-2", "other", "released", "bob", "listed"); // an ended lease names a sandbox that went back
        await batch.ExecuteNonQueryAsync();
        await using var analyze = db.DataSource.CreateCommand("ANALYZE broker_sandboxes; ANALYZE broker_claims");
        await analyze.ExecuteNonQueryAsync();
        return db;
    }
}
