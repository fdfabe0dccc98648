using Prometheus;

namespace SandboxBroker.Silo.Metrics;

/// <summary>
/// The silo's /metrics: the broker's own meters ("SandboxBroker.*": claims, levels, storage, sweeps, providers) in
/// Prometheus text, through prometheus-net (<see cref="MeterBridge"/>). Only the broker's meters, whose
/// labels are bounded (pool, outcome, status, kind): Orleans' own carry per-grain-type labels and go to OTLP instead.
/// </summary>
public sealed class SiloMetricsEndpoint : IDisposable
{
    private static readonly double[] SecondsBuckets = Histogram.ExponentialBuckets(0.0005, 2, 16);
    private static readonly double[] CountBuckets = Histogram.ExponentialBuckets(1, 2, 10);

    private readonly MeterBridge _bridge;

    public SiloMetricsEndpoint()
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        _bridge = new MeterBridge(Registry,
            instrument => instrument.Meter.Name.StartsWith("SandboxBroker.", StringComparison.Ordinal),
            instrument => instrument.Unit == "s" ? SecondsBuckets : CountBuckets);
    }

    public CollectorRegistry Registry { get; }

    public static async Task WriteAsync(HttpContext context, SiloMetricsEndpoint metrics)
    {
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await metrics.Registry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted);
    }

    public void Dispose() => _bridge.Dispose();
}

public static class SiloMetricsRegistration
{
    /// <summary>The silo-side meters (claims, levels) and the acquire filter; also used by the test clusters.</summary>
    public static ISiloBuilder AddBrokerMetrics(this ISiloBuilder silo, IConfiguration configuration)
    {
        silo.Services.Configure<SiloMetricsSettings>(configuration.GetSection(SiloMetricsSettings.Section));
        silo.Services.AddSingleton<ClaimMetrics>();
        silo.Services.AddSingleton<SiloMetricsEndpoint>();
        silo.Services.AddHostedService<BrokerLevels>();
        silo.AddIncomingGrainCallFilter<AcquireCallFilter>();
        return silo;
    }

    /// <summary>GET /metrics in Prometheus text (other methods: 405). Listens from now on, not from the first scrape.</summary>
    public static IEndpointRouteBuilder MapSiloMetrics(this IEndpointRouteBuilder app)
    {
        app.ServiceProvider.GetRequiredService<SiloMetricsEndpoint>();
        app.MapGet("/metrics", (Func<HttpContext, SiloMetricsEndpoint, Task>)SiloMetricsEndpoint.WriteAsync);
        return app;
    }
}
