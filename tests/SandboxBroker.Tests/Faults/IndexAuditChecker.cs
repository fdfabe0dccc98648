namespace SandboxBroker.Tests.Faults;

/// <summary>A claim's lease event in broker_audit_log (entity_type 'claim'): the key, the event and what its details name.</summary>
public sealed record LeaseAuditRow(string Key, string Event, string? SandboxId, long? Lease);

/// <summary>A sandbox's newest row in broker_audit_log (entity_type 'sandbox').</summary>
public sealed record SandboxAuditRow(string Event, string? ToState);

/// <summary>A broker_claims row: the key's current or last lease as the index has it.</summary>
public sealed record ClaimIndexRow(string Status, string? SandboxId);

/// <summary>The active lease GET /v1/claims/{key} answers (the claim grain's state).</summary>
public sealed record ActiveLease(string SandboxId, long? Lease);

/// <summary>
/// Both sides of what <see cref="IndexAuditChecker"/> compares, for the given keys and sandbox ids: what the broker's own
/// tables say (audit log, broker_claims, broker_sandboxes) and what the grains answer over REST. A key or id missing from
/// a dictionary means "no row"; a grain entry of null means "no active lease" (claims) or "no record" (sandboxes). Every
/// key and id listed must have a grain entry.
/// </summary>
public sealed record IndexSnapshot(
    IReadOnlyCollection<string> Keys,
    IReadOnlyCollection<string> SandboxIds,
    IReadOnlyList<LeaseAuditRow> LeaseEvents,
    IReadOnlyDictionary<string, SandboxAuditRow> NewestSandboxAudit,
    IReadOnlyDictionary<string, ClaimIndexRow> ClaimIndex,
    IReadOnlyDictionary<string, string> SandboxIndex,
    IReadOnlyDictionary<string, ActiveLease?> ClaimGrains,
    IReadOnlyDictionary<string, string?> SandboxGrains);

/// <summary>One thing the audit log or the index got wrong. <paramref name="Key"/> and <paramref name="SandboxId"/> say what to read again.</summary>
public sealed record IndexFinding(string Kind, string? Key, string? SandboxId, string Message, Operation? Source = null)
{
    public const string MissingAudit = "missing audit event";
    public const string AuditBehindStatus = "audit behind status";
    public const string ClaimIndexMismatch = "claim index mismatch";
    public const string SandboxIndexMismatch = "sandbox index mismatch";

    public override string ToString() =>
        $"{Kind} on {(Key is not null ? $"claim {Key}" : $"sandbox {SandboxId}")}: {Message}" +
        (Source is null ? "" : $"{Environment.NewLine}    {Source}");
}

/// <summary>
/// After the storm, with the cluster settled: every acknowledged lifecycle change has its audit row, and the broker's index
/// tables agree with the grains. Pure: the harness (<see cref="IndexAuditCheck"/>) reads both sides, this compares them.
/// <list type="bullet">
/// <item>an acquire answered 201 with sandbox s (lease n) has a 'lease.acquired' claim event for its key naming s (and n,
///   where both sides know it);</item>
/// <item>a release answered with s has a 'lease.released' or 'lease.expired' claim event for its key naming s (a repeated
///   release answers the lease ended before: whichever call ended it, the end must be recorded);</item>
/// <item>every sandbox with an index row: its newest sandbox event moves it to the status its grain has now (only the last
///   step is compared, so the 'releasing' step may come and go);</item>
/// <item>every key: broker_claims says 'active' exactly when the grain has an active lease, and names the same sandbox;</item>
/// <item>every sandbox id: broker_sandboxes has the grain's status, or neither has the sandbox.</item>
/// </list>
/// </summary>
public static class IndexAuditChecker
{
    private static readonly string[] EndEvents = ["lease.released", "lease.expired"];

    public static List<IndexFinding> Check(IReadOnlyList<Operation> operations, IndexSnapshot snapshot)
    {
        var findings = new List<IndexFinding>();
        findings.AddRange(CheckLeaseAudit(operations, snapshot));
        findings.AddRange(CheckSandboxAudit(snapshot));
        findings.AddRange(CheckClaimIndex(snapshot));
        findings.AddRange(CheckSandboxIndex(snapshot));
        return findings;
    }

    /// <summary>The acknowledged acquires that created a lease and the acknowledged releases, one per (key, sandbox).</summary>
    public static (List<Operation> Acquired, List<Operation> Released) Acknowledged(IEnumerable<Operation> operations)
    {
        var ops = operations.Where(o => o is { Outcome: OpOutcome.Ok, SandboxId: not null }).ToList();
        var acquired = ops.Where(o => o is { Kind: OpKind.Acquire, Created: true }).DistinctBy(o => (o.Key, o.SandboxId)).ToList();
        var released = ops.Where(o => o.Kind == OpKind.Release).DistinctBy(o => (o.Key, o.SandboxId)).ToList();
        return (acquired, released);
    }

    private static IEnumerable<IndexFinding> CheckLeaseAudit(IReadOnlyList<Operation> operations, IndexSnapshot snapshot)
    {
        var keys = snapshot.Keys.ToHashSet(StringComparer.Ordinal);
        var events = snapshot.LeaseEvents.ToLookup(e => e.Key, StringComparer.Ordinal);
        var (acquired, released) = Acknowledged(operations.Where(o => keys.Contains(o.Key)));
        foreach (var op in acquired)
        {
            if (!events[op.Key].Any(e => e.Event == "lease.acquired" && Names(e, op)))
            {
                yield return new IndexFinding(IndexFinding.MissingAudit, op.Key, op.SandboxId,
                    $"acquire #{op.Id} created a lease on sandbox {op.SandboxId}{LeaseText(op)} but the audit log has no 'lease.acquired' naming it " +
                    $"({Summarize(events[op.Key])})", op);
            }
        }
        foreach (var op in released)
        {
            if (!events[op.Key].Any(e => EndEvents.Contains(e.Event) && Names(e, op)))
            {
                yield return new IndexFinding(IndexFinding.MissingAudit, op.Key, op.SandboxId,
                    $"release #{op.Id} answered the lease on sandbox {op.SandboxId}{LeaseText(op)} as ended but the audit log has no 'lease.released' " +
                    $"or 'lease.expired' naming it ({Summarize(events[op.Key])})", op);
            }
        }
    }

    /// <summary>The event names the operation's sandbox, and its lease number where both sides know one.</summary>
    private static bool Names(LeaseAuditRow row, Operation op) =>
        row.SandboxId == op.SandboxId && (row.Lease is null || op.Lease is null || row.Lease == op.Lease);

    private static string LeaseText(Operation op) => op.Lease is null ? "" : $" (lease {op.Lease})";

    private static string Summarize(IEnumerable<LeaseAuditRow> rows)
    {
        var counts = rows.GroupBy(r => r.Event).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}").ToList();
        return counts.Count == 0 ? "the key has no lease events at all" : "the key has " + string.Join(", ", counts);
    }

    private static IEnumerable<IndexFinding> CheckSandboxAudit(IndexSnapshot snapshot)
    {
        foreach (var id in snapshot.SandboxIds.Where(snapshot.SandboxIndex.ContainsKey).Order(StringComparer.Ordinal))
        {
            // A sandbox the grain does not know is the index check's to report: there is no current status to compare with.
            if (Grain(snapshot.SandboxGrains, id) is not { } status)
            {
                continue;
            }
            var newest = snapshot.NewestSandboxAudit.GetValueOrDefault(id);
            if (newest?.ToState != status)
            {
                yield return new IndexFinding(IndexFinding.AuditBehindStatus, null, id,
                    newest is null
                        ? $"the grain says {status} but the audit log has no event for the sandbox"
                        : $"the grain says {status} but the newest audit event is '{newest.Event}' to {newest.ToState ?? "(none)"}");
            }
        }
    }

    private static IEnumerable<IndexFinding> CheckClaimIndex(IndexSnapshot snapshot)
    {
        foreach (var key in snapshot.Keys.Order(StringComparer.Ordinal))
        {
            var grain = Grain(snapshot.ClaimGrains, key);
            var index = snapshot.ClaimIndex.GetValueOrDefault(key);
            var message = (grain, index) switch
            {
                ({ } g, null) => $"the index has no row, the grain holds an active lease on sandbox {g.SandboxId}{LeaseText(g)}",
                ({ } g, { Status: not "active" } i) => $"the index says {i.Status} (sandbox {i.SandboxId ?? "(none)"}), the grain holds an active lease on sandbox {g.SandboxId}{LeaseText(g)}",
                ({ } g, { } i) when i.SandboxId != g.SandboxId => $"the index says active on sandbox {i.SandboxId ?? "(none)"}, the grain holds an active lease on sandbox {g.SandboxId}{LeaseText(g)}",
                (null, { Status: "active" } i) => $"the index says active on sandbox {i.SandboxId ?? "(none)"}, the grain has no active lease",
                _ => null,
            };
            if (message is not null)
            {
                yield return new IndexFinding(IndexFinding.ClaimIndexMismatch, key, grain?.SandboxId ?? index?.SandboxId, message);
            }
        }

        static string LeaseText(ActiveLease lease) => lease.Lease is null ? "" : $" (lease {lease.Lease})";
    }

    private static IEnumerable<IndexFinding> CheckSandboxIndex(IndexSnapshot snapshot)
    {
        foreach (var id in snapshot.SandboxIds.Order(StringComparer.Ordinal))
        {
            var grain = Grain(snapshot.SandboxGrains, id);
            var index = snapshot.SandboxIndex.GetValueOrDefault(id);
            var message = (grain, index) switch
            {
                (null, null) => null, // named by an answer (a release of a lease whose acquire failed first) but never created
                (null, _) => $"the index says {index}, the grain has no record",
                (_, null) => $"the index has no row, the grain says {grain}",
                _ when grain != index => $"the index says {index}, the grain says {grain}",
                _ => null,
            };
            if (message is not null)
            {
                yield return new IndexFinding(IndexFinding.SandboxIndexMismatch, null, id, message);
            }
        }
    }

    /// <summary>The grain's side; the harness reads it for every key and id it lists, so a gap is a harness bug.</summary>
    private static TValue? Grain<TValue>(IReadOnlyDictionary<string, TValue?> grains, string id) =>
        grains.TryGetValue(id, out var value) ? value : throw new ArgumentException($"the snapshot has no grain answer for {id}", nameof(grains));
}
