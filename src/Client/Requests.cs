namespace SandboxBroker.Client;

// What the calls send. Properties left null are left out of the body, so the broker applies its (or the pool's) defaults.

/// <summary>An acquire's options: the pool (default: the broker's), TTL and idle timeout, labels, a sandbox name, the owner.</summary>
public sealed record AcquireOptions(
    string? Pool = null,
    int? TtlSeconds = null,
    int? IdleTimeoutSeconds = null,
    IReadOnlyDictionary<string, string>? Labels = null,
    string? Name = null,
    string? Owner = null);

/// <summary>A filter of <c>GET /v1/sandboxes</c>; <see cref="Cursor"/> is the previous page's next_cursor.</summary>
public sealed record SandboxQuery(string? Status = null, string? Pool = null, string? Owner = null, int? Limit = null, string? Cursor = null);

/// <summary>A pool's settings to create or change it; fields left null keep their current (or default) values.</summary>
public sealed record PoolSettings(
    string? Provider = null,
    string? Template = null,
    int? MinReady = null,
    int? MaxTotal = null,
    int? DefaultTtlSeconds = null,
    int? MaxTtlSeconds = null,
    int? IdleTimeoutSeconds = null,
    string? OnEmpty = null,
    int? MaxConcurrentCreates = null);

/// <summary>A token to mint: its tenant, scopes (<c>claims</c> by default, <c>admin</c>), a note and a lifetime.</summary>
public sealed record TokenRequest(string Tenant, IReadOnlyList<string>? Scopes = null, string? Name = null, int? ExpiresInSeconds = null);

internal sealed record ExtendBody(int TtlSeconds);
