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
    /// Milliseconds between the dashboard's samples of the silo's counters (Orleans' default is 1,000, its minimum). Each
    /// sample walks the activation and directory counts, whose cost grows with the activations: at 25,000 it was 3 % of
    /// the silo's CPU at one a second. Five seconds keeps the charts useful for a person watching them.
    /// </summary>
    public int CounterUpdateIntervalMs { get; set; } = 5_000;
}
