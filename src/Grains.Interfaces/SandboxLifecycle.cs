namespace SandboxBroker;

/// <summary>
/// The sandbox state machine, in one place. Every status change goes through <see cref="Ensure"/>;
/// an invalid transition is an error, never a silent overwrite.
/// </summary>
public static class SandboxLifecycle
{
    private static readonly Dictionary<SandboxStatus, SandboxStatus[]> Allowed = new()
    {
        [SandboxStatus.Provisioning] = [SandboxStatus.Ready, SandboxStatus.Failed, SandboxStatus.Deleting],
        [SandboxStatus.Ready] = [SandboxStatus.Leased, SandboxStatus.Deleting, SandboxStatus.Stale, SandboxStatus.Failed],
        [SandboxStatus.Leased] = [SandboxStatus.Releasing, SandboxStatus.Stale, SandboxStatus.Failed],
        [SandboxStatus.Releasing] = [SandboxStatus.Deleting],
        [SandboxStatus.Deleting] = [SandboxStatus.Deleted, SandboxStatus.Stale],
        [SandboxStatus.Failed] = [SandboxStatus.Deleting],
        [SandboxStatus.Stale] = [SandboxStatus.Deleting, SandboxStatus.Deleted],
        [SandboxStatus.Deleted] = [],
    };

    public static bool CanMove(SandboxStatus from, SandboxStatus to) => Allowed[from].Contains(to);

    public static void Ensure(string sandboxId, SandboxStatus from, SandboxStatus to)
    {
        if (!CanMove(from, to))
        {
            throw new BrokerException(ErrorCodes.InvalidTransition,
                $"Sandbox {sandboxId} cannot move from {Format(from)} to {Format(to)}.");
        }
    }

    /// <summary>Live sandboxes exist (or may exist) at the provider and count against a pool's max total.</summary>
    public static bool IsLive(SandboxStatus status) => status is not (SandboxStatus.Deleted or SandboxStatus.Stale);

    public static string Format(SandboxStatus status) => status.ToString().ToLowerInvariant();

    public static string Format(LeaseStatus status) => status.ToString().ToLowerInvariant();
}
