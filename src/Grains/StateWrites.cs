using System.Globalization;

namespace SandboxBroker.Grains;

/// <summary>How every broker grain writes its state.</summary>
public static class StateWrites
{
    /// <summary>The stored version an ETag of the broker's grain storage names (0: none stored).</summary>
    public static long Version(string? etag) => long.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : 0;

    /// <summary>
    /// Writes the state. When the write fails (Postgres away, a stale ETag), the activation's memory may be ahead of
    /// what is stored, and answering from it could undo an acknowledged change later (the fault harness saw a release
    /// undone that way): the activation is dropped, so the next call reloads what Postgres holds.
    /// </summary>
    public static async Task WriteOrReloadAsync<T>(this IPersistentState<T> state, IGrainBase grain, CancellationToken cancellationToken = default)
    {
        try
        {
            await state.WriteStateAsync(cancellationToken);
        }
        catch
        {
            grain.DeactivateOnIdle();
            throw;
        }
    }
}

/// <summary>
/// Writes for a reentrant grain: one write in flight at a time, and the changes made while it is in flight share the
/// next one (a caller that needs durability waits for a write that starts after its change). Each write stores a
/// snapshot, never the live state, which the grain's next turns go on changing.
/// </summary>
public sealed class CoalescedWrites<TState>(IPersistentState<TState> state, IGrainBase grain, Func<TState, TState> snapshot)
{
    /// <summary>The state the grain works on; <c>state.State</c> holds only the snapshot being (or last) written.</summary>
    public TState Live { get; } = snapshot(state.State);

    /// <summary>A write is under way.</summary>
    public bool Busy => _writer is not null;

    /// <summary>A write failed: the activation is on its way out and nothing more is written from its memory.</summary>
    public bool Dropped { get; private set; }

    private TaskCompletionSource? _nextWrite;
    private Task? _writer;

    /// <summary>Completes once a write that started after this call has stored the state.</summary>
    public Task PersistAsync()
    {
        _nextWrite ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var durable = _nextWrite.Task;
        _writer ??= WriteLoop();
        return durable;
    }

    private async Task WriteLoop()
    {
        // Runs on the grain's scheduler, so it interleaves only at awaits, like any other call.
        while (_nextWrite is { } batch)
        {
            _nextWrite = null;
            try
            {
                state.State = snapshot(Live);
                await state.WriteOrReloadAsync(grain);
                batch.SetResult();
            }
            catch (Exception e)
            {
                Dropped = true; // WriteOrReloadAsync drops the activation: the next one starts from what is stored
                batch.SetException(e);
            }
        }
        _writer = null;
    }
}
