namespace SandboxBroker;

/// <summary>One sandbox name a claim asked for: keeps such names unique among live sandboxes.</summary>
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
