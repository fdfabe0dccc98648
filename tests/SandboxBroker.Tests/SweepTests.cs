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

    /// <summary>
    /// A provider's delete can take minutes. The sweep used to wait for the attempt it woke, so one slow delete held the
    /// pool's whole sweep (lease expiry included) and, through the sweep's Start, a new activation of the pool.
    /// </summary>
    [Fact]
    public async Task A_sweep_answers_while_a_delete_it_woke_waits_at_the_provider()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?>
        {
            ["Broker:Pools:gated:Provider"] = "gated",
            ["Broker:Pools:gated:MinReady"] = "0",
        });
        var claim = broker.Grains.GetClaim("t", "track:gated/student");
        var acquired = await claim.Acquire(new AcquireRequest("gated", "t", "o"));
        await claim.Release("done");
        var gate = broker.SiloService<GatedProvider>();
        await Eventually.TrueAsync(() => gate.Waiting == 1, "the delete waits at the provider");

        // Due since its deletion began: the sweep wakes it, and answers with the delete still waiting.
        var report = await broker.Grains.GetGrain<ISweeperGrain>("gated").Sweep();
        Assert.Equal(1, report.SandboxesWoken);
        Assert.Equal(1, gate.Waiting);

        gate.Open();
        var sandbox = broker.Grains.GetGrain<ISandboxGrain>(acquired.Sandbox.SandboxId);
        await Eventually.TrueAsync(async () => (await sandbox.Get())?.Status == SandboxStatus.Deleted, "the sandbox is deleted once the provider answers");
        Assert.Empty(broker.ProviderSandboxes());
    }
}
