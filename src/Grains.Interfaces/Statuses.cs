namespace SandboxBroker;

/// <summary>Where a sandbox is in its life. Transitions are validated by <see cref="SandboxLifecycle"/>.</summary>
[GenerateSerializer]
public enum SandboxStatus
{
    Provisioning = 0,
    Ready = 1,
    Leased = 2,
    Releasing = 3,
    Deleting = 4,
    Deleted = 5,
    Failed = 6,
    Stale = 7,
}

/// <summary>A lease is active until its TTL or idle timeout passes (expired) or its owner lets go (released).</summary>
[GenerateSerializer]
public enum LeaseStatus
{
    Active = 0,
    Expired = 1,
    Released = 2,
}

/// <summary>What a pool does when a claim finds no ready sandbox.</summary>
[GenerateSerializer]
public enum OnEmptyPolicy
{
    /// <summary>Create a sandbox for the claim (a cold acquire), within the pool's max total.</summary>
    Create = 0,
    /// <summary>Answer NO_SANDBOXES_AVAILABLE.</summary>
    Fail = 1,
}

/// <summary>How an acquire was served: from the warm pool, by creating a sandbox, or by returning the active lease.</summary>
[GenerateSerializer]
public enum AcquireOutcome
{
    Warm = 0,
    Cold = 1,
    Repeat = 2,
}
