namespace SandboxBroker.Gateway.Api;

/// <summary>
/// The lane of likely repeats: acquires of claims this gateway last saw holding a lease, which the grain answers from
/// memory. At most <c>maxInFlight</c> of them wait on the cluster at once (0: no limit), beside the slots of
/// <see cref="AcquireAdmission"/>, which are sized for new leases; above it a repeat is refused at once.
/// </summary>
internal sealed class RepeatLane(int maxInFlight)
{
    private int _inFlight;

    /// <summary>Why a repeat would be refused now; null when it would go.</summary>
    public string? RefusalNow() => maxInFlight > 0 && Volatile.Read(ref _inFlight) >= maxInFlight ? Full : null;

    public async Task<T> RunAsync<T>(Func<Task<T>> acquire)
    {
        if (Interlocked.Increment(ref _inFlight) > maxInFlight && maxInFlight > 0)
        {
            Interlocked.Decrement(ref _inFlight);
            throw AcquireAdmission.Overloaded(Full).ToException();
        }
        try
        {
            return await acquire();
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private string Full => $"the broker is at capacity ({maxInFlight} repeated acquires in flight on this gateway); retry shortly";
}
