using SandboxBroker.Grains;
using SandboxBroker.Storage;

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

    // A recount reads the index while notices keep coming. In these, transactions below 100 had committed when the count
    // was read (snapshot 100:100:), and 150 had not.
    private static readonly CommitSnapshot Snapshot = CommitSnapshot.Parse("100:100:");

    private static LiveCounts Live(int leased = 0, int deleting = 0, params string[] waiting) =>
        new(new Dictionary<string, long> { ["leased"] = leased, ["deleting"] = deleting }, waiting, Snapshot);

    private static PoolCounts LeasedOne(string id)
    {
        var counts = new PoolCounts();
        counts.HandOut(id, DateTimeOffset.UnixEpoch);
        counts.Move(id, SandboxStatus.Ready, SandboxStatus.Leased, wasListed: false, storedBy: 10);
        return counts;
    }

    [Fact]
    public void A_release_the_recount_already_counted_is_not_counted_again_when_its_notice_comes_after()
    {
        var counts = LeasedOne("a");
        // The release (transaction 50) committed before the count read the index; its notice arrives after the count.
        counts.Recount(counts.BeginRecount(), Live(deleting: 1), new HashSet<string>());
        counts.Move("a", SandboxStatus.Leased, SandboxStatus.Deleting, wasListed: false, storedBy: 50);
        Assert.Equal((0, 1, 1), (counts.Leased, counts.Deleting, counts.Total));
        counts.Move("a", SandboxStatus.Deleting, SandboxStatus.Deleted, wasListed: false, storedBy: 150);
        Assert.Equal((0, 0, 0), (counts.Leased, counts.Deleting, counts.Total));
    }

    [Fact]
    public void A_release_heard_while_the_count_was_read_counts_once_whether_or_not_the_count_saw_it()
    {
        // Seen by the count (transaction 50): the count has it as deleting, and hearing it during the read adds nothing.
        var seen = LeasedOne("a");
        var pending = seen.BeginRecount();
        seen.Move("a", SandboxStatus.Leased, SandboxStatus.Deleting, wasListed: false, storedBy: 50);
        seen.Recount(pending, Live(deleting: 1), new HashSet<string>());
        Assert.Equal((0, 1), (seen.Leased, seen.Deleting));

        // Not seen (transaction 150): the count has it as leased, and the move heard during the read still counts.
        var unseen = LeasedOne("a");
        pending = unseen.BeginRecount();
        unseen.Move("a", SandboxStatus.Leased, SandboxStatus.Deleting, wasListed: false, storedBy: 150);
        unseen.Recount(pending, Live(leased: 1), new HashSet<string>());
        Assert.Equal((0, 1), (unseen.Leased, unseen.Deleting));
    }

    [Fact]
    public void A_sandbox_handed_out_when_the_count_began_is_counted_by_its_own_moves()
    {
        var counts = new PoolCounts();
        counts.HandOut("a", DateTimeOffset.UnixEpoch);
        var pending = counts.BeginRecount();
        // The count left it out (it was handed out), so its lease counts even though the snapshot includes it, heard while
        // the count was read or after.
        counts.Move("a", SandboxStatus.Ready, SandboxStatus.Leased, wasListed: false, storedBy: 50);
        counts.Recount(pending, Live(), new HashSet<string> { "a" });
        Assert.Equal((1, 1), (counts.Leased, counts.Total));
        counts.Move("a", SandboxStatus.Leased, SandboxStatus.Deleting, wasListed: false, storedBy: 60);
        Assert.Equal((0, 1, 1), (counts.Leased, counts.Deleting, counts.Total));
    }

    [Fact]
    public void A_create_begun_while_the_count_was_read_is_the_pools_own_and_a_shrink_meanwhile_still_counts()
    {
        var counts = new PoolCounts();
        var pending = counts.BeginRecount();
        counts.Leave("surplus"); // listed as ready when the count began, so the count left it out
        counts.Recount(pending, Live(0, 0, "new-create", "lost-checkout"), new HashSet<string> { "new-create", "surplus" });
        Assert.Equal((1, 1, 2), (counts.Unlisted, counts.Deleting, counts.Total));
        counts.Move("surplus", SandboxStatus.Ready, SandboxStatus.Deleting, wasListed: false, storedBy: 50);
        Assert.Equal(1, counts.Deleting);
    }

    [Fact]
    public void A_shrink_of_a_sandbox_the_count_saw_as_ready_counts_once()
    {
        var counts = new PoolCounts();
        var pending = counts.BeginRecount();
        counts.Leave("late"); // listed after the read began, shrunk away before it ended: the count has it as ready
        counts.Recount(pending, Live(0, 0, "late"), new HashSet<string>());
        Assert.Equal((1, 0), (counts.Unlisted, counts.Deleting));
        counts.Move("late", SandboxStatus.Ready, SandboxStatus.Deleting, wasListed: false, storedBy: 150);
        Assert.Equal((0, 1, 1), (counts.Unlisted, counts.Deleting, counts.Total));
    }
}
