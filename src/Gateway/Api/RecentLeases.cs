namespace SandboxBroker.Gateway.Api;

/// <summary>
/// Claims this gateway has recently seen holding an active lease, with the lease's deadline: how admission tells a likely
/// repeat (answered by the grain from memory, ~25 µs of silo CPU) from a likely new lease (Postgres writes and a sandbox)
/// before the grain answers. Only a guess: a lease released through another gateway or ended by its idle timeout still
/// looks active here until its deadline, and the acquire it admits as a repeat leases anew, bounded by the repeat lane.
/// Bounded memory: two generations of at most <c>capacity</c> claims each; when the newer fills, the older is dropped,
/// so claims not acquired for a while are forgotten first.
/// </summary>
public sealed class RecentLeases(TimeProvider time, int capacity = RecentLeases.DefaultCapacity)
{
    public const int DefaultCapacity = 100_000;

    private readonly Lock _gate = new();
    private Dictionary<string, DateTimeOffset> _newer = new(StringComparer.Ordinal);
    private Dictionary<string, DateTimeOffset> _older = new(StringComparer.Ordinal);

    /// <summary>Whether the claim held a lease the last time this gateway saw it, and its deadline has not passed.</summary>
    public bool IsLikelyActive(string claimId)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            return (_newer.TryGetValue(claimId, out var until) || _older.TryGetValue(claimId, out until)) && until > now;
        }
    }

    public void Remember(string claimId, DateTimeOffset until)
    {
        lock (_gate)
        {
            if (!_newer.ContainsKey(claimId) && _newer.Count >= capacity)
            {
                _older = _newer;
                _newer = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            }
            _newer[claimId] = until;
            _older.Remove(claimId);
        }
    }

    public void Forget(string claimId)
    {
        lock (_gate)
        {
            _newer.Remove(claimId);
            _older.Remove(claimId);
        }
    }
}
