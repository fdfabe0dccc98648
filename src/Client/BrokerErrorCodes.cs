namespace SandboxBroker.Client;

/// <summary>The codes of the broker's error shape (README, "Using the API").</summary>
public static class BrokerErrorCodes
{
    public const string InvalidArgument = "INVALID_ARGUMENT";
    public const string TtlTooLong = "TTL_TOO_LONG";
    public const string Unauthenticated = "UNAUTHENTICATED";
    public const string Forbidden = "FORBIDDEN";
    public const string NotFound = "NOT_FOUND";
    public const string MethodNotAllowed = "METHOD_NOT_ALLOWED";
    public const string NoSandboxesAvailable = "NO_SANDBOXES_AVAILABLE";
    public const string LeaseNotActive = "LEASE_NOT_ACTIVE";
    public const string OwnerLimitReached = "OWNER_LIMIT_REACHED";
    public const string PoolAtCapacity = "POOL_AT_CAPACITY";
    public const string Conflict = "CONFLICT";
    public const string PayloadTooLarge = "PAYLOAD_TOO_LARGE";
    public const string UriTooLong = "URI_TOO_LONG";
    public const string UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE";
    public const string HeadersTooLarge = "HEADERS_TOO_LARGE";
    public const string RateLimited = "RATE_LIMITED";
    public const string ProviderError = "PROVIDER_ERROR";
    public const string ProviderUnavailable = "PROVIDER_UNAVAILABLE";
    public const string Unavailable = "UNAVAILABLE";
    public const string Overloaded = "OVERLOADED";
    public const string Internal = "INTERNAL";

    /// <summary>The code the broker gives a status, for answers that carry no error body.</summary>
    public static string ForStatus(int status) => status switch
    {
        400 => InvalidArgument,
        401 => Unauthenticated,
        403 => Forbidden,
        404 => NotFound,
        405 => MethodNotAllowed,
        409 => Conflict,
        413 => PayloadTooLarge,
        414 => UriTooLong,
        415 => UnsupportedMediaType,
        429 => RateLimited,
        431 => HeadersTooLarge,
        502 => ProviderError,
        503 => Unavailable,
        _ => $"HTTP_{status}",
    };
}
