using Npgsql;

namespace SandboxBroker.Storage;

/// <summary>
/// Reads the broker's index tables (broker_sandboxes, broker_claims) without activating grains. The queries that run
/// while the broker is busy read partial indexes (deploy/sql/0017): their status sets are written into the SQL as
/// literals, because a status list passed as a parameter lets a prepared statement's generic plan skip the index.
/// </summary>
public sealed class BrokerIndex(NpgsqlDataSource dataSource)
{
    private static readonly string PendingDeletion = SqlList(SandboxLifecycle.PendingDeletion);
    private static readonly string Live = SqlList(SandboxLifecycle.Live);

    /// <summary>The statuses as SQL literals ('a', 'b'): enum names, so nothing needs quoting.</summary>
    private static string SqlList(IEnumerable<SandboxStatus> statuses) =>
        string.Join(", ", SandboxLifecycle.Format(statuses).Select(s => $"'{s}'"));

    /// <summary>Sandboxes of a provider that the broker believes exist (ready or leased), created before a moment.</summary>
    public async Task<IReadOnlyList<SandboxRow>> ListLiveAsync(string provider, DateTimeOffset createdBefore, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT sandbox_id, pool, provider, status, name, external_id, tenant, owner, claim_key, created_at, updated_at, expires_at
            FROM broker_sandboxes
            WHERE provider = $1 AND status IN ('ready', 'leased') AND created_at < $2
            ORDER BY created_at, sandbox_id
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = provider });
        command.Parameters.Add(new NpgsqlParameter { Value = createdBefore.UtcDateTime });
        return await ReadSandboxes(command, ct);
    }

    /// <summary>
    /// One page of sandboxes in creation order. The cursor is the last row's (created_at, sandbox_id), so pages
    /// stay stable while sandboxes are added. A null tenant lists every tenant's (an admin). Only the filters given are
    /// in the SQL: a prepared statement's generic plan cannot drop a "$1 IS NULL OR" branch, and with it a tenant's page
    /// would walk every tenant's sandboxes instead of reading ix_broker_sandboxes_tenant_listed.
    /// </summary>
    public async Task<IReadOnlyList<SandboxRow>> ListSandboxesAsync(SandboxQuery query, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand();
        var conditions = new List<string>();
        void Filter(string column, string? value)
        {
            if (value is not null)
            {
                command.Parameters.Add(Text(value));
                conditions.Add($"{column} = ${command.Parameters.Count}");
            }
        }
        Filter("tenant", query.Tenant);
        Filter("status", query.Status);
        Filter("pool", query.Pool);
        Filter("owner", query.Owner);
        if (query.After is { } after)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = after.CreatedAt.UtcDateTime, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz });
            command.Parameters.Add(Text(after.SandboxId));
            conditions.Add($"(created_at, sandbox_id) > (${command.Parameters.Count - 1}, ${command.Parameters.Count})");
        }
        command.Parameters.Add(new NpgsqlParameter { Value = query.Limit });
        command.CommandText = $"""
            SELECT sandbox_id, pool, provider, status, name, external_id, tenant, owner, claim_key, created_at, updated_at, expires_at
            FROM broker_sandboxes
            {(conditions.Count == 0 ? "" : "WHERE " + string.Join(" AND ", conditions))}
            ORDER BY created_at, sandbox_id
            LIMIT ${command.Parameters.Count}
            """;
        return await ReadSandboxes(command, ct);
    }

    /// <summary>Sandboxes by status (a null tenant counts all).</summary>
    public async Task<IReadOnlyDictionary<string, long>> CountSandboxesByStatusAsync(string? tenant, CancellationToken ct) =>
        await CountAsync("SELECT status, count(*) FROM broker_sandboxes WHERE ($1::text IS NULL OR tenant = $1) GROUP BY status", tenant, ct);

    /// <summary>Claims by status of their current or last lease (a null tenant counts all).</summary>
    public async Task<IReadOnlyDictionary<string, long>> CountClaimsByStatusAsync(string? tenant, CancellationToken ct) =>
        await CountAsync("SELECT status, count(*) FROM broker_claims WHERE ($1::text IS NULL OR tenant = $1) GROUP BY status", tenant, ct);

    /// <summary>A tenant's claims with an active lease, by claim id, with their pools and owners: what its limits count at activation.</summary>
    public async Task<IReadOnlyList<(string ClaimId, string Pool, string? Owner)>> ListActiveClaimsAsync(string tenant, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("SELECT claim_key, pool, owner FROM broker_claims WHERE tenant = $1 AND status = 'active'");
        command.Parameters.Add(new NpgsqlParameter { Value = tenant });
        var claims = new List<(string, string, string?)>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            claims.Add((reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
        }
        return claims;
    }

    /// <summary>Sandboxes waiting for deletion (<see cref="SandboxLifecycle.PendingDeletion"/>), oldest change first (ix_broker_sandboxes_pending).</summary>
    public async Task<IReadOnlyList<string>> ListPendingDeletionAsync(int limit, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT sandbox_id FROM broker_sandboxes WHERE status IN ({PendingDeletion}) ORDER BY updated_at LIMIT $1
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = limit });
        return await ReadStrings(command, ct);
    }

    /// <summary>Claims whose wake time has passed (a deadline, a release to retry, history to prune), in any pool.</summary>
    public Task<IReadOnlyList<string>> ListOverdueClaimsAsync(DateTimeOffset now, int limit, CancellationToken ct) =>
        ListDueAsync("SELECT claim_key FROM broker_claims WHERE wake_at <= $1 ORDER BY wake_at LIMIT $2", null, now, limit, ct);

    /// <summary>A pool's claims whose wake time has passed: what the deadline sweep wakes.</summary>
    public Task<IReadOnlyList<string>> ListDueClaimsAsync(string pool, DateTimeOffset now, int limit, CancellationToken ct) =>
        ListDueAsync("SELECT claim_key FROM broker_claims WHERE pool = $3 AND wake_at <= $1 ORDER BY wake_at LIMIT $2", pool, now, limit, ct);

    /// <summary>A pool's sandboxes whose wake time has passed (a deletion to try again): what the deletion sweep wakes.</summary>
    public Task<IReadOnlyList<string>> ListDueSandboxesAsync(string pool, DateTimeOffset now, int limit, CancellationToken ct) =>
        ListDueAsync("SELECT sandbox_id FROM broker_sandboxes WHERE pool = $3 AND wake_at <= $1 ORDER BY wake_at LIMIT $2", pool, now, limit, ct);

    /// <summary>
    /// A pool's live sandboxes (<see cref="SandboxLifecycle.Live"/>) other than <paramref name="except"/>, counted by status,
    /// with the snapshot the count was read in: the pool corrects from this the counts it keeps of the sandboxes it does not
    /// list (leased, on their way out), and tells by the snapshot which status notices the count already holds
    /// (ix_broker_sandboxes_pool_live). Ready and provisioning ones come by id: there are few (a create or checkout a crash
    /// lost), and one the pool began to list while this was read is not to be counted.
    /// </summary>
    public async Task<LiveCounts> CountLiveAsync(string pool, IReadOnlyCollection<string> except, CancellationToken ct)
    {
        // One statement: pg_current_snapshot() is the snapshot the count itself reads in.
        await using var command = dataSource.CreateCommand($"""
            SELECT s.snapshot::text, c.status, c.n, c.ids
            FROM (SELECT pg_current_snapshot() AS snapshot) s
            LEFT JOIN (
                SELECT status, count(*) AS n,
                       CASE WHEN status IN ('ready', 'provisioning') THEN array_agg(sandbox_id) END AS ids
                FROM broker_sandboxes
                WHERE pool = $1 AND status IN ({Live}) AND NOT (sandbox_id = ANY($2))
                GROUP BY status) c ON true
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = pool });
        command.Parameters.Add(new NpgsqlParameter { Value = except.ToArray() });
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var waiting = new List<string>();
        CommitSnapshot? snapshot = null;
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            snapshot ??= CommitSnapshot.Parse(reader.GetString(0));
            if (!reader.IsDBNull(1))
            {
                counts[reader.GetString(1)] = reader.GetInt64(2);
                if (!reader.IsDBNull(3))
                {
                    waiting.AddRange(reader.GetFieldValue<string[]>(3));
                }
            }
        }
        return new LiveCounts(counts, waiting, snapshot ?? throw new InvalidOperationException("the count returned no row"));
    }

    /// <summary>A pool's ready and provisioning sandboxes, oldest change first: what the pool hands out and is creating (ix_broker_sandboxes_waiting).</summary>
    public async Task<IReadOnlyList<(string SandboxId, string Status, DateTimeOffset Since)>> ListReadyAndProvisioningAsync(string pool, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT sandbox_id, status, updated_at FROM broker_sandboxes
            WHERE pool = $1 AND status IN ('ready', 'provisioning')
            ORDER BY updated_at, sandbox_id
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = pool });
        var rows = new List<(string, string, DateTimeOffset)>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add((reader.GetString(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2)));
        }
        return rows;
    }

    /// <summary>
    /// The sandboxes of a pool that its active leases name (ix_broker_claims_tenant_active). Read with
    /// <see cref="ListReadyAndProvisioningAsync"/> when a pool restores its lists: a ready sandbox among them was stored as
    /// leased by its claim but its own <c>leased</c> write never landed.
    /// </summary>
    public async Task<IReadOnlySet<string>> ListLeasedSandboxIdsAsync(string pool, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT sandbox_id FROM broker_claims
            WHERE status = 'active' AND pool = $1 AND sandbox_id IS NOT NULL
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = pool });
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetString(0));
        }
        return ids;
    }

    /// <summary>
    /// A pool's ready sandboxes other than <paramref name="except"/> unchanged since <paramref name="before"/>: ready, but no
    /// pool lists them (ix_broker_sandboxes_waiting).
    /// </summary>
    public async Task<IReadOnlyList<string>> ListStrayReadyAsync(string pool, IReadOnlyCollection<string> except, DateTimeOffset before, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT sandbox_id FROM broker_sandboxes
            WHERE pool = $1 AND status = 'ready' AND NOT (sandbox_id = ANY($2)) AND updated_at < $3
            LIMIT 1000
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = pool });
        command.Parameters.Add(new NpgsqlParameter { Value = except.ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = before.UtcDateTime });
        return await ReadStrings(command, ct);
    }

    private async Task<IReadOnlyList<string>> ListDueAsync(string sql, string? pool, DateTimeOffset now, int limit, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = now.UtcDateTime });
        command.Parameters.Add(new NpgsqlParameter { Value = limit });
        if (pool is not null)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = pool });
        }
        return await ReadStrings(command, ct);
    }

    private async Task<IReadOnlyDictionary<string, long>> CountAsync(string sql, string? tenant, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(tenant));
        return await ReadCounts(command, ct);
    }

    private static async Task<IReadOnlyDictionary<string, long>> ReadCounts(NpgsqlCommand command, CancellationToken ct)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            counts[reader.GetString(0)] = reader.GetInt64(1);
        }
        return counts;
    }

    private static async Task<IReadOnlyList<string>> ReadStrings(NpgsqlCommand command, CancellationToken ct)
    {
        var values = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            values.Add(reader.GetString(0));
        }
        return values;
    }

    private static NpgsqlParameter Text(string? value) =>
        new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text };

    private static SandboxRow ReadSandbox(NpgsqlDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3),
        r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5),
        r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7), r.IsDBNull(8) ? null : r.GetString(8),
        r.GetFieldValue<DateTimeOffset>(9), r.GetFieldValue<DateTimeOffset>(10),
        r.IsDBNull(11) ? null : r.GetFieldValue<DateTimeOffset>(11));

    private static async Task<IReadOnlyList<SandboxRow>> ReadSandboxes(NpgsqlCommand command, CancellationToken ct)
    {
        var rows = new List<SandboxRow>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add(ReadSandbox(reader));
        }
        return rows;
    }
}
