using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using SandboxBroker.Grains.Options;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

public static class BrokerServices
{
    /// <summary>Everything the grains need on a silo: options, the clock, providers, the Postgres journal and index.</summary>
    public static IServiceCollection AddBrokerGrainServices(this IServiceCollection services, IConfiguration configuration, string connectionString)
    {
        services.Configure<BrokerOptions>(configuration.GetSection(BrokerOptions.Section));
        services.Configure<LocalProviderOptions>(configuration.GetSection(LocalProviderOptions.Section));
        services.TryAddSingleton(TimeProvider.System);

        services.AddSingleton(_ => PostgresConnection.CreateDataSource(connectionString, "sandboxbroker-silo"));
        services.AddSingleton<SchemaMigrator>();
        services.AddSingleton<BrokerIndex>();
        services.AddSingleton<PostgresBrokerJournal>();
        services.AddSingleton<IBrokerJournal>(sp => sp.GetRequiredService<PostgresBrokerJournal>());
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<PostgresBrokerJournal>());

        services.AddSingleton<ISandboxProvider, LocalSandboxProvider>();
        services.AddSingleton<SandboxProviderRegistry>();
        return services;
    }
}
