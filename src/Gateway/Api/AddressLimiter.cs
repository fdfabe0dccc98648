using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using SandboxBroker.Gateway.Auth;

namespace SandboxBroker.Gateway.Api;

/// <summary>
/// Per-address limit on requests the gateway cannot yet trust ("RateLimit:Address" section): anonymous requests and
/// requests with a token that is not the admin token or a recently validated one. It runs before authentication, so a
/// flood of made-up tokens is refused with 429 before it costs a token lookup; a caller whose token is cached passes
/// untouched. IPv6 addresses count by their /64, the smallest block one client is usually given. Behind a proxy every
/// client shares the proxy's address: raise the limits there (or turn this off and limit at the proxy).
/// </summary>
public sealed class AddressLimitSettings
{
    public const string Section = "RateLimit:Address";

    public bool Enabled { get; set; } = true;

    /// <summary>Untrusted requests one address may make per <see cref="Period"/>, sustained.</summary>
    public int Permits { get; set; } = 50;

    public TimeSpan Period { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Untrusted requests one address may make at once above the sustained rate.</summary>
    public int Burst { get; set; } = 200;
}

public sealed class AddressLimiter : IDisposable
{
    private readonly AddressLimitSettings _settings;
    private readonly PartitionedRateLimiter<IPAddress> _limiter;

    public AddressLimiter(IOptions<AddressLimitSettings> settings)
    {
        _settings = settings.Value;
        var s = _settings;
        // The partitioned limiter drops a partition's bucket once it is idle and full again, so made-up addresses do not pile up.
        _limiter = PartitionedRateLimiter.Create<IPAddress, IPAddress>(address => RateLimitPartition.GetTokenBucketLimiter(address, _ =>
            new TokenBucketRateLimiterOptions
            {
                TokenLimit = Math.Max(1, s.Burst),
                TokensPerPeriod = Math.Max(1, s.Permits),
                ReplenishmentPeriod = s.Period > TimeSpan.Zero ? s.Period : TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
    }

    public async Task InvokeAsync(HttpContext context, RequestDelegate next, TokenValidator validator)
    {
        if (_settings.Enabled && !IsTrusted(context, validator))
        {
            using var lease = _limiter.AttemptAcquire(PartitionOf(context.Connection.RemoteIpAddress));
            if (!lease.IsAcquired)
            {
                var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 1;
                await new ApiError(StatusCodes.Status429TooManyRequests, GatewayErrorCodes.RateLimited,
                    $"too many unauthenticated or failed requests from this address; retry after {retryAfter}s", RetryAfterSeconds: retryAfter)
                    .WriteAsync(context);
                return;
            }
        }
        await next(context);
    }

    private static bool IsTrusted(HttpContext context, TokenValidator validator)
    {
        string? header = context.Request.Headers.Authorization;
        return header is { Length: > 7 } && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            && validator.IsTrustedWithoutLookup(header[7..].Trim());
    }

    /// <summary>An IPv4 address as itself; an IPv6 address by its /64 (IPv4-mapped ones as IPv4).</summary>
    public static IPAddress PartitionOf(IPAddress? address)
    {
        if (address is null)
        {
            return IPAddress.None;
        }
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes);
    }

    public void Dispose() => _limiter.Dispose();
}

public static class AddressLimiterExtensions
{
    public static IServiceCollection AddAddressLimiter(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<AddressLimitSettings>(configuration.GetSection(AddressLimitSettings.Section));
        return services.AddSingleton<AddressLimiter>();
    }

    /// <summary>Before authentication: an untrusted request over its address's rate never reaches a token lookup.</summary>
    public static IApplicationBuilder UseAddressLimiter(this IApplicationBuilder app)
    {
        var limiter = app.ApplicationServices.GetRequiredService<AddressLimiter>();
        var validator = app.ApplicationServices.GetRequiredService<TokenValidator>();
        return app.Use(next => context => limiter.InvokeAsync(context, next, validator));
    }
}
