namespace SandboxBroker;

/// <summary>One owner (tenant/owner): at most a configured number of concurrently active leases.</summary>
[Alias("SandboxBroker.IOwnerGrain")]
public interface IOwnerGrain : IGrainWithStringKey
{
    /// <summary>Counts the claim as active; OWNER_LIMIT_REACHED at the limit. Idempotent per claim key.</summary>
    [Alias("Admit")]
    Task Admit(string claimKey);

    /// <summary>The claim's lease ended. Idempotent.</summary>
    [Alias("Forget")]
    Task Forget(string claimKey);

    [Alias("GetUsage")]
    Task<OwnerUsage> GetUsage();
}
