using Microsoft.Extensions.Configuration;

namespace SandboxBroker.ServiceDefaults;

/// <summary>
/// Where traces and metrics go ("Telemetry" section). Nothing is collected unless an OTLP endpoint is configured, here
/// or by the standard OTEL_EXPORTER_OTLP_ENDPOINT variable: a span per grain call and SQL command costs CPU the hot
/// path needs, so it is paid only when someone reads it.
/// </summary>
public sealed class TelemetrySettings
{
    public const string Section = "Telemetry";

    /// <summary>The OTLP collector (e.g. http://127.0.0.1:4317); when unset, OTEL_EXPORTER_OTLP_ENDPOINT is used.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>Collect traces even without an exporter (tests attach an in-memory one); default: when OTLP is configured.</summary>
    public bool? Traces { get; set; }

    /// <summary>Collect metrics on the OpenTelemetry pipeline; default: when OTLP is configured.</summary>
    public bool? Metrics { get; set; }

    public bool ExportsOtlp { get; private set; }

    public bool TracesOn => Traces ?? ExportsOtlp;

    public bool MetricsOn => Metrics ?? ExportsOtlp;

    public static TelemetrySettings Bind(IConfiguration configuration)
    {
        var settings = configuration.GetSection(Section).Get<TelemetrySettings>() ?? new TelemetrySettings();
        if (settings.OtlpEndpoint is { Length: > 0 } endpoint && !Uri.TryCreate(endpoint, UriKind.Absolute, out _))
        {
            throw new InvalidOperationException($"Telemetry:OtlpEndpoint '{endpoint}' is not an absolute URL");
        }
        settings.ExportsOtlp = settings.OtlpEndpoint is { Length: > 0 }
            || configuration["OTEL_EXPORTER_OTLP_ENDPOINT"] is { Length: > 0 }
            || configuration["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] is { Length: > 0 }
            || configuration["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] is { Length: > 0 };
        return settings;
    }
}
