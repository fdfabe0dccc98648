namespace SandboxBroker.Tests.Faults;

/// <summary>The checker on hand-written histories: the ones the broker may produce pass, the ones it must never produce are rejected.</summary>
public sealed class HistoryCheckerTests
{
    private const string K = "github:octo/repo#1";
    private long _ids;

    private Operation Op(OpKind kind, int from, int to, OpOutcome outcome, string? sandbox = null, bool created = false, string? code = null, string key = K, int worker = 0) =>
        new(++_ids, worker, key, kind, TimeSpan.FromMilliseconds(from), TimeSpan.FromMilliseconds(to), outcome,
            outcome switch { OpOutcome.Ok => created ? 201 : 200, OpOutcome.Fail => code == "NOT_FOUND" ? 404 : 409, _ => 0 }, sandbox, created, code);

    private Operation New(int from, int to, string sandbox, string key = K) => Op(OpKind.Acquire, from, to, OpOutcome.Ok, sandbox, created: true, key: key);
    private Operation Repeat(int from, int to, string sandbox) => Op(OpKind.Acquire, from, to, OpOutcome.Ok, sandbox);
    private Operation Released(int from, int to, string sandbox) => Op(OpKind.Release, from, to, OpOutcome.Ok, sandbox);

    private static CheckResult Check(params Operation[] history) => new HistoryChecker().Check(history);

    private static void AssertRejected(CheckResult result, string kind)
    {
        Assert.False(result.Valid, "the history must be rejected");
        Assert.Contains(result.Violations, v => v.Kind == kind);
    }

    [Fact]
    public void A_sequential_life_of_a_key_is_valid()
    {
        var result = Check(
            Op(OpKind.Release, 0, 5, OpOutcome.Fail, code: "NOT_FOUND"),
            Op(OpKind.Touch, 6, 8, OpOutcome.Fail, code: "LEASE_NOT_ACTIVE"),
            New(10, 20, "s1"),
            Op(OpKind.Touch, 21, 25, OpOutcome.Ok, "s1"),
            Repeat(26, 30, "s1"),
            Op(OpKind.Read, 31, 32, OpOutcome.Ok, "s1"),
            Released(33, 40, "s1"),
            Released(41, 45, "s1"), // a repeated release answers the lease it released
            Op(OpKind.Read, 46, 47, OpOutcome.Fail, code: "NOT_FOUND"),
            New(50, 60, "s2"));
        Assert.True(result.Valid, string.Join(Environment.NewLine, result.Violations));
        Assert.Equal(0, result.ExplainedByUnknown);
    }

    [Fact]
    public void Overlapping_acquires_that_agree_are_valid_in_any_completion_order()
    {
        var result = Check(
            New(0, 100, "s1"),
            Repeat(10, 50, "s1"), // completes first, still fine: the 201 took effect before
            Op(OpKind.Release, 20, 120, OpOutcome.Ok, "s1"),
            New(130, 140, "s2"));
        Assert.True(result.Valid, string.Join(Environment.NewLine, result.Violations));
    }

    [Fact]
    public void Two_overlapping_acknowledged_acquires_of_different_sandboxes_are_rejected()
    {
        var result = Check(New(0, 100, "s1"), New(10, 90, "s2"));
        AssertRejected(result, "not linearizable");
    }

    [Fact]
    public void A_second_sandbox_without_a_release_in_between_is_rejected()
    {
        var result = Check(New(0, 10, "s1"), Op(OpKind.Touch, 20, 30, OpOutcome.Ok, "s1"), New(40, 50, "s2"));
        var violation = Assert.Single(result.Violations);
        Assert.Contains("s2", violation.Message);
        Assert.Contains(violation.Excerpt, o => o.SandboxId == "s2");
    }

    [Fact]
    public void A_release_answered_with_another_sandbox_than_the_live_one_is_rejected()
    {
        AssertRejected(Check(New(0, 10, "s1"), Released(20, 30, "s9")), "not linearizable");
    }

    [Fact]
    public void A_release_undone_is_rejected()
    {
        var result = Check(New(0, 10, "s1"), Released(20, 30, "s1"), Repeat(40, 50, "s1"));
        AssertRejected(result, "release undone");
        AssertRejected(result, "not linearizable");
    }

    [Fact]
    public void A_fresh_lease_on_a_sandbox_the_key_held_before_is_rejected()
    {
        AssertRejected(Check(New(0, 10, "s1"), Released(20, 30, "s1"), New(40, 50, "s1")), "release undone");
    }

    [Fact]
    public void An_answer_of_no_lease_while_one_is_live_is_rejected()
    {
        AssertRejected(Check(New(0, 10, "s1"), Op(OpKind.Touch, 20, 30, OpOutcome.Fail, code: "LEASE_NOT_ACTIVE")), "not linearizable");
        AssertRejected(Check(New(0, 10, "s1"), Op(OpKind.Read, 20, 30, OpOutcome.Fail, code: "NOT_FOUND")), "not linearizable");
    }

    [Fact]
    public void A_touch_that_overlaps_the_release_may_see_either_side()
    {
        var result = Check(New(0, 10, "s1"), Released(20, 40, "s1"), Op(OpKind.Touch, 25, 35, OpOutcome.Fail, code: "LEASE_NOT_ACTIVE"),
            Op(OpKind.Touch, 26, 36, OpOutcome.Ok, "s1"));
        Assert.True(result.Valid, string.Join(Environment.NewLine, result.Violations));
    }

    [Fact]
    public void An_unknown_release_may_explain_a_new_sandbox()
    {
        var result = Check(New(0, 10, "s1"), Op(OpKind.Release, 20, 30, OpOutcome.Unknown, code: "timeout"), New(40, 50, "s2"));
        Assert.True(result.Valid, string.Join(Environment.NewLine, result.Violations));
        Assert.Equal(1, result.ExplainedByUnknown);
    }

    [Fact]
    public void An_unknown_release_invoked_after_the_new_sandbox_cannot_explain_it()
    {
        AssertRejected(Check(New(0, 10, "s1"), New(40, 50, "s2"), Op(OpKind.Release, 60, 70, OpOutcome.Unknown, code: "timeout")), "not linearizable");
    }

    [Fact]
    public void An_unknown_acquire_may_have_created_the_sandbox_a_later_answer_repeats()
    {
        var result = Check(Op(OpKind.Acquire, 0, 10_000, OpOutcome.Unknown, code: "timeout"), Repeat(20_000, 20_010, "s7"),
            Op(OpKind.Touch, 20_020, 20_030, OpOutcome.Ok, "s7"));
        Assert.True(result.Valid, string.Join(Environment.NewLine, result.Violations));
        // Without the unknown acquire nothing created s7.
        AssertRejected(Check(Repeat(20_000, 20_010, "s7")), "not linearizable");
    }

    [Fact]
    public void An_unknown_acquire_cannot_replace_a_live_sandbox()
    {
        AssertRejected(Check(New(0, 10, "s1"), Op(OpKind.Acquire, 20, 30, OpOutcome.Unknown, code: "timeout"), Repeat(40, 50, "s2")), "not linearizable");
    }

    [Fact]
    public void Failures_that_change_nothing_are_ignored_and_keys_are_independent()
    {
        var result = Check(
            New(0, 10, "a1", key: "k:a"),
            New(0, 10, "b1", key: "k:b"),
            Op(OpKind.Acquire, 15, 20, OpOutcome.Fail, code: "NO_SANDBOXES_AVAILABLE", key: "k:a"),
            Op(OpKind.Touch, 15, 20, OpOutcome.Unknown, code: "timeout", key: "k:b"),
            Repeat(30, 40, "a1") with { Key = "k:a" });
        Assert.True(result.Valid, string.Join(Environment.NewLine, result.Violations));
        Assert.Equal(2, result.Keys);
    }

    [Fact]
    public void A_long_concurrent_history_is_decided()
    {
        // Four workers hammering one key, each op overlapping the others, with unknown releases sprinkled in.
        var ops = new List<Operation>();
        var t = 0;
        for (var lease = 0; lease < 150; lease++)
        {
            var id = $"s{lease}";
            ops.Add(New(t, t + 30, id));
            ops.Add(Op(OpKind.Touch, t + 5, t + 40, OpOutcome.Ok, id, worker: 1));
            ops.Add(Op(OpKind.Acquire, t + 6, t + 41, OpOutcome.Ok, id, worker: 2));
            ops.Add(lease % 10 == 0
                ? Op(OpKind.Release, t + 35, t + 60, OpOutcome.Unknown, code: "timeout", worker: 3)
                : Released(t + 35, t + 60, id) with { Worker = 3 });
            t += 61;
        }
        var result = Check([.. ops]);
        Assert.True(result.Valid, string.Join(Environment.NewLine, result.Violations));
        Assert.Empty(result.Inconclusive);
    }
}
