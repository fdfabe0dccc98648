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

/// <summary>The dashboard's credential ("Dashboard" section). With no password set, one is generated and logged at start.</summary>
public sealed class DashboardSettings
{
    public const string Section = "Dashboard";

    public string Username { get; set; } = "admin";
    public string? Password { get; set; }
}
