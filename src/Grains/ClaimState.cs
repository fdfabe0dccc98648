using SandboxBroker.Persistence;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// A claim key's state. The storage writes its index row (broker_claims) and the audit events recorded since the last
/// write in the same statement as the state itself.
/// </summary>
[GenerateSerializer]
public sealed class ClaimState : IIndexedState
{
    /// <summary>The tenant the key belongs to: its grain id's (set by its first lease, for the index row).</summary>
    [Id(0)] public string? Tenant { get; set; }
    [Id(1)] public Lease? Active { get; set; }
    /// <summary>Ended leases, newest first, bounded by count and retention.</summary>
    [Id(2)] public List<Lease> History { get; set; } = [];
    [Id(3)] public long LeaseCount { get; set; }
    /// <summary>
    /// Sandboxes of ended leases whose release did not go through (the sandbox's silo was away, or the answer was
    /// lost): each may still be leased to this key with nobody holding it. Released again when the claim wakes, until
    /// the sandbox answers, so it is deleted within a sweep period instead of at the next reconcile.
    /// </summary>
    [Id(4)] public List<string> Unreleased { get; set; } = [];
    /// <summary>When the deadline sweep must wake this claim (mirrored in broker_claims.wake_at); null: never.</summary>
    [Id(5)] public DateTimeOffset? WakeAt { get; set; }

    /// <summary>Audit events waiting for the next write (not part of the stored state).</summary>
    [NonSerialized] private PendingAudit? _audit;

    public void Record(AuditEvent audit) => (_audit ??= new()).Add(audit);

    public IReadOnlyList<AuditEvent> TakeAudit() => _audit?.Take() ?? [];

    /// <summary>The joint write the next write is half of (not part of the stored state).</summary>
    [NonSerialized] private JointWriteMark? _joint;

    /// <summary>Makes the next write one half of a joint write (<see cref="IJointWrites"/>).</summary>
    public void JoinNextWrite(JointWriteMark mark) => _joint = mark;

    public JointWriteMark? TakeJoint() => JointWriteMark.Take(ref _joint);

    /// <summary>Drops recorded events whose change was not stored (the write failed and memory was put back).</summary>
    public void ForgetAudit() => _audit?.Clear();

    public object? IndexRow(string grainKey)
    {
        var lease = Active ?? (History.Count > 0 ? History[0] : null);
        var status = Active is not null ? LeaseStatus.Active : lease?.Status ?? LeaseStatus.Released;
        return new ClaimRow(grainKey, Tenant, lease?.Owner, lease?.Pool ?? "", lease?.SandboxId, SandboxLifecycle.Format(status),
            lease?.AcquiredAt, lease?.ExpiresAt, lease?.LastActivityAt, lease?.EndedAt ?? lease?.LastActivityAt ?? DateTimeOffset.UnixEpoch, WakeAt);
    }
}
