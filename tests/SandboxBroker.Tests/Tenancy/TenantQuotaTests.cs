using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Tenancy;

/// <summary>Quotas at the grains: exact under concurrency across silos, and an acquire that fails gives its admission back.</summary>
public sealed class TenantQuotaTests
{
    [Fact]
    public async Task Concurrent_acquires_across_silos_get_exactly_the_quota_and_a_failed_acquire_gives_its_place_back()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2);
        await broker.Grains.GetGrain<ITenantGrain>("busy").SetQuota(new TenantQuota(MaxActiveLeases: 3, MaxSandboxesPerPool: null, AllowedPools: null));
        await broker.Grains.GetGrain<IPoolGrain>("empty").Configure(
            new PoolConfig("empty", "local", null, 0, 10, TimeSpan.FromHours(1), TimeSpan.FromHours(24), null, OnEmptyPolicy.Fail, 1));

        // An acquire that fails after its admission (the pool has nothing) does not keep a place.
        var empty = await Assert.ThrowsAsync<BrokerException>(() =>
            broker.Grains.GetClaim("busy", "track:busy/empty").Acquire(new AcquireRequest("empty", "busy", "o")));
        Assert.Equal(ErrorCodes.NoSandboxesAvailable, empty.Code);
        Assert.Equal(0, (await broker.Grains.GetGrain<ITenantGrain>("busy").GetUsage()).ActiveLeases);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
        {
            try
            {
                await broker.Grains.GetClaim("busy", $"track:busy/{i}").Acquire(new AcquireRequest("default", "busy", $"o{i}"));
                return "ok";
            }
            catch (BrokerException e)
            {
                return e.Code;
            }
        }));
        Assert.Equal(3, outcomes.Count(o => o == "ok"));
        Assert.Equal(17, outcomes.Count(o => o == ErrorCodes.TenantQuotaExceeded));
        Assert.Equal(3L, await broker.Database.ScalarAsync<long>("SELECT count(*) FROM broker_claims WHERE tenant = 'busy' AND status = 'active'"));
        // Another tenant is not held back.
        await broker.Grains.GetClaim("calm", "track:busy/0").Acquire(new AcquireRequest("default", "calm", "o"));

        // Ending a lease, however it ends, frees its place.
        var holder = Enumerable.Range(0, 20).First(i => outcomes[i] == "ok");
        await broker.Grains.GetClaim("busy", $"track:busy/{holder}").Release("done");
        await broker.Grains.GetClaim("busy", "track:busy/late").Acquire(new AcquireRequest("default", "busy", "late"));
        Assert.Equal(3, (await broker.Grains.GetGrain<ITenantGrain>("busy").GetUsage()).ActiveLeases);
    }
}
