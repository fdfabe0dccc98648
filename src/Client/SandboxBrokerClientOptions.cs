namespace SandboxBroker.Client;

/// <summary>Where the broker is, the token to use, and how patiently to call it.</summary>
public sealed class SandboxBrokerClientOptions
{
    /// <summary>The gateway's default address (Gateway:Urls).</summary>
    public static readonly Uri DefaultBaseAddress = new("http://127.0.0.1:8080/");

    public Uri BaseAddress { get; set; } = DefaultBaseAddress;

    /// <summary>The bearer token (<c>sbk_…</c>, or the admin token); null calls without one (only health answers).</summary>
    public string? Token { get; set; }

    /// <summary>Retries of a call the broker may safely see again, after the first attempt.</summary>
    public int MaxRetries { get; set; } = 4;

    /// <summary>The first retry's delay when the broker gave no Retry-After (exponential with jitter after it).</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest wait between attempts, Retry-After included.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>One attempt's limit. A cold acquire waits for the provider's create, so this is generous.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>The limit of a call, retries and waits included.</summary>
    public TimeSpan TotalTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Told before each retry (e.g. to show "overloaded, retrying in 1 s"); must not throw.</summary>
    public Action<BrokerRetry>? OnRetry { get; set; }
}

/// <summary>A retry about to happen: the attempt that failed (1 = the first), what it got, and the wait before the next.</summary>
/// <param name="Status">The failed attempt's HTTP status, or null when it got no answer (connection refused, timeout).</param>
public sealed record BrokerRetry(string Operation, int Attempt, int? Status, TimeSpan Delay, string? Failure);
