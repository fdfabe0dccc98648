namespace SandboxBroker.Gateway.Api;

/// <summary>
/// The names of the pools that exist, read from the pool directory and cached, so a request naming a pool nobody
/// created is refused without activating a pool grain for it. A name not in the cache is looked up again (one
/// directory read at a time, at most one per <see cref="RefreshInterval"/>), so a pool created through another gateway
/// is known here within that interval; pools are never deleted, so a known name stays known.
/// </summary>
public sealed class KnownPools(IClusterClient client, TimeProvider time)
{
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _refresh = new(1, 1);
    private volatile HashSet<string> _names = new(StringComparer.Ordinal);
    private DateTimeOffset _readAt = DateTimeOffset.MinValue;

    public async Task<bool> ExistsAsync(string pool)
    {
        if (_names.Contains(pool))
        {
            return true;
        }
        await _refresh.WaitAsync();
        try
        {
            // A caller that waited here may find the name read in by the one before it.
            if (!_names.Contains(pool) && time.GetUtcNow() - _readAt >= RefreshInterval)
            {
                var names = await client.GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).List();
                _names = new HashSet<string>(names, StringComparer.Ordinal);
                _readAt = time.GetUtcNow();
            }
            return _names.Contains(pool);
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>A pool this gateway just created: known at once here.</summary>
    public void Add(string pool) => _names = new HashSet<string>(_names, StringComparer.Ordinal) { pool };

    /// <summary>The pool named by a request, or a 400 naming <paramref name="field"/> when it does not exist.</summary>
    public async Task RequireAsync(string? pool, string field)
    {
        if (pool is not null && !await ExistsAsync(pool))
        {
            throw ApiError.BadRequest(field, $"pool '{pool}' does not exist").ToException();
        }
    }
}
