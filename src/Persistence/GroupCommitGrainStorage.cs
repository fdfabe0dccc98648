using System.Globalization;
using Orleans.Storage;

namespace SandboxBroker.Persistence;

/// <summary>
/// The broker's <see cref="IGrainStorage"/> for the grains on the hot path: every operation goes through the silo's
/// <see cref="GroupCommitWriter"/>, and a state that is an <see cref="IIndexedState"/> has its index row and audit events
/// written in the same statement. The version is the ETag, as for the ADO.NET provider: a write over a version that
/// moved on, or a first write where a row exists, is an <see cref="InconsistentStateException"/> (the backstop against
/// a duplicate activation). The state is serialized when the write is asked for, in the grain's turn, so a reentrant
/// grain can go on changing its state while the write is in flight. A state may mark its next write as half of a
/// joint write (<see cref="IIndexedState.TakeJoint"/>, <see cref="IJointWrites"/>).
/// </summary>
public sealed class GroupCommitGrainStorage(GroupCommitWriter writer, StateSerializers serializers) : IGrainStorage
{
    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var stored = await writer.ReadAsync(stateName, Key(grainId));
        if (stored is null)
        {
            grainState.RecordExists = false;
            grainState.ETag = null;
            return;
        }
        grainState.State = serializers.Deserialize<T>(stored.Payload);
        grainState.ETag = stored.Version.ToString(CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = Key(grainId);
        var expected = Version(grainState.ETag);
        var indexed = grainState.State as IIndexedState;
        var write = new WriteOperation(stateName, key, expected, serializers.Serialize(grainState.State),
            indexed?.IndexRow(key), indexed?.TakeAudit() ?? [], indexed?.WriteCanWait ?? false, indexed?.TakeJoint());
        var version = await writer.WriteAsync(write)
            ?? throw new InconsistentStateException(
                $"The {stateName} state of {grainId} was written by someone else (expected version {grainState.ETag ?? "none"})",
                "unknown", grainState.ETag ?? "none");
        grainState.ETag = version.ToString(CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
        indexed?.Stored(write.Transaction);
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (Version(grainState.ETag) is { } expected)
        {
            var key = Key(grainId);
            var indexRow = (grainState.State as IIndexedState)?.IndexRow(key);
            if (!await writer.ClearAsync(new ClearOperation(stateName, key, expected, indexRow)))
            {
                throw new InconsistentStateException(
                    $"The {stateName} state of {grainId} was written by someone else (expected version {expected})", "unknown", grainState.ETag!);
            }
        }
        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = Activator.CreateInstance<T>();
    }

    /// <summary>The grain's key as stored: every grain of this storage has a string key, and the state name says the type.</summary>
    private static string Key(GrainId grainId) => grainId.Key.ToString();

    private static int? Version(string? etag) => etag is null ? null : int.Parse(etag, NumberStyles.None, CultureInfo.InvariantCulture);
}
