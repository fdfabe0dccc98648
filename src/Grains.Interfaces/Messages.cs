namespace SandboxBroker;

/// <summary>
/// Asks for the claim key's sandbox. Pool null means the default pool; TTL/idle null mean the pool's defaults. ExpectNew:
/// the caller has not seen the key leased, so a claim not in memory may lease on that guess without reading its state
/// first (one round trip less for a new key; a wrong guess is caught by the state's version check and costs a pool
/// checkout and the read). The answer is the same either way.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.AcquireRequest")]
public sealed record AcquireRequest(
    string? Pool,
    string Tenant,
    string Owner,
    TimeSpan? Ttl = null,
    TimeSpan? IdleTimeout = null,
    IReadOnlyDictionary<string, string>? Labels = null,
    string? Name = null,
    string? Actor = null,
    bool ExpectNew = false);

/// <summary>A claim key's hold on one sandbox. Active until ExpiresAt, or until idle for IdleTimeout.</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.Lease")]
public sealed record Lease(
    string ClaimKey,
    long Number,
    string SandboxId,
    string Pool,
    string Tenant,
    string Owner,
    string? SandboxName,
    DateTimeOffset AcquiredAt,
    DateTimeOffset ExpiresAt,
    TimeSpan? IdleTimeout,
    DateTimeOffset LastActivityAt,
    LeaseStatus Status,
    DateTimeOffset? EndedAt,
    string? EndReason,
    IReadOnlyDictionary<string, string> Labels)
{
    /// <summary>When the lease ends if nothing else happens: the TTL or the idle deadline, whichever is first.</summary>
    public DateTimeOffset DeadlineAt =>
        IdleTimeout is { } idle && LastActivityAt + idle < ExpiresAt ? LastActivityAt + idle : ExpiresAt;
}

[GenerateSerializer, Immutable]
[Alias("SandboxBroker.AcquireResult")]
public sealed record AcquireResult(Lease Lease, AcquireOutcome Outcome, SandboxInfo Sandbox);

/// <summary>What the broker knows of one sandbox.</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.SandboxInfo")]
public sealed record SandboxInfo(
    string SandboxId,
    string Pool,
    string Provider,
    SandboxStatus Status,
    string Name,
    string? ExternalId,
    string? ClaimKey,
    string? Tenant,
    string? Owner,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? LeaseExpiresAt,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Connection,
    string? LastError,
    int DeleteAttempts);

/// <summary>How a SandboxGrain should create its sandbox. The id is the grain key, decided before the provider is called.</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.SandboxSpec")]
public sealed record SandboxSpec(
    string Pool,
    string Provider,
    string? Template,
    string Name,
    IReadOnlyDictionary<string, string> Labels);

/// <summary>Hands a sandbox to a claim.</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.SandboxLeaseRequest")]
public sealed record SandboxLeaseRequest(
    string ClaimKey,
    long LeaseNumber,
    string Tenant,
    string Owner,
    DateTimeOffset ExpiresAt,
    string? Name);

/// <summary>A pool's configuration. Persisted by the PoolGrain; changeable at run time.</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.PoolConfig")]
public sealed record PoolConfig(
    string Name,
    string Provider,
    string? Template,
    int MinReady,
    int MaxTotal,
    TimeSpan DefaultTtl,
    TimeSpan MaxTtl,
    TimeSpan? IdleTimeout,
    OnEmptyPolicy OnEmpty,
    int MaxConcurrentCreates);

[GenerateSerializer, Immutable]
[Alias("SandboxBroker.PoolLevels")]
public sealed record PoolLevels(int Ready, int Provisioning, int Leased, int Deleting, int Total);

[GenerateSerializer, Immutable]
[Alias("SandboxBroker.PoolStatus")]
public sealed record PoolStatus(PoolConfig Config, PoolLevels Levels);

/// <summary>What a pool handed a claim: a ready sandbox (warm) or a fresh id to create (cold).</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.PoolCheckout")]
public sealed record PoolCheckout(string SandboxId, bool Warm, PoolConfig Config);

[GenerateSerializer, Immutable]
[Alias("SandboxBroker.OwnerUsage")]
public sealed record OwnerUsage(string Owner, int Limit, IReadOnlyList<string> ActiveClaims);

/// <summary>Figures of one reconcile pass over a provider.</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.ReconcileReport")]
public sealed record ReconcileReport(
    string Provider,
    DateTimeOffset StartedAt,
    DateTimeOffset FinishedAt,
    int Seen,
    int Adopted,
    int Deleted,
    int MarkedStale,
    int Errors,
    IReadOnlyList<string> ErrorMessages);
