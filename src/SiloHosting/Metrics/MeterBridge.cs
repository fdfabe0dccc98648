using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Prometheus;

namespace SandboxBroker.Silo.Metrics;

/// <summary>
/// Serves System.Diagnostics.Metrics instruments as prometheus-net collectors in one registry. prometheus-net's own
/// MeterAdapter names a metric "meter_instrument" (sandboxbroker_storage_sandboxbroker_storage_batch_size) and turns
/// counters into gauges; here an instrument keeps its own OpenTelemetry-style name, counters stay counters (_total)
/// and second-valued histograms end in _seconds, as the gateway's metrics do. Label names are the instrument's tags,
/// fixed by its first measurement (the broker's instruments always record the same tag keys).
/// </summary>
public sealed class MeterBridge : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly IMetricFactory _factory;
    private readonly Func<Instrument, double[]> _buckets;
    private readonly ConcurrentDictionary<Instrument, Bridged> _bridged = new();
    private volatile bool _disposed;

    public MeterBridge(CollectorRegistry registry, Func<Instrument, bool> include, Func<Instrument, double[]> buckets)
    {
        _factory = Prometheus.Metrics.WithCustomRegistry(registry);
        _buckets = buckets;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (include(instrument))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
        // Observable gauges are read when scraped.
        registry.AddBeforeCollectCallback(() =>
        {
            if (!_disposed)
            {
                _listener.RecordObservableInstruments();
            }
        });
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var sorted = tags.ToArray();
        Array.Sort(sorted, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var bridged = _bridged.GetOrAdd(instrument, Create, sorted);
        if (bridged.LabelNames.Length != sorted.Length)
        {
            return; // a tag set other than the first: not representable in one Prometheus metric
        }
        var values = new string[sorted.Length];
        for (var i = 0; i < sorted.Length; i++)
        {
            if (sorted[i].Key != bridged.LabelNames[i])
            {
                return;
            }
            values[i] = sorted[i].Value?.ToString() ?? "";
        }
        bridged.Record(values, value);
    }

    private Bridged Create(Instrument instrument, KeyValuePair<string, object?>[] tags)
    {
        var labels = tags.Select(t => t.Key).ToArray();
        var prometheusLabels = labels.Select(PrometheusName).ToArray();
        var name = PrometheusName(instrument.Name);
        var help = instrument.Description ?? instrument.Name;
        switch (instrument)
        {
            case Counter<int> or Counter<long> or Counter<double>:
                var counter = _factory.CreateCounter(name + "_total", help, prometheusLabels);
                return new Bridged(labels, (values, v) => counter.WithLabels(values).Inc(v));
            case Histogram<int> or Histogram<long> or Histogram<double>:
                var histogram = _factory.CreateHistogram(instrument.Unit == "s" ? name + "_seconds" : name, help, prometheusLabels,
                    new HistogramConfiguration { Buckets = _buckets(instrument) });
                return new Bridged(labels, (values, v) => histogram.WithLabels(values).Observe(v));
            default:
                // Observable gauges and up-down counters: the measurement is the current value.
                var gauge = _factory.CreateGauge(name, help, prometheusLabels);
                return instrument is UpDownCounter<int> or UpDownCounter<long> or UpDownCounter<double>
                    ? new Bridged(labels, (values, v) => gauge.WithLabels(values).Inc(v))
                    : new Bridged(labels, (values, v) => gauge.WithLabels(values).Set(v));
        }
    }

    private static string PrometheusName(string name)
    {
        var chars = name.ToLowerInvariant().ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!char.IsAsciiLetterOrDigit(chars[i]))
            {
                chars[i] = '_';
            }
        }
        return new string(chars);
    }

    private sealed record Bridged(string[] LabelNames, Action<string[], double> Record);

    public void Dispose()
    {
        _disposed = true;
        _listener.Dispose();
    }
}
