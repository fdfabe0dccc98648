using System.Net;

namespace SandboxBroker.Client;

/// <summary>
/// An answer of the broker in its error shape (<c>{"error":{"code","message","request_id"}}</c>): the code says what went
/// wrong, <see cref="RetryAfter"/> says when waiting helps. Answers without that shape (a proxy's, or Kestrel refusing a
/// request before the broker saw it) get the code the broker uses for that status.
/// </summary>
public sealed class BrokerApiException(
    HttpStatusCode status, string code, string message, string? requestId, string? field = null, TimeSpan? retryAfter = null)
    : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
    public string Code { get; } = code;
    public string? RequestId { get; } = requestId;

    /// <summary>The field at fault in bad input, when the broker named one.</summary>
    public string? Field { get; } = field;

    /// <summary>How long the broker asked the caller to wait before trying again, when it said so.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;

    /// <summary>Nothing was decided: the same call may succeed later (rate limited, overloaded, a part of the cluster away).</summary>
    public bool IsTransient => Status is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout
        or HttpStatusCode.RequestTimeout;
}
