using System.Diagnostics;

namespace SandboxBroker.Gateway.Api;

/// <summary>Small pieces every endpoint uses: route values, grain calls that retry a lost write race, error documentation.</summary>
public static class ApiRoutes
{
    /// <summary>
    /// A claim key from the path. Kestrel decodes the path except %2F, so a key like github:octo/repo#42 arrives
    /// as github:octo%2Frepo#42; keys never contain '%', so unescaping is safe.
    /// </summary>
    public static string ClaimKeyFrom(string routeValue)
    {
        var key = Uri.UnescapeDataString(routeValue);
        try
        {
            ClaimKey.Validate(key);
        }
        catch (BrokerException e)
        {
            throw ApiError.BadRequest("key", e.Message).ToException();
        }
        return key;
    }

    public static string SandboxIdFrom(string routeValue) =>
        IsSandboxId(routeValue)
            ? routeValue
            : throw ApiError.BadRequest("id", "a sandbox id is 1-64 characters of A-Z, a-z, 0-9, '-' and '_'").ToException();

    public static bool IsSandboxId(string value) => value.Length is > 0 and <= 64 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>A pool name from the path or a filter: one that can exist, else a 400 naming <paramref name="field"/>.</summary>
    public static string PoolNameFrom(string value, string field) =>
        PoolName.IsValid(value) ? value : throw ApiError.BadRequest(field, PoolName.Rule).ToException();

    /// <summary>
    /// Runs a grain call; a CONCURRENT_UPDATE (another activation of the grain wrote first, during a membership
    /// change) is retried, since the retry reaches the surviving activation.
    /// </summary>
    public static async Task<T> CallAsync<T>(Func<Task<T>> call, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (BrokerException e) when (e.Code == ErrorCodes.ConcurrentUpdate && attempt < 4)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(25 * attempt), ct);
            }
        }
    }

    public static TimeSpan Elapsed(long startedTimestamp) => Stopwatch.GetElapsedTime(startedTimestamp);

    public static IResult Json<T>(T value, int status = StatusCodes.Status200OK) =>
        Results.Json(value, ApiJson.Options, statusCode: status);

    /// <summary>
    /// Documents the error responses an endpoint can give (all in the one error shape). Every endpoint can answer 400:
    /// its path and query pass <see cref="ApiInput"/> first.
    /// </summary>
    public static RouteHandlerBuilder ProducesErrors(this RouteHandlerBuilder builder, params int[] statuses)
    {
        int[] always = [StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status429TooManyRequests];
        foreach (var status in statuses.Concat(always).Distinct().Order())
        {
            builder.Produces<ErrorEnvelope>(status);
        }
        return builder;
    }
}
