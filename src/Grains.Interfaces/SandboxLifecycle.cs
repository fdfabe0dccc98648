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
        // Releasing is no longer entered (a release goes straight to deleting); records written before still leave it.
        [SandboxStatus.Leased] = [SandboxStatus.Deleting, SandboxStatus.Stale, SandboxStatus.Failed],
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
    public static IReadOnlyList<SandboxStatus> Live { get; } =
        [SandboxStatus.Provisioning, SandboxStatus.Ready, SandboxStatus.Leased, SandboxStatus.Releasing, SandboxStatus.Deleting, SandboxStatus.Failed];

    /// <summary>Sandboxes on their way out: no claim holds them and a deletion is (or is about to be) under way.</summary>
    public static IReadOnlyList<SandboxStatus> PendingDeletion { get; } = [SandboxStatus.Releasing, SandboxStatus.Deleting];

    public static bool IsLive(SandboxStatus status) => Live.Contains(status);

    public static bool IsPendingDeletion(SandboxStatus status) => PendingDeletion.Contains(status);

    /// <summary>The names of <paramref name="statuses"/> as the index stores them.</summary>
    public static string[] Format(IEnumerable<SandboxStatus> statuses) => statuses.Select(Format).ToArray();

    public static string Format(SandboxStatus status) => status.ToString().ToLowerInvariant();

    public static string Format(LeaseStatus status) => status.ToString().ToLowerInvariant();
}
