using Orleans.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// Grain state read when the grain first needs it, not at activation as <c>[PersistentState]</c> does. Until then it is
/// the empty state with no version: a write stores it only where no row exists (the storage's first-write check), so a
/// grain may act on the guess that it is new and learn from a conflict that it was not (<see cref="ClaimGrain"/>'s
/// first acquire of a key). The same storage, key and state name as the attribute would use, so the two read each
/// other's rows.
/// </summary>
public sealed class LazyState<T>(IGrainStorage storage, string stateName, GrainId grainId) : IPersistentState<T>
    where T : new()
{
    public T State { get; set; } = new();

    public string? Etag { get; private set; }

    public bool RecordExists { get; private set; }

    /// <summary>The state was read from storage (or written there) by this activation: it is what Postgres holds, not a guess.</summary>
    public bool IsLoaded { get; private set; }

    /// <summary>A write or clear of this state is under way: a stored version past <see cref="Etag"/> may be its own.</summary>
    public bool IsWriting => _writes > 0;

    private int _writes;

    public Task ReadStateAsync() => ReadStateAsync(CancellationToken.None);

    public async Task ReadStateAsync(CancellationToken cancellationToken)
    {
        var read = new GrainState<T>(new T());
        await storage.ReadStateAsync(stateName, grainId, read);
        (State, Etag, RecordExists, IsLoaded) = (read.State ?? new T(), read.ETag, read.RecordExists, true);
    }

    public Task WriteStateAsync() => WriteStateAsync(CancellationToken.None);

    /// <summary>Stores the state over the version last read or written; a write of the unread state succeeds only when no row
    /// exists, and then the state is loaded (it is what was stored).</summary>
    public async Task WriteStateAsync(CancellationToken cancellationToken)
    {
        var write = new GrainState<T>(State) { ETag = Etag, RecordExists = RecordExists };
        await Counted(() => storage.WriteStateAsync(stateName, grainId, write));
        (Etag, RecordExists, IsLoaded) = (write.ETag, write.RecordExists, true);
    }

    public Task ClearStateAsync() => ClearStateAsync(CancellationToken.None);

    public async Task ClearStateAsync(CancellationToken cancellationToken)
    {
        var clear = new GrainState<T>(State) { ETag = Etag, RecordExists = RecordExists };
        await Counted(() => storage.ClearStateAsync(stateName, grainId, clear));
        (State, Etag, RecordExists, IsLoaded) = (clear.State ?? new T(), clear.ETag, clear.RecordExists, true);
    }

    /// <summary>Runs a write or clear, counted in <see cref="IsWriting"/> while it is under way.</summary>
    private async Task Counted(Func<Task> change)
    {
        _writes++;
        try
        {
            await change();
        }
        finally
        {
            _writes--;
        }
    }
}
