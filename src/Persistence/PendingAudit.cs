using SandboxBroker.Storage;

namespace SandboxBroker.Persistence;

/// <summary>Audit events a grain recorded since its last write, handed to the storage with the next one.</summary>
public sealed class PendingAudit
{
    private List<AuditEvent>? _events;

    public void Add(AuditEvent audit) => (_events ??= []).Add(audit);

    public IReadOnlyList<AuditEvent> Take()
    {
        var taken = (IReadOnlyList<AuditEvent>?)_events ?? [];
        _events = null;
        return taken;
    }

    public void Clear() => _events = null;
}
