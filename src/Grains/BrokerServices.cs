using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using SandboxBroker.Grains.Options;
using System.Net.Http.Headers;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Grains.Providers.Daytona;
using SandboxBroker.Grains.Providers.E2B;
using SandboxBroker.Grains.Providers.Http;
using SandboxBroker.Grains.Providers.PostgresSchema;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

public static class BrokerServices
{
    /// <summary>Everything the grains need on a silo: options, the clock, providers, the Postgres index.</summary>
    public static IServiceCollection AddBrokerGrainServices(this IServiceCollection services, IConfiguration configuration, string connectionString)
    {
        services.Configure<BrokerOptions>(configuration.GetSection(BrokerOptions.Section));
        services.Configure<LocalProviderOptions>(configuration.GetSection(LocalProviderOptions.Section));
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<GrainReferences>();

        services.AddSingleton(_ => PostgresConnection.CreateDataSource(connectionString, "sandboxbroker-silo"));
        services.AddSingleton<SchemaMigrator>();
        services.AddSingleton<BrokerIndex>();
        services.AddSingleton<SweepMetrics>();
        services.AddSingleton<AuditLog>();
        services.AddSingleton<TenantQuotaStore>();

        services.AddSingleton<ISandboxProvider, LocalSandboxProvider>();
        services.AddConfiguredProviders(configuration);
        services.AddSingleton<SandboxProviderRegistry>();
        var secrets = ConnectionSecrets.FromConfiguration(configuration);
        secrets.RequireFor(ProvidersWithSecrets(configuration));
        services.AddSingleton(secrets);
        return services;
    }

    /// <summary>The configured providers whose connection details hold secrets (every one but the local provider).</summary>
    public static IReadOnlyList<string> ProvidersWithSecrets(IConfiguration configuration) =>
    [
        .. configuration.GetSection(DaytonaProviderOptions.Section).Get<DaytonaProviderOptions>() is { IsConfigured: true } ? [DaytonaSandboxProvider.ProviderName] : Array.Empty<string>(),
        .. configuration.GetSection(E2BProviderOptions.Section).Get<E2BProviderOptions>() is { IsConfigured: true } ? [E2BSandboxProvider.ProviderName] : Array.Empty<string>(),
        .. configuration.GetSection(PostgresSchemaProviderOptions.Section).Get<PostgresSchemaProviderOptions>() is { IsConfigured: true }
            ? [PostgresSchemaSandboxProvider.ProviderName] : Array.Empty<string>(),
    ];

    /// <summary>
    /// The providers that need an account or a server, each only when its section is configured (an API key, a
    /// connection string), so a default start needs none. A pool names its provider: "daytona", "e2b", "postgres-schema".
    /// </summary>
    public static IServiceCollection AddConfiguredProviders(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton<ProviderMetrics>();
        var daytona = configuration.GetSection(DaytonaProviderOptions.Section);
        if (daytona.Get<DaytonaProviderOptions>() is { IsConfigured: true })
        {
            services.Configure<DaytonaProviderOptions>(daytona);
            services.AddProviderHttpClient<DaytonaProviderOptions>(DaytonaSandboxProvider.ProviderName, DaytonaProviderOptions.DefaultBaseUrl,
                (client, o) => client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", o.ApiKey));
            services.AddSingleton<ISandboxProvider, DaytonaSandboxProvider>();
        }
        var e2b = configuration.GetSection(E2BProviderOptions.Section);
        if (e2b.Get<E2BProviderOptions>() is { IsConfigured: true })
        {
            services.Configure<E2BProviderOptions>(e2b);
            services.AddProviderHttpClient<E2BProviderOptions>(E2BSandboxProvider.ProviderName, E2BProviderOptions.DefaultBaseUrl,
                (client, o) => client.DefaultRequestHeaders.Add("X-API-Key", o.ApiKey));
            services.AddSingleton<ISandboxProvider, E2BSandboxProvider>();
        }
        var postgres = configuration.GetSection(PostgresSchemaProviderOptions.Section);
        if (postgres.Get<PostgresSchemaProviderOptions>() is { IsConfigured: true })
        {
            services.Configure<PostgresSchemaProviderOptions>(postgres);
            services.AddSingleton<PostgresSchemaSandboxProvider>();
            services.AddSingleton<ISandboxProvider>(sp => sp.GetRequiredService<PostgresSchemaSandboxProvider>());
        }
        return services;
    }
}
