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
    /// E2B's sandbox time to live, in seconds, set at create (and on resume). E2B kills (or, with AutoPause, pauses)
    /// the sandbox when it runs out; an acquire then finds it gone and takes another, and the reconciler marks the
    /// record stale. Keep it above the pools' MaxTtl plus the time a sandbox waits warm.
    /// </summary>
    public int TimeoutSeconds { get; set; } = 3600;

    /// <summary>Pause instead of kill when the timeout passes; a paused sandbox is resumed on acquire.</summary>
    public bool AutoPause { get; set; }
}
