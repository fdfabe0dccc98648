namespace SandboxBroker.Grains.Providers.Http;

/// <summary>
/// What every REST provider client shares: where the API is, the key, and the resilience pipeline's settings
/// (per-attempt and total timeouts, retries with jitter for idempotent calls, a circuit breaker).
/// </summary>
public abstract class ProviderHttpOptions
{
    public string? BaseUrl { get; set; }

    /// <summary>The provider's API key. The provider is registered only when this is set.</summary>
    public string? ApiKey { get; set; }

    /// <summary>One HTTP attempt; a create can take as long as the provider needs to boot a sandbox.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>One call including its retries; below the sandbox grain's own limit of two minutes per provider call.</summary>
    public TimeSpan TotalTimeout { get; set; } = TimeSpan.FromSeconds(110);

    /// <summary>Retries of GET, PUT and DELETE on 5xx, 408, 429, timeouts and connection errors (never of POST).</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>The first retry delay; later ones grow exponentially, with jitter. A Retry-After header wins.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The breaker opens when this share of calls in the sampling window failed (and at least MinimumThroughput were made).</summary>
    public double BreakerFailureRatio { get; set; } = 0.5;

    public int BreakerMinimumThroughput { get; set; } = 10;

    /// <summary>Must be at least twice the attempt timeout.</summary>
    public TimeSpan BreakerSamplingDuration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long an open breaker refuses calls before letting one through to test the provider.</summary>
    public TimeSpan BreakerBreakDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Sandboxes asked for per page when listing.</summary>
    public int PageSize { get; set; } = 100;

    /// <summary>While a started sandbox boots: how often to look, and for how long at most.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan StartWait { get; set; } = TimeSpan.FromSeconds(90);

    public bool IsConfigured => !string.IsNullOrWhiteSpace(ApiKey);

    /// <summary>The base address with a trailing slash, so relative paths append to it.</summary>
    public Uri BaseAddress(string fallback)
    {
        var url = string.IsNullOrWhiteSpace(BaseUrl) ? fallback : BaseUrl;
        return new Uri(url.EndsWith('/') ? url : url + "/");
    }
}
