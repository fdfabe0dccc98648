using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using SandboxBroker.Gateway.Auth;

namespace SandboxBroker.Gateway.Api;

/// <summary>A token bucket per tenant; a request over the rate answers 429 RATE_LIMITED with Retry-After.</summary>
public static class RateLimiting
{
    public static IServiceCollection AddTenantRateLimiter(this IServiceCollection services)
    {
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<RateLimitSettings>>((o, settings) =>
        {
            var s = settings.Value;
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            {
                var tenant = context.User.FindFirst(Caller.ClaimNames.Tenant)?.Value;
                if (!s.Enabled || tenant is null)
                {
                    return RateLimitPartition.GetNoLimiter(""); // unauthenticated requests are refused before they cost anything
                }
                return RateLimitPartition.GetTokenBucketLimiter(tenant, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = Math.Max(1, s.Burst),
                    TokensPerPeriod = Math.Max(1, s.PermitsPerSecond),
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            o.OnRejected = (rejected, _) =>
            {
                var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 1;
                var tenant = rejected.HttpContext.User.FindFirst(Caller.ClaimNames.Tenant)?.Value;
                return new ValueTask(new ApiError(StatusCodes.Status429TooManyRequests, GatewayErrorCodes.RateLimited,
                    $"tenant '{tenant}' is over its request rate; retry after {retryAfter}s", RetryAfterSeconds: retryAfter).WriteAsync(rejected.HttpContext));
            };
        });
        return services;
    }
}
