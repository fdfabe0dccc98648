using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

[GenerateSerializer]
public sealed class ReconcilerState
{
    [Id(0)] public ReconcileReport? Last { get; set; }
}

/// <summary>
/// One provider. Every sandbox at the provider must be owned by a live record or be on its way out:
/// a provider sandbox with this deployment's label whose record is gone (or deleted) is deleted once older
/// than the grace period; a leased sandbox whose claim no longer holds it is released; a record whose
/// provider sandbox vanished becomes stale. Sandboxes without this deployment's label are never touched.
/// </summary>
public sealed class ReconcilerGrain(
    [PersistentState("reconciler", StorageNames.AdoNet)] IPersistentState<ReconcilerState> state,
    SandboxProviderRegistry providers,
    BrokerIndex index,
    ProviderMetrics metrics,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    ILogger<ReconcilerGrain> logger) : Grain, IReconcilerGrain, IRemindable
{
    private const string Reminder = "reconcile";
    private const int MaxErrorMessages = 20;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var period = options.Value.ReconcileInterval;
        await this.RegisterOrUpdateReminder(Reminder, period, period);
    }

    public Task<ReconcileReport?> LastReport() => Task.FromResult(state.State.Last);

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == Reminder)
        {
            await Reconcile();
        }
    }

    public async Task<ReconcileReport> Reconcile()
    {
        var providerName = this.GetPrimaryKeyString();
        var provider = providers.Get(providerName);
        var started = time.GetUtcNow();
        int seen = 0, adopted = 0, deleted = 0, stale = 0;
        var errors = new List<string>();
        var present = new HashSet<string>(StringComparer.Ordinal);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var ourLabel = new Dictionary<string, string> { [BrokerLabels.Deployment] = options.Value.DeploymentId };

        try
        {
            await foreach (var sandbox in provider.ListAsync(ourLabel, cancel.Token))
            {
                seen++;
                present.Add(sandbox.SandboxId);
                try
                {
                    switch (await Judge(sandbox))
                    {
                        case Verdict.Deleted: deleted++; break;
                        case Verdict.Adopted: adopted++; break;
                    }
                }
                catch (Exception e)
                {
                    Note(errors, $"{sandbox.SandboxId}: {e.Message}");
                }
            }

            // Records the broker believes live, whose provider sandbox is gone. Only those created before the
            // listing began: a sandbox created during the listing may simply not have been listed.
            foreach (var row in await index.ListLiveAsync(providerName, started - TimeSpan.FromSeconds(5), cancel.Token))
            {
                if (present.Contains(row.SandboxId))
                {
                    continue;
                }
                try
                {
                    var grain = GrainFactory.GetGrain<ISandboxGrain>(row.SandboxId);
                    var info = await grain.Get();
                    if (info is { Status: SandboxStatus.Ready or SandboxStatus.Leased } &&
                        await provider.GetAsync(row.SandboxId, info.ExternalId, cancel.Token) is null)
                    {
                        await grain.MarkStale("the provider no longer has this sandbox");
                        stale++;
                    }
                }
                catch (Exception e)
                {
                    Note(errors, $"{row.SandboxId}: {e.Message}");
                }
            }
        }
        catch (Exception e)
        {
            Note(errors, $"listing {providerName}: {e.Message}");
        }

        var report = new ReconcileReport(providerName, started, time.GetUtcNow(), seen, adopted, deleted, stale, errors.Count, errors);
        metrics.Reconciled(providerName, seen);
        state.State.Last = report;
        await state.WriteOrReloadAsync(this);
        logger.LogInformation(
            "Reconciled {Provider}: {Seen} seen, {Adopted} adopted, {Deleted} deleted, {Stale} marked stale, {Errors} errors",
            providerName, seen, adopted, deleted, stale, errors.Count);
        return report;
    }

    private enum Verdict { Owned, Adopted, Deleted }

    private async Task<Verdict> Judge(ProviderSandbox sandbox)
    {
        var grain = GrainFactory.GetGrain<ISandboxGrain>(sandbox.SandboxId);
        var info = await grain.Get();
        switch (info?.Status)
        {
            case null or SandboxStatus.Deleted or SandboxStatus.Stale:
                // No live record owns it. A record may still be on its way (create races the record's
                // update), so only sandboxes older than the grace period go.
                if (sandbox.CreatedAt is { } created && time.GetUtcNow() - created < options.Value.ReconcileGrace)
                {
                    return Verdict.Owned;
                }
                if (info is null)
                {
                    await providers.Get(this.GetPrimaryKeyString()).DeleteAsync(sandbox.SandboxId, sandbox.ExternalId, CancellationToken.None);
                }
                else
                {
                    await grain.Discard("reconcile: provider sandbox without a live record");
                }
                return Verdict.Deleted;
            case SandboxStatus.Leased when info is { ClaimKey: { } claimKey, Tenant: { } tenant } &&
                                           !await GrainFactory.GetClaim(tenant, claimKey).Owns(sandbox.SandboxId):
                await grain.Release(ClaimId.Of(tenant, claimKey), "reconcile: the claim no longer holds this sandbox");
                return Verdict.Deleted;
            case SandboxStatus.Leased when providers.Get(this.GetPrimaryKeyString()).Capability<ISandboxLeaseTimer>() is not null:
                // The reconcile period is what carries a lease longer than the provider's maximum timeout.
                await grain.HoldLease();
                return Verdict.Owned;
            case SandboxStatus.Deleting or SandboxStatus.Failed:
                await grain.Discard("reconcile: deletion pending");
                return Verdict.Owned;
            case SandboxStatus.Provisioning:
                // The record exists and the provider has the sandbox: a create a crash interrupted (or one still
                // running). Once past the grace period, the record finishes it: it becomes ready (the pool or the
                // claim that reserved it takes it from there) or fails and is deleted. Either way nothing is unowned.
                if (sandbox.CreatedAt is { } started && time.GetUtcNow() - started < options.Value.ReconcileGrace)
                {
                    return Verdict.Owned;
                }
                await grain.ResumeProvisioning();
                return Verdict.Adopted;
            default:
                return Verdict.Owned;
        }
    }

    private static void Note(List<string> errors, string message)
    {
        if (errors.Count < MaxErrorMessages)
        {
            errors.Add(message);
        }
    }
}
