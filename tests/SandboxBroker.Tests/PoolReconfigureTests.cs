using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>A reconfigured pool's lease rules apply from the next lease on.</summary>
public sealed class PoolReconfigureTests
{
    [Fact]
    public async Task The_next_lease_after_a_reconfigure_gets_the_new_default_ttl_and_may_ask_for_the_new_maximum()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var pool = broker.Grains.GetGrain<IPoolGrain>("reconf");
        await pool.Configure(Config(defaultTtl: TimeSpan.FromHours(1), maxTtl: TimeSpan.FromHours(2)));
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready >= 3, "the pool has ready sandboxes");
        var first = await broker.Grains.GetClaim("t", "track:reconf/1").Acquire(new AcquireRequest("reconf", "t", "o"));
        Assert.Equal(TimeSpan.FromHours(1), first.Lease.ExpiresAt - first.Lease.AcquiredAt);

        await pool.Configure(Config(defaultTtl: TimeSpan.FromHours(3), maxTtl: TimeSpan.FromHours(4)));

        var longer = await broker.Grains.GetClaim("t", "track:reconf/2").Acquire(new AcquireRequest("reconf", "t", "o", Ttl: TimeSpan.FromHours(3.5)));
        Assert.Equal(TimeSpan.FromHours(3.5), longer.Lease.ExpiresAt - longer.Lease.AcquiredAt);
        await pool.Configure(Config(defaultTtl: TimeSpan.FromHours(5), maxTtl: TimeSpan.FromHours(6)));
        var byDefault = await broker.Grains.GetClaim("t", "track:reconf/3").Acquire(new AcquireRequest("reconf", "t", "o"));
        Assert.Equal(TimeSpan.FromHours(5), byDefault.Lease.ExpiresAt - byDefault.Lease.AcquiredAt);
        await pool.Configure(Config(defaultTtl: TimeSpan.FromHours(1), maxTtl: TimeSpan.FromHours(2)));
        var refused = await Assert.ThrowsAsync<BrokerException>(() =>
            broker.Grains.GetClaim("t", "track:reconf/4").Acquire(new AcquireRequest("reconf", "t", "o", Ttl: TimeSpan.FromHours(3))));
        Assert.Equal(ErrorCodes.TtlTooLong, refused.Code);
        Assert.Equal(3, (await pool.GetStatus()).Levels.Leased); // the refused acquire took no sandbox
    }

    private static PoolConfig Config(TimeSpan defaultTtl, TimeSpan maxTtl) =>
        new("reconf", "local", null, 3, 20, defaultTtl, maxTtl, null, OnEmptyPolicy.Fail, 4);
}
