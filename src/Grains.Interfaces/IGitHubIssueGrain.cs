namespace SandboxBroker;

/// <summary>
/// One GitHub issue's claim key (<c>github:owner/repo#42</c>): applies webhook events to the claim in order. It
/// serializes the events of one issue, refuses an event older than the last one applied (so a late "opened" never
/// resurrects a closed issue's sandbox), and applies each delivery at most once.
/// </summary>
[Alias("SandboxBroker.IGitHubIssueGrain")]
public interface IGitHubIssueGrain : IGrainWithStringKey
{
    /// <summary>Applies the event to the claim grain of this key (a trusted call as <see cref="IssueIntent.Tenant"/>).</summary>
    [Alias("Apply")]
    Task<IssueApplyResult> Apply(IssueIntent intent);

    /// <summary>What this issue's grain has applied so far.</summary>
    [Alias("GetState")]
    [AlwaysInterleave]
    Task<IssueTrack> GetState();
}

/// <summary>What an issue event asks of the issue's claim.</summary>
[GenerateSerializer]
public enum IssueIntentKind
{
    /// <summary>The issue wants a sandbox (opened, reopened, trigger label added).</summary>
    Acquire = 0,
    /// <summary>The issue is done with it (closed, deleted, transferred away, trigger label removed).</summary>
    Release = 1,
    /// <summary>Activity on the issue (a comment): pushes the idle deadline out if a lease is active.</summary>
    Touch = 2,
}

/// <summary>
/// One delivery's intent for one issue. <see cref="UpdatedAt"/> is the issue's <c>updated_at</c> in the payload: the order
/// of events. <see cref="Acquire"/> is set for <see cref="IssueIntentKind.Acquire"/>.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.IssueIntent")]
public sealed record IssueIntent(
    string DeliveryId,
    IssueIntentKind Kind,
    DateTimeOffset UpdatedAt,
    string Tenant,
    string Event,
    AcquireRequest? Acquire = null);

[GenerateSerializer]
public enum IssueApplyOutcome
{
    /// <summary>The claim was acquired, released or touched as asked.</summary>
    Applied = 0,
    /// <summary>This delivery was applied before; nothing was done again.</summary>
    AlreadyApplied = 1,
    /// <summary>The event is older than the last one applied to the key (or loses a tie): ignored.</summary>
    Stale = 2,
    /// <summary>Nothing to do: a touch or release with no active lease.</summary>
    NoActiveClaim = 3,
}

/// <summary>What applying an intent did, in words for the delivery log; the sandbox when one is held.</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.IssueApplyResult")]
public sealed record IssueApplyResult(IssueApplyOutcome Outcome, string Detail, string? SandboxId = null);

/// <summary>The ordering state of one issue: the last applied <c>updated_at</c> and kind, and how many deliveries are remembered.</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.IssueTrack")]
public sealed record IssueTrack(DateTimeOffset? LastUpdatedAt, IssueIntentKind? LastKind, string? LastDeliveryId, int RememberedDeliveries);
