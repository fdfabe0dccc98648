using Npgsql;

namespace SandboxBroker.Grains.Providers.PostgresSchema;

/// <summary>What a sandbox holds, for operators and tests: a read of the catalog, apart from the provider's calls.</summary>
public sealed partial class PostgresSchemaSandboxProvider
{
    /// <summary>How much a sandbox holds: its tables and their rows (counted exactly).</summary>
    public async Task<PostgresSchemaStats?> GetStatsAsync(string sandboxId, CancellationToken cancellationToken)
    {
        var schema = SchemaFor(sandboxId);
        await using var connection = await OpenAsync(cancellationToken);
        var tables = new List<string>();
        await using (var command = new NpgsqlCommand("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", connection))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = schema });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                tables.Add(reader.GetString(0));
            }
        }
        if (tables.Count == 0 && await ReadMetadataAsync(connection, schema, cancellationToken) is null)
        {
            return null;
        }
        long rows = 0;
        foreach (var table in tables)
        {
            var count = await ScalarAsync<string>(connection, "SELECT format('SELECT count(*) FROM %I.%I', $1::text, $2::text)", cancellationToken, schema, table);
            rows += await ScalarAsync<long>(connection, count, cancellationToken);
        }
        return new PostgresSchemaStats(tables.Count, rows);
    }
}

/// <summary>A sandbox's tables and the rows they hold.</summary>
public sealed record PostgresSchemaStats(int Tables, long Rows);
