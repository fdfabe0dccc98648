using SandboxBroker.Grains.Providers;
using SandboxBroker.Tests.Infrastructure;
using SandboxBroker.Tests.Providers;

namespace SandboxBroker.Tests;

/// <summary>The reconciler: nothing at the provider without a live owner, nothing foreign touched, vanished sandboxes marked stale.</summary>
public sealed class ReconcileTests
{
    [Fact]
    public async Task Reconcile_deletes_unowned_sandboxes_with_our_labels_leaves_foreign_ones_and_marks_vanished_ones_stale()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?> { ["Broker:ReconcileGrace"] = "00:00:00" });
        var provider = broker.SiloService<SandboxProviderRegistry>().Get("local");
        var deployment = broker.Cluster.Options.ServiceId;

        // Created behind the broker's back, with this deployment's labels: a crash between create and record looks like this.
        await provider.CreateAsync(new ProviderCreateRequest("orphan0001", "orphan", null,
            new Dictionary<string, string> { [BrokerLabels.Deployment] = deployment, [BrokerLabels.SandboxId] = "orphan0001" }), CancellationToken.None);
        // Someone else's sandbox, without our labels.
        await provider.CreateAsync(new ProviderCreateRequest("foreign0001", "foreign", null,
            new Dictionary<string, string> { ["team"] = "other" }), CancellationToken.None);
        // A leased sandbox deleted behind the broker's back.
        var claim = broker.Grains.GetClaim("t", "track:reconcile/a");
        var acquired = await claim.Acquire(new AcquireRequest("default", "t", "o"));
        await Task.Delay(TimeSpan.FromSeconds(6)); // the reconciler only judges records older than its listing
        await provider.DeleteAsync(acquired.Sandbox.SandboxId, null, CancellationToken.None);

        var report = await broker.Grains.GetGrain<IReconcilerGrain>("local").Reconcile();

        Assert.Equal((1, 1, 0), (report.Deleted, report.MarkedStale, report.Errors));
        Assert.Equal(["foreign0001"], broker.ProviderSandboxes());
        Assert.Equal(SandboxStatus.Stale, (await broker.Grains.GetGrain<ISandboxGrain>(acquired.Sandbox.SandboxId).Get())!.Status);
        // The claim on the vanished sandbox gets a replacement on its next acquire.
        await Eventually.TrueAsync(async () => await claim.Get() is null, "the claim lets go of the stale sandbox");
        var replacement = await claim.Acquire(new AcquireRequest("default", "t", "o"));
        Assert.NotEqual(acquired.Sandbox.SandboxId, replacement.Sandbox.SandboxId);
        var last = await broker.Grains.GetGrain<IReconcilerGrain>("local").LastReport();
        Assert.Equal((report.StartedAt, report.Deleted, report.MarkedStale), (last!.StartedAt, last.Deleted, last.MarkedStale));
    }

    [Fact]
    public async Task A_crash_between_the_providers_create_and_the_records_update_leaves_nothing_unowned_after_one_reconcile()
    {
        // A pool's background create: the provider creates the sandbox, then the call fails as if the silo died before
        // the record heard back (a claim's own acquire cleans up after such a failure; a pool's create has nobody waiting).
        await using var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?>
        {
            ["Broker:ReconcileGrace"] = "00:00:00",
            ["Broker:Pools:crash:Provider"] = "crashy",
            ["Broker:Pools:crash:MinReady"] = "1",
        });
        var pool = broker.Grains.GetGrain<IPoolGrain>("crash");
        await pool.GetConfig(); // wakes the pool: it starts its one create
        await Eventually.TrueAsync(() => Task.FromResult(broker.ProviderSandboxes().Count == 1), "the provider created the pool's sandbox");
        var id = broker.ProviderSandboxes().Single();
        var sandbox = broker.Grains.GetGrain<ISandboxGrain>(id);
        await Eventually.TrueAsync(async () => (await sandbox.Get())?.Status == SandboxStatus.Provisioning, "the record is left in provisioning");
        await pool.Configure(await pool.GetConfig() with { MinReady = 0 }); // no further creates muddle the count

        var report = await broker.Grains.GetGrain<IReconcilerGrain>("crashy").Reconcile();

        Assert.Equal((1, 1, 0, 0), (report.Seen, report.Adopted, report.Deleted, report.Errors));
        Assert.Equal(SandboxStatus.Ready, (await sandbox.Get())!.Status); // owned by a live record that finished its create
        // The pool hands out that very sandbox, and releasing it deletes it.
        var claim = broker.Grains.GetClaim("t", "track:crash/a");
        var acquired = await claim.Acquire(new AcquireRequest("crash", "t", "o"));
        Assert.Equal((id, AcquireOutcome.Warm), (acquired.Sandbox.SandboxId, acquired.Outcome));
        await claim.Release("done");
        await Eventually.TrueAsync(() => Task.FromResult(broker.ProviderSandboxes().Count == 0), "the released sandbox is deleted at the provider");
        var second = await broker.Grains.GetGrain<IReconcilerGrain>("crashy").Reconcile();
        Assert.Equal((0, 0, 0), (second.Seen, second.Deleted, second.MarkedStale));
    }

    [Fact]
    public async Task Reconcile_through_Daytona_deletes_our_orphans_only_and_marks_vanished_sandboxes_stale()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        var settings = ProviderServices.Http("Providers:Daytona", daytona.ApiUrl);
        settings["Broker:ReconcileGrace"] = "00:00:00";
        settings["Broker:Pools:dt:Provider"] = "daytona";
        settings["Broker:Pools:dt:MinReady"] = "0";
        await using var broker = await BrokerCluster.StartAsync(silos: 1, settings);
        var deployment = broker.Cluster.Options.ServiceId;
        var orphan = daytona.Put(new Dictionary<string, string> { [BrokerLabels.Deployment] = deployment, [BrokerLabels.SandboxId] = "orphan0001" });
        var foreign = daytona.Put(new Dictionary<string, string> { ["team"] = "other" });
        var otherDeployment = daytona.Put(new Dictionary<string, string> { [BrokerLabels.Deployment] = "someone-else", [BrokerLabels.SandboxId] = "theirs0001" });
        var claim = broker.Grains.GetClaim("t", "track:reconcile/dt");
        var acquired = await claim.Acquire(new AcquireRequest("dt", "t", "o"));
        var kept = await broker.Grains.GetClaim("t", "track:reconcile/dt-kept").Acquire(new AcquireRequest("dt", "t", "o"));
        await Task.Delay(TimeSpan.FromSeconds(6)); // the reconciler only judges records older than its listing
        daytona.Remove(acquired.Sandbox.ExternalId!); // deleted behind the broker's back

        var report = await broker.Grains.GetGrain<IReconcilerGrain>("daytona").Reconcile();

        Assert.Equal((2, 1, 1, 0), (report.Seen, report.Deleted, report.MarkedStale, report.Errors));
        Assert.Null(daytona.Find(orphan.Id));
        Assert.NotNull(daytona.Find(foreign.Id));
        Assert.NotNull(daytona.Find(otherDeployment.Id));
        Assert.NotNull(daytona.Find(kept.Sandbox.ExternalId!));
        Assert.Equal(SandboxStatus.Stale, (await broker.Grains.GetGrain<ISandboxGrain>(acquired.Sandbox.SandboxId).Get())!.Status);
        await Eventually.TrueAsync(async () => await claim.Get() is null, "the claim lets go of the stale sandbox");
    }
}
