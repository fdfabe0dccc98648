using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// Found by the process fault harness: an acquire whose sandbox call failed with something other than a broker error
/// (the sandbox grain's silo had been killed) left the claim's lease active, naming a sandbox that was never created;
/// touch, read and release then acknowledged it. Now the lease is ended and the acquire fails.
/// </summary>
public sealed class LeaseStepFailureTests
{
    [Fact]
    public async Task An_acquire_whose_sandbox_call_fails_unexpectedly_leaves_no_lease_naming_a_sandbox_that_does_not_exist()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?>
        {
            ["Broker:Pools:failing-create:Provider"] = "failing-create",
            ["Broker:Pools:failing-create:MinReady"] = "0",
        });
        var claim = broker.Grains.GetGrain<IClaimGrain>("github:octo/crash#1");

        await Assert.ThrowsAnyAsync<Exception>(() => claim.Acquire(new AcquireRequest("failing-create", "t", "o")));

        Assert.Null(await claim.Get());
        var ended = Assert.Single(await claim.History());
        Assert.Equal(LeaseStatus.Released, ended.Status);
        await Assert.ThrowsAsync<BrokerException>(() => claim.Touch());
        // The sandbox reserved for it is on its way out, and the key works again.
        await Eventually.TrueAsync(async () => (await broker.Grains.GetGrain<ISandboxGrain>(ended.SandboxId).Get())?.Status is null or SandboxStatus.Deleted,
            "the reserved sandbox is deleted");
        var again = await claim.Acquire(new AcquireRequest("default", "t", "o"));
        Assert.NotEqual(ended.SandboxId, again.Sandbox.SandboxId);
    }
}
