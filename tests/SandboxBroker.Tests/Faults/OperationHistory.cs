using System.Diagnostics;

namespace SandboxBroker.Tests.Faults;

/// <summary>What a client asked of one claim key.</summary>
public enum OpKind
{
    /// <summary>PUT /v1/claims/{key}: 201 a new lease, 200 the active one.</summary>
    Acquire,
    /// <summary>POST /v1/claims/{key}/touch.</summary>
    Touch,
    /// <summary>DELETE /v1/claims/{key}: 200 the released lease (also for a repeat), 404 nothing released ever.</summary>
    Release,
    /// <summary>GET /v1/claims/{key}: 200 the active lease, 404 none.</summary>
    Read,
}

/// <summary>
/// How an operation ended, as the client saw it. Ok and Fail are definite; Unknown (a timeout, a dropped
/// connection, any 5xx) may or may not have taken effect.
/// </summary>
public enum OpOutcome
{
    Ok,
    Fail,
    Unknown,
}

/// <summary>
/// One completed operation: invoked and completed on the history's clock (<see cref="Stopwatch"/> ticks
/// converted to a <see cref="TimeSpan"/> since the history began).
/// </summary>
/// <param name="Status">The HTTP status, 0 when there was no answer.</param>
/// <param name="SandboxId">The sandbox the answer named (ok answers of acquire/touch/release/read).</param>
/// <param name="Created">An acquire answered 201: a new lease, not the active one repeated.</param>
/// <param name="Code">The error code of a failure, or what went wrong for an unknown outcome.</param>
/// <param name="Lease">The lease number the answer named (ok answers that carry one), so the audit check can name the lease.</param>
public sealed record Operation(
    long Id,
    int Worker,
    string Key,
    OpKind Kind,
    TimeSpan Invoked,
    TimeSpan Completed,
    OpOutcome Outcome,
    int Status = 0,
    string? SandboxId = null,
    bool Created = false,
    string? Code = null,
    long? Lease = null)
{
    public override string ToString() =>
        $"#{Id} w{Worker} {Kind.ToString().ToLowerInvariant()} [{Invoked.TotalMilliseconds:F0}..{Completed.TotalMilliseconds:F0}ms] " +
        $"{Outcome.ToString().ToLowerInvariant()}{(Status == 0 ? "" : $" {Status}")}" +
        $"{(SandboxId is null ? "" : $" sandbox={SandboxId}")}{(Lease is null ? "" : $" lease={Lease}")}{(Created ? " (new)" : "")}{(Code is null ? "" : $" {Code}")}";
}

/// <summary>A fault the harness injected, on the history's clock.</summary>
public sealed record FaultEvent(TimeSpan At, TimeSpan Until, string What)
{
    public override string ToString() => $"[{At.TotalMilliseconds:F0}..{Until.TotalMilliseconds:F0}ms] {What}";
}

/// <summary>
/// The recorded history of a run: every operation (added when it completes, with its invoke time) and every
/// fault. Thread-safe; one per run.
/// </summary>
public sealed class OperationHistory
{
    private readonly long _origin = Stopwatch.GetTimestamp();
    private readonly List<Operation> _operations = [];
    private readonly List<FaultEvent> _faults = [];
    private long _nextId;

    /// <summary>Time since the history began.</summary>
    public TimeSpan Now => Stopwatch.GetElapsedTime(_origin);

    public long NextId() => Interlocked.Increment(ref _nextId);

    public void Add(Operation operation)
    {
        lock (_operations)
        {
            _operations.Add(operation);
        }
    }

    public void AddFault(FaultEvent fault)
    {
        lock (_faults)
        {
            _faults.Add(fault);
        }
    }

    public IReadOnlyList<Operation> Operations
    {
        get
        {
            lock (_operations)
            {
                return _operations.OrderBy(o => o.Invoked).ThenBy(o => o.Id).ToList();
            }
        }
    }

    public IReadOnlyList<FaultEvent> Faults
    {
        get
        {
            lock (_faults)
            {
                return _faults.OrderBy(f => f.At).ToList();
            }
        }
    }

    /// <summary>Counts for the report: operations by kind and outcome.</summary>
    public string Summary()
    {
        var ops = Operations;
        var lines = new List<string>
        {
            $"{ops.Count} operations on {ops.Select(o => o.Key).Distinct().Count()} keys: " +
            $"{ops.Count(o => o.Outcome == OpOutcome.Ok)} ok, {ops.Count(o => o.Outcome == OpOutcome.Fail)} fail, {ops.Count(o => o.Outcome == OpOutcome.Unknown)} unknown",
        };
        foreach (var group in ops.GroupBy(o => o.Kind).OrderBy(g => g.Key))
        {
            var codes = group.Where(o => o.Outcome != OpOutcome.Ok).GroupBy(o => $"{o.Outcome.ToString().ToLowerInvariant()} {o.Status} {o.Code}")
                .OrderByDescending(g => g.Count()).Select(g => $"{g.Key.Trim()} x{g.Count()}");
            lines.Add($"  {group.Key.ToString().ToLowerInvariant(),-8} {group.Count(),6}: {group.Count(o => o.Outcome == OpOutcome.Ok)} ok" +
                      $"{(group.Any(o => o.Kind == OpKind.Acquire && o.Created) ? $" ({group.Count(o => o.Created)} new)" : "")}; {string.Join("; ", codes)}");
        }
        return string.Join(Environment.NewLine, lines);
    }
}
