using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Serialization;
using Orleans.Storage;

namespace SandboxBroker.Persistence;

public static class GroupCommitRegistration
{
    private const string DataSourceKey = "grain-state";

    /// <summary>
    /// Registers the broker's group-committed grain storage under <paramref name="name"/>, with one writer for the silo
    /// on a data source of its own (<see cref="GrainStateConnectionString"/>).
    /// </summary>
    public static IServiceCollection AddGroupCommitGrainStorage(this IServiceCollection services, string name, IConfiguration configuration,
        string connectionString)
    {
        services.Configure<GroupCommitOptions>(configuration.GetSection(GroupCommitOptions.Section));
        services.AddSingleton<StorageTelemetry>();
        services.AddKeyedSingleton(DataSourceKey, (_, _) => NpgsqlDataSource.Create(GrainStateConnectionString(connectionString)));
        services.AddSingleton(sp => new GroupCommitWriter(
            sp.GetRequiredKeyedService<NpgsqlDataSource>(DataSourceKey),
            sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId,
            sp.GetRequiredService<IOptions<GroupCommitOptions>>(),
            sp.GetRequiredService<ILogger<GroupCommitWriter>>(),
            sp.GetRequiredService<StorageTelemetry>(),
            sp.GetService<TimeProvider>()));
        services.AddSingleton<IJointWrites>(sp => sp.GetRequiredService<GroupCommitWriter>());
        services.AddSingleton(sp => new StateSerializers(
            new OrleansGrainStorageSerializer(sp.GetRequiredService<Serializer>()),
            sp.GetRequiredService<IGrainStorageSerializer>(),
            sp.GetRequiredService<IOptions<GroupCommitOptions>>()));
        services.AddKeyedSingleton<IGrainStorage>(name, (sp, _) =>
            new GroupCommitGrainStorage(sp.GetRequiredService<GroupCommitWriter>(), sp.GetRequiredService<StateSerializers>()));
        return services;
    }

    /// <summary>
    /// The writer's sessions plan without sequential scans. Every statement it runs finds its rows by primary key, and
    /// each is prepared once per connection and then run from a generic plan, which Postgres keeps until the table is
    /// analyzed again. A plan made while a table was still small (a new database, a pool filling) is a sequential scan,
    /// and it stayed one while the table grew: in the benchmark every grain-state read and update took 6-12 ms for the
    /// first minute of a run, until autoanalyze replanned them. With sequential scans priced out, the plan is the
    /// primary-key lookup at any size.
    /// </summary>
    public static string GrainStateConnectionString(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        builder.Options = $"{builder.Options} -c enable_seqscan=off".Trim();
        builder.ApplicationName = builder.ApplicationName is { Length: > 0 } given ? $"{given}-grain-state" : "sandboxbroker-grain-state";
        return builder.ConnectionString;
    }
}
