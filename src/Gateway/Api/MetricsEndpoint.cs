using System.Security.Cryptography;
using System.Text;
using Prometheus;

namespace SandboxBroker.Gateway.Api;

/// <summary>/metrics settings ("Metrics" section).</summary>
public sealed class MetricsSettings
{
    public const string Section = "Metrics";

    /// <summary>When set, a scrape must send <c>Authorization: Bearer &lt;Token&gt;</c>; unset, /metrics is open like /healthz.</summary>
    public string? Token { get; set; }
}

/// <summary>
/// GET /metrics: the gateway's registry in Prometheus' text format (and GET /metrics/silo: the silo's, when the gateway hosts
/// it). GET only (any other method is routing's 405 in the error shape), and behind a token when
/// <see cref="MetricsSettings.Token"/> is set. The registries' labels are bounded (<see cref="BrokerMetrics"/>), so scraping
/// costs the same however odd the requests were.
/// </summary>
public static class MetricsEndpoint
{
    public static IEndpointConventionBuilder MapBrokerMetrics(this IEndpointRouteBuilder app, string path, CollectorRegistry registry,
        IConfiguration configuration)
    {
        var settings = configuration.GetSection(MetricsSettings.Section).Get<MetricsSettings>() ?? new MetricsSettings();
        var expected = string.IsNullOrEmpty(settings.Token) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(settings.Token));
        return app.MapGet(path, async (HttpContext context) =>
        {
            if (expected is not null && !Authorized(context.Request.Headers.Authorization, expected))
            {
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await new ApiError(StatusCodes.Status401Unauthorized, GatewayErrorCodes.Unauthenticated,
                    $"{path} needs 'Authorization: Bearer <Metrics:Token>'").WriteAsync(context);
                return;
            }
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await registry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted);
        }).ExcludeFromDescription();
    }

    private static bool Authorized(string? header, byte[] expected) =>
        header is { Length: > 7 } && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(header[7..].Trim())), expected);
}
