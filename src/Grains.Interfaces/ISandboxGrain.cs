namespace SandboxBroker;

/// <summary>
/// One sandbox, keyed by its broker-assigned id. The only caller of the provider for its sandbox;
/// every status change goes through <see cref="SandboxLifecycle"/>.
/// </summary>
[Alias("SandboxBroker.ISandboxGrain")]
public interface ISandboxGrain : IGrainWithStringKey
{
    /// <summary>Creates the sandbox at the provider (persisting 'provisioning' first). Idempotent; answers when ready.</summary>
    [Alias("Provision")]
    Task<SandboxInfo> Provision(SandboxSpec spec);

    /// <summary>ready → leased for one claim. Idempotent for the same claim and lease; CONFLICT when the sandbox is not available.</summary>
    [Alias("Lease")]
    Task<SandboxInfo> Lease(SandboxLeaseRequest request);

    /// <summary>
    /// <see cref="Lease"/>, storing the sandbox's `leased` state in one transaction with the claim's write held under
    /// <paramref name="jointWrite"/> in this silo's grain storage (a joint write). Null, having done nothing, when no such
    /// write is held here: the claim is on another silo, and stores its lease before it calls <see cref="Lease"/>.
    /// </summary>
    [Alias("LeaseJointly")]
    Task<SandboxInfo?> LeaseJointly(SandboxLeaseRequest request, string jointWrite);

    /// <summary>
    /// The claim lets go: leased → deleting; deletion retries until the provider confirms. A sandbox never leased (a lease
    /// named it, but its acquire failed before the sandbox was leased) is discarded. Idempotent.
    /// </summary>
    [Alias("Release")]
    Task Release(string claimId, string reason);

    /// <summary>Deletes a sandbox that no claim holds (failed, surplus, orphaned). Idempotent.</summary>
    [Alias("Discard")]
    Task Discard(string reason);

    /// <summary>
    /// Finishes a create a crash interrupted: a record still in provisioning calls the provider's (idempotent) create
    /// again and becomes ready (or failed, then deleted). Otherwise does nothing. Null when this id was never used.
    /// </summary>
    [Alias("ResumeProvisioning")]
    Task<SandboxInfo?> ResumeProvisioning();

    /// <summary>
    /// The deletion sweep's call, when the sandbox's wake time has passed: schedules a pending deletion's next attempt now
    /// and answers at once, never behind an attempt under way (a provider's delete can take minutes, and the sweep of
    /// the whole pool would wait for it). Idempotent.
    /// </summary>
    [Alias("Wake")]
    [AlwaysInterleave]
    Task Wake();

    /// <summary>
    /// While leased, keeps a provider's own timer (E2B's timeout) from stopping the sandbox before the lease ends; does
    /// nothing otherwise, or for providers without such a timer. The reconciler calls it on every pass.
    /// </summary>
    [Alias("HoldLease")]
    Task HoldLease();

    /// <summary>The provider no longer has this sandbox.</summary>
    [Alias("MarkStale")]
    Task MarkStale(string reason);

    /// <summary>The record, or null when this id was never used. Read-only; may run while the grain is busy.</summary>
    [Alias("Get")]
    [AlwaysInterleave]
    Task<SandboxInfo?> Get();
}
