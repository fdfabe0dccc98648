using System.Diagnostics;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace SandboxBroker.Grains.Providers;

/// <summary>
/// The providers' figures for operators, on the meter "SandboxBroker.Providers" (the silo exports every
/// "SandboxBroker.*" meter): calls, their latency and their errors per provider and operation, each REST provider's
/// circuit breaker state, and how many sandboxes the last reconcile saw at each provider.
/// </summary>
public sealed class ProviderMetrics : IDisposable
{
    public const string MeterName = "SandboxBroker.Providers";

    private readonly Counter<long> _calls;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _breakerTransitions;
    private readonly ConcurrentDictionary<string, int> _breakerStates = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _seen = new(StringComparer.Ordinal);

    public ProviderMetrics()
    {
        Meter = new Meter(MeterName);
        _calls = Meter.CreateCounter<long>("sandboxbroker.provider.calls", "{call}", "Calls to a provider, by provider, operation and outcome (ok, transient, error).");
        _duration = Meter.CreateHistogram<double>("sandboxbroker.provider.call.duration", "s", "How long provider calls took, by provider and operation.");
        _errors = Meter.CreateCounter<long>("sandboxbroker.provider.errors", "{error}", "Failed provider calls, by provider, operation and kind (transient or permanent).");
        _breakerTransitions = Meter.CreateCounter<long>("sandboxbroker.provider.breaker.transitions", "{transition}", "Circuit breaker state changes, by provider and new state.");
        Meter.CreateObservableGauge("sandboxbroker.provider.breaker.state",
            () => _breakerStates.Select(s => new Measurement<int>(s.Value, new KeyValuePair<string, object?>("provider", s.Key))),
            "{state}", "Each REST provider's circuit breaker: 0 closed, 1 half-open, 2 open.");
        Meter.CreateObservableGauge("sandboxbroker.provider.sandboxes",
            () => _seen.Select(s => new Measurement<long>(s.Value, new KeyValuePair<string, object?>("provider", s.Key))),
            "{sandbox}", "Sandboxes with this deployment's label that the last reconcile saw at each provider.");
    }

    /// <summary>This instance's meter (a listener can tell it from another silo's in the same process).</summary>
    public Meter Meter { get; }

    public enum BreakerState { Closed = 0, HalfOpen = 1, Open = 2 }

    public void Call(string provider, string operation, TimeSpan elapsed, Exception? error)
    {
        var outcome = error switch
        {
            null => "ok",
            ProviderException { Transient: true } or TimeoutException or OperationCanceledException or HttpRequestException => "transient",
            _ => "error",
        };
        var tags = new TagList { { "provider", provider }, { "operation", operation } };
        _duration.Record(elapsed.TotalSeconds, tags);
        if (error is not null)
        {
            var errorTags = tags;
            errorTags.Add("kind", outcome == "transient" ? "transient" : "permanent");
            _errors.Add(1, errorTags);
        }
        tags.Add("outcome", outcome);
        _calls.Add(1, tags);
    }

    public void Breaker(string provider, BreakerState state)
    {
        _breakerStates[provider] = (int)state;
        _breakerTransitions.Add(1, new TagList { { "provider", provider }, { "state", state.ToString().ToLowerInvariant() } });
    }

    public void Reconciled(string provider, long seen) => _seen[provider] = seen;

    public void Dispose() => Meter.Dispose();
}
