namespace SandboxBroker;

/// <summary>The labels the broker puts on every provider sandbox, so ownership can be proven from the provider side.</summary>
public static class BrokerLabels
{
    public const string Deployment = "sandboxbroker.deployment";
    public const string SandboxId = "sandboxbroker.sandbox-id";
    public const string Pool = "sandboxbroker.pool";
    public const string ClaimKey = "sandboxbroker.claim-key";
}
