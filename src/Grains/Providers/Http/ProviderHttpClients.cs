using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;

namespace SandboxBroker.Grains.Providers.Http;

/// <summary>Registers a provider's named HttpClient behind the standard resilience pipeline (Microsoft.Extensions.Http.Resilience).</summary>
public static class ProviderHttpClients
{
    /// <summary>
    /// Total timeout, then retries (exponential backoff with jitter, Retry-After honoured; not for POST or PATCH,
    /// which are not idempotent: creates are made idempotent one level up, by looking the broker id label up first),
    /// then a circuit breaker shared by every call to this provider, then the per-attempt timeout.
    /// </summary>
    public static IHttpClientBuilder AddProviderHttpClient<TOptions>(this IServiceCollection services, string name, string defaultBaseUrl,
        Action<HttpClient, TOptions> authenticate)
        where TOptions : ProviderHttpOptions
    {
        var builder = services.AddHttpClient(name, (sp, client) =>
        {
            var options = sp.GetRequiredService<IOptions<TOptions>>().Value;
            client.BaseAddress = options.BaseAddress(defaultBaseUrl);
            client.Timeout = Timeout.InfiniteTimeSpan; // the pipeline's timeouts govern
            authenticate(client, options);
        });
        builder.AddStandardResilienceHandler().Configure((HttpStandardResilienceOptions o, IServiceProvider sp) =>
        {
            var options = sp.GetRequiredService<IOptions<TOptions>>().Value;
            o.TotalRequestTimeout.Timeout = options.TotalTimeout;
            o.AttemptTimeout.Timeout = options.AttemptTimeout;
            o.Retry.MaxRetryAttempts = options.MaxRetries;
            o.Retry.Delay = options.RetryBaseDelay;
            o.Retry.BackoffType = DelayBackoffType.Exponential;
            o.Retry.UseJitter = true;
            o.Retry.DisableFor(HttpMethod.Post, HttpMethod.Patch);
            o.CircuitBreaker.FailureRatio = options.BreakerFailureRatio;
            o.CircuitBreaker.MinimumThroughput = options.BreakerMinimumThroughput;
            o.CircuitBreaker.SamplingDuration = options.BreakerSamplingDuration;
            o.CircuitBreaker.BreakDuration = options.BreakerBreakDuration;
            var metrics = sp.GetRequiredService<ProviderMetrics>();
            o.CircuitBreaker.OnOpened = _ => Report(metrics, name, ProviderMetrics.BreakerState.Open);
            o.CircuitBreaker.OnHalfOpened = _ => Report(metrics, name, ProviderMetrics.BreakerState.HalfOpen);
            o.CircuitBreaker.OnClosed = _ => Report(metrics, name, ProviderMetrics.BreakerState.Closed);
        });
        return builder;
    }

    private static ValueTask Report(ProviderMetrics metrics, string provider, ProviderMetrics.BreakerState state)
    {
        metrics.Breaker(provider, state);
        return ValueTask.CompletedTask;
    }
}
