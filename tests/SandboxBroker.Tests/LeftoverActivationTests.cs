using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;
using Orleans.TestingHost;
using SandboxBroker.Grains;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// During a membership change a grain can have a second activation on another silo for a while; the one left over
/// keeps what it last saw. Its writes fail on the stored version; these tests are about what it answers to reads.
/// </summary>
public sealed class LeftoverActivationTests
{
    /// <summary>
    /// Found by the process fault harness (seed 570454): a sandbox leased, released and deleted through one activation
    /// was still answered as ready by another, a minute later, through GET /v1/sandboxes/{id} and to its pool.
    /// </summary>
    [Fact]
    public async Task A_sandbox_read_through_an_activation_another_one_overtook_answers_what_is_stored()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?> { ["Broker:Pools:default:MinReady"] = "1" });
        await Eventually.TrueAsync(async () => (await broker.Grains.GetGrain<IPoolGrain>("default").GetStatus()).Levels.Ready == 1, "a ready sandbox");
        var id = (await broker.Database.ScalarAsync<string>("SELECT sandbox_id FROM broker_sandboxes WHERE pool = 'default' AND status = 'ready'"))!;
        var sandbox = broker.Grains.GetGrain<ISandboxGrain>(id);
        Assert.Equal(SandboxStatus.Ready, (await sandbox.Get())!.Status);

        // The other activation leases it: its write goes through the silo's grain storage at the version it read.
        var storage = ((InProcessSiloHandle)broker.Cluster.Silos[0]).SiloHost!.Services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Broker);
        var other = new GrainState<SandboxState>(new SandboxState());
        await storage.ReadStateAsync("sandbox", sandbox.GetGrainId(), other);
        var stored = Assert.IsType<SandboxState>(other.State);
        Assert.Equal(SandboxStatus.Ready, stored.Status);
        stored.Status = SandboxStatus.Leased;
        stored.Tenant = "t";
        stored.ClaimKey = "github:octo/elsewhere#1";
        stored.LeaseNumber = 1;
        await storage.WriteStateAsync("sandbox", sandbox.GetGrainId(), other);

        var read = await sandbox.Get();
        Assert.Equal((SandboxStatus.Leased, "github:octo/elsewhere#1"), (read!.Status, read.ClaimKey));
        // The activation that was overtaken left; the next one answers the same.
        Assert.Equal(SandboxStatus.Leased, (await sandbox.Get())!.Status);
    }
}
