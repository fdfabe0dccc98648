using System.Diagnostics.Metrics;

namespace SandboxBroker.Grains;

/// <summary>
/// The "SandboxBroker.Sweeps" meter: what the pools' sweeps find due. Claims woken by a sweep are leases whose silo
/// died before their timer ended them, so a rising count says silos are being lost, not that leases are ending.
/// </summary>
public sealed class SweepMetrics : IDisposable
{
    public const string Name = "SandboxBroker.Sweeps";

    private readonly Meter _meter = new(Name);
    private readonly Counter<long> _sweeps;
    private readonly Counter<long> _woken;
    private readonly Counter<long> _errors;

    public SweepMetrics()
    {
        _sweeps = _meter.CreateCounter<long>("sandboxbroker.sweeps", "{sweep}", "Sweeps run, by pool.");
        _woken = _meter.CreateCounter<long>("sandboxbroker.sweeps.woken", "{grain}",
            "Claims and sandboxes a sweep found past their wake time and woke, by pool and kind (claim, sandbox).");
        _errors = _meter.CreateCounter<long>("sandboxbroker.sweeps.errors", "{grain}",
            "Wake calls that failed (found again by the next sweep), by pool and kind.");
    }

    public void Record(string pool, SweepReport report, int claimErrors, int sandboxErrors)
    {
        var tagPool = new KeyValuePair<string, object?>("pool", pool);
        _sweeps.Add(1, tagPool);
        Add(_woken, report.ClaimsWoken, pool, "claim");
        Add(_woken, report.SandboxesWoken, pool, "sandbox");
        Add(_errors, claimErrors, pool, "claim");
        Add(_errors, sandboxErrors, pool, "sandbox");
    }

    private static void Add(Counter<long> counter, int value, string pool, string kind)
    {
        if (value > 0)
        {
            counter.Add(value, new KeyValuePair<string, object?>("pool", pool), new KeyValuePair<string, object?>("kind", kind));
        }
    }

    public void Dispose() => _meter.Dispose();
}
