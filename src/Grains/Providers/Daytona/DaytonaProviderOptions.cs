using SandboxBroker.Grains.Providers.Http;

namespace SandboxBroker.Grains.Providers.Daytona;

/// <summary>The "Providers:Daytona" section. The provider exists only when ApiKey is set.</summary>
public sealed class DaytonaProviderOptions : ProviderHttpOptions
{
    public const string Section = "Providers:Daytona";
    public const string DefaultBaseUrl = "https://app.daytona.io/api";

    /// <summary>The snapshot sandboxes are created from when the pool names no template (null: Daytona's default).</summary>
    public string? Snapshot { get; set; }

    /// <summary>Daytona stops a sandbox after this many idle minutes (0: never); the broker starts it again on acquire.</summary>
    public int AutoStopIntervalMinutes { get; set; } = 15;

    /// <summary>The region (Daytona "target"), or null for the organisation's default.</summary>
    public string? Target { get; set; }
}
