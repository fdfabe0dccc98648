using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Api;

/// <summary>One cluster (a silo on Postgres) and one gateway shared by the API tests; each test uses its own keys and tenants.</summary>
public sealed class ApiFixture : IAsyncLifetime
{
    public BrokerCluster Broker { get; private set; } = null!;
    public BrokerGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Broker = await BrokerCluster.StartAsync(silos: 1, settings: new Dictionary<string, string?>
        {
            // A pool that never creates on demand and holds one sandbox at most: "empty" answers are reachable.
            ["Broker:Pools:scarce:MinReady"] = "0",
            ["Broker:Pools:scarce:MaxTotal"] = "1",
            ["Broker:Pools:scarce:OnEmpty"] = "Fail",
        });
        Gateway = await BrokerGateway.StartAsync(Broker);
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Broker.DisposeAsync();
    }

    public static string NewKey(string prefix = "test") => $"{prefix}:{Guid.NewGuid():N}";

    public static string NewTenant() => "t-" + Guid.NewGuid().ToString("N")[..12];
}

[CollectionDefinition(Name)]
public sealed class ApiCollection : ICollectionFixture<ApiFixture>
{
    public const string Name = "api";
}
