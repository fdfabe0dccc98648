namespace SandboxBroker.Grains;

/// <summary>
/// The claims a tenant has admitted to a new lease, counted per pool and per owner so that every check of a limit is
/// one lookup, whatever the number of claims (a tenant of a benchmark or a lab holds tens of thousands).
/// </summary>
public sealed class AdmittedClaims
{
    private readonly Dictionary<string, Admitted> _claims = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _perPool = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _perOwner = new(StringComparer.Ordinal);

    /// <summary>One admitted claim: its pool, the owner it counts against (null: none) and when it was admitted.</summary>
    public readonly record struct Admitted(string Pool, string? Owner, DateTimeOffset Since);

    public int Count => _claims.Count;

    public bool Contains(string claimKey) => _claims.ContainsKey(claimKey);

    public int InPool(string pool) => _perPool.GetValueOrDefault(pool);

    public IReadOnlyCollection<string> OfOwner(string owner) => _perOwner.TryGetValue(owner, out var keys) ? keys : [];

    public IReadOnlyDictionary<string, int> PerPool => _perPool;

    public void Add(string claimKey, Admitted admitted)
    {
        Remove(claimKey);
        _claims[claimKey] = admitted;
        _perPool[admitted.Pool] = InPool(admitted.Pool) + 1;
        if (admitted.Owner is { } owner)
        {
            if (!_perOwner.TryGetValue(owner, out var keys))
            {
                _perOwner[owner] = keys = new HashSet<string>(StringComparer.Ordinal);
            }
            keys.Add(claimKey);
        }
    }

    public bool Remove(string claimKey)
    {
        if (!_claims.Remove(claimKey, out var admitted))
        {
            return false;
        }
        if (_perPool[admitted.Pool] == 1)
        {
            _perPool.Remove(admitted.Pool);
        }
        else
        {
            _perPool[admitted.Pool]--;
        }
        if (admitted.Owner is { } owner && _perOwner.TryGetValue(owner, out var keys) && keys.Remove(claimKey) && keys.Count == 0)
        {
            _perOwner.Remove(owner);
        }
        return true;
    }

    /// <summary>Claims admitted before <paramref name="cutoff"/>, among <paramref name="keys"/> (all when null).</summary>
    public List<string> AdmittedBefore(DateTimeOffset cutoff, IEnumerable<string>? keys = null) =>
        (keys ?? _claims.Keys).Where(k => _claims.TryGetValue(k, out var a) && a.Since < cutoff).ToList();
}
