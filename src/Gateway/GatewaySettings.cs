namespace SandboxBroker.Gateway;

/// <summary>The gateway's own settings ("Gateway" section).</summary>
public sealed class GatewaySettings
{
    public const string Section = "Gateway";

    /// <summary>Where the gateway listens; loopback by default.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>
    /// Claim keys this gateway lets have a new lease's acquire waiting on the cluster at once; an acquire for another key
    /// is then refused with 503 OVERLOADED (0: no limit). Concurrent acquires of one key count once, and likely repeats
    /// go in their own lane (<see cref="MaxRepeatsInFlight"/>). Sized for new leases on one silo of two cores, whose
    /// capacity is about 650-870 a second (docs/BENCHMARKS.md, round 5): at 128, offered twice that, the broker still
    /// completed 92 % of what it completed at 1,000/s (588 of 641 a second); at 256 it completed 51-68 % (the refusals
    /// cost the cores the leases needed) with a p99 of up to a second. Raise it with the silos.
    /// </summary>
    public int MaxAcquiresInFlight { get; set; } = 128;

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
