using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests.Providers;

/// <summary>The providers' figures on the "SandboxBroker.Providers" meter, read as an exporter would, with a MeterListener.</summary>
public sealed class ProviderMetricsTests
{
    private sealed record Measured(string Instrument, double Value, IReadOnlyDictionary<string, string?> Tags);

    /// <summary>Every measurement of the provider meter while it is alive, with the sums and last values the tests read.</summary>
    private sealed class Measurements : IDisposable
    {
        private readonly List<Measured> _measured = [];
        private readonly MeterListener _listener = new();

        public Measurements(ProviderMetrics metrics)
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, metrics.Meter))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
            _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
            _listener.Start();
        }

        public IReadOnlyList<Measured> All
        {
            get
            {
                lock (_measured)
                {
                    return [.. _measured];
                }
            }
        }

        public void RecordObservableInstruments() => _listener.RecordObservableInstruments();

        public static bool Has(Measured m, string provider, params (string Key, string Value)[] tags) =>
            m.Tags.GetValueOrDefault("provider") == provider && tags.All(t => m.Tags.GetValueOrDefault(t.Key) == t.Value);

        public double Count(string provider, string instrument, params (string Key, string Value)[] tags) =>
            All.Where(m => m.Instrument == instrument && Has(m, provider, tags)).Sum(m => m.Value);

        public double Last(string provider, string instrument) => All.Last(m => m.Instrument == instrument && Has(m, provider)).Value;

        public void Dispose() => _listener.Dispose();

        private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var copy = new Dictionary<string, string?>();
            foreach (var tag in tags)
            {
                copy[tag.Key] = tag.Value?.ToString();
            }
            lock (_measured)
            {
                _measured.Add(new Measured(instrument.Name, value, copy));
            }
        }
    }

    [Fact]
    public async Task A_state_read_through_the_registry_is_counted_as_a_get()
    {
        var root = Path.Combine(Path.GetTempPath(), "sandboxbroker-metered-" + Guid.NewGuid().ToString("N"));
        using var metrics = new ProviderMetrics();
        var local = new LocalSandboxProvider(Options.Create(new LocalProviderOptions { Root = root }), NullLogger<LocalSandboxProvider>.Instance);
        var provider = new SandboxProviderRegistry([local], metrics).Get(local.Name);
        using var measured = new Measurements(metrics);
        try
        {
            await provider.CreateAsync(new ProviderCreateRequest("sbx-s", "s", null, new Dictionary<string, string>()), CancellationToken.None);

            var reader = provider.Capability<ISandboxStateReader>();

            Assert.NotNull(reader);
            Assert.Equal(ProviderSandboxState.Running, await reader.GetStateAsync("sbx-s", null, CancellationToken.None));
            Assert.Equal(1, measured.Count("local", "sandboxbroker.provider.calls", ("operation", "get")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Calls_latency_errors_breaker_state_and_reconciled_sandboxes_are_reported_per_provider_and_operation()
    {
        await using var e2b = await E2BTestDouble.StartNewAsync();
        await using var services = ProviderServices.Build(ProviderServices.Http("Providers:E2B", e2b.Url, breakerMinimumThroughput: 4));
        var metrics = services.GetRequiredService<ProviderMetrics>();
        var registry = new SandboxProviderRegistry(services.GetServices<ISandboxProvider>(), metrics);
        using var measured = new Measurements(metrics);
        var provider = registry.Get("e2b");

        var created = await provider.CreateAsync(new ProviderCreateRequest("sbx-m", "m", null, new Dictionary<string, string> { [BrokerLabels.SandboxId] = "sbx-m" }), CancellationToken.None);
        await provider.Capability<ISandboxLeaseTimer>()!.HoldUntilAsync("sbx-m", created.ExternalId, DateTimeOffset.UtcNow.AddMinutes(5), CancellationToken.None);
        e2b.FailNext(1000, 503);
        for (var i = 0; i < 4; i++)
        {
            await Assert.ThrowsAsync<ProviderException>(() => provider.GetAsync("sbx-m", created.ExternalId, CancellationToken.None));
        }
        metrics.Reconciled("e2b", 7);
        measured.RecordObservableInstruments();

        Assert.Equal(1, measured.Count("e2b", "sandboxbroker.provider.calls", ("operation", "create"), ("outcome", "ok")));
        Assert.Equal(1, measured.Count("e2b", "sandboxbroker.provider.calls", ("operation", "hold"), ("outcome", "ok")));
        Assert.Equal(4, measured.Count("e2b", "sandboxbroker.provider.calls", ("operation", "get"), ("outcome", "transient")));
        Assert.Equal(4, measured.Count("e2b", "sandboxbroker.provider.errors", ("operation", "get"), ("kind", "transient")));
        Assert.Contains(measured.All, m => m.Instrument == "sandboxbroker.provider.call.duration" && Measurements.Has(m, "e2b", ("operation", "create")) && m.Value > 0);
        Assert.Equal(2, measured.Last("e2b", "sandboxbroker.provider.breaker.state")); // open
        Assert.Equal(7, measured.Last("e2b", "sandboxbroker.provider.sandboxes"));

    }
}
