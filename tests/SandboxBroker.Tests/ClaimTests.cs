using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>Exactly one sandbox per claim key, on a two-silo cluster on real Postgres.</summary>
public sealed class ClaimTests
{
    private static AcquireRequest Request(string pool = "default", TimeSpan? ttl = null, TimeSpan? idle = null, string owner = "owner-1", string? name = null) =>
        new(pool, "tenant-a", owner, ttl, idle, Name: name);

    [Fact]
    public async Task A_thousand_concurrent_acquires_of_one_key_get_one_sandbox()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2);
        const string key = "github:octo/repo#42";

        var results = await Task.WhenAll(Enumerable.Range(0, 1000).Select(_ =>
            broker.Grains.GetClaim("tenant-a", key).Acquire(Request(name: "claude-issue-{number}"))));

        var sandboxIds = results.Select(r => r.Sandbox.SandboxId).Distinct().ToList();
        Assert.Single(sandboxIds);
        Assert.Equal(1, results.Count(r => r.Outcome != AcquireOutcome.Repeat));
        Assert.All(results, r => Assert.Equal("claude-issue-42", r.Sandbox.Name));
        Assert.Equal([sandboxIds[0]], broker.ProviderSandboxes());
        Assert.Equal(1L, await broker.Database.ScalarAsync<long>("SELECT count(*) FROM broker_claims WHERE claim_key = $1 AND status = 'active'", ClaimId.Of("tenant-a", key)));
        Assert.Equal(1L, await broker.Database.ScalarAsync<long>("SELECT count(*) FROM broker_sandboxes WHERE claim_key = $1 AND status = 'leased'", key));
    }

    [Fact]
    public async Task Two_hundred_keys_acquired_ten_times_each_concurrently_make_exactly_two_hundred_sandboxes()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2);
        var keys = Enumerable.Range(0, 200).Select(i => $"track:lab-7/student-{i}").ToList();

        var results = await Task.WhenAll(keys.SelectMany(key => Enumerable.Range(0, 10).Select(_ =>
            broker.Grains.GetClaim("tenant-a", key).Acquire(Request()))));

        var byKey = results.GroupBy(r => r.Lease.ClaimKey).ToList();
        Assert.Equal(200, byKey.Count);
        Assert.All(byKey, g => Assert.Single(g.Select(r => r.Sandbox.SandboxId).Distinct()));
        Assert.Equal(200, results.Select(r => r.Sandbox.SandboxId).Distinct().Count());
        Assert.Equal(200, broker.ProviderSandboxes().Count);
    }

    [Fact]
    public async Task An_expired_lease_gives_way_to_a_new_sandbox_and_the_old_one_is_deleted_at_the_provider()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2);
        var claim = broker.Grains.GetClaim("tenant-a", "ctx:tenant-a/conversation-1/path-1");

        // (Repeats within a lease are tested with long TTLs elsewhere; a 2 s lease may already be over here on a busy machine.)
        var first = await claim.Acquire(Request(ttl: TimeSpan.FromSeconds(2)));
        Assert.Equal(AcquireOutcome.Cold, first.Outcome);

        // Nobody calls: the timer/reminder ends the lease and the sandbox goes.
        await Eventually.TrueAsync(() => !broker.ProviderSandboxes().Contains(first.Sandbox.SandboxId), "the expired lease's sandbox is deleted at the provider");
        Assert.Null(await claim.Get());

        var second = await claim.Acquire(Request(ttl: TimeSpan.FromMinutes(5)));
        Assert.NotEqual(first.Sandbox.SandboxId, second.Sandbox.SandboxId);
        Assert.Equal([second.Sandbox.SandboxId], broker.ProviderSandboxes());

        var history = await claim.History();
        Assert.Equal(2, history.Count);
        Assert.Equal((LeaseStatus.Active, second.Sandbox.SandboxId), (history[0].Status, history[0].SandboxId));
        Assert.Equal((LeaseStatus.Expired, first.Sandbox.SandboxId, "ttl"), (history[1].Status, history[1].SandboxId, history[1].EndReason));
        await Eventually.TrueAsync(async () => (await broker.Grains.GetGrain<ISandboxGrain>(first.Sandbox.SandboxId).Get())!.Status == SandboxStatus.Deleted,
            "the old sandbox's record says deleted");
    }

    [Fact]
    public async Task An_idle_lease_expires_unless_touched()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var claim = broker.Grains.GetClaim("tenant-a", "track:idle/student");
        var lease = (await claim.Acquire(Request(idle: TimeSpan.FromSeconds(6)))).Lease;
        for (var i = 0; i < 6; i++) // 9 s of activity, past the 6 s idle timeout, with room for a slow machine
        {
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            await claim.Touch(); // activity keeps it alive past the idle timeout
        }
        Assert.NotNull(await claim.Get());
        await Eventually.TrueAsync(async () => await claim.Get() is null, "the untouched lease expires");
        var ended = (await claim.History())[0];
        Assert.Equal((LeaseStatus.Expired, "idle timeout", lease.SandboxId), (ended.Status, ended.EndReason, ended.SandboxId));
    }

    [Fact]
    public async Task Release_ends_the_lease_deletes_the_sandbox_and_is_idempotent()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var claim = broker.Grains.GetClaim("tenant-a", "github:octo/repo#7");
        var acquired = await claim.Acquire(Request());
        var released = await claim.Release("issue closed");
        Assert.Equal(LeaseStatus.Released, released!.Status);
        Assert.Null(await claim.Release("again"));
        await Eventually.TrueAsync(() => broker.ProviderSandboxes().Count == 0, "the released sandbox is deleted");
        // The provider deletes first; the record and its audit row follow. A release goes straight from leased to deleting.
        await Eventually.TrueAsync(async () => await broker.Database.ScalarAsync<string>(
            "SELECT string_agg(event, ',' ORDER BY id) FROM broker_audit_log WHERE entity_id = $1",
            acquired.Sandbox.SandboxId) == "sandbox.provisioning,sandbox.ready,sandbox.leased,sandbox.deleting,sandbox.deleted",
            "the audit log holds provisioning, ready, leased, deleting and deleted, in order");
        // A deleted sandbox's activation has nothing left to do: it goes instead of waiting for idle collection.
        var management = broker.Grains.GetGrain<IManagementGrain>(0);
        var sandboxGrain = GrainId.Create("sandbox", acquired.Sandbox.SandboxId);
        await Eventually.TrueAsync(async () => !(await management.GetDetailedGrainStatistics()).Any(g => g.GrainId == sandboxGrain),
            "the deleted sandbox's activation is gone");
    }

    [Fact]
    public async Task A_delete_that_fails_twice_is_retried_until_the_provider_confirms()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?>
        {
            ["Broker:Pools:flaky:Provider"] = "flaky",
            ["Broker:Pools:flaky:MinReady"] = "0",
        });
        var claim = broker.Grains.GetClaim("tenant-a", "track:flaky/student");
        var acquired = await claim.Acquire(Request(pool: "flaky"));
        await claim.Release("done");

        var sandbox = broker.Grains.GetGrain<ISandboxGrain>(acquired.Sandbox.SandboxId);
        await Eventually.TrueAsync(async () => (await sandbox.Get())!.Status == SandboxStatus.Deleted, "the sandbox ends deleted");
        Assert.Empty(broker.ProviderSandboxes());
        Assert.Equal(FlakyProvider.FailuresPerDelete + 1, broker.SiloService<FlakyProvider>().DeleteCalls(acquired.Sandbox.SandboxId));
        Assert.Equal(2L, await broker.Database.ScalarAsync<long>(
            "SELECT count(*) FROM broker_audit_log WHERE entity_id = $1 AND event = 'sandbox.delete-failed'", acquired.Sandbox.SandboxId));
    }

    [Fact]
    public async Task A_requested_sandbox_name_is_unique_among_live_sandboxes_and_freed_on_release()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var first = broker.Grains.GetClaim("tenant-a", "github:octo/one#5");
        await first.Acquire(Request(name: "claude-issue-{number}"));
        var clash = await Assert.ThrowsAsync<BrokerException>(() =>
            broker.Grains.GetClaim("tenant-a", "github:octo/two#5").Acquire(Request(name: "claude-issue-{number}")));
        Assert.Equal((ErrorCodes.Conflict, "name"), (clash.Code, clash.Field));
        Assert.Single(broker.ProviderSandboxes());

        await first.Release("closed");
        var second = await broker.Grains.GetClaim("tenant-a", "github:octo/two#5").Acquire(Request(name: "claude-issue-{number}"));
        Assert.Equal("claude-issue-5", second.Sandbox.Name);
    }

    [Fact]
    public async Task A_key_and_a_name_belong_to_their_tenant_so_another_tenant_neither_takes_nor_blocks_them()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var mine = await broker.Grains.GetClaim("tenant-a", "github:octo/shared#9").Acquire(Request(name: "claude-issue-{number}"));
        // Tenant b's claim of the same key, with the same sandbox name, is another claim with another sandbox.
        var theirs = await broker.Grains.GetClaim("tenant-b", "github:octo/shared#9")
            .Acquire(new AcquireRequest("default", "tenant-b", "owner-1", Name: "claude-issue-{number}"));
        Assert.Equal(AcquireOutcome.Repeat, (await broker.Grains.GetClaim("tenant-a", "github:octo/shared#9").Acquire(Request(name: "claude-issue-{number}"))).Outcome);
        Assert.NotEqual(mine.Lease.SandboxId, theirs.Lease.SandboxId);
        Assert.Equal(("claude-issue-9", "claude-issue-9"), (mine.Sandbox.Name, theirs.Sandbox.Name));
        Assert.Equal(("tenant-a", "tenant-b"), (mine.Sandbox.Tenant, theirs.Sandbox.Tenant));
        // A request for one tenant never reaches another's claim.
        var e = await Assert.ThrowsAsync<BrokerException>(() =>
            broker.Grains.GetClaim("tenant-b", "github:octo/shared#9").Acquire(Request()));
        Assert.Equal(ErrorCodes.InvalidArgument, e.Code);
        // Releasing one leaves the other.
        await broker.Grains.GetClaim("tenant-b", "github:octo/shared#9").Release("done");
        Assert.Equal(mine.Lease.SandboxId, (await broker.Grains.GetClaim("tenant-a", "github:octo/shared#9").Get())?.SandboxId);
    }

    [Fact]
    public async Task A_ttl_above_the_pools_maximum_is_refused_clearly()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var e = await Assert.ThrowsAsync<BrokerException>(() =>
            broker.Grains.GetClaim("tenant-a", "track:long/ttl").Acquire(Request(ttl: TimeSpan.FromDays(30))));
        Assert.Equal((ErrorCodes.TtlTooLong, "ttl_seconds"), (e.Code, e.Field));
        Assert.Empty(broker.ProviderSandboxes());
    }

    [Fact]
    public async Task The_owner_limit_holds_exactly_under_concurrency()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2, new Dictionary<string, string?> { ["Broker:OwnerMaxActiveLeases"] = "5" });
        var attempts = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            try
            {
                await broker.Grains.GetClaim("tenant-a", $"track:limit/student-{i}").Acquire(Request(owner: "shared-owner"));
                return null;
            }
            catch (BrokerException e)
            {
                return e.Code;
            }
        }));
        Assert.Equal(5, attempts.Count(a => a is null));
        Assert.All(attempts.Where(a => a is not null), code => Assert.Equal(ErrorCodes.OwnerLimitReached, code));
        Assert.Equal(5, broker.ProviderSandboxes().Count);

        // Releasing one makes room for exactly one more.
        var holder = Enumerable.Range(0, 40).First(i => attempts[i] is null);
        await broker.Grains.GetClaim("tenant-a", $"track:limit/student-{holder}").Release("done");
        await broker.Grains.GetClaim("tenant-a", "track:limit/late").Acquire(Request(owner: "shared-owner"));
    }
}
