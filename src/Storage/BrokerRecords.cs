namespace SandboxBroker.Storage;

/// <summary>One lifecycle event for the append-only audit log.</summary>
public sealed record AuditEvent(
    string EntityType,
    string EntityId,
    string Event,
    string? FromState,
    string? ToState,
    string? Actor,
    string? DetailsJson,
    DateTimeOffset OccurredAt);

/// <summary>
/// A sandbox as admins list it (broker_sandboxes); the grain's state is the truth, this row its copy, written in the same
/// statement as the state. <see cref="WakeAt"/>: when the deletion sweep must wake the grain (a deletion to retry).
/// </summary>
public sealed record SandboxRow(
    string SandboxId,
    string Pool,
    string Provider,
    string Status,
    string? Name,
    string? ExternalId,
    string? Tenant,
    string? Owner,
    string? ClaimKey,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? WakeAt = null);

/// <summary>
/// A claim as admins list it (broker_claims), written in the same statement as the claim's state. <see cref="WakeAt"/>:
/// when the deadline sweep must wake the claim (its lease's deadline, a release to retry, history to prune).
/// </summary>
public sealed record ClaimRow(
    string ClaimKey,
    string? Tenant,
    string? Owner,
    string Pool,
    string? SandboxId,
    string Status,
    DateTimeOffset? AcquiredAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? LastActivityAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? WakeAt = null);

/// <summary>Where a sandbox listing page starts: after this row.</summary>
public sealed record SandboxCursor(DateTimeOffset CreatedAt, string SandboxId);

/// <summary>Filters of a sandbox listing; null means any. A null tenant lists every tenant's.</summary>
public sealed record SandboxQuery(string? Tenant, string? Status, string? Pool, string? Owner, SandboxCursor? After, int Limit);

/// <summary>
/// A pool's live sandboxes that it did not list, by status, as of <paramref name="Snapshot"/>; the ready and provisioning
/// ones among them also by id (<paramref name="Waiting"/>).
/// </summary>
public sealed record LiveCounts(IReadOnlyDictionary<string, long> ByStatus, IReadOnlyList<string> Waiting, CommitSnapshot Snapshot);
