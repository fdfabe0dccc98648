using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;
using SandboxBroker.Grains;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// Found by the process fault harness: an acquire whose sandbox call failed with something other than a broker error
/// (the sandbox grain's silo had been killed) left the claim's lease active, naming a sandbox that was never created;
/// touch, read and release then acknowledged it. Now the lease is ended and the acquire fails.
/// The warm cases here run the sequential lease (lease stored, then the sandbox leased), which is what a claim does when
/// its sandbox is on another silo; <see cref="JointLeaseTests"/> covers the joint one.
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
        var claim = broker.Grains.GetClaim("t", "github:octo/crash#1");

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

    /// <summary>
    /// Found by the long fault run (seed 398425): Postgres restarted while a warm sandbox's lease write was in flight. The
    /// claim ended the lease that named the sandbox (a later release of the key answered with it) and gave the untouched
    /// sandbox back to its pool, which handed it to the key's next lease two minutes later: a sandbox a caller had been
    /// told was released came back live. A sandbox named by an ended lease now goes to deletion, never back to the pool.
    /// </summary>
    [Fact]
    public async Task A_warm_sandbox_whose_lease_call_failed_is_deleted_and_never_handed_out_again()
    {
        await using var broker = await WithReadySandboxes(3, joint: false);
        broker.SiloService<CallFaults>().FailNext("ISandboxGrain.Lease");
        var claim = broker.Grains.GetClaim("t", "github:octo/undone#1");

        await Assert.ThrowsAnyAsync<Exception>(() => claim.Acquire(new AcquireRequest("default", "t", "o")));

        var ended = Assert.Single(await claim.History());
        await Eventually.TrueAsync(async () => (await broker.Grains.GetGrain<ISandboxGrain>(ended.SandboxId).Get())?.Status is SandboxStatus.Deleting or SandboxStatus.Deleted,
            "the sandbox the ended lease names is deleted");
        var later = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            later.Add((await broker.Grains.GetClaim("t", $"github:octo/undone#{i + 2}").Acquire(new AcquireRequest("default", "t", "o"))).Sandbox.SandboxId);
        }
        later.Add((await claim.Acquire(new AcquireRequest("default", "t", "o"))).Sandbox.SandboxId);
        Assert.DoesNotContain(ended.SandboxId, later);
    }

    /// <summary>
    /// Found by the long fault run (seed 530917): as above, but with Postgres down, so the discard after the failed lease
    /// call failed too and the sandbox stayed ready. The key's release then asked it to let go, and it did nothing, as it
    /// did not hold the key. When the pool's activation was replaced, the new one read the sandbox back from the index as
    /// ready and handed it to the key's next lease. A sandbox asked to let go by a lease it was never leased to is now
    /// discarded.
    /// </summary>
    [Fact]
    public async Task A_warm_sandbox_whose_lease_call_and_discard_failed_is_deleted_by_the_release_and_not_pooled_again()
    {
        await using var broker = await WithReadySandboxes(3, joint: false);
        var faults = broker.SiloService<CallFaults>();
        faults.FailNext("ISandboxGrain.Lease");
        faults.FailNext("ISandboxGrain.Discard");
        var claim = broker.Grains.GetClaim("t", "github:octo/undone#1");

        await Assert.ThrowsAnyAsync<Exception>(() => claim.Acquire(new AcquireRequest("default", "t", "o")));

        var ended = Assert.Single(await claim.History());
        await Eventually.TrueAsync(async () => (await broker.Grains.GetGrain<ISandboxGrain>(ended.SandboxId).Get())?.Status is SandboxStatus.Deleting or SandboxStatus.Deleted,
            "the sandbox the ended lease names is deleted though its discard failed");
        await broker.Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero); // the pool reads its lists back
        var later = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            later.Add((await broker.Grains.GetClaim("t", $"github:octo/undone#{i + 2}").Acquire(new AcquireRequest("default", "t", "o"))).Sandbox.SandboxId);
        }
        later.Add((await claim.Acquire(new AcquireRequest("default", "t", "o"))).Sandbox.SandboxId);
        Assert.DoesNotContain(ended.SandboxId, later);
    }

    /// <summary>
    /// The hole the case above leaves: the lease is stored (its index row names the sandbox) but neither the sandbox's
    /// <c>leased</c> write, nor the ending write, nor a discard landed (Postgres down), and the pool's activation is
    /// replaced before the key's release. The new activation used to read the sandbox back as ready and hand it to
    /// another lease; a ready sandbox an active lease names is now counted as handed out instead (and, never leased,
    /// deleted after the grace).
    /// </summary>
    [Fact]
    public async Task A_pool_reading_its_sandboxes_back_does_not_list_a_ready_one_an_active_lease_names()
    {
        await using var broker = await WithReadySandboxes(3, joint: false);
        var named = Assert.IsType<string>(await broker.Database.ScalarAsync<string>(
            "SELECT sandbox_id FROM broker_sandboxes WHERE pool = 'default' AND status = 'ready' ORDER BY updated_at, sandbox_id LIMIT 1"));
        // What such a lease leaves in the index: its claim row, active and naming the sandbox, with the lease's deadline.
        await broker.Database.ScalarAsync<int>("""
            INSERT INTO broker_claims (claim_key, tenant, owner, pool, status, sandbox_id, updated_at, wake_at)
            VALUES ('t/github:octo/stored#1', 't', 'o', 'default', 'active', $1, now(), now() + interval '1 hour')
            RETURNING 1
            """, named);

        await broker.Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero); // the pool reads its lists back
        var taken = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            taken.Add((await broker.Grains.GetClaim("t", $"github:octo/other#{i}").Acquire(new AcquireRequest("default", "t", "o"))).Sandbox.SandboxId);
        }

        Assert.DoesNotContain(named, taken);
        Assert.Equal(SandboxStatus.Ready, (await broker.Grains.GetGrain<ISandboxGrain>(named).Get())?.Status);
    }

    /// <summary>
    /// Found by FaultTests under load (a silo stopped during a storm of acquires): the sandbox call that leased the
    /// sandbox ran but its answer was lost, so the claim ended the lease; the release it then sent failed too (the same
    /// silo going away). The sandbox stayed leased to the key with nobody holding it, billing until the next reconcile
    /// (10 minutes). Now the claim remembers the sandbox and its reminder releases it again.
    /// </summary>
    [Fact]
    public async Task A_sandbox_whose_release_fails_after_its_lease_answer_was_lost_is_released_again_by_the_claim()
    {
        await using var broker = await WithReadySandboxes(1, joint: false);
        var faults = broker.SiloService<CallFaults>();
        faults.FailNext("ISandboxGrain.Lease", afterRunning: true);
        faults.FailNext("ISandboxGrain.Release");
        var claim = broker.Grains.GetClaim("t", "github:octo/lost#1");

        await Assert.ThrowsAnyAsync<Exception>(() => claim.Acquire(new AcquireRequest("default", "t", "o")));

        var ended = Assert.Single(await claim.History());
        Assert.Equal(LeaseStatus.Released, ended.Status);
        var sandbox = broker.Grains.GetGrain<ISandboxGrain>(ended.SandboxId);
        await Eventually.TrueAsync(async () => (await sandbox.Get())?.Status is SandboxStatus.Deleting or SandboxStatus.Deleted,
            "the sandbox leased to nobody is released and deleted");
        Assert.False(await claim.Owns(ended.SandboxId));
        var again = await claim.Acquire(new AcquireRequest("default", "t", "o"));
        Assert.NotEqual(ended.SandboxId, again.Sandbox.SandboxId);
    }

    /// <summary>
    /// Found by the process fault harness: the claim's silo died after the lease was persisted and before the sandbox
    /// was leased; on the next activation a touch answered the lease, naming a warm sandbox still ready in the pool's
    /// hands (anyone's to take). Now every answer that names the sandbox first leases it to the key (or ends the lease).
    /// </summary>
    [Fact]
    public async Task A_lease_persisted_before_its_sandbox_was_leased_is_finished_by_the_next_touch_read_or_history()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?>
        {
            ["Broker:Pools:default:MinReady"] = "1",
            ["Broker:Pools:cold:MinReady"] = "0",
        });
        var pool = broker.Grains.GetGrain<IPoolGrain>("default");
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready >= 1, "the pool has a ready sandbox");

        // Warm: checked out, the lease written, then the "crash": the sandbox is never told.
        var touched = broker.Grains.GetClaim("t", "crash:touch");
        var warm = await pool.Checkout("crash:touch");
        Assert.True(warm.Warm);
        await PersistLeaseAsLeaseNewDoes(broker, "crash:touch", warm.SandboxId, "default");
        Assert.Equal(SandboxStatus.Ready, (await broker.Grains.GetGrain<ISandboxGrain>(warm.SandboxId).Get())!.Status);

        var lease = await touched.Touch();
        Assert.Equal(warm.SandboxId, lease.SandboxId);
        var sandbox = await broker.Grains.GetGrain<ISandboxGrain>(warm.SandboxId).Get();
        Assert.Equal((SandboxStatus.Leased, "crash:touch"), (sandbox!.Status, sandbox.ClaimKey));

        // Cold: the sandbox was never provisioned, so a read ends the lease instead of naming it.
        var read = broker.Grains.GetClaim("t", "crash:read");
        var cold = await broker.Grains.GetGrain<IPoolGrain>("cold").Checkout("crash:read");
        Assert.False(cold.Warm);
        await PersistLeaseAsLeaseNewDoes(broker, "crash:read", cold.SandboxId, "cold");

        Assert.Null(await read.Get());
        var ended = Assert.Single(await read.History());
        Assert.Equal((LeaseStatus.Released, cold.SandboxId), (ended.Status, ended.SandboxId));
        Assert.StartsWith("sandbox lost", ended.EndReason);
    }

    /// <summary>Writes the claim's state the way its first write in an acquire does, before any activation of it exists.</summary>
    private static async Task PersistLeaseAsLeaseNewDoes(BrokerCluster broker, string key, string sandboxId, string poolName)
    {
        var now = DateTimeOffset.UtcNow;
        var lease = new Lease(key, 1, sandboxId, poolName, "t", "o", null, now, now.AddHours(1), null, now,
            LeaseStatus.Active, null, null, new Dictionary<string, string>());
        var storage = broker.SiloService<IServiceProvider>().GetRequiredKeyedService<IGrainStorage>(StorageNames.Broker);
        await storage.WriteStateAsync("claim", GrainId.Create("claim", ClaimId.Of("t", key)),
            new GrainState<ClaimState>(new ClaimState { Tenant = "t", Active = lease, LeaseCount = 1 }));
    }

    /// <summary>One silo whose default pool holds <paramref name="ready"/> warm sandboxes.</summary>
    internal static async Task<BrokerCluster> WithReadySandboxes(int ready, bool joint)
    {
        var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?>
        {
            ["Broker:Pools:default:MinReady"] = ready.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker:JointLeaseWrites"] = joint ? "true" : "false",
        });
        var pool = broker.Grains.GetGrain<IPoolGrain>("default");
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready >= ready, $"the pool has {ready} ready sandboxes");
        return broker;
    }
}
