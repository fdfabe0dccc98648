namespace SandboxBroker.Persistence;

/// <summary>The broker's grain storage, bound from "Broker:Storage".</summary>
public sealed class GroupCommitOptions
{
    public const string Section = "Broker:Storage";

    /// <summary>The most grain operations one batch (one round trip, one transaction) carries.</summary>
    public int MaxBatch { get; set; } = 256;

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
