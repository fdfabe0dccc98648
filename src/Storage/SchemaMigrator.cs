using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace SandboxBroker.Storage;

/// <summary>
/// Applies deploy/sql/*.sql (embedded) in name order. Each file is recorded with its checksum in
/// broker_schema_migrations; a session-level advisory lock keeps concurrent starters (several silos)
/// from applying at once. Files are idempotent by themselves, so a changed file is simply applied again.
/// </summary>
public sealed class SchemaMigrator(NpgsqlDataSource dataSource, ILogger<SchemaMigrator> logger)
{
    private const long AdvisoryLockKey = 0x5B_B0_C4_E1; // "SandboxBroker schema"

    public static IReadOnlyList<(string Name, string Sql)> Scripts { get; } = LoadScripts();

    public async Task<int> ApplyAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await Execute(connection, $"SELECT pg_advisory_lock({AdvisoryLockKey})", cancellationToken);
        try
        {
            await Execute(connection, """
                CREATE TABLE IF NOT EXISTS broker_schema_migrations (
                    file_name  text PRIMARY KEY,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """, cancellationToken);
            var applied = await ReadApplied(connection, cancellationToken);
            var count = 0;
            foreach (var (name, sql) in Scripts)
            {
                var checksum = Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(sql)));
                if (applied.TryGetValue(name, out var known) && known == checksum)
                {
                    continue;
                }
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await Execute(connection, sql, cancellationToken, transaction);
                await using (var record = new NpgsqlCommand("""
                    INSERT INTO broker_schema_migrations (file_name, checksum) VALUES (@name, @checksum)
                    ON CONFLICT (file_name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()
                    """, connection, transaction))
                {
                    record.Parameters.AddWithValue("name", name);
                    record.Parameters.AddWithValue("checksum", checksum);
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }
                await transaction.CommitAsync(cancellationToken);
                logger.LogInformation("Applied schema file {SchemaFile}", name);
                count++;
            }
            return count;
        }
        finally
        {
            await Execute(connection, $"SELECT pg_advisory_unlock({AdvisoryLockKey})", CancellationToken.None);
        }
    }

    private static async Task<Dictionary<string, string>> ReadApplied(NpgsqlConnection connection, CancellationToken ct)
    {
        var applied = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand("SELECT file_name, checksum FROM broker_schema_migrations", connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            applied[reader.GetString(0)] = reader.GetString(1);
        }
        return applied;
    }

    private static async Task Execute(NpgsqlConnection connection, string sql, CancellationToken ct, NpgsqlTransaction? transaction = null)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static List<(string, string)> LoadScripts()
    {
        var assembly = typeof(SchemaMigrator).Assembly;
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("sql/", StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => (n["sql/".Length..], Read(assembly, n)))
            .ToList();
    }

    private static string Read(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
