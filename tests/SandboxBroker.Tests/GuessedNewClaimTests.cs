using Orleans.Core.Internal;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// An acquire that expects its key to be new (the gateway has not seen it leased) is leased without reading the key's
/// state first. These are the cases where the guess is wrong: the key's activation is gone and its row holds a lease or
/// history. The answer must be the one a read-first acquire gives, and the wrong guess must cost nobody anything.
/// </summary>
public sealed class GuessedNewClaimTests
{
    private static AcquireRequest ExpectingNew(string pool, string tenant = "t") => new(pool, tenant, "o", ExpectNew: true);

    [Fact]
    public async Task A_key_holding_a_lease_answers_that_lease_and_the_sandbox_the_guess_took_goes_to_the_next_key()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        // Two sandboxes at most: once the key holds one, the pool's only other one is what the wrong guess takes.
        await ConfigurePool(broker, "pair", minReady: 1, maxTotal: 2);
        await broker.Grains.GetGrain<ITenantGrain>("t").SetQuota(new TenantQuota(MaxActiveLeases: 1, MaxSandboxesPerPool: null, AllowedPools: null));
        var claim = broker.Grains.GetClaim("t", "github:octo/guess#1");
        var first = await claim.Acquire(ExpectingNew("pair"));
        await Eventually.TrueAsync(async () => (await broker.Grains.GetGrain<IPoolGrain>("pair").GetStatus()).Levels.Ready == 1, "the pool refilled");
        await Deactivate(claim);

        Assert.True(await claim.HasActiveLease()); // answered from what is stored, before any call reads it in
        var again = await claim.Acquire(ExpectingNew("pair"));

        Assert.Equal(AcquireOutcome.Repeat, again.Outcome);
        Assert.Equal((first.Lease.Number, first.Sandbox.SandboxId), (again.Lease.Number, again.Sandbox.SandboxId));
        // The tenant still counts the key's lease (the guess's undo did not forget it): its quota of one is taken.
        Assert.Equal(1, (await broker.Grains.GetGrain<ITenantGrain>("t").GetUsage()).ActiveLeases);
        var refused = await Assert.ThrowsAsync<BrokerException>(() => broker.Grains.GetClaim("t", "github:octo/guess#2").Acquire(ExpectingNew("pair")));
        Assert.Equal(ErrorCodes.TenantQuotaExceeded, refused.Code);
        // The ready sandbox the guess took is back in the pool: another tenant's key gets it, warm.
        var other = await broker.Grains.GetClaim("u", "github:octo/guess#3").Acquire(ExpectingNew("pair", tenant: "u"));
        Assert.Equal(AcquireOutcome.Warm, other.Outcome);
        Assert.Equal(SandboxStatus.Leased, (await broker.Grains.GetGrain<ISandboxGrain>(first.Sandbox.SandboxId).Get())?.Status);
    }

    [Fact]
    public async Task A_key_holding_a_lease_is_answered_even_when_the_pool_has_nothing_left()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        await ConfigurePool(broker, "single", minReady: 1, maxTotal: 1);
        var claim = broker.Grains.GetClaim("t", "github:octo/guess#4");
        var first = await claim.Acquire(ExpectingNew("single"));
        await Deactivate(claim);

        var again = await claim.Acquire(ExpectingNew("single"));

        Assert.Equal((AcquireOutcome.Repeat, first.Sandbox.SandboxId), (again.Outcome, again.Sandbox.SandboxId));
    }

    [Fact]
    public async Task A_released_key_leases_anew_with_the_next_lease_number_and_keeps_its_history()
    {
        await using var broker = await LeaseStepFailureTests.WithReadySandboxes(2, joint: true);
        var claim = broker.Grains.GetClaim("t", "github:octo/guess#5");
        var first = await claim.Acquire(ExpectingNew("default"));
        await claim.Release("done");
        await Deactivate(claim);

        var second = await claim.Acquire(ExpectingNew("default"));

        Assert.Equal((AcquireOutcome.Warm, 2L), (second.Outcome, second.Lease.Number));
        Assert.NotEqual(first.Sandbox.SandboxId, second.Sandbox.SandboxId);
        Assert.Equal([2L, 1L], (await claim.History()).Select(l => l.Number));
        Assert.Equal(1L, await broker.Database.ScalarAsync<long>(
            "SELECT count(*) FROM broker_audit_log WHERE entity_id = $1 AND event = 'lease.released'", ClaimId.Of("t", "github:octo/guess#5")));
    }

    [Fact]
    public async Task A_new_key_leased_on_the_guess_is_stored_like_any_lease()
    {
        await using var broker = await LeaseStepFailureTests.WithReadySandboxes(1, joint: true);
        var claim = broker.Grains.GetClaim("t", "github:octo/guess#6");

        var leased = await claim.Acquire(ExpectingNew("default"));
        await Deactivate(claim);

        Assert.Equal((AcquireOutcome.Warm, 1L), (leased.Outcome, leased.Lease.Number));
        Assert.Equal(leased.Sandbox.SandboxId, (await claim.Get())?.SandboxId);
        Assert.Equal("active", await broker.Database.ScalarAsync<string>("SELECT status FROM broker_claims WHERE claim_key = $1", ClaimId.Of("t", "github:octo/guess#6")));
    }

    private static async Task ConfigurePool(BrokerCluster broker, string name, int minReady, int maxTotal)
    {
        var pool = broker.Grains.GetGrain<IPoolGrain>(name);
        await pool.Configure(new PoolConfig(name, "local", null, minReady, maxTotal, TimeSpan.FromHours(1), TimeSpan.FromHours(24), null, OnEmptyPolicy.Fail, 1));
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == minReady, $"pool {name} has {minReady} ready");
    }

    /// <summary>Drops the claim's activation: the next call starts one that has read nothing.</summary>
    private static async Task Deactivate(IClaimGrain claim)
    {
        await claim.Cast<IGrainManagementExtension>().DeactivateOnIdle();
    }
}
