namespace SandboxBroker;

/// <summary>
/// One tenant's quotas and per-owner limits, and the claims counting against them (key: the tenant; an owner is a
/// tenant's). A single activation admits one claim at a time, so concurrent acquires get exactly the limits. Answers from memory: the quota is read from Postgres at
/// activation and written through <see cref="SetQuota"/>; the active claims are read back from the claim index at
/// activation and kept by the claims' admit and forget calls.
/// </summary>
[Alias("SandboxBroker.ITenantGrain")]
public interface ITenantGrain : IGrainWithStringKey
{
    /// <summary>
    /// Counts the claim's new lease in the pool and against its owner (null: none counted); POOL_NOT_ALLOWED when the
    /// quota does not list the pool, TENANT_QUOTA_EXCEEDED at a quota, OWNER_LIMIT_REACHED at the owner's limit.
    /// Idempotent per claim key: true when this call counted it, false when it was counted already.
    /// </summary>
    [Alias("Admit")]
    Task<bool> Admit(string claimKey, string pool, int poolMaxTotal, string? owner);

    /// <summary>The claim's lease ended (or its acquire was undone). Idempotent.</summary>
    [Alias("Forget")]
    Task Forget(string claimKey);

    [Alias("GetUsage")]
    Task<TenantUsage> GetUsage();

    /// <summary>The owner's limit and the claims holding an active lease for it.</summary>
    [Alias("GetOwnerUsage")]
    Task<OwnerUsage> GetOwnerUsage(string owner);

    /// <summary>Stores the tenant's quota (null: back to the defaults), then enforces it from the next admission.</summary>
    [Alias("SetQuota")]
    Task<TenantUsage> SetQuota(TenantQuota? quota);
}

/// <summary>
/// A tenant's quota as an admin set it. Null fields take the defaults (<c>Broker:Tenants</c>): no limit on active leases,
/// a share of each pool's max total, every pool.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.TenantQuota")]
public sealed record TenantQuota(int? MaxActiveLeases, int? MaxSandboxesPerPool, IReadOnlyList<string>? AllowedPools)
{
    public const int MaxAllowedPools = 100;

    /// <summary>Null when the quota can be stored; otherwise the field at fault and why.</summary>
    public (string Field, string Reason)? Problem() =>
        MaxActiveLeases is < 0 ? ("max_active_leases", "max_active_leases must be 0 or more")
        : MaxSandboxesPerPool is < 0 ? ("max_sandboxes_per_pool", "max_sandboxes_per_pool must be 0 or more")
        : AllowedPools is { Count: > MaxAllowedPools } ? ("allowed_pools", $"at most {MaxAllowedPools} pools")
        : AllowedPools?.FirstOrDefault(p => !PoolName.IsValid(p)) is { } bad ? ("allowed_pools", $"'{bad}': {PoolName.Rule}")
        : null;
}

/// <summary>
/// A tenant's quota (null: the defaults), the limits in force and its active leases per pool. <see cref="PoolShare"/>:
/// the share of each pool's max total the tenant may hold when its quota names no per-pool limit (null: none applies).
/// </summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.TenantUsage")]
public sealed record TenantUsage(
    string Tenant,
    TenantQuota? Quota,
    int? MaxActiveLeases,
    int? MaxSandboxesPerPool,
    double? PoolShare,
    IReadOnlyList<string>? AllowedPools,
    int ActiveLeases,
    IReadOnlyDictionary<string, int> ActiveByPool);
