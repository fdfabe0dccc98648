using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace SandboxBroker.Persistence;

/// <summary>
/// What the group-commit writer shows of itself: a span per batch (so the SQL of a grain's write appears in the trace of
/// the call that asked for it) and the "SandboxBroker.Storage" meter: batch sizes, commit latency, version conflicts.
/// </summary>
public sealed class StorageTelemetry : IDisposable
{
    public const string Name = "SandboxBroker.Storage";

    /// <summary>A batch serves many callers; beyond the first (its parent), each trace is linked, up to this many.</summary>
    private const int MaxLinks = 32;

    private readonly ActivitySource _source = new(Name);
    private readonly Meter _meter = new(Name);
    private readonly Histogram<int> _batchSize;
    private readonly Histogram<double> _commitDuration;
    private readonly Counter<long> _conflicts;
    private readonly Counter<long> _splits;

    public StorageTelemetry()
    {
        _batchSize = _meter.CreateHistogram<int>("sandboxbroker.storage.batch.size", "{operation}",
            "Grain-state operations carried by one batch (one round trip, one transaction).");
        _commitDuration = _meter.CreateHistogram<double>("sandboxbroker.storage.commit.duration", "s",
            "From sending a batch to its commit, by outcome (committed, failed).");
        _conflicts = _meter.CreateCounter<long>("sandboxbroker.storage.conflicts", "{operation}",
            "Writes and clears refused because the row was not at the grain's version (a stale or duplicate activation).");
        _splits = _meter.CreateCounter<long>("sandboxbroker.storage.batch.splits", "{batch}",
            "Batches that failed on one statement and were run again one operation at a time.");
    }

    /// <summary>The batch's span, child of the first caller's trace and linked to the others' (null when nobody listens).</summary>
    public Activity? StartBatch(IReadOnlyList<StateOperation> operations)
    {
        if (!_source.HasListeners())
        {
            return null;
        }
        ActivityContext parent = default;
        var links = new List<ActivityLink>();
        foreach (var operation in operations)
        {
            if (operation.Caller == default)
            {
                continue;
            }
            if (parent == default)
            {
                parent = operation.Caller;
            }
            else if (links.Count < MaxLinks && operation.Caller.TraceId != parent.TraceId)
            {
                links.Add(new ActivityLink(operation.Caller));
            }
        }
        var activity = _source.StartActivity("grain-state batch", ActivityKind.Internal, parent, links: links);
        activity?.SetTag("db.system.name", "postgresql");
        activity?.SetTag("sandboxbroker.batch.size", operations.Count);
        return activity;
    }

    public void Committed(int operations, TimeSpan elapsed)
    {
        _batchSize.Record(operations);
        _commitDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("outcome", "committed"));
    }

    public void Failed(int operations, TimeSpan elapsed)
    {
        _batchSize.Record(operations);
        _commitDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("outcome", "failed"));
    }

    public void Conflict(string operation) => _conflicts.Add(1, new KeyValuePair<string, object?>("operation", operation));

    public void Split() => _splits.Add(1);

    public void Dispose()
    {
        _source.Dispose();
        _meter.Dispose();
    }
}
