namespace SandboxBroker;

/// <summary>
/// One tenant's sandbox name a claim asked for (key <c>{tenant}/{name}</c>): keeps such names unique among the tenant's live
/// sandboxes. The holder is a claim key of that tenant.
/// </summary>
[Alias("SandboxBroker.ISandboxNameGrain")]
public interface ISandboxNameGrain : IGrainWithStringKey
{
    /// <summary>Takes the name for a holder (a claim key); CONFLICT when a different holder has it. Idempotent.</summary>
    [Alias("Reserve")]
    Task Reserve(string holder);

    /// <summary>Frees the name if this holder has it.</summary>
    [Alias("Free")]
    Task Free(string holder);
}

public static class SandboxNameGrains
{
    /// <summary>Names are unique per tenant: two tenants may both run a <c>claude-issue-42</c>.</summary>
    public static ISandboxNameGrain GetSandboxName(this IGrainFactory grains, string tenant, string name) =>
        grains.GetGrain<ISandboxNameGrain>($"{tenant}/{name}");
}
