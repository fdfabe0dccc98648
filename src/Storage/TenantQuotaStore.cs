using Npgsql;
using NpgsqlTypes;

namespace SandboxBroker.Storage;

/// <summary>A tenant's quota row (broker_tenant_quotas); null fields take the defaults.</summary>
public sealed record TenantQuotaRow(string Tenant, int? MaxActiveLeases, int? MaxSandboxesPerPool, IReadOnlyList<string>? AllowedPools, DateTimeOffset UpdatedAt);

/// <summary>Reads and writes tenant quotas. The tenant grain is the only writer and keeps the quota in force in memory.</summary>
public sealed class TenantQuotaStore(NpgsqlDataSource dataSource)
{
    public async Task<TenantQuotaRow?> GetAsync(string tenant, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT tenant, max_active_leases, max_sandboxes_per_pool, allowed_pools, updated_at FROM broker_tenant_quotas WHERE tenant = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = tenant });
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new TenantQuotaRow(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetInt32(2),
                reader.IsDBNull(3) ? null : reader.GetFieldValue<string[]>(3), reader.GetFieldValue<DateTimeOffset>(4))
            : null;
    }

    public async Task UpsertAsync(string tenant, int? maxActiveLeases, int? maxSandboxesPerPool, IReadOnlyList<string>? allowedPools, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO broker_tenant_quotas (tenant, max_active_leases, max_sandboxes_per_pool, allowed_pools, updated_at)
            VALUES ($1, $2, $3, $4, now())
            ON CONFLICT (tenant) DO UPDATE SET max_active_leases = EXCLUDED.max_active_leases,
                max_sandboxes_per_pool = EXCLUDED.max_sandboxes_per_pool, allowed_pools = EXCLUDED.allowed_pools, updated_at = now()
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = tenant });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)maxActiveLeases ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)maxSandboxesPerPool ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Integer });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)allowedPools?.ToArray() ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task DeleteAsync(string tenant, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("DELETE FROM broker_tenant_quotas WHERE tenant = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = tenant });
        await command.ExecuteNonQueryAsync(ct);
    }
}
