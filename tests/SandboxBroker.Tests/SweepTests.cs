using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// Leases end and deletions are retried after the silo that held them died, through the pool's sweep and the wake times
/// in the index, with no reminder per lease or per sandbox.
/// </summary>
public sealed class SweepTests
{
    private const string ReminderRowsOtherThanTheSweeps =
        "SELECT count(*) FROM OrleansRemindersTable WHERE ReminderName NOT IN ('sweep', 'maintain', 'reconcile', 'prune')";

    [Fact]
    public async Task Leases_whose_silo_was_killed_still_end_at_their_deadline_without_a_reminder_each()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2);
        // Enough keys that some claims live on the silo about to die (placement is random).
        var keys = Enumerable.Range(0, 16).Select(i => $"track:sweep/student-{i}").ToList();
        var acquired = await Task.WhenAll(keys.Select(k =>
            broker.Grains.GetClaim("t", k).Acquire(new AcquireRequest("default", "t", "o", Ttl: TimeSpan.FromSeconds(3)))));
        Assert.Equal(0L, await broker.Database.ScalarAsync<long>(ReminderRowsOtherThanTheSweeps));
        Assert.Equal(16L, await broker.Database.ScalarAsync<long>("SELECT count(*) FROM broker_claims WHERE status = 'active' AND wake_at IS NOT NULL"));

        await broker.Cluster.KillSiloAsync(broker.Cluster.Silos[1]);

        // Nothing calls the claims: the ones that lived on the dead silo end only because the sweep wakes them.
        await Eventually.TrueAsync(async () =>
            await broker.Database.ScalarAsync<long>("SELECT count(*) FROM broker_claims WHERE status = 'expired'") == 16,
            "every lease ends at its deadline", TimeSpan.FromSeconds(60));
        await Eventually.TrueAsync(() => broker.ProviderSandboxes().Count == 0, "every expired lease's sandbox is deleted", TimeSpan.FromSeconds(60));
        foreach (var result in acquired)
        {
            Assert.Equal(1L, await broker.Database.ScalarAsync<long>(
                "SELECT count(*) FROM broker_audit_log WHERE entity_id = $1 AND event = 'lease.expired'", ClaimId.Of("t", result.Lease.ClaimKey)));
        }
        Assert.Equal(0L, await broker.Database.ScalarAsync<long>(ReminderRowsOtherThanTheSweeps));
    }

    [Fact]
    public async Task Deletions_that_failed_are_retried_after_their_silo_died_without_a_reminder_each()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2, new Dictionary<string, string?>
        {
            ["Broker:Pools:flaky:Provider"] = "flaky",
            ["Broker:Pools:flaky:MinReady"] = "0",
            ["Broker:DeleteRetryMin"] = "00:00:02",
            ["Broker:DeleteRetryMax"] = "00:00:02",
        });
        var keys = Enumerable.Range(0, 12).Select(i => $"track:flaky/student-{i}").ToList();
        await Task.WhenAll(keys.Select(k => broker.Grains.GetClaim("t", k).Acquire(new AcquireRequest("flaky", "t", "o"))));
        await Task.WhenAll(keys.Select(k => broker.Grains.GetClaim("t", k).Release("done")));
        // Each first delete fails (the flaky provider fails twice per sandbox); the retries are 2 s away.
        await broker.Cluster.KillSiloAsync(broker.Cluster.Silos[1]);

        await Eventually.TrueAsync(() => broker.ProviderSandboxes().Count == 0, "every released sandbox is deleted at the provider", TimeSpan.FromSeconds(60));
        await Eventually.TrueAsync(async () =>
            await broker.Database.ScalarAsync<long>("SELECT count(*) FROM broker_sandboxes WHERE pool = 'flaky' AND status <> 'deleted'") == 0,
            "every record says deleted", TimeSpan.FromSeconds(30));
        Assert.Equal(0L, await broker.Database.ScalarAsync<long>(ReminderRowsOtherThanTheSweeps));
    }
}
