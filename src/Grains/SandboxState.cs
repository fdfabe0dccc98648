using SandboxBroker.Persistence;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// One sandbox's record. The storage writes its index row (broker_sandboxes) and the audit events recorded since the last
/// write in the same statement as the state itself.
/// </summary>
[GenerateSerializer]
public sealed class SandboxState : IIndexedState
{
    [Id(0)] public SandboxStatus Status { get; set; }
    [Id(1)] public SandboxSpec? Spec { get; set; }
    [Id(2)] public string? ExternalId { get; set; }
    [Id(3)] public string? ClaimKey { get; set; }
    [Id(4)] public long LeaseNumber { get; set; }
    [Id(5)] public string? Tenant { get; set; }
    [Id(6)] public string? Owner { get; set; }
    [Id(7)] public string? LeaseName { get; set; }
    [Id(8)] public DateTimeOffset? LeaseExpiresAt { get; set; }
    [Id(9)] public DateTimeOffset CreatedAt { get; set; }
    [Id(10)] public DateTimeOffset UpdatedAt { get; set; }
    [Id(11)] public Dictionary<string, string> Connection { get; set; } = new();
    [Id(12)] public string? LastError { get; set; }
    [Id(13)] public int DeleteAttempts { get; set; }
    /// <summary>When a pending deletion is tried again (mirrored as the index row's wake time for the deletion sweep).</summary>
    [Id(14)] public DateTimeOffset? RetryAt { get; set; }

    /// <summary>Audit events waiting for the next write (not part of the stored state).</summary>
    [NonSerialized] private PendingAudit? _audit;

    public void Record(AuditEvent audit) => (_audit ??= new()).Add(audit);

    public IReadOnlyList<AuditEvent> TakeAudit() => _audit?.Take() ?? [];

    /// <summary>The joint write the next write is half of (not part of the stored state).</summary>
    [NonSerialized] private JointWriteMark? _joint;

    /// <summary>Makes the next write one half of a joint write (<see cref="IJointWrites"/>).</summary>
    public void JoinNextWrite(JointWriteMark mark) => _joint = mark;

    public JointWriteMark? TakeJoint() => JointWriteMark.Take(ref _joint);

    /// <summary>The transaction that stored the last write (not part of the stored state; 0 before one): the pool's notices
    /// carry it (<see cref="IPoolGrain.OnSandboxStatus"/>).</summary>
    [NonSerialized] private ulong _storedBy;

    public ulong StoredBy => _storedBy;

    public void Stored(ulong transaction) => _storedBy = transaction;

    /// <summary>
    /// Writes no caller waits on may ride with the silo's next batch: a pool's spare on its way to ready (no claim asked for
    /// it; a cold create carries its claim's key as a label), and a deletion under way (its outcome is nobody's answer; a
    /// release is acknowledged only once it is stored, a few milliseconds later at most).
    /// </summary>
    public bool WriteCanWait => Status switch
    {
        SandboxStatus.Provisioning or SandboxStatus.Ready => Spec is { } spec && !spec.Labels.ContainsKey(BrokerLabels.ClaimKey),
        SandboxStatus.Deleting or SandboxStatus.Deleted => true,
        _ => false,
    };

    public object? IndexRow(string grainKey) => Spec is not { } spec ? null
        : new SandboxRow(grainKey, spec.Pool, spec.Provider, SandboxLifecycle.Format(Status), LeaseName ?? spec.Name, ExternalId,
            Tenant, Owner, ClaimKey, CreatedAt, UpdatedAt, LeaseExpiresAt, Status == SandboxStatus.Deleting ? RetryAt ?? UpdatedAt : null);
}

