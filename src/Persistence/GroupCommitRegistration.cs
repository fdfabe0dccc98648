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
    /// <summary>
    /// Registers the broker's group-committed grain storage under <paramref name="name"/>, on the silo's
    /// <see cref="NpgsqlDataSource"/> (registered by the caller), with one writer for the silo.
    /// </summary>
    public static IServiceCollection AddGroupCommitGrainStorage(this IServiceCollection services, string name, IConfiguration configuration)
    {
        services.Configure<GroupCommitOptions>(configuration.GetSection(GroupCommitOptions.Section));
        services.AddSingleton<StorageTelemetry>();
        services.AddSingleton(sp => new GroupCommitWriter(
            sp.GetRequiredService<NpgsqlDataSource>(),
            sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId,
            sp.GetRequiredService<IOptions<GroupCommitOptions>>(),
            sp.GetRequiredService<ILogger<GroupCommitWriter>>(),
            sp.GetRequiredService<StorageTelemetry>()));
        services.AddSingleton(sp => new StateSerializers(
            new OrleansGrainStorageSerializer(sp.GetRequiredService<Serializer>()),
            sp.GetRequiredService<IGrainStorageSerializer>(),
            sp.GetRequiredService<IOptions<GroupCommitOptions>>()));
        services.AddKeyedSingleton<IGrainStorage>(name, (sp, _) =>
            new GroupCommitGrainStorage(sp.GetRequiredService<GroupCommitWriter>(), sp.GetRequiredService<StateSerializers>()));
        return services;
    }
}
