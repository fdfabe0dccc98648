namespace SandboxBroker;

/// <summary>
/// One claim key (an issue, a lab track, a conversation path). A single activation serializes
/// check-and-create, so a key never holds two live sandboxes.
/// </summary>
[Alias("SandboxBroker.IClaimGrain")]
/// <remarks>
/// Calls that take a tenant check it against the tenant the key belongs to (FORBIDDEN for another one);
/// a null tenant is a trusted caller (an admin, the webhook processor, a silo-side grain).
/// </remarks>
public interface IClaimGrain : IGrainWithStringKey
{
    /// <summary>Returns the active lease (a repeat) or leases a sandbox, persisting the lease before answering.</summary>
    [Alias("Acquire")]
    Task<AcquireResult> Acquire(AcquireRequest request);

    /// <summary>The active lease, or null. With a tenant, FORBIDDEN when the key belongs to another tenant.</summary>
    [Alias("Get")]
    Task<Lease?> Get(string? tenant = null);

    /// <summary>Records activity: pushes the idle deadline out. LEASE_NOT_ACTIVE when there is no active lease.</summary>
    [Alias("Touch")]
    Task<Lease> Touch(string? tenant = null);

    /// <summary>Moves the TTL deadline to now + ttl (at most the pool's max TTL). LEASE_NOT_ACTIVE when there is no active lease.</summary>
    [Alias("Extend")]
    Task<Lease> Extend(TimeSpan ttl, string? tenant = null);

    /// <summary>Ends the active lease; its sandbox goes to deletion. Returns the ended lease, or null when none was active.</summary>
    [Alias("Release")]
    Task<Lease?> Release(string reason, string? tenant = null);

    /// <summary>The active lease (if any) then ended leases, newest first.</summary>
    [Alias("History")]
    Task<IReadOnlyList<Lease>> History(string? tenant = null);

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
