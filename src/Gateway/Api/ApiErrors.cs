using System.Text.Json.Serialization;

namespace SandboxBroker.Gateway.Api;

/// <summary>Error codes only the gateway raises (the rest are <see cref="ErrorCodes"/>, shared with the grains).</summary>
public static class GatewayErrorCodes
{
    public const string Unauthenticated = "UNAUTHENTICATED";
    public const string RateLimited = "RATE_LIMITED";
    public const string MethodNotAllowed = "METHOD_NOT_ALLOWED";
    public const string PayloadTooLarge = "PAYLOAD_TOO_LARGE";
    public const string UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE";
    public const string UriTooLong = "URI_TOO_LONG";
    public const string HeadersTooLarge = "HEADERS_TOO_LARGE";
    public const string Unavailable = "UNAVAILABLE";
    public const string Overloaded = "OVERLOADED";
    public const string Internal = "INTERNAL";
}

/// <summary>The one error shape: <c>{"error":{"code","message","request_id"}}</c>, plus the field at fault and a retry hint when known.</summary>
public sealed record ErrorEnvelope(ErrorDetail Error);

public sealed record ErrorDetail(
    string Code,
    string Message,
    string RequestId,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Field = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? RetryAfter = null);

/// <summary>A failure on its way to the client: status, code and message.</summary>
public sealed record ApiError(int Status, string Code, string Message, string? Field = null, int? RetryAfterSeconds = null)
{
    /// <summary>The HTTP status of each broker error code.</summary>
    public static int StatusOf(string code) => code switch
    {
        ErrorCodes.InvalidArgument or ErrorCodes.TtlTooLong => StatusCodes.Status400BadRequest,
        GatewayErrorCodes.Unauthenticated => StatusCodes.Status401Unauthorized,
        ErrorCodes.Forbidden or ErrorCodes.PoolNotAllowed => StatusCodes.Status403Forbidden,
        ErrorCodes.NotFound => StatusCodes.Status404NotFound,
        GatewayErrorCodes.MethodNotAllowed => StatusCodes.Status405MethodNotAllowed,
        ErrorCodes.NoSandboxesAvailable or ErrorCodes.OwnerLimitReached or ErrorCodes.PoolAtCapacity or
            ErrorCodes.LeaseNotActive or ErrorCodes.InvalidTransition or ErrorCodes.Conflict or ErrorCodes.TenantQuotaExceeded => StatusCodes.Status409Conflict,
        GatewayErrorCodes.PayloadTooLarge => StatusCodes.Status413PayloadTooLarge,
        GatewayErrorCodes.UnsupportedMediaType => StatusCodes.Status415UnsupportedMediaType,
        GatewayErrorCodes.UriTooLong => StatusCodes.Status414UriTooLong,
        GatewayErrorCodes.HeadersTooLarge => StatusCodes.Status431RequestHeaderFieldsTooLarge,
        GatewayErrorCodes.RateLimited => StatusCodes.Status429TooManyRequests,
        ErrorCodes.ProviderError => StatusCodes.Status502BadGateway,
        ErrorCodes.ProviderUnavailable or ErrorCodes.ConcurrentUpdate or GatewayErrorCodes.Unavailable => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    public static ApiError From(BrokerException e) => new(StatusOf(e.Code), e.Code, e.Message, e.Field, e.RetryAfterSeconds);

    public static ApiError BadRequest(string field, string message) =>
        new(StatusCodes.Status400BadRequest, ErrorCodes.InvalidArgument, message, field);

    public static ApiError NotFound(string message) => new(StatusCodes.Status404NotFound, ErrorCodes.NotFound, message);

    public static ApiError Forbidden(string message) => new(StatusCodes.Status403Forbidden, ErrorCodes.Forbidden, message);

    /// <summary>Thrown by endpoint code to answer with this error.</summary>
    public ApiErrorException ToException() => new(this);

    public IResult ToResult(HttpContext context)
    {
        context.Items[BrokerMetrics.ErrorCodeItem] = Code;
        if (RetryAfterSeconds is { } seconds)
        {
            context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return Results.Json(new ErrorEnvelope(new ErrorDetail(Code, Message, context.TraceIdentifier, Field, RetryAfterSeconds)),
            ApiJson.Options, statusCode: Status);
    }

    public Task WriteAsync(HttpContext context) => ToResult(context).ExecuteAsync(context);
}

public sealed class ApiErrorException(ApiError error) : Exception(error.Message)
{
    public ApiError Error { get; } = error;
}
