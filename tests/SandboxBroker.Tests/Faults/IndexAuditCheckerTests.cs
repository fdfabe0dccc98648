namespace SandboxBroker.Tests.Faults;

/// <summary>The audit and index comparison on hand-made snapshots: agreeing sides pass, each kind of gap is reported precisely.</summary>
public sealed class IndexAuditCheckerTests
{
    private const string K = "github:octo/repo#1";
    private const string K2 = "github:octo/repo#2";
    private long _ids;

    private Operation Op(OpKind kind, OpOutcome outcome, string? sandbox = null, bool created = false, long? lease = null, string key = K, string? code = null) =>
        new(++_ids, 0, key, kind, TimeSpan.FromMilliseconds(_ids * 10), TimeSpan.FromMilliseconds(_ids * 10 + 5), outcome,
            outcome == OpOutcome.Ok ? (created ? 201 : 200) : 0, sandbox, created, code, lease);

    /// <summary>
    /// K: lease 1 on s1 (acquired, released), lease 2 on s2 (acquired, active). K2: one lease on s3, expired on its own, then a
    /// release that answers it. A warm sandbox w1 the storm never saw; x9, named by a release of a lease whose acquire failed
    /// before the sandbox was created, exists nowhere.
    /// </summary>
    private (List<Operation> History, IndexSnapshot Snapshot) Agreeing()
    {
        List<Operation> history =
        [
            Op(OpKind.Acquire, OpOutcome.Ok, "s1", created: true, lease: 1),
            Op(OpKind.Touch, OpOutcome.Ok, "s1", lease: 1),
            Op(OpKind.Release, OpOutcome.Ok, "s1", lease: 1),
            Op(OpKind.Release, OpOutcome.Ok, "s1", lease: 1), // a repeat: the same ended lease
            Op(OpKind.Acquire, OpOutcome.Unknown, code: "timeout"),
            Op(OpKind.Acquire, OpOutcome.Ok, "s2", created: true, lease: 2),
            Op(OpKind.Acquire, OpOutcome.Ok, "s2", lease: 2),
            Op(OpKind.Acquire, OpOutcome.Ok, "s3", created: true, key: K2), // no lease number in the answer: matched on the sandbox
            Op(OpKind.Release, OpOutcome.Ok, "s3", key: K2),
            Op(OpKind.Release, OpOutcome.Ok, "x9", key: K2),
        ];
        var snapshot = new IndexSnapshot(
            [K, K2],
            ["s1", "s2", "s3", "w1", "x9"],
            [
                new LeaseAuditRow(K, "lease.acquired", "s1", 1),
                new LeaseAuditRow(K, "lease.touched", "s1", 1),
                new LeaseAuditRow(K, "lease.released", "s1", 1),
                new LeaseAuditRow(K, "lease.acquired", "s2", 2),
                new LeaseAuditRow(K2, "lease.acquired", "s3", 1),
                new LeaseAuditRow(K2, "lease.expired", "s3", 1),
                new LeaseAuditRow(K2, "lease.released", "x9", 2),
            ],
            new Dictionary<string, SandboxAuditRow>
            {
                ["s1"] = new("sandbox.deleted", "deleted"),
                ["s2"] = new("sandbox.leased", "leased"),
                ["s3"] = new("sandbox.deleted", "deleted"),
                ["w1"] = new("sandbox.ready", "ready"),
            },
            new Dictionary<string, ClaimIndexRow> { [K] = new("active", "s2"), [K2] = new("released", "x9") },
            new Dictionary<string, string> { ["s1"] = "deleted", ["s2"] = "leased", ["s3"] = "deleted", ["w1"] = "ready" },
            new Dictionary<string, ActiveLease?> { [K] = new("s2", 2), [K2] = null },
            new Dictionary<string, string?> { ["s1"] = "deleted", ["s2"] = "leased", ["s3"] = "deleted", ["w1"] = "ready", ["x9"] = null });
        return (history, snapshot);
    }

    private static string Describe(List<IndexFinding> findings) => string.Join(Environment.NewLine, findings);

    [Fact]
    public void Audit_and_index_that_agree_with_the_history_and_the_grains_pass()
    {
        var (history, snapshot) = Agreeing();
        var findings = IndexAuditChecker.Check(history, snapshot);
        Assert.True(findings.Count == 0, Describe(findings));
    }

    [Fact]
    public void An_acknowledged_new_lease_without_its_acquired_event_is_reported()
    {
        var (history, snapshot) = Agreeing();
        snapshot = snapshot with { LeaseEvents = snapshot.LeaseEvents.Where(e => !(e.Event == "lease.acquired" && e.SandboxId == "s2")).ToList() };
        var finding = Assert.Single(IndexAuditChecker.Check(history, snapshot));
        Assert.Equal(IndexFinding.MissingAudit, finding.Kind);
        Assert.Equal(K, finding.Key);
        Assert.Equal("s2", finding.SandboxId);
        Assert.Contains("'lease.acquired'", finding.Message);
        Assert.Contains("(lease 2)", finding.Message);
        Assert.True(finding.Source is { Kind: OpKind.Acquire, Created: true, SandboxId: "s2" });
        Assert.Contains("lease.acquired", finding.ToString());
    }

    [Fact]
    public void An_acknowledged_release_without_an_end_event_is_reported_once_for_its_lease()
    {
        var (history, snapshot) = Agreeing();
        snapshot = snapshot with { LeaseEvents = snapshot.LeaseEvents.Where(e => !(e.Event == "lease.released" && e.SandboxId == "s1")).ToList() };
        var finding = Assert.Single(IndexAuditChecker.Check(history, snapshot)); // the repeated release is the same lease
        Assert.Equal(IndexFinding.MissingAudit, finding.Kind);
        Assert.Contains("sandbox s1", finding.Message);
        Assert.Contains("'lease.released' or 'lease.expired'", finding.Message);
        Assert.Contains("the key has 2 lease.acquired", finding.Message); // what the key does have
    }

    [Fact]
    public void An_event_naming_another_sandbox_or_another_lease_number_is_not_the_acquires()
    {
        var (history, snapshot) = Agreeing();
        var events = snapshot.LeaseEvents.Where(e => !(e.Event == "lease.acquired" && e.SandboxId == "s2")).ToList();
        var findings = IndexAuditChecker.Check(history, snapshot with { LeaseEvents = [.. events, new LeaseAuditRow(K, "lease.acquired", "s2", 7)] });
        Assert.Equal("s2", Assert.Single(findings).SandboxId);
        findings = IndexAuditChecker.Check(history, snapshot with { LeaseEvents = [.. events, new LeaseAuditRow(K, "lease.acquired", "s9", 2)] });
        Assert.Equal("s2", Assert.Single(findings).SandboxId);
        // An event that names the sandbox without a lease number is the acquire's.
        findings = IndexAuditChecker.Check(history, snapshot with { LeaseEvents = [.. events, new LeaseAuditRow(K, "lease.acquired", "s2", null)] });
        Assert.True(findings.Count == 0, Describe(findings));
    }

    [Fact]
    public void Acquires_that_did_not_create_a_lease_and_unacknowledged_ones_need_no_event()
    {
        var (history, snapshot) = Agreeing();
        // Only the 201s need 'lease.acquired': the 200 repeat of s2 and the unknown acquire are not looked for.
        var findings = IndexAuditChecker.Check([.. history, Op(OpKind.Acquire, OpOutcome.Ok, "s2", lease: 2), Op(OpKind.Acquire, OpOutcome.Unknown, code: "timeout")], snapshot);
        Assert.True(findings.Count == 0, Describe(findings));
    }

    [Fact]
    public void A_claim_index_counting_an_ended_lease_active_is_reported()
    {
        var (history, snapshot) = Agreeing();
        var index = new Dictionary<string, ClaimIndexRow>(snapshot.ClaimIndex) { [K2] = new("active", "s3") };
        var finding = Assert.Single(IndexAuditChecker.Check(history, snapshot with { ClaimIndex = index }));
        Assert.Equal(IndexFinding.ClaimIndexMismatch, finding.Kind);
        Assert.Equal(K2, finding.Key);
        Assert.Equal("the index says active on sandbox s3, the grain has no active lease", finding.Message);
    }

    [Fact]
    public void A_claim_index_behind_the_grains_active_lease_is_reported()
    {
        var (history, snapshot) = Agreeing();
        var cases = new (ClaimIndexRow? Row, string Message)[]
        {
            (new("active", "s1"), "the index says active on sandbox s1, the grain holds an active lease on sandbox s2 (lease 2)"),
            (new("released", "s1"), "the index says released (sandbox s1), the grain holds an active lease on sandbox s2 (lease 2)"),
            (null, "the index has no row, the grain holds an active lease on sandbox s2 (lease 2)"),
        };
        foreach (var (row, message) in cases)
        {
            var index = new Dictionary<string, ClaimIndexRow>(snapshot.ClaimIndex);
            if (row is null)
            {
                index.Remove(K);
            }
            else
            {
                index[K] = row;
            }
            var finding = Assert.Single(IndexAuditChecker.Check(history, snapshot with { ClaimIndex = index }));
            Assert.Equal(IndexFinding.ClaimIndexMismatch, finding.Kind);
            Assert.Equal(K, finding.Key);
            Assert.Equal(message, finding.Message);
        }
    }

    [Fact]
    public void A_sandbox_index_row_disagreeing_with_the_grain_is_reported()
    {
        var (history, snapshot) = Agreeing();
        var index = new Dictionary<string, string>(snapshot.SandboxIndex) { ["s1"] = "deleting" };
        var findings = IndexAuditChecker.Check(history, snapshot with { SandboxIndex = index });
        var finding = Assert.Single(findings, f => f.Kind == IndexFinding.SandboxIndexMismatch);
        Assert.Equal("s1", finding.SandboxId);
        Assert.Null(finding.Key);
        Assert.Equal("the index says deleting, the grain says deleted", finding.Message);
        Assert.Equal("sandbox index mismatch on sandbox s1: the index says deleting, the grain says deleted", finding.ToString());
    }

    [Fact]
    public void A_sandbox_only_one_side_knows_is_reported()
    {
        var (history, snapshot) = Agreeing();
        var index = new Dictionary<string, string>(snapshot.SandboxIndex) { ["x9"] = "provisioning" };
        index.Remove("w1");
        var findings = IndexAuditChecker.Check(history, snapshot with { SandboxIndex = index });
        Assert.Contains(findings, f => f is { Kind: IndexFinding.SandboxIndexMismatch, SandboxId: "x9", Message: "the index says provisioning, the grain has no record" });
        Assert.Contains(findings, f => f is { Kind: IndexFinding.SandboxIndexMismatch, SandboxId: "w1", Message: "the index has no row, the grain says ready" });
    }

    [Fact]
    public void A_sandbox_whose_newest_audit_event_is_not_its_status_is_reported()
    {
        var (history, snapshot) = Agreeing();
        var audit = new Dictionary<string, SandboxAuditRow>(snapshot.NewestSandboxAudit) { ["s1"] = new("sandbox.deleting", "deleting") };
        audit.Remove("w1");
        var findings = IndexAuditChecker.Check(history, snapshot with { NewestSandboxAudit = audit });
        Assert.Equal(2, findings.Count);
        Assert.Contains(findings, f => f is { Kind: IndexFinding.AuditBehindStatus, SandboxId: "s1", Message: "the grain says deleted but the newest audit event is 'sandbox.deleting' to deleting" });
        Assert.Contains(findings, f => f is { Kind: IndexFinding.AuditBehindStatus, SandboxId: "w1", Message: "the grain says ready but the audit log has no event for the sandbox" });
    }

    [Fact]
    public void Only_the_listed_keys_and_sandboxes_are_compared()
    {
        var (history, snapshot) = Agreeing();
        // A read again of what differed lists only that: K2's missing event and s1's index row are not looked at.
        var subset = snapshot with
        {
            Keys = [K],
            SandboxIds = ["s2"],
            LeaseEvents = snapshot.LeaseEvents.Where(e => e.Key == K).ToList(),
            SandboxIndex = new Dictionary<string, string> { ["s2"] = "leased" },
        };
        var findings = IndexAuditChecker.Check(history, subset);
        Assert.True(findings.Count == 0, Describe(findings));
    }

    [Fact]
    public void A_snapshot_without_a_grain_answer_for_a_listed_key_is_a_harness_bug()
    {
        var (history, snapshot) = Agreeing();
        Assert.Throws<ArgumentException>(() => IndexAuditChecker.Check(history, snapshot with { ClaimGrains = new Dictionary<string, ActiveLease?>() }));
    }
}
