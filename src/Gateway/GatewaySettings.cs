namespace SandboxBroker.Gateway;

/// <summary>The gateway's own settings ("Gateway" section).</summary>
public sealed class GatewaySettings
{
    public const string Section = "Gateway";

    /// <summary>Where the gateway listens; loopback by default.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>
    /// The gateway hosts a silo in its own process instead of being a client of separate silos: the REST API calls the grains
    /// without crossing a socket or a second thread pool (rounds 22 to 24 in docs/BENCHMARKS.md: a quarter or more off the CPU
    /// of a new lease at 100/s, and a lower p99 at every rate). What ./run.sh starts by default. The silo reads the Orleans,
    /// Broker, Providers and Dashboard sections as src/Silo does and joins the same cluster, so several such gateways, or these
    /// and separate silos, make one cluster. The dashboard is then at /dashboard and the silo's metrics at /metrics/silo on the
    /// gateway's port.
    /// </summary>
    public bool HostsSilo { get; set; }

    /// <summary>
    /// Claim keys this gateway lets have a new lease's acquire waiting on the cluster at once; an acquire for another key
    /// is then refused with 503 OVERLOADED (0: no limit). Concurrent acquires of one key count once, and likely repeats
    /// go in their own lane (<see cref="MaxRepeatsInFlight"/>). Sized for new leases on one silo of two cores: about
    /// 0.1-0.2 s of its capacity, so an admitted acquire waits at most that long behind the others. Chosen in round 5 (650-870
    /// new leases a second; at 256 it then completed 51-68 % at twice its rate). Measured again in round 18, at 1,000-1,340
    /// a second (docs/BENCHMARKS.md): at 1,000/s, 256 refused about as many as 128 on the same spell of the machine; at 2,000/s
    /// offered both completed as much, and with 256 the admitted acquires waited twice as long (p99 428-463 ms against
    /// 175-256). Raise it with the silos.
    /// </summary>
    public int MaxAcquiresInFlight { get; set; } = 128;

    public const int DefaultMinAcquiresInFlightPerTenant = 16;

    /// <summary>
    /// Acquires the slots of <see cref="MaxAcquiresInFlight"/> (or the tenant's share of them) refuse that may instead wait
    /// for one, each for at most <see cref="AcquireQueueTimeout"/>; a caller that finds this many waiting is refused at once
    /// (0: none waits). A buffer for a stall of a few hundred milliseconds, not for overload: under overload the queue is
    /// full and the rest are refused at once. As many as the slots, so a stall that fills the slots can fill them twice.
    /// </summary>
    public int MaxAcquiresQueued { get; set; } = 128;

    /// <summary>
    /// How long an acquire waits in the queue (<see cref="MaxAcquiresQueued"/>) for a slot before it is refused with 503
    /// OVERLOADED (0: none waits). Longer than the stalls the queue is for (round 20 in docs/BENCHMARKS.md: about 200 ms), and
    /// short beside a client's timeout, so a refusal still comes while a retry elsewhere is worth it.
    /// </summary>
    public TimeSpan AcquireQueueTimeout { get; set; } = TimeSpan.FromMilliseconds(250);

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
