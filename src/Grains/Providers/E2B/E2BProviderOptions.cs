using SandboxBroker.Grains.Providers.Http;

namespace SandboxBroker.Grains.Providers.E2B;

/// <summary>The "Providers:E2B" section. The provider exists only when ApiKey is set.</summary>
public sealed class E2BProviderOptions : ProviderHttpOptions
{
    public const string Section = "Providers:E2B";
    public const string DefaultBaseUrl = "https://api.e2b.app";

    /// <summary>The template sandboxes are created from when the pool names none.</summary>
    public string Template { get; set; } = "base";

    /// <summary>
    /// The timeout, in seconds, a sandbox gets when it is created or started outside a lease: how long a warm sandbox
    /// waits before E2B pauses it (AutoPause) or kills it. A lease sets its own (see MaxTimeoutSeconds).
    /// </summary>
    public int TimeoutSeconds { get; set; } = 3600;

    /// <summary>
    /// The longest timeout the team's plan allows (E2B: 1 h on Hobby, 24 h on Pro). A lease asks for its whole length up
    /// to this; a longer lease is carried across it by the reconciler, which must therefore run more often than half of
    /// it (Broker:ReconcileInterval, 10 minutes by default).
    /// </summary>
    public int MaxTimeoutSeconds { get; set; } = 3600;

    /// <summary>
    /// Pause instead of kill when the timeout passes (the default): a warm sandbox nobody leased sleeps, costing storage
    /// only, and is resumed when a lease takes it. Off: it is killed, the lease check finds it gone and the pool makes another.
    /// </summary>
    public bool AutoPause { get; set; } = true;

    /// <summary>Create sandboxes with secured access (envd wants the access token the lease is handed). Leave it on.</summary>
    public bool Secure { get; set; } = true;

    /// <summary>A lease's timer is set this much past its deadline, so the broker's own end of the lease comes first.</summary>
    public int LeaseMarginSeconds { get; set; } = 120;
}
