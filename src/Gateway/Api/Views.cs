namespace SandboxBroker.Gateway.Api;

/// <summary>A sandbox as the API shows it.</summary>
public sealed record SandboxView(
    string SandboxId,
    string Pool,
    string Provider,
    string Status,
    string Name,
    string? ExternalId,
    string? ClaimKey,
    string? Tenant,
    string? Owner,
    DateTime CreatedAt,
    DateTime UpdatedAt,
    DateTime? LeaseExpiresAt,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string>? Connection,
    string? LastError)
{
    /// <summary>Connection details (credentials) are shown only to the claim's tenant or an admin.</summary>
    public static SandboxView From(SandboxInfo s, bool withConnection) => new(
        s.SandboxId, s.Pool, s.Provider, SandboxLifecycle.Format(s.Status), s.Name, s.ExternalId, s.ClaimKey, s.Tenant, s.Owner,
        ApiJson.Utc(s.CreatedAt), ApiJson.Utc(s.UpdatedAt), ApiJson.Utc(s.LeaseExpiresAt), s.Labels,
        withConnection ? s.Connection : null, s.LastError);

    public static SandboxView From(Storage.SandboxRow r) => new(
        r.SandboxId, r.Pool, r.Provider, r.Status, r.Name ?? r.SandboxId, r.ExternalId, r.ClaimKey, r.Tenant, r.Owner,
        ApiJson.Utc(r.CreatedAt), ApiJson.Utc(r.UpdatedAt), ApiJson.Utc(r.ExpiresAt), new Dictionary<string, string>(), null, null);
}

/// <summary>A claim's lease as the API shows it; the sandbox is included where the call has it.</summary>
public sealed record ClaimView(
    string ClaimKey,
    long LeaseNumber,
    string Status,
    string Tenant,
    string Owner,
    string Pool,
    string SandboxId,
    string? SandboxName,
    DateTime AcquiredAt,
    DateTime ExpiresAt,
    DateTime DeadlineAt,
    int? IdleTimeoutSeconds,
    DateTime LastActivityAt,
    DateTime? EndedAt,
    string? EndReason,
    IReadOnlyDictionary<string, string> Labels,
    SandboxView? Sandbox)
{
    public static ClaimView From(Lease l, SandboxInfo? sandbox = null) => new(
        l.ClaimKey, l.Number, SandboxLifecycle.Format(l.Status), l.Tenant, l.Owner, l.Pool, l.SandboxId, l.SandboxName,
        ApiJson.Utc(l.AcquiredAt), ApiJson.Utc(l.ExpiresAt), ApiJson.Utc(l.DeadlineAt),
        l.IdleTimeout is { } idle ? (int)idle.TotalSeconds : null, ApiJson.Utc(l.LastActivityAt), ApiJson.Utc(l.EndedAt),
        l.EndReason, l.Labels, sandbox is null ? null : SandboxView.From(sandbox, withConnection: true));
}

public sealed record ClaimHistoryView(string ClaimKey, IReadOnlyList<ClaimView> Leases);

public sealed record SandboxPage(IReadOnlyList<SandboxView> Items, string? NextCursor);

public sealed record PoolConfigView(
    string Provider,
    string? Template,
    int MinReady,
    int MaxTotal,
    int DefaultTtlSeconds,
    int MaxTtlSeconds,
    int? IdleTimeoutSeconds,
    string OnEmpty,
    int MaxConcurrentCreates)
{
    public static PoolConfigView From(PoolConfig c) => new(
        c.Provider, c.Template, c.MinReady, c.MaxTotal, (int)c.DefaultTtl.TotalSeconds, (int)c.MaxTtl.TotalSeconds,
        c.IdleTimeout is { } idle ? (int)idle.TotalSeconds : null, c.OnEmpty == OnEmptyPolicy.Fail ? "fail" : "create",
        c.MaxConcurrentCreates);
}

public sealed record PoolLevelsView(int Ready, int Provisioning, int Leased, int Deleting, int Total);

public sealed record PoolView(string Name, PoolConfigView Config, PoolLevelsView Levels)
{
    public static PoolView From(PoolStatus s) => new(s.Config.Name, PoolConfigView.From(s.Config),
        new PoolLevelsView(s.Levels.Ready, s.Levels.Provisioning, s.Levels.Leased, s.Levels.Deleting, s.Levels.Total));
}

public sealed record PoolList(IReadOnlyList<PoolView> Items);

public sealed record StatsView(
    IReadOnlyDictionary<string, long> Sandboxes,
    IReadOnlyDictionary<string, long> Claims,
    IReadOnlyList<PoolView> Pools);

public sealed record ReconcileView(
    string Provider, DateTime StartedAt, DateTime FinishedAt, int Seen, int Adopted, int Deleted, int MarkedStale, int Errors,
    IReadOnlyList<string> ErrorMessages)
{
    public static ReconcileView From(ReconcileReport r) => new(r.Provider, ApiJson.Utc(r.StartedAt), ApiJson.Utc(r.FinishedAt),
        r.Seen, r.Adopted, r.Deleted, r.MarkedStale, r.Errors, r.ErrorMessages);
}

public sealed record SyncView(IReadOnlyList<ReconcileView> Providers);

public sealed record CleanupView(int OverdueClaimsChecked, int ClaimsExpired, int DeletionsRetried, int Errors);

public sealed record TokenView(
    string TokenId, string Tenant, IReadOnlyList<string> Scopes, string? Name, DateTime CreatedAt, DateTime? ExpiresAt,
    DateTime? RevokedAt, DateTime? LastUsedAt)
{
    public static TokenView From(Storage.ApiToken t) => new(t.TokenId, t.Tenant, t.Scopes, t.Name, ApiJson.Utc(t.CreatedAt),
        ApiJson.Utc(t.ExpiresAt), ApiJson.Utc(t.RevokedAt), ApiJson.Utc(t.LastUsedAt));
}

/// <summary>A new token: the only time the secret is shown.</summary>
public sealed record MintedTokenView(string Token, TokenView Details);

public sealed record TokenList(IReadOnlyList<TokenView> Items);

// ----- requests -----

public sealed record AcquireBody(
    string? Pool = null,
    int? TtlSeconds = null,
    int? IdleTimeoutSeconds = null,
    Dictionary<string, string>? Labels = null,
    string? Name = null,
    string? Owner = null);

public sealed record ExtendBody(int? TtlSeconds = null);

public sealed record PoolBody(
    string? Provider = null,
    string? Template = null,
    int? MinReady = null,
    int? MaxTotal = null,
    int? DefaultTtlSeconds = null,
    int? MaxTtlSeconds = null,
    int? IdleTimeoutSeconds = null,
    string? OnEmpty = null,
    int? MaxConcurrentCreates = null);

public sealed record CreateTokenBody(string? Tenant = null, List<string>? Scopes = null, string? Name = null, int? ExpiresInSeconds = null);
