using Npgsql;

namespace SandboxBroker.Storage;

/// <summary>Where the broker's Postgres is. One connection string serves membership, grain state, reminders and the broker's tables.</summary>
public sealed class PostgresOptions
{
    public const string Section = "Postgres";
    public const string EnvironmentVariable = "BROKER_POSTGRES";
    public const string DefaultConnectionString = "Host=127.0.0.1;Port=54329;Database=sandboxbroker;Username=broker;Password=broker";

    public string ConnectionString { get; set; } = DefaultConnectionString;

    /// <summary>BROKER_POSTGRES, else Postgres:ConnectionString, else the project's local Postgres.</summary>
    public static string Resolve(Microsoft.Extensions.Configuration.IConfiguration configuration) =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : configuration.GetSection(Section)["ConnectionString"] ?? DefaultConnectionString;
}

public static class PostgresConnection
{
    /// <summary>
    /// The connection settings the broker's Postgres traffic runs best with, added where the connection string does not
    /// say otherwise. Every grain write, reminder and membership call borrows a pooled connection for one statement:
    /// <list type="bullet">
    /// <item><c>No Reset On Close</c>: by default each return to the pool costs a <c>DISCARD ALL</c>, which also throws
    /// away the plans plpgsql cached for <c>orleans_storage_write</c>, so every grain write planned its statement again.
    /// Nothing the broker or Orleans runs leaves session state behind (the schema migrator, whose advisory lock is
    /// per session, unlocks it itself and uses its own data source).</item>
    /// <item><c>Max Auto Prepare</c>: the few statements the providers repeat are prepared once per connection.</item>
    /// </list>
    /// Measured on the warm-acquire benchmark: 13.8 → 7.3 Postgres round trips per acquire (docs/BENCHMARKS.md).
    /// </summary>
    public static string Tuned(string connectionString)
    {
        var given = new System.Data.Common.DbConnectionStringBuilder();
        NpgsqlConnectionStringBuilder builder;
        try
        {
            given.ConnectionString = connectionString;
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            return connectionString; // CreateDataSource and the providers report it
        }
        bool Names(params string[] keys) => keys.Any(given.ContainsKey);
        if (!Names("No Reset On Close", "NoResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }
        if (!Names("Max Auto Prepare", "MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = 64;
        }
        return builder.ConnectionString;
    }

    /// <summary>Builds a data source, turning a malformed connection string into one clear message.</summary>
    public static NpgsqlDataSource CreateDataSource(string connectionString, string applicationName)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            throw new StartupException($"the Postgres connection string is not valid: {e.Message}");
        }
        if (string.IsNullOrWhiteSpace(builder.Host))
        {
            throw new StartupException("the Postgres connection string names no Host");
        }
        builder.ApplicationName ??= applicationName;
        return NpgsqlDataSource.Create(builder.ConnectionString);
    }

    /// <summary>Opens one connection so a start-up fails fast, and says which server it could not reach.</summary>
    public static async Task CheckReachableAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        var builder = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new StartupException($"cannot reach Postgres at {builder.Host}:{builder.Port} database '{builder.Database}': {e.Message}");
        }
    }
}

/// <summary>A start-up problem the operator can fix; printed as one line, then the process exits non-zero.</summary>
public sealed class StartupException(string message) : Exception(message);
