namespace SandboxBroker.Persistence;

/// <summary>The broker's grain storage, bound from "Broker:Storage".</summary>
public sealed class GroupCommitOptions
{
    public const string Section = "Broker:Storage";

    /// <summary>The most grain operations one batch (one round trip, one transaction) carries.</summary>
    public int MaxBatch { get; set; } = 256;

    /// <summary>
    /// Batches in flight at once. One makes the fewest transactions (everything that arrives during a round trip shares
    /// the next); two lets a write go while a batch waits for its commit, for lower latency at the cost of smaller batches.
    /// </summary>
    public int BatchesInFlight { get; set; } = 1;

    /// <summary>
    /// How long a write whose state says it can wait (<see cref="IIndexedState.WriteCanWait"/>: a pool's spare, a deletion
    /// under way) may wait for a batch to ride with before it goes alone; zero sends it at once like any other. The one
    /// caller who feels it is a release, which is answered once its sandbox's `deleting` write is stored.
    /// </summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// How the state is encoded: <see cref="StateFormat.Binary"/> (Orleans' serializer: smaller and several times cheaper
    /// to write and read, docs/BENCHMARKS.md) or <see cref="StateFormat.Json"/> (readable in psql). Rows of either
    /// format are read whatever this says.
    /// </summary>
    public StateFormat Format { get; set; } = StateFormat.Binary;
}

public enum StateFormat
{
    Binary,
    Json,
}
