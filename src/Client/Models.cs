namespace SandboxBroker.Client;

// The API's answers, as the gateway writes them (snake_case JSON, times in UTC). Fields the client does not know yet
// are ignored, so a newer gateway does not break an older client.

/// <summary>A sandbox. <see cref="Connection"/> is only filled for the claim's tenant or an admin, on single reads.</summary>
public sealed record Sandbox(
    string SandboxId,
    string Pool,
    string Provider,
    string Status,
    string Name,
    string? ExternalId,
    string? ClaimKey,
    string? Tenant,
    string? Owner,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? LeaseExpiresAt,
    IReadOnlyDictionary<string, string>? Labels,
    IReadOnlyDictionary<string, string>? Connection,
    string? LastError);

/// <summary>A claim's lease (active or ended); <see cref="Sandbox"/> is included where the call has it.</summary>
public sealed record Lease(
    string ClaimKey,
    long LeaseNumber,
    string Status,
    string Tenant,
    string Owner,
    string Pool,
    string SandboxId,
    string? SandboxName,
    DateTimeOffset AcquiredAt,
    DateTimeOffset ExpiresAt,
    DateTimeOffset DeadlineAt,
    int? IdleTimeoutSeconds,
    DateTimeOffset LastActivityAt,
    DateTimeOffset? EndedAt,
    string? EndReason,
    IReadOnlyDictionary<string, string>? Labels,
    Sandbox? Sandbox);

/// <summary>An acquire's answer: the lease, whether it is new (201) or the active one again, and how it was served.</summary>
/// <param name="Outcome">The X-Acquire-Outcome header: <c>warm</c> (from the pool), <c>cold</c> (created now) or <c>repeat</c>.</param>
public sealed record AcquireResult(Lease Lease, bool Created, string? Outcome);

public sealed record ClaimHistory(string ClaimKey, IReadOnlyList<Lease> Leases);

public sealed record SandboxPage(IReadOnlyList<Sandbox> Items, string? NextCursor);

public sealed record PoolConfig(
    string Provider,
    string? Template,
    int MinReady,
    int MaxTotal,
    int DefaultTtlSeconds,
    int MaxTtlSeconds,
    int? IdleTimeoutSeconds,
    string OnEmpty,
    int MaxConcurrentCreates);

public sealed record PoolLevels(int Ready, int Provisioning, int Leased, int Deleting, int Total);

public sealed record Pool(string Name, PoolConfig Config, PoolLevels Levels);

public sealed record PoolList(IReadOnlyList<Pool> Items);

/// <summary>A pool's put or write result: the pool, and whether this call created it (201).</summary>
public sealed record PoolWriteResult(Pool Pool, bool Created);

public sealed record BrokerStats(
    IReadOnlyDictionary<string, long> Sandboxes,
    IReadOnlyDictionary<string, long> Claims,
    IReadOnlyList<Pool> Pools);

public sealed record ReconcileReport(
    string Provider, DateTimeOffset StartedAt, DateTimeOffset FinishedAt, int Seen, int Adopted, int Deleted, int MarkedStale, int Errors,
    IReadOnlyList<string> ErrorMessages);

public sealed record SyncReport(IReadOnlyList<ReconcileReport> Providers);

public sealed record CleanupReport(int OverdueClaimsChecked, int ClaimsExpired, int DeletionsRetried, int Errors);

public sealed record ApiToken(
    string TokenId, string Tenant, IReadOnlyList<string> Scopes, string? Name, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt);

/// <summary>A new token: <see cref="Token"/> is the secret, shown in this answer only.</summary>
public sealed record MintedToken(string Token, ApiToken Details);

public sealed record TokenList(IReadOnlyList<ApiToken> Items);

public sealed record WebhookDelivery(
    string DeliveryId,
    string Event,
    string? Action,
    string? Repository,
    string Status,
    DateTimeOffset ReceivedAt,
    DateTimeOffset? ProcessedAt,
    int Attempts,
    string? Outcome,
    string? Error,
    int Redeliveries,
    DateTimeOffset? LastSeenAt);

public sealed record WebhookDeliveryList(IReadOnlyList<WebhookDelivery> Items);

/// <summary>The lab clients' contract (POST /v1/allocate): times in epoch seconds.</summary>
public sealed record LabAllocation(string SandboxId, string Name, string? ExternalId, long AllocatedAt, long ExpiresAt);

public sealed record LabSandbox(
    string SandboxId, string Name, string? ExternalId, string Status, string? AllocatedToTrack, long? AllocatedAt, long? ExpiresAt);

public sealed record LabDeletion(string SandboxId, string Status, long DeletionRequestedAt);
