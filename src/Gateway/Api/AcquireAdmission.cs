namespace SandboxBroker.Gateway.Api;

/// <summary>
/// Admission control for acquires. At most <see cref="GatewaySettings.MaxAcquiresInFlight"/> claims of this gateway
/// have an acquire waiting on the cluster at once; an acquire for another claim is then refused at once with 503
/// OVERLOADED and Retry-After. Concurrent acquires of one claim count once: they are one grain's work (the first does
/// it, the rest are answered as repeats right after), so a burst of retries for one key is never refused.
/// Without the limit, load above the cluster's capacity queues in the silo until every caller has timed out while
/// the silo still does the abandoned work, and nothing completes (measured: warm acquires offered at 1,000/s
/// against a capacity near 120/s completed none within the 10 s client timeout). With it the broker keeps
/// completing at its capacity, and the callers above it learn so in a millisecond.
/// <para>
/// The slots are shared fairly between tenants: a tenant may hold at most
/// <c>max(ceil((max - reserve) / active tenants), reserve)</c> of them, where <c>reserve</c> is
/// <see cref="GatewaySettings.MinAcquiresInFlightPerTenant"/> (at most the total) and the active tenants are those with an
/// acquire in flight, counting the caller. So a tenant alone can use all but <c>reserve</c> slots, a tenant arriving
/// always finds room, and as soon as it is active the others' shares shrink: acquires finish in milliseconds, so the
/// shares are even again almost at once. Refusals are immediate, as for the total.
/// </para>
/// </summary>
public sealed class AcquireAdmission(int maxInFlight, int minPerTenant = GatewaySettings.DefaultMinAcquiresInFlightPerTenant)
{
    private readonly Lock _gate = new();
    /// <summary>Callers waiting per claim id ({tenant}/{key}).</summary>
    private readonly Dictionary<string, int> _waiting = new(StringComparer.Ordinal);
    /// <summary>Claims with an acquire in flight, per tenant; a tenant with none is not listed.</summary>
    private readonly Dictionary<string, int> _perTenant = new(StringComparer.Ordinal);

    /// <summary>Claims with an acquire waiting on the cluster now.</summary>
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
    public Task<AcquireResult> AcquireAsync(IClusterClient client, string tenant, string claimKey, AcquireRequest request, CancellationToken ct) =>
        RunAsync(tenant, claimKey, () => ApiRoutes.CallAsync(() => client.GetClaim(tenant, claimKey).Acquire(request), ct));

    public async Task<T> RunAsync<T>(string tenant, string claimKey, Func<Task<T>> acquire)
    {
        var claimId = ClaimId.Of(tenant, claimKey);
        if (Enter(tenant, claimId) is { } refusal)
        {
            throw new ApiError(StatusCodes.Status503ServiceUnavailable, GatewayErrorCodes.Overloaded, refusal, RetryAfterSeconds: 1).ToException();
        }
        try
        {
            return await acquire();
        }
        finally
        {
            Exit(tenant, claimId);
        }
    }

    /// <summary>Null when admitted; otherwise why not.</summary>
    private string? Enter(string tenant, string claimId)
    {
        lock (_gate)
        {
            if (_waiting.TryGetValue(claimId, out var callers))
            {
                _waiting[claimId] = callers + 1;
                return null;
            }
            var mine = _perTenant.GetValueOrDefault(tenant);
            if (maxInFlight > 0)
            {
                if (_waiting.Count >= maxInFlight)
                {
                    return $"the broker is at capacity ({maxInFlight} claim keys with an acquire in flight on this gateway); retry shortly";
                }
                var share = FairShare(_perTenant.Count + (mine == 0 ? 1 : 0));
                if (mine >= share)
                {
                    return $"tenant '{tenant}' has its fair share ({share} of {maxInFlight}) of acquires in flight on this gateway; retry shortly";
                }
            }
            _waiting[claimId] = 1;
            _perTenant[tenant] = mine + 1;
            return null;
        }
    }

    /// <summary>How many slots one of <paramref name="activeTenants"/> tenants may hold.</summary>
    public int FairShare(int activeTenants)
    {
        var reserve = Math.Min(minPerTenant, maxInFlight);
        return Math.Max((maxInFlight - reserve + activeTenants - 1) / activeTenants, reserve);
    }

    private void Exit(string tenant, string claimId)
    {
        lock (_gate)
        {
            var callers = _waiting[claimId] - 1;
            if (callers > 0)
            {
                _waiting[claimId] = callers;
                return;
            }
            _waiting.Remove(claimId);
            var left = _perTenant[tenant] - 1;
            if (left == 0)
            {
                _perTenant.Remove(tenant);
            }
            else
            {
                _perTenant[tenant] = left;
            }
        }
    }
}
