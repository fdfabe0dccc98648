namespace SandboxBroker.Gateway;

/// <summary>The gateway's own settings ("Gateway" section).</summary>
public sealed class GatewaySettings
{
    public const string Section = "Gateway";

    /// <summary>Where the gateway listens; loopback by default.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";
}
