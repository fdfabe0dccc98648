using Microsoft.Extensions.DependencyInjection;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>The gateway reaches claims through <see cref="GrainReferences"/>: the same grains Orleans' GetGrain reaches.</summary>
public sealed class GrainReferencesTests
{
    [Fact]
    public async Task A_claim_reached_through_grain_references_is_the_one_GetGrain_reaches()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var references = ActivatorUtilities.CreateInstance<GrainReferences>(broker.Cluster.Client.ServiceProvider);

        var cached = references.Claim("tenant-a", "issue-1");
        var plain = broker.Grains.GetClaim("tenant-a", "issue-1");

        Assert.Equal(plain.GetGrainId(), cached.GetGrainId());
        Assert.Equal(((GrainReference)plain).InterfaceType, ((GrainReference)cached).InterfaceType);
        Assert.Same(cached.GetType(), references.Claim("tenant-a", "issue-2").GetType());
        var acquired = await cached.Acquire(new AcquireRequest("default", "tenant-a", "owner-1"));
        Assert.Equal(acquired.Sandbox.SandboxId, (await plain.Get())?.SandboxId);
    }

    [Fact]
    public async Task An_interface_no_silo_implements_is_an_error_of_the_deployment()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var references = ActivatorUtilities.CreateInstance<GrainReferences>(broker.Cluster.Client.ServiceProvider);

        var error = Assert.Throws<InvalidOperationException>(() => references.Get<INotHostedGrain>("any"));
        Assert.Contains(nameof(INotHostedGrain), error.Message);
    }
}

/// <summary>A grain interface without an implementation in any silo.</summary>
public interface INotHostedGrain : IGrainWithStringKey
{
    Task Ping();
}
