using System.Collections.Concurrent;

namespace SandboxBroker.Persistence;

/// <summary>
/// Grains this silo has just named with a new random id (a pool's spare sandbox), whose first activation here need not
/// read a row that cannot exist. Safe whatever happens to the id: the grain's first write is then an insert that expects
/// no row, so should a row exist after all (an id reused, a mark left over), that write is refused as a conflict and
/// nothing is overwritten. A mark not taken within <see cref="Lifetime"/> (the grain was activated on another silo, or
/// never) is forgotten, and the grain reads as usual.
/// </summary>
public sealed class FreshGrains(TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);

    /// <summary>Marks between two sweeps of the old ones.</summary>
    private const int SweepEvery = 4096;

    private readonly ConcurrentDictionary<GrainId, DateTimeOffset> _marked = new();
    private int _sinceSweep;

    /// <summary>Says that <paramref name="grain"/> has never been stored: called before its first call.</summary>
    public void Mark(GrainId grain)
    {
        var now = time.GetUtcNow();
        _marked[grain] = now;
        if (Interlocked.Increment(ref _sinceSweep) % SweepEvery == 0)
        {
            foreach (var (id, at) in _marked)
            {
                if (now - at > Lifetime)
                {
                    _marked.TryRemove(id, out _);
                }
            }
        }
    }

    /// <summary>True (once) when the grain was marked within <see cref="Lifetime"/>: its activation may skip the read.</summary>
    public bool TryTake(GrainId grain) =>
        _marked.TryRemove(grain, out var at) && time.GetUtcNow() - at <= Lifetime;

    /// <summary>Marks not yet taken (for tests).</summary>
    public int Count => _marked.Count;
}
