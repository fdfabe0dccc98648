using SandboxBroker.Grains.Providers;
using SandboxBroker.Tests.Infrastructure;

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
        var claim = broker.Grains.GetGrain<IClaimGrain>("track:reconcile/a");
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
}
