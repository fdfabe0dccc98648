using System.Diagnostics.Metrics;

namespace SandboxBroker.Silo.Metrics;

/// <summary>The "SandboxBroker.Claims" meter: acquire latency as the claim grains see it, by outcome.</summary>
public sealed class ClaimMetrics : IDisposable
{
    public const string Name = "SandboxBroker.Claims";

    private readonly Meter _meter = new(Name);
    private readonly Histogram<double> _acquireDuration;

    public ClaimMetrics()
    {
        _acquireDuration = _meter.CreateHistogram<double>("sandboxbroker.claims.acquire.duration", "s",
            "Acquire calls on the claim grains of this silo, from arrival to answer, by outcome "
            + "(warm, cold, repeat, or the error code in lower case).");
    }

    public void Acquired(string outcome, TimeSpan elapsed) =>
        _acquireDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("outcome", outcome));

    public void Dispose() => _meter.Dispose();
}
