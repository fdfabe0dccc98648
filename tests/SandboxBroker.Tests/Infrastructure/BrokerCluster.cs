using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using SandboxBroker.Gateway;
using SandboxBroker.Grains;
using SandboxBroker.Silo;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// An in-process cluster of real silos on the project's Postgres: ADO.NET clustering, grain storage and
/// reminders, the production grain directory (not the test cluster's distributed one), and the local
/// provider in a private directory. Settings reach the silos through configuration keys.
/// </summary>
public sealed class BrokerCluster : IAsyncDisposable
{
    private BrokerCluster(TestCluster cluster, TestDatabase database, string sandboxRoot)
    {
        Cluster = cluster;
        Database = database;
        SandboxRoot = sandboxRoot;
    }

    public TestCluster Cluster { get; }
    public TestDatabase Database { get; }
    public string SandboxRoot { get; }
    public IGrainFactory Grains => Cluster.GrainFactory;

    /// <summary>Short periods so expiry and retries show within a test; override any key with <paramref name="settings"/>.</summary>
    public static async Task<BrokerCluster> StartAsync(short silos = 2, IDictionary<string, string?>? settings = null, TestDatabase? database = null, string? serviceId = null)
    {
        database ??= await TestDatabase.CreateAsync();
        var sandboxRoot = Path.Combine(Path.GetTempPath(), "sandboxbroker-tests", Guid.NewGuid().ToString("N"));
        var builder = new TestClusterBuilder(silos);
        builder.Options.UseTestClusterMembership = false;
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket; // real sockets, so outside clients (the gateway) connect
        if (serviceId is not null)
        {
            builder.Options.ServiceId = serviceId;
        }
        builder.Options.SiloBuilderConfiguratorTypes.RemoveAll(t => t is not null && t.Contains("ConfigureDistributedGrainDirectory", StringComparison.Ordinal));
        var properties = new Dictionary<string, string?>
        {
            ["Postgres:ConnectionString"] = database.ConnectionString,
            ["Orleans:MinimumReminderPeriod"] = "00:00:01",
            ["Providers:Local:Root"] = sandboxRoot,
            ["Broker:LeaseCheckPeriod"] = "00:00:01",
            ["Broker:RetryReminderPeriod"] = "00:00:02",
            ["Broker:DeleteRetryMin"] = "00:00:00.200",
            // Every warm lease asks its provider first, so tests that stop or remove a sandbox at the provider see it checked.
            ["Broker:LeaseRecheckAfter"] = "00:00:00",
            ["Broker:DeleteRetryMax"] = "00:00:02",
            ["Broker:OwnerMaxActiveLeases"] = "100000",
            ["Broker:Pools:default:MinReady"] = "0",
            ["Broker:Pools:default:MaxTotal"] = "100000",
            // Providers with secrets (E2B, Daytona, postgres-schema) need a key to seal their connection details.
            [ConnectionSecrets.KeySetting] = Convert.ToBase64String(new byte[32].Select((_, i) => (byte)(i * 7 + 1)).ToArray()),
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            properties[key] = value;
        }
        foreach (var (key, value) in properties)
        {
            builder.Properties[key] = value;
        }
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddSiloBuilderConfigurator<FlakyProvider.Configurator>();
        builder.AddSiloBuilderConfigurator<CrashingProvider.Configurator>();
        builder.AddSiloBuilderConfigurator<GatedProvider.Configurator>();
        builder.AddSiloBuilderConfigurator<CallFaults.Configurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new BrokerCluster(cluster, database, sandboxRoot);
    }

    /// <summary>The broker sandbox ids the local provider holds (directories with metadata).</summary>
    public IReadOnlyList<string> ProviderSandboxes() =>
        Directory.Exists(SandboxRoot)
            ? Directory.EnumerateDirectories(SandboxRoot).Where(d => File.Exists(Path.Combine(d, "sandbox.json"))).Select(Path.GetFileName).Cast<string>().ToList()
            : [];

    /// <summary>A service from one silo's container (silo 0 unless said).</summary>
    public T SiloService<T>(int silo = 0) where T : notnull =>
        ((InProcessSiloHandle)Cluster.Silos[silo]).SiloHost!.Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Cluster.StopAllSilosAsync();
        }
        finally
        {
            await Cluster.DisposeAsync();
            await Database.DisposeAsync();
            if (Directory.Exists(SandboxRoot))
            {
                Directory.Delete(SandboxRoot, recursive: true);
            }
        }
    }

    public sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var configuration = siloBuilder.Configuration;
            // The test cluster puts its ids at Orleans:ClusterId / Orleans:ServiceId, the keys the silo reads.
            SiloConfiguration.Configure(siloBuilder, configuration, configuration["Postgres:ConnectionString"]!, configureEndpoints: false);
        }
    }

    public sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.UseAdoNetClustering(o =>
            {
                o.Invariant = SiloConfiguration.Invariant;
                o.ConnectionString = configuration["Postgres:ConnectionString"];
            }).UseClusterTls(configuration); // the silos' Orleans:Tls settings, when a test sets them

    }
}
