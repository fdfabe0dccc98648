namespace SandboxBroker.Gateway.Api;

/// <summary>
/// Admission control for acquires. At most <see cref="GatewaySettings.MaxAcquiresInFlight"/> claim keys of this
/// gateway have an acquire waiting on the cluster at once; an acquire for another key is then refused at once with
/// 503 OVERLOADED and Retry-After. Concurrent acquires of one key count once: they are one grain's work (the first
/// does it, the rest are answered as repeats right after), so a burst of retries for one key is never refused.
/// Without the limit, load above the cluster's capacity queues in the silo until every caller has timed out while
/// the silo still does the abandoned work, and nothing completes (measured: warm acquires offered at 1,000/s
/// against a capacity near 120/s completed none within the 10 s client timeout). With it the broker keeps
/// completing at its capacity, and the callers above it learn so in a millisecond.
/// </summary>
public sealed class AcquireAdmission(int maxInFlight)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, int> _waiting = new(StringComparer.Ordinal);

    /// <summary>Claim keys with an acquire waiting on the cluster now.</summary>
    public int InFlight
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>How every acquire through the REST API reaches the cluster: admitted, then retried on a concurrent update.</summary>
    public Task<AcquireResult> AcquireAsync(IClusterClient client, string claimKey, AcquireRequest request, CancellationToken ct) =>
        RunAsync(claimKey, () => ApiRoutes.CallAsync(() => client.GetGrain<IClaimGrain>(claimKey).Acquire(request), ct));

    public async Task<T> RunAsync<T>(string claimKey, Func<Task<T>> acquire)
    {
        if (!Enter(claimKey))
        {
            throw new ApiError(StatusCodes.Status503ServiceUnavailable, GatewayErrorCodes.Overloaded,
                $"the broker is at capacity ({maxInFlight} claim keys with an acquire in flight on this gateway); retry shortly",
                RetryAfterSeconds: 1).ToException();
        }
        try
        {
            return await acquire();
        }
        finally
        {
            Exit(claimKey);
        }
    }

    private bool Enter(string claimKey)
    {
        lock (_gate)
        {
            if (_waiting.TryGetValue(claimKey, out var callers))
            {
                _waiting[claimKey] = callers + 1;
                return true;
            }
            if (maxInFlight > 0 && _waiting.Count >= maxInFlight)
            {
                return false;
            }
            _waiting[claimKey] = 1;
            return true;
        }
    }

    private void Exit(string claimKey)
    {
        lock (_gate)
        {
            var callers = _waiting[claimKey] - 1;
            if (callers == 0)
            {
                _waiting.Remove(claimKey);
            }
            else
            {
                _waiting[claimKey] = callers;
            }
        }
    }
}
