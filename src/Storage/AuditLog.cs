using Npgsql;

namespace SandboxBroker.Storage;

/// <summary>broker_audit_log outside the grain writes that append to it: deleting what is past retention.</summary>
public sealed class AuditLog(NpgsqlDataSource dataSource)
{
    /// <summary>
    /// Deletes rows that occurred before <paramref name="cutoff"/>, in batches of <paramref name="batch"/> (each its own
    /// short transaction, so appends never wait long behind a large delete), at most <paramref name="maxBatches"/>; the next
    /// run carries on where this one stopped. The rows are found through the BRIN index on occurred_at (deploy/sql/0017),
    /// in the order they lie in the table, which for an append-only log is about the order they were written.
    /// </summary>
    public async Task<long> PruneAsync(DateTimeOffset cutoff, int batch, int maxBatches, CancellationToken ct)
    {
        long total = 0;
        for (var i = 0; i < maxBatches; i++)
        {
            await using var command = dataSource.CreateCommand("""
                DELETE FROM broker_audit_log WHERE id IN (
                    SELECT id FROM broker_audit_log WHERE occurred_at < $1 LIMIT $2)
                """);
            command.Parameters.Add(new NpgsqlParameter { Value = cutoff.UtcDateTime });
            command.Parameters.Add(new NpgsqlParameter { Value = batch });
            var deleted = await command.ExecuteNonQueryAsync(ct);
            total += deleted;
            if (deleted < batch)
            {
                break;
            }
        }
        return total;
    }
}
