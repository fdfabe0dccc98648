namespace SandboxBroker;

/// <summary>Stable error codes, shared by the grains, the REST API and clients.</summary>
public static class ErrorCodes
{
    public const string InvalidArgument = "INVALID_ARGUMENT";
    public const string NotFound = "NOT_FOUND";
    public const string NoSandboxesAvailable = "NO_SANDBOXES_AVAILABLE";
    public const string OwnerLimitReached = "OWNER_LIMIT_REACHED";
    public const string PoolAtCapacity = "POOL_AT_CAPACITY";
    public const string TtlTooLong = "TTL_TOO_LONG";
    public const string LeaseNotActive = "LEASE_NOT_ACTIVE";
    public const string InvalidTransition = "INVALID_TRANSITION";
    public const string ProviderError = "PROVIDER_ERROR";
    public const string ProviderUnavailable = "PROVIDER_UNAVAILABLE";
    public const string Conflict = "CONFLICT";
    /// <summary>Another activation of the same grain wrote first (a membership change); retrying reaches the winner.</summary>
    public const string ConcurrentUpdate = "CONCURRENT_UPDATE";
    public const string Forbidden = "FORBIDDEN";
    /// <summary>The tenant holds as many active leases as one of its quotas allows (the message names which).</summary>
    public const string TenantQuotaExceeded = "TENANT_QUOTA_EXCEEDED";
    /// <summary>The tenant's quota does not list the pool asked for.</summary>
    public const string PoolNotAllowed = "POOL_NOT_ALLOWED";
}

/// <summary>A broker error with a stable code; crosses grain calls and maps to one REST error shape.</summary>
[GenerateSerializer]
[Alias("SandboxBroker.BrokerException")]
public sealed class BrokerException : Exception
{
    public BrokerException(string code, string message, Exception? inner = null) : base(message, inner) => Code = code;

    [Id(0)]
    public string Code { get; }

    /// <summary>Seconds a client should wait before retrying, when the condition is temporary.</summary>
    [Id(1)]
    public int? RetryAfterSeconds { get; init; }

    /// <summary>The request field at fault, for INVALID_ARGUMENT.</summary>
    [Id(2)]
    public string? Field { get; init; }
}
