using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using SandboxBroker.Storage;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// A fresh database on the test Postgres (BROKER_TEST_POSTGRES, set by ./test.sh), with the project's schema
/// applied. Each fixture gets its own database, so tests never see each other's rows. A missing or unreachable
/// Postgres fails the test with a message saying how to get one; it is never skipped.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string EnvironmentVariable = "BROKER_TEST_POSTGRES";

    private TestDatabase(string name, string connectionString, NpgsqlDataSource dataSource)
    {
        Name = name;
        ConnectionString = connectionString;
        DataSource = dataSource;
    }

    public string Name { get; }
    public string ConnectionString { get; }
    public NpgsqlDataSource DataSource { get; }

    public static string ServerConnectionString =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{EnvironmentVariable} is not set. These tests need a real Postgres: run ./test.sh (it starts one), " +
                $"or start deploy/pg.sh and export {EnvironmentVariable}=\"$(deploy/pg.sh env | sed -E \"s/.*BROKER_POSTGRES='(.*)'/\\1/\")\".");

    /// <param name="withSchema">False: an empty database, for a process that applies the schema itself.</param>
    public static async Task<TestDatabase> CreateAsync(bool withSchema = true)
    {
        var server = new NpgsqlConnectionStringBuilder(ServerConnectionString);
        var name = $"t_{Guid.NewGuid():N}"[..20];
        try
        {
            await using var admin = new NpgsqlConnection(server.ConnectionString);
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", admin);
            await create.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException e)
        {
            throw new InvalidOperationException($"Cannot reach the test Postgres at {server.Host}:{server.Port} ({EnvironmentVariable}): {e.Message}", e);
        }
        var builder = new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = name, MaxPoolSize = 200 };
        var dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        if (withSchema)
        {
            await new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance).ApplyAsync();
        }
        return new TestDatabase(name, builder.ConnectionString, dataSource);
    }

    public async Task<T?> ScalarAsync<T>(string sql, params object[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p });
        }
        var value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? default : (T)value;
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        try
        {
            await using var admin = new NpgsqlConnection(ServerConnectionString);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // Best effort: ./test.sh drops leftover t_ databases at the start of the next run.
        }
    }
}
