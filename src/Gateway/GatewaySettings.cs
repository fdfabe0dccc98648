namespace SandboxBroker.Gateway;

/// <summary>The gateway's own settings ("Gateway" section).</summary>
public sealed class GatewaySettings
{
    public const string Section = "Gateway";

    /// <summary>Where the gateway listens; loopback by default.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>
    /// Claim keys this gateway lets have an acquire waiting on the cluster at once; an acquire for another key is
    /// then refused with 503 OVERLOADED (0: no limit). Concurrent acquires of one key count once. The limit is what the
    /// cluster behind this gateway completes within a latency budget: one silo on two cores completes about 800 new
    /// warm leases a second, so 64 in flight keep an admitted acquire's wait near 80 ms when it is saturated, and the
    /// callers above it are told at once instead of queueing (docs/BENCHMARKS.md, round 4). Raise it with the silos.
    /// </summary>
    public int MaxAcquiresInFlight { get; set; } = 64;
}
