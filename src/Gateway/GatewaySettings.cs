namespace SandboxBroker.Gateway;

/// <summary>The gateway's own settings ("Gateway" section).</summary>
public sealed class GatewaySettings
{
    public const string Section = "Gateway";

    /// <summary>Where the gateway listens; loopback by default.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>
    /// Claim keys this gateway lets have an acquire waiting on the cluster at once; an acquire for another key is
    /// then refused with 503 OVERLOADED (0: no limit). Concurrent acquires of one key count once. Repeats count too (the
    /// gateway cannot tell one from a new lease before the grain answers), so the limit must leave room for the repeats
    /// of many keys: at 64, repeats of 1,000 keys at 10,000/s were refused two times in three; at 256 none were, and a
    /// saturated cluster (one silo on two cores: about 800 new leases a second) keeps a queue of about 300 ms
    /// (docs/BENCHMARKS.md, round 4).
    /// </summary>
    public int MaxAcquiresInFlight { get; set; } = 256;

    public const int DefaultMinAcquiresInFlightPerTenant = 16;

    public const int DefaultMaxRepeatsInFlight = 4096;

    /// <summary>
    /// Acquires of claims this gateway last saw holding a lease (likely repeats, answered from the grain's memory) that may
    /// wait on the cluster at once, beside <see cref="MaxAcquiresInFlight"/>; 0: no limit.
    /// </summary>
    public int MaxRepeatsInFlight { get; set; } = DefaultMaxRepeatsInFlight;

    /// <summary>
    /// Of <see cref="MaxAcquiresInFlight"/>, the slots a tenant can always get and that one busy tenant leaves free for
    /// others: each tenant's share is the total minus this, divided by the tenants with an acquire in flight, and never
    /// less than this (see <c>AcquireAdmission</c>).
    /// </summary>
    public int MinAcquiresInFlightPerTenant { get; set; } = DefaultMinAcquiresInFlightPerTenant;
}
