namespace SandboxBroker.Grains;

/// <summary>How every broker grain writes its state.</summary>
public static class StateWrites
{
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
