using SandboxBroker.Storage;

namespace SandboxBroker.Silo;

/// <summary>
/// Brings the database to the broker's schema (deploy/sql) before a silo starts. The silo's own process does it before it
/// builds its host (<see cref="ApplyAsync"/>); a gateway that hosts the silo adds it as a hosted service ahead of Orleans,
/// since hosted services start in the order they were added.
/// </summary>
public sealed class SchemaMigration(string connectionString, ILoggerFactory loggerFactory) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => ApplyAsync(connectionString, loggerFactory, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Postgres unreachable is a <see cref="StartupException"/> (one line); otherwise every pending script is applied.</summary>
    public static async Task ApplyAsync(string connectionString, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        await using var dataSource = PostgresConnection.CreateDataSource(connectionString, "sandboxbroker-migrate");
        await PostgresConnection.CheckReachableAsync(dataSource, cancellationToken);
        await new SchemaMigrator(dataSource, loggerFactory.CreateLogger<SchemaMigrator>()).ApplyAsync(cancellationToken);
    }
}
