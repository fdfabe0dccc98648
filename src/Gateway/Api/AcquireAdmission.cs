namespace SandboxBroker.Gateway.Api;

/// <summary>
/// Admission control for acquires. At most <see cref="GatewaySettings.MaxAcquiresInFlight"/> claims of this gateway
/// have an acquire waiting on the cluster at once; an acquire for another claim then waits briefly for a slot (below) or
/// is refused with 503 OVERLOADED and Retry-After. Concurrent acquires of one claim count once: they are one grain's work,
/// so a burst of retries for one key is never refused. Without the limit, load above the cluster's capacity queues in the
/// silo until every caller has timed out while the silo still does the abandoned work, and nothing completes (measured:
/// warm acquires offered at 1,000/s against a capacity near 120/s completed none within the 10 s client timeout).
/// <para>
/// The slots are shared fairly between tenants: a tenant may hold at most
/// <c>max(ceil((max - reserve) / active tenants), reserve)</c> of them, where <c>reserve</c> is
/// <see cref="GatewaySettings.MinAcquiresInFlightPerTenant"/> (at most the total) and the active tenants are those with an
/// acquire in flight, counting the caller. So a tenant alone can use all but <c>reserve</c> slots, a tenant arriving
/// always finds room, and as soon as it is active the others' shares shrink: acquires finish in milliseconds, so the
/// shares are even again almost at once.
/// </para>
/// <para>
/// A caller the slots refuse may wait a little for one instead (<c>maxQueued</c> callers at most, each for at most
/// <c>queueTimeout</c>): a stall of a fifth of a second in the silo or in Postgres fills every slot at 1,000 acquires a
/// second, and without a wait each acquire that arrives during it is refused although a slot comes free a moment later
/// (round 20 in docs/BENCHMARKS.md: 101 refusals from one such stall). A slot that comes free goes to the longest waiting
/// caller the limits admit, before any newcomer. Overload is still refused at once: under it the queue is full, and a
/// caller that finds it full is refused without waiting; one whose wait runs out is refused then.
/// </para>
/// <para>
/// Repeats go in a lane of their own (<see cref="RepeatLane"/>): an acquire of a claim this gateway last saw holding a lease
/// (<see cref="RecentLeases"/>) is answered by the grain from memory, so it does not take one of the slots above, which are
/// sized for new leases (Postgres writes and a sandbox each).
/// Otherwise repeats of many keys fill the slots and are refused while the cluster is idle, or the slots must be so many
/// that new leases beyond the cluster's capacity queue instead of being refused.
/// </para>
/// </summary>
public sealed class AcquireAdmission(
    int maxInFlight,
    int minPerTenant = GatewaySettings.DefaultMinAcquiresInFlightPerTenant,
    RecentLeases? recent = null,
    int maxRepeatsInFlight = GatewaySettings.DefaultMaxRepeatsInFlight,
    int maxQueued = 0,
    TimeSpan queueTimeout = default,
    TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly RepeatLane _repeats = new(maxRepeatsInFlight);

    private readonly Lock _gate = new();
    /// <summary>Callers waiting per claim id ({tenant}/{key}).</summary>
    private readonly Dictionary<string, int> _waiting = new(StringComparer.Ordinal);
    /// <summary>Claims with an acquire in flight, per tenant; a tenant with none is not listed.</summary>
    private readonly Dictionary<string, int> _perTenant = new(StringComparer.Ordinal);
    /// <summary>Callers the slots refused that wait for one, longest waiting first.</summary>
    private readonly LinkedList<Waiter> _queue = new();

    /// <summary>A caller waiting for a slot; completed (and off the queue) once it holds one.</summary>
    private sealed class Waiter(string tenant, string claimId, string refusal)
    {
        public string Tenant { get; } = tenant;
        public string ClaimId { get; } = claimId;
        /// <summary>Why the slots refused it when it arrived: what it is told if its wait runs out.</summary>
        public string Refusal { get; } = refusal;
        public TaskCompletionSource Admitted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

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

    /// <summary>Callers waiting for a slot now.</summary>
    public int Queued
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>How every acquire through the REST API reaches the cluster: admitted, then retried on a concurrent update.</summary>
    public async Task<AcquireResult> AcquireAsync(GrainReferences grains, string tenant, string claimKey, AcquireRequest request, CancellationToken ct)
    {
        // A key this gateway has not seen leased is most likely new: the claim may then lease without reading first.
        var result = await RunAsync(tenant, claimKey,
            likelyRepeat => ApiRoutes.CallAsync(() => grains.Claim(tenant, claimKey).Acquire(request with { ExpectNew = !likelyRepeat }), ct), ct);
        if (result.Lease.Status == LeaseStatus.Active)
        {
            Remember(tenant, claimKey, result.Lease.ExpiresAt);
        }
        return result;
    }

    /// <summary>The claim holds a lease until <paramref name="until"/> at the latest: its next acquire is likely a repeat.</summary>
    public void Remember(string tenant, string claimKey, DateTimeOffset until) => recent?.Remember(ClaimId.Of(tenant, claimKey), until);

    /// <summary>The lease of the claim ended through this gateway: its next acquire is a new lease.</summary>
    public void Ended(string tenant, string claimKey) => recent?.Forget(ClaimId.Of(tenant, claimKey));

    public Task<T> RunAsync<T>(string tenant, string claimKey, Func<Task<T>> acquire, CancellationToken ct = default) =>
        RunAsync(tenant, claimKey, _ => acquire(), ct);

    /// <summary>Runs the acquire in its lane; it is told whether it went as a likely repeat.</summary>
    public async Task<T> RunAsync<T>(string tenant, string claimKey, Func<bool, Task<T>> acquire, CancellationToken ct = default)
    {
        var claimId = ClaimId.Of(tenant, claimKey);
        if (recent is not null && recent.IsLikelyActive(claimId))
        {
            return await _repeats.RunAsync(() => acquire(true));
        }
        if (Enter(tenant, claimId, out var waiter) is { } refusal)
        {
            throw Overloaded(refusal).ToException();
        }
        if (waiter is not null)
        {
            await WaitForSlotAsync(waiter, ct);
        }
        try
        {
            return await acquire(false);
        }
        finally
        {
            Exit(tenant, claimId);
        }
    }

    internal static ApiError Overloaded(string reason) =>
        new(StatusCodes.Status503ServiceUnavailable, GatewayErrorCodes.Overloaded, reason, RetryAfterSeconds: 1);

    /// <summary>
    /// Why an acquire of the claim would be refused now; null when it would be admitted. A look before the request's body
    /// is read, so that under overload a refusal costs neither the body, nor the pool check, nor an exception (each of
    /// which cost more than the refusal itself); <see cref="RunAsync{T}"/> decides again as it admits.
    /// </summary>
    public ApiError? RefusalNow(string tenant, string claimKey)
    {
        var claimId = ClaimId.Of(tenant, claimKey);
        if (recent is not null && recent.IsLikelyActive(claimId))
        {
            return _repeats.RefusalNow() is { } full ? Overloaded(full) : null;
        }
        lock (_gate)
        {
            return Refusal(tenant, claimId) is { } reason && !RoomToWait ? Overloaded(NoRoomToWait(reason)) : null;
        }
    }

    /// <summary>Why the acquire is refused; null when it holds a slot, or when it waits for one as <paramref name="waiter"/>.</summary>
    private string? Enter(string tenant, string claimId, out Waiter? waiter)
    {
        waiter = null;
        lock (_gate)
        {
            if (Refusal(tenant, claimId) is not { } reason)
            {
                Hold(tenant, claimId);
                return null;
            }
            if (!RoomToWait)
            {
                return NoRoomToWait(reason);
            }
            waiter = new Waiter(tenant, claimId, reason);
            _queue.AddLast(waiter);
            return null;
        }
    }

    /// <summary>Whether a caller the slots refuse may wait for one; called holding the gate.</summary>
    private bool RoomToWait => queueTimeout > TimeSpan.Zero && _queue.Count < maxQueued;

    private string NoRoomToWait(string refusal) =>
        queueTimeout > TimeSpan.Zero && maxQueued > 0 ? $"{refusal}, and {maxQueued} more are waiting for a slot" : refusal;

    /// <summary>Takes a slot for the claim, or joins the acquire of it in flight; called holding the gate.</summary>
    private void Hold(string tenant, string claimId)
    {
        if (_waiting.TryGetValue(claimId, out var callers))
        {
            _waiting[claimId] = callers + 1;
            return;
        }
        _waiting[claimId] = 1;
        _perTenant[tenant] = _perTenant.GetValueOrDefault(tenant) + 1;
    }

    /// <summary>Returns once the waiter holds a slot; refused when none came free in time, cancelled with the request.</summary>
    private async Task WaitForSlotAsync(Waiter waiter, CancellationToken ct)
    {
        try
        {
            await waiter.Admitted.Task.WaitAsync(queueTimeout, _time, ct);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            if (!LeaveQueue(waiter))
            {
                // A slot was handed to it as the wait ended: it holds the slot, so it goes on (and gives it back when done)
                // rather than fail with a slot nobody would return.
                return;
            }
            if (e is TimeoutException)
            {
                throw Overloaded($"{waiter.Refusal}, and no slot came free within {queueTimeout.TotalMilliseconds:0} ms").ToException();
            }
            throw;
        }
    }

    /// <summary>True when the waiter left the queue without a slot; false when it was handed one first.</summary>
    private bool LeaveQueue(Waiter waiter)
    {
        lock (_gate)
        {
            return _queue.Remove(waiter);
        }
    }

    /// <summary>
    /// Hands the slots free now to the waiters the limits admit, longest waiting first; called holding the gate each time
    /// a slot is given back. The whole queue is looked at: a waiter its tenant's share holds back does not stop one of
    /// another tenant, or one for a claim whose acquire is already in flight.
    /// </summary>
    private void AdmitWaiters()
    {
        for (var node = _queue.First; node is not null;)
        {
            var next = node.Next;
            var waiter = node.Value;
            if (Refusal(waiter.Tenant, waiter.ClaimId) is null)
            {
                _queue.Remove(node);
                Hold(waiter.Tenant, waiter.ClaimId);
                waiter.Admitted.SetResult();
            }
            node = next;
        }
    }

    /// <summary>Why a new acquire of the claim is refused now (null: admitted); called holding the gate.</summary>
    private string? Refusal(string tenant, string claimId)
    {
        if (maxInFlight <= 0 || _waiting.ContainsKey(claimId))
        {
            return null; // no limit, or the claim's acquire is already in flight: this one joins it
        }
        if (_waiting.Count >= maxInFlight)
        {
            return $"the broker is at capacity ({maxInFlight} claim keys with an acquire in flight on this gateway); retry shortly";
        }
        var mine = _perTenant.GetValueOrDefault(tenant);
        var share = FairShare(_perTenant.Count + (mine == 0 ? 1 : 0));
        return mine >= share
            ? $"tenant '{tenant}' has its fair share ({share} of {maxInFlight}) of acquires in flight on this gateway; retry shortly"
            : null;
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
            if (_queue.Count > 0)
            {
                AdmitWaiters();
            }
        }
    }
}
