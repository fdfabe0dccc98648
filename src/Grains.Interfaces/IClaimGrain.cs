namespace SandboxBroker;

/// <summary>
/// One tenant's claim key (an issue, a lab track, a conversation path); its id is <see cref="ClaimId"/>
/// (<c>{tenant}/{claim key}</c>, reached with <see cref="ClaimGrains.GetClaim"/>). A single activation serializes
/// check-and-create, so a key never holds two live sandboxes; the tenant is part of the id, so no tenant reaches
/// another's claim.
/// </summary>
[Alias("SandboxBroker.IClaimGrain")]
public interface IClaimGrain : IGrainWithStringKey
{
    /// <summary>
    /// Returns the active lease (a repeat) or leases a sandbox, persisting the lease before answering. The request's
    /// tenant must be the claim's (INVALID_ARGUMENT otherwise).
    /// </summary>
    [Alias("Acquire")]
    Task<AcquireResult> Acquire(AcquireRequest request);

    /// <summary>The active lease, or null.</summary>
    [Alias("Get")]
    Task<Lease?> Get();

    /// <summary>Records activity: pushes the idle deadline out. LEASE_NOT_ACTIVE when there is no active lease.</summary>
    [Alias("Touch")]
    Task<Lease> Touch();

    /// <summary>Moves the TTL deadline to now + ttl (at most the pool's max TTL). LEASE_NOT_ACTIVE when there is no active lease.</summary>
    [Alias("Extend")]
    Task<Lease> Extend(TimeSpan ttl);

    /// <summary>Ends the active lease; its sandbox goes to deletion. Returns the ended lease, or null when none was active.</summary>
    [Alias("Release")]
    Task<Lease?> Release(string reason);

    /// <summary>The active lease (if any) then ended leases, newest first.</summary>
    [Alias("History")]
    Task<IReadOnlyList<Lease>> History();

    /// <summary>True when the key's active lease holds this sandbox (the reconciler finds orphans with it). Read-only; may run while the grain is busy.</summary>
    [Alias("Owns")]
    [AlwaysInterleave]
    Task<bool> Owns(string sandboxId);

    /// <summary>True when the key holds an active lease. Read-only; may run while the grain is busy.</summary>
    [Alias("HasActiveLease")]
    [AlwaysInterleave]
    Task<bool> HasActiveLease();

    /// <summary>
    /// The deadline sweep's call, when the claim's wake time has passed: ends a lease past its deadline, releases again
    /// a sandbox whose release did not go through, prunes history and forgets a key with nothing left. Idempotent.
    /// </summary>
    [Alias("Wake")]
    Task Wake();

    /// <summary>The sandbox behind the active lease is gone (stale or failed): the lease ends, the next acquire gets a new one.</summary>
    [Alias("SandboxLost")]
    [OneWay]
    Task SandboxLost(string sandboxId, string reason);
}
