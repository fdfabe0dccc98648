namespace SandboxBroker.Gateway;

/// <summary>The gateway's own settings ("Gateway" section).</summary>
public sealed class GatewaySettings
{
    public const string Section = "Gateway";

    /// <summary>Where the gateway listens; loopback by default.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>
    /// Claim keys this gateway lets have an acquire waiting on the cluster at once; an acquire for another key is
    /// then refused with 503 OVERLOADED (0: no limit). Concurrent acquires of one key count once. A repeat takes a
    /// few milliseconds and a warm acquire tens, so the default leaves room for bursts and keeps a queue behind a
    /// saturated cluster to about two seconds (<see cref="Api.AcquireAdmission"/>).
    /// </summary>
    public int MaxAcquiresInFlight { get; set; } = 256;
}
