using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
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

    /// <summary>
    /// A claim answers repeats from memory. Its activation left over from a membership change, whose lease another
    /// activation has ended, would hand that lease's sandbox out again as a repeat, and tell the reconciler it still owns
    /// the sandbox. After a membership change it checks what is stored first.
    /// </summary>
    [Fact]
    public async Task A_claim_activation_that_lived_through_a_membership_change_answers_what_another_activation_stored()
    {
        await using var broker = await LeaseStepFailureTests.WithReadySandboxes(3, joint: true);
        var repeated = broker.Grains.GetClaim("t", "github:octo/leftover#1");
        var owned = broker.Grains.GetClaim("t", "github:octo/leftover#2");
        var first = await repeated.Acquire(new AcquireRequest("default", "t", "o"));
        var second = await owned.Acquire(new AcquireRequest("default", "t", "o"));
        // Both activations hold their lease in memory; another activation of each ends it.
        await EndLeaseElsewhere(broker, repeated);
        await EndLeaseElsewhere(broker, owned);

        await broker.Cluster.StartAdditionalSiloAsync();
        var membership = broker.SiloService<IClusterMembershipService>();
        await Eventually.TrueAsync(() => membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) == 2,
            "the first silo sees the second one join");

        Assert.False(await owned.Owns(second.Sandbox.SandboxId));
        var again = await AcquireRetryingLikeTheGateway(repeated);
        Assert.NotEqual(AcquireOutcome.Repeat, again.Outcome);
        Assert.Equal(2L, again.Lease.Number);
        Assert.NotEqual(first.Sandbox.SandboxId, again.Sandbox.SandboxId);
    }

    /// <summary>What another activation of the claim does when it releases the lease: the stored state moves past this one's.</summary>
    private static async Task EndLeaseElsewhere(BrokerCluster broker, IClaimGrain claim)
    {
        var storage = broker.SiloService<IServiceProvider>().GetRequiredKeyedService<IGrainStorage>(StorageNames.Broker);
        var other = new GrainState<ClaimState>(new ClaimState());
        await storage.ReadStateAsync("claim", claim.GetGrainId(), other);
        var state = Assert.IsType<ClaimState>(other.State);
        var lease = Assert.IsType<Lease>(state.Active);
        state.Active = null;
        state.History = [lease with { Status = LeaseStatus.Released, EndedAt = DateTimeOffset.UtcNow, EndReason = "released elsewhere" }, .. state.History];
        await storage.WriteStateAsync("claim", claim.GetGrainId(), other);
    }

    /// <summary>The gateway retries an acquire refused as a concurrent update (ApiRoutes.CallAsync).</summary>
    private static async Task<AcquireResult> AcquireRetryingLikeTheGateway(IClaimGrain claim)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await claim.Acquire(new AcquireRequest("default", "t", "o"));
            }
            catch (BrokerException e) when (e.Code == ErrorCodes.ConcurrentUpdate && attempt < 4)
            {
            }
        }
    }
}
