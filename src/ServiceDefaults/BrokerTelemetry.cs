using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace SandboxBroker.ServiceDefaults;

/// <summary>
/// The OpenTelemetry pipeline every broker process shares: one trace from the gateway's HTTP request through the
/// Orleans grain calls (their activity propagation carries the trace context in the call), the Npgsql commands and the
/// providers' HTTP calls; metrics from Orleans, Npgsql, ASP.NET Core and every "SandboxBroker.*" meter. Exported over
/// OTLP when <see cref="TelemetrySettings"/> says so.
/// </summary>
public static class BrokerTelemetry
{
    /// <summary>Every meter and activity source of the broker's own code is named with this prefix.</summary>
    public const string Prefix = "SandboxBroker.";

    /// <summary>
    /// Orleans 10's grain-call sources (application calls, and the runtime's own such as reminders and directory lookups),
    /// Npgsql's (one span per command or batch) and the broker's.
    /// </summary>
    public static readonly string[] ActivitySources =
        [Prefix + "*", "Microsoft.Orleans.Application", "Microsoft.Orleans.Runtime", "Npgsql"];

    public static readonly string[] Meters = [Prefix + "*", "Microsoft.Orleans", "Npgsql"];

    public static IHostApplicationBuilder AddBrokerTelemetry(this IHostApplicationBuilder builder, string serviceName)
    {
        var settings = TelemetrySettings.Bind(builder.Configuration);
        if (!settings.TracesOn && !settings.MetricsOn)
        {
            return builder;
        }
        var telemetry = builder.Services.AddOpenTelemetry().ConfigureResource(r => r.AddService(serviceName));
        if (settings.TracesOn)
        {
            telemetry.WithTracing(tracing =>
            {
                tracing.AddSource(ActivitySources)
                    .AddAspNetCoreInstrumentation(o => o.Filter = IsTraced)
                    .AddHttpClientInstrumentation()
                    .AddNpgsql();
                if (settings.ExportsOtlp)
                {
                    tracing.AddOtlpExporter(o => Endpoint(o, settings));
                }
            });
        }
        if (settings.MetricsOn)
        {
            telemetry.WithMetrics(metrics =>
            {
                metrics.AddMeter(Meters)
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation();
                if (settings.ExportsOtlp)
                {
                    metrics.AddOtlpExporter(o => Endpoint(o, settings));
                }
            });
        }
        return builder;
    }

    /// <summary>Probes and scrapes are not traced: they would drown the requests that matter.</summary>
    private static bool IsTraced(Microsoft.AspNetCore.Http.HttpContext context) =>
        context.Request.Path.Value is not ("/healthz" or "/readyz" or "/metrics");

    private static void Endpoint(OpenTelemetry.Exporter.OtlpExporterOptions options, TelemetrySettings settings)
    {
        if (settings.OtlpEndpoint is { Length: > 0 } endpoint)
        {
            options.Endpoint = new Uri(endpoint);
        }
    }
}
