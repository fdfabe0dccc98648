namespace SandboxBroker.Silo.Metrics;

/// <summary>The silo's metrics ("Metrics" section).</summary>
public sealed class SiloMetricsSettings
{
    public const string Section = "Metrics";

    /// <summary>How often pool levels and lease counts are read for the gauges.</summary>
    public TimeSpan LevelsRefresh { get; set; } = TimeSpan.FromSeconds(15);
}
