using Microsoft.Extensions.Configuration;
using SandboxBroker.Storage;

namespace SandboxBroker.Silo;

/// <summary>How this silo joins the cluster, bound from the "Orleans" section. Ports differ per silo on one machine.</summary>
public sealed class SiloSettings
{
    public const string Section = "Orleans";

    public string ClusterId { get; set; } = "sandboxbroker";
    /// <summary>Keys grain state and reminders: keep it stable across deployments.</summary>
    public string ServiceId { get; set; } = "sandboxbroker";
    public string AdvertisedAddress { get; set; } = "127.0.0.1";
    public int SiloPort { get; set; } = 11111;
    public int GatewayPort { get; set; } = 30000;
    /// <summary>Lower only in tests: reminders then fire more often than once a minute.</summary>
    public TimeSpan MinimumReminderPeriod { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>The silo's own HTTP endpoint: dashboard, health and readiness ("Http" section).</summary>
public sealed class HttpSettings
{
    public const string Section = "Http";

    public string Address { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 8081;
}

/// <summary>
/// The dashboard ("Dashboard" section): its credential (with no password set, one is generated and logged at start) and
/// how often it samples the silo's counters.
/// </summary>
public sealed class DashboardSettings
{
    public const string Section = "Dashboard";

    public string Username { get; set; } = "admin";
    public string? Password { get; set; }

    /// <summary>
    /// How often the dashboard's counters are sampled, at least a second: the package's own <c>CounterUpdateIntervalMs</c>
    /// and the reading of Orleans' metrics that feeds the silo page (<see cref="DashboardMetricReader"/>; two of those
    /// gauges walk every activation of the silo).
    /// </summary>
    public TimeSpan CounterUpdateInterval { get; set; } = TimeSpan.FromSeconds(5);

    public static DashboardSettings Bind(IConfiguration configuration)
    {
        var settings = configuration.GetSection(Section).Get<DashboardSettings>() ?? new DashboardSettings();
        if (settings.CounterUpdateInterval < TimeSpan.FromSeconds(1))
        {
            throw new StartupException(
                $"{Section}:CounterUpdateInterval is {settings.CounterUpdateInterval}; the dashboard samples at most once a second (e.g. 00:00:05)");
        }
        return settings;
    }
}
