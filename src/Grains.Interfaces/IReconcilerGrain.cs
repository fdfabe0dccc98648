namespace SandboxBroker;

/// <summary>
/// One provider: lists the provider's sandboxes by this deployment's labels, deletes those no live record owns
/// (after a grace period) and marks records whose sandbox vanished as stale.
/// </summary>
[Alias("SandboxBroker.IReconcilerGrain")]
public interface IReconcilerGrain : IGrainWithStringKey
{
    [Alias("Reconcile")]
    Task<ReconcileReport> Reconcile();

    [Alias("LastReport")]
    Task<ReconcileReport?> LastReport();
}
