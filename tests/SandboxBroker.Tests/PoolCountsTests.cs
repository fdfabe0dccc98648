using SandboxBroker.Grains;

namespace SandboxBroker.Tests;

/// <summary>The pool's in-memory counts of the sandboxes it no longer lists, kept by from/to notices in any order.</summary>
public sealed class PoolCountsTests
{
    [Fact]
    public void A_handed_out_sandbox_counts_as_leased_then_deleting_then_nothing()
    {
        var counts = new PoolCounts();
        counts.HandOut("a", DateTimeOffset.UnixEpoch);
        Assert.Equal(1, counts.Total);
        counts.Move("a", SandboxStatus.Ready, SandboxStatus.Leased, wasListed: false);
        Assert.Equal((0, 1, 0, 1), (counts.HandedOut.Count, counts.Leased, counts.Deleting, counts.Total));
        counts.Move("a", SandboxStatus.Leased, SandboxStatus.Deleting, wasListed: false);
        Assert.Equal((0, 1, 1), (counts.Leased, counts.Deleting, counts.Total));
        counts.Move("a", SandboxStatus.Deleting, SandboxStatus.Deleted, wasListed: false);
        Assert.Equal(0, counts.Total);
    }

    [Fact]
    public void Notices_that_overtake_each_other_still_balance()
    {
        var counts = new PoolCounts();
        counts.HandOut("a", DateTimeOffset.UnixEpoch);
        counts.Move("a", SandboxStatus.Ready, SandboxStatus.Leased, wasListed: false);
        // "deleted" arrives before "deleting": for a moment the deleting count is below zero, read as zero.
        counts.Move("a", SandboxStatus.Deleting, SandboxStatus.Deleted, wasListed: false);
        Assert.Equal(0, counts.Deleting);
        counts.Move("a", SandboxStatus.Leased, SandboxStatus.Deleting, wasListed: false);
        Assert.Equal((0, 0, 0), (counts.Leased, counts.Deleting, counts.Total));
    }

    [Fact]
    public void A_cold_create_stays_handed_out_until_it_is_leased_and_a_shrink_counts_as_deleting_at_once()
    {
        var counts = new PoolCounts();
        counts.HandOut("cold", DateTimeOffset.UnixEpoch);
        counts.Move("cold", SandboxStatus.Provisioning, SandboxStatus.Ready, wasListed: false);
        Assert.True(counts.IsHandedOut("cold"));
        counts.Leave("surplus");
        Assert.Equal(1, counts.Deleting);
        counts.Move("surplus", SandboxStatus.Ready, SandboxStatus.Deleting, wasListed: false);
        counts.Move("surplus", SandboxStatus.Deleting, SandboxStatus.Deleted, wasListed: false);
        Assert.Equal((0, 1), (counts.Deleting, counts.Total));
    }
}
