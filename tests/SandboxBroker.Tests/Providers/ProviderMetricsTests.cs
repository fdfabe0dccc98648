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

    [Fact]
    public async Task A_state_read_through_the_registry_is_counted_as_a_get()
    {
        var root = Path.Combine(Path.GetTempPath(), "sandboxbroker-metered-" + Guid.NewGuid().ToString("N"));
        using var metrics = new ProviderMetrics();
        var local = new LocalSandboxProvider(Options.Create(new LocalProviderOptions { Root = root }), NullLogger<LocalSandboxProvider>.Instance);
        var provider = new SandboxProviderRegistry([local], metrics).Get(local.Name);
        long gets = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter) && instrument.Name == "sandboxbroker.provider.calls")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, v, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag is { Key: "operation", Value: "get" })
                {
                    Interlocked.Add(ref gets, v);
                }
            }
        });
        listener.Start();
        try
        {
            await provider.CreateAsync(new ProviderCreateRequest("sbx-s", "s", null, new Dictionary<string, string>()), CancellationToken.None);

            var reader = provider.Capability<ISandboxStateReader>();

            Assert.NotNull(reader);
            Assert.Equal(ProviderSandboxState.Running, await reader.GetStateAsync("sbx-s", null, CancellationToken.None));
            Assert.Equal(1, Interlocked.Read(ref gets));
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
        var measured = new List<Measured>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        listener.Start();
        var provider = registry.Get("e2b");

        var created = await provider.CreateAsync(new ProviderCreateRequest("sbx-m", "m", null, new Dictionary<string, string> { [BrokerLabels.SandboxId] = "sbx-m" }), CancellationToken.None);
        await provider.Capability<ISandboxLeaseTimer>()!.HoldUntilAsync("sbx-m", created.ExternalId, DateTimeOffset.UtcNow.AddMinutes(5), CancellationToken.None);
        e2b.FailNext(1000, 503);
        for (var i = 0; i < 4; i++)
        {
            await Assert.ThrowsAsync<ProviderException>(() => provider.GetAsync("sbx-m", created.ExternalId, CancellationToken.None));
        }
        metrics.Reconciled("e2b", 7);
        listener.RecordObservableInstruments();

        Assert.Equal(1, Count("sandboxbroker.provider.calls", ("operation", "create"), ("outcome", "ok")));
        Assert.Equal(1, Count("sandboxbroker.provider.calls", ("operation", "hold"), ("outcome", "ok")));
        Assert.Equal(4, Count("sandboxbroker.provider.calls", ("operation", "get"), ("outcome", "transient")));
        Assert.Equal(4, Count("sandboxbroker.provider.errors", ("operation", "get"), ("kind", "transient")));
        Assert.Contains(measured, m => m.Instrument == "sandboxbroker.provider.call.duration" && Has(m, ("operation", "create")) && m.Value > 0);
        Assert.Equal(2, Last("sandboxbroker.provider.breaker.state")); // open
        Assert.Equal(7, Last("sandboxbroker.provider.sandboxes"));

        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var copy = new Dictionary<string, string?>();
            foreach (var tag in tags)
            {
                copy[tag.Key] = tag.Value?.ToString();
            }
            lock (measured)
            {
                measured.Add(new Measured(instrument.Name, value, copy));
            }
        }

        bool Has(Measured m, params (string Key, string Value)[] tags) =>
            m.Tags.GetValueOrDefault("provider") == "e2b" && tags.All(t => m.Tags.GetValueOrDefault(t.Key) == t.Value);

        double Count(string instrument, params (string Key, string Value)[] tags) =>
            measured.Where(m => m.Instrument == instrument && Has(m, tags)).Sum(m => m.Value);

        double Last(string instrument) => measured.Last(m => m.Instrument == instrument && Has(m)).Value;
    }
}
