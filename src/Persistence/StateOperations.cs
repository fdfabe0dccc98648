using System.Diagnostics;

namespace SandboxBroker.Persistence;

/// <summary>A stored grain state: its version (the ETag) and its payload (a format byte, then the serialized state).</summary>
public sealed record StoredState(int Version, byte[] Payload);

public abstract class StateOperation
{
    /// <summary>The trace of the grain call that asked for this operation, so the batch's span can join it.</summary>
    public ActivityContext Caller { get; } = Activity.Current?.Context ?? default;

    public abstract void Fail(Exception error);
}

public abstract class StateOperation<T> : StateOperation
{
    private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<T> Task => _done.Task;

    public void Complete(T result) => _done.TrySetResult(result);

    public override void Fail(Exception error) => _done.TrySetException(error);
}

public sealed class ReadOperation(string stateName, string grainKey) : StateOperation<StoredState?>
{
    public string StateName { get; } = stateName;
    public string GrainKey { get; } = grainKey;
}

/// <summary>A state write with what the broker records beside it (index row, audit events), stored together or not at all.</summary>
/// <param name="expectedVersion">The version the grain read or last wrote; null: no row may exist yet.</param>
/// <param name="canWait">Nobody waits on this write: it may ride with the next batch instead of starting one.</param>
/// <param name="joint">One half of a joint write (<see cref="IJointWrites"/>); null for a write of its own.</param>
public sealed class WriteOperation(string stateName, string grainKey, int? expectedVersion, byte[] payload, object? indexRow,
    IReadOnlyList<Storage.AuditEvent> audit, bool canWait = false, JointWriteMark? joint = null) : StateOperation<int?>
{
    public bool CanWait { get; } = canWait;
    public JointWriteMark? Joint { get; } = joint;
    public string StateName { get; } = stateName;
    public string GrainKey { get; } = grainKey;
    public int? ExpectedVersion { get; } = expectedVersion;
    public byte[] Payload { get; } = payload;
    public object? IndexRow { get; } = indexRow;
    public IReadOnlyList<Storage.AuditEvent> Audit { get; } = audit;

    /// <summary>The id of the transaction that stored it (<c>pg_current_xact_id()</c>), set before it completes; 0 until then.</summary>
    public ulong Transaction { get; internal set; }
}

/// <summary>Deletes a grain's row at its version, with the index row that mirrored it (<paramref name="indexRow"/>'s table).</summary>
public sealed class ClearOperation(string stateName, string grainKey, int expectedVersion, object? indexRow) : StateOperation<bool>
{
    public string StateName { get; } = stateName;
    public string GrainKey { get; } = grainKey;
    public int ExpectedVersion { get; } = expectedVersion;
    public object? IndexRow { get; } = indexRow;
}
