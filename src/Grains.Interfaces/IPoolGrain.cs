namespace SandboxBroker;

/// <summary>
/// One pool (a template and size): keeps MinReady sandboxes warm, never more than MaxTotal live,
/// and hands each ready sandbox out once.
/// </summary>
[Alias("SandboxBroker.IPoolGrain")]
public interface IPoolGrain : IGrainWithStringKey
{
    [Alias("GetStatus")]
    [AlwaysInterleave]
    Task<PoolStatus> GetStatus();

    /// <summary>The pool's configuration; NOT_FOUND when the pool was never created.</summary>
    [Alias("GetConfig")]
    [AlwaysInterleave]
    Task<PoolConfig> GetConfig();

    /// <summary>Creates or changes the pool. Answers the stored configuration.</summary>
    [Alias("Configure")]
    Task<PoolConfig> Configure(PoolConfig config);

    /// <summary>A ready sandbox (warm), or a reserved id to create when the policy says create; NO_SANDBOXES_AVAILABLE otherwise.</summary>
    [Alias("Checkout")]
    Task<PoolCheckout> Checkout(string claimKey);

    /// <summary>Gives back a sandbox that was checked out but never leased.</summary>
    [Alias("Return")]
    Task Return(string sandboxId);

    /// <summary>A sandbox of this pool moved from one status to another (sent by the sandbox grain after it stored the change).</summary>
    /// <param name="storedBy">The Postgres transaction that stored the change (0: not known): a recount whose snapshot
    /// includes it already counts this move.</param>
    [Alias("OnSandboxStatus")]
    [OneWay] // the sandbox needs no answer: a lost notice is corrected by the pool's recount from the index
    Task OnSandboxStatus(string sandboxId, SandboxStatus from, SandboxStatus to, ulong storedBy);
}
