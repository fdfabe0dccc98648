using Npgsql;

namespace SandboxBroker.Storage;

/// <summary>Reads the broker's index tables (broker_sandboxes, broker_claims) without activating grains.</summary>
public sealed class BrokerIndex(NpgsqlDataSource dataSource)
{
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
