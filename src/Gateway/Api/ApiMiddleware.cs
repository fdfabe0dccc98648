using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Features;

namespace SandboxBroker.Gateway.Api;

/// <summary>
/// The outermost layer of every request: gives it a request id (the caller's X-Request-ID when sane, else a new
/// one), echoes it, and turns any exception into the one error shape (a stack trace never leaves the process).
/// </summary>
public sealed class ApiMiddleware(RequestDelegate next, ILogger<ApiMiddleware> logger, BrokerMetrics metrics)
{
    public const string RequestIdHeader = "X-Request-ID";

    /// <summary>
    /// The broker's limits on a request's target (path and query) and headers. They are checked here, so a request
    /// over them is answered in the error shape with a request id. Kestrel's own limits (<see cref="Program"/>) are set
    /// above these as the backstop: a request over those is refused by Kestrel's parser before any middleware runs, and
    /// that answer (like Kestrel's other parser rejections) has an empty body and no X-Request-ID.
    /// </summary>
    public const int MaxRequestTargetLength = 8 * 1024;

    public const int MaxRequestHeadersBytes = 32 * 1024;

    public const int MaxRequestHeaderCount = 100;

    /// <summary>
    /// New request ids: a random prefix per process and a count. A new GUID per request cost a read of /dev/urandom
    /// (a system call) on every request without an id of its own.
    /// </summary>
    private readonly string _requestIdPrefix = "req_" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    private long _requestIdsIssued;

    public async Task InvokeAsync(HttpContext context)
    {
        context.TraceIdentifier = RequestIdFrom(context.Request.Headers[RequestIdHeader]);
        context.Response.OnStarting(static state =>
        {
            var ctx = (HttpContext)state;
            ctx.Response.Headers[RequestIdHeader] = ctx.TraceIdentifier;
            return Task.CompletedTask;
        }, context);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            CheckLimits(context);
            await next(context);
        }
        catch (Exception e) when (!context.Response.HasStarted && !(e is OperationCanceledException && context.RequestAborted.IsCancellationRequested))
        {
            var error = Map(e);
            var path = ApiInput.Printable(context.Request.Path.ToString());
            // Shedding load is the gateway working as meant, not a failure: under overload it answers thousands a second, and
            // an error line with a stack trace for each cost more than the refusal itself (the metrics count them).
            if (error.Status >= 500 && error.Code != GatewayErrorCodes.Overloaded)
            {
                logger.LogError(e, "Request {RequestId} {Method} {Path} failed: {Code}", context.TraceIdentifier, context.Request.Method, path, error.Code);
            }
            else if (e is Npgsql.NpgsqlException)
            {
                // Input the edge should have refused reached Postgres: answered as bad input, logged to be fixed.
                logger.LogWarning(e, "Request {RequestId} {Method} {Path}: a value was refused by the database", context.TraceIdentifier, context.Request.Method, path);
            }
            else
            {
                logger.LogDebug("Request {RequestId} {Method} {Path} refused: {Code} {Message}", context.TraceIdentifier, context.Request.Method, path, error.Code, error.Message);
            }
            context.Response.Clear();
            await error.WriteAsync(context);
        }
        finally
        {
            metrics.ObserveRequest(context, System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>Every exception as an API error: broker codes keep theirs; the cluster being away is a 503 to retry.</summary>
    public static ApiError Map(Exception e) => e switch
    {
        ApiErrorException api => api.Error,
        BrokerException broker => ApiError.From(broker),
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
            new(StatusCodes.Status413PayloadTooLarge, GatewayErrorCodes.PayloadTooLarge, "the request body is too large"),
        BadHttpRequestException bad => new(bad.StatusCode, ErrorCodes.InvalidArgument, bad.Message, "body"),
        // Class 22 is a data exception (NUL in text, a value out of range): the value is at fault, and retrying it fails again.
        // SqlState can be null: Orleans carries a silo's PostgresException across as its type and message, without its fields.
        Npgsql.PostgresException { SqlState: { } state } when state.StartsWith("22", StringComparison.Ordinal) =>
            new(StatusCodes.Status400BadRequest, ErrorCodes.InvalidArgument, "a value in the request cannot be stored or compared; it is refused"),
        Npgsql.NpgsqlException => DatabaseUnavailable,
        // A silo's exception Orleans cannot carry to this process arrives as a fallback naming the original type.
        Orleans.Serialization.UnavailableExceptionFallbackException { ExceptionType: { } type } when type.StartsWith("Npgsql.", StringComparison.Ordinal) => DatabaseUnavailable,
        Orleans.Serialization.CodecNotFoundException codec when codec.Message.Contains("Npgsql.", StringComparison.Ordinal) => DatabaseUnavailable,
        TimeoutException => new(StatusCodes.Status503ServiceUnavailable, GatewayErrorCodes.Unavailable,
            "the cluster did not answer in time; the outcome is unknown and the call is safe to retry", RetryAfterSeconds: 1),
        OrleansException => new(StatusCodes.Status503ServiceUnavailable, GatewayErrorCodes.Unavailable,
            "the cluster is not reachable right now; retry shortly", RetryAfterSeconds: 1),
        _ => new(StatusCodes.Status500InternalServerError, GatewayErrorCodes.Internal, "internal error; quote the request id when reporting it"),
    };

    /// <summary>Postgres restarting or unreachable: nothing the caller did wrong, and the call is safe to retry.</summary>
    private static readonly ApiError DatabaseUnavailable = new(StatusCodes.Status503ServiceUnavailable, GatewayErrorCodes.Unavailable,
        "the broker's database is not reachable right now; the outcome is unknown and the call is safe to retry", RetryAfterSeconds: 1);

    /// <summary>Answers routing's bodiless 404/405 (and any other bodiless error) in the error shape.</summary>
    public static Task WriteStatusCodePage(StatusCodeContext context)
    {
        var http = context.HttpContext;
        var error = http.Response.StatusCode switch
        {
            StatusCodes.Status404NotFound => ApiError.NotFound($"no such resource: {ApiInput.Printable(http.Request.Path.ToString())}"),
            StatusCodes.Status405MethodNotAllowed => new ApiError(StatusCodes.Status405MethodNotAllowed, GatewayErrorCodes.MethodNotAllowed,
                $"{http.Request.Method} is not allowed on {ApiInput.Printable(http.Request.Path.ToString())}"),
            StatusCodes.Status414UriTooLong => UriTooLong,
            StatusCodes.Status431RequestHeaderFieldsTooLarge => HeadersTooLarge,
            StatusCodes.Status413PayloadTooLarge => new ApiError(StatusCodes.Status413PayloadTooLarge, GatewayErrorCodes.PayloadTooLarge, "the request body is too large"),
            StatusCodes.Status415UnsupportedMediaType => new ApiError(StatusCodes.Status415UnsupportedMediaType, GatewayErrorCodes.UnsupportedMediaType,
                "the body must be application/json", "content-type"),
            var status => new ApiError(status, status >= 500 ? GatewayErrorCodes.Internal : ErrorCodes.InvalidArgument,
                $"the request failed with status {status}"),
        };
        return error.WriteAsync(http);
    }

    private static readonly ApiError UriTooLong = new(StatusCodes.Status414UriTooLong, GatewayErrorCodes.UriTooLong,
        $"the request's path and query are longer than {MaxRequestTargetLength} characters", "url");

    private static readonly ApiError HeadersTooLarge = new(StatusCodes.Status431RequestHeaderFieldsTooLarge, GatewayErrorCodes.HeadersTooLarge,
        $"the request's headers are larger than {MaxRequestHeadersBytes} bytes or more than {MaxRequestHeaderCount}", "headers");

    /// <summary>The request's target and headers against the broker's limits (Kestrel's sit above them).</summary>
    private static void CheckLimits(HttpContext context)
    {
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        if (target.Length > MaxRequestTargetLength)
        {
            throw UriTooLong.ToException();
        }
        long bytes = 0;
        var count = 0;
        foreach (var (name, values) in context.Request.Headers)
        {
            foreach (var value in values)
            {
                bytes += name.Length + (value?.Length ?? 0) + 4; // "name: value\r\n", as Kestrel counts a header line
                count++;
            }
        }
        if (bytes > MaxRequestHeadersBytes || count > MaxRequestHeaderCount)
        {
            throw HeadersTooLarge.ToException();
        }
    }

    private string RequestIdFrom(string? incoming) =>
        incoming is { Length: > 0 and <= 128 } id && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':')
            ? id
            : $"{_requestIdPrefix}{Interlocked.Increment(ref _requestIdsIssued):x16}";
}
