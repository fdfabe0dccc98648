using SandboxBroker.Storage;

namespace SandboxBroker.Persistence;

/// <summary>
/// Grain state whose index row and audit events the broker's storage writes in the same statement as the state
/// itself: a lifecycle change is stored with its record or not at all, and costs no round trip of its own.
/// </summary>
public interface IIndexedState
{
    /// <summary>The row that mirrors this state in broker_claims or broker_sandboxes (a <see cref="ClaimRow"/> or a
    /// <see cref="SandboxRow"/>); null for none.</summary>
    object? IndexRow(string grainKey);

    /// <summary>The audit events recorded since the last write, handed over (and forgotten here) as the write is asked for.</summary>
    IReadOnlyList<AuditEvent> TakeAudit();

    /// <summary>
    /// A write of this state as it now is can wait for the silo's next batch, up to <see cref="GroupCommitOptions.MaxWait"/>:
    /// no answer depends on it, or (a sandbox's `deleting` write, which a release waits for) a few milliseconds more are
    /// worth the transaction saved.
    /// </summary>
    bool WriteCanWait => false;

    /// <summary>The joint write this write is half of (<see cref="IJointWrites"/>), handed over (and forgotten here) as the
    /// write is asked for; null for a write of its own.</summary>
    JointWriteMark? TakeJoint() => null;

    /// <summary>Told after a write is stored: the id of the transaction that stored it (0 when the storage cannot say).</summary>
    void Stored(ulong transaction)
    {
    }
}
