using Microsoft.Extensions.Logging;
using Orleans.Storage;

namespace SandboxBroker.Grains;

[GenerateSerializer]
public sealed class GitHubIssueState
{
    /// <summary>The issue's updated_at of the last acquire or release applied; events older than this are stale.</summary>
    [Id(0)] public DateTimeOffset? LastUpdatedAt { get; set; }
    [Id(1)] public IssueIntentKind? LastKind { get; set; }
    [Id(2)] public string? LastDeliveryId { get; set; }
    /// <summary>Deliveries applied recently, by id: a delivery processed twice (a crash before it was marked) does nothing the second time.</summary>
    [Id(3)] public Dictionary<string, AppliedDelivery> Applied { get; set; } = new(StringComparer.Ordinal);
}

[GenerateSerializer]
public sealed class AppliedDelivery
{
    [Id(0)] public IssueApplyOutcome Outcome { get; set; }
    [Id(1)] public string Detail { get; set; } = "";
    [Id(2)] public string? SandboxId { get; set; }
    [Id(3)] public DateTimeOffset At { get; set; }
}

/// <summary>
/// One GitHub issue (key: its claim key). A single activation applies the issue's events one at a time, in the order
/// of the issue's <c>updated_at</c>:
/// <list type="bullet">
/// <item>an acquire or release older than the last one applied is stale and ignored, so a late "opened" cannot bring
/// back a closed issue's sandbox;</item>
/// <item>at an equal <c>updated_at</c>, a release wins: an acquire after a release with the same timestamp is stale, a
/// release after an acquire with the same timestamp applies. GitHub's timestamps have whole seconds, so "closed" and a
/// late "opened" of the same second cannot be told apart; keeping a sandbox for a closed issue costs money and hides
/// the error, while a lost reopen of the same second is visible (no sandbox) and is fixed by the next event;</item>
/// <item>touches (comments) never move the order: they touch an active lease or do nothing;</item>
/// <item>each delivery id is applied once; the effect comes first and the record after it, so a crash in between
/// repeats an effect that is itself idempotent (acquire returns the active lease, release finds none).</item>
/// </list>
/// The state (the last applied updated_at) is kept for the life of the issue key, so an event of any age is judged right.
/// </summary>
public sealed class GitHubIssueGrain(
    [PersistentState("github-issue", StorageNames.AdoNet)] IPersistentState<GitHubIssueState> state,
    TimeProvider time,
    ILogger<GitHubIssueGrain> logger) : Grain, IGitHubIssueGrain
{
    /// <summary>Applied delivery ids are remembered this long (GitHub keeps redelivery possible for 3 days)...</summary>
    public static readonly TimeSpan RememberFor = TimeSpan.FromDays(7);

    /// <summary>...and at most this many per issue.</summary>
    public const int MaxRemembered = 256;

    private string Key => this.GetPrimaryKeyString();
    private GitHubIssueState S => state.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        ClaimKey.Validate(Key);
        return Task.CompletedTask;
    }

    public async Task<IssueApplyResult> Apply(IssueIntent intent)
    {
        if (intent.Kind == IssueIntentKind.Acquire && intent.Acquire is null)
        {
            throw new BrokerException(ErrorCodes.InvalidArgument, "an acquire intent needs an acquire request") { Field = "acquire" };
        }
        if (S.Applied.TryGetValue(intent.DeliveryId, out var done))
        {
            return new IssueApplyResult(IssueApplyOutcome.AlreadyApplied, $"already applied: {done.Detail}", done.SandboxId);
        }
        if (StaleReason(intent) is { } stale)
        {
            logger.LogInformation("Issue {ClaimKey}: delivery {DeliveryId} ({Event}) is stale: {Reason}", Key, intent.DeliveryId, intent.Event, stale);
            return new IssueApplyResult(IssueApplyOutcome.Stale, $"stale event: {stale}");
        }

        var result = await Effect(intent);

        var now = time.GetUtcNow();
        if (intent.Kind != IssueIntentKind.Touch)
        {
            S.LastUpdatedAt = S.LastUpdatedAt is { } last && last > intent.UpdatedAt ? last : intent.UpdatedAt;
            S.LastKind = intent.Kind;
            S.LastDeliveryId = intent.DeliveryId;
        }
        S.Applied[intent.DeliveryId] = new AppliedDelivery { Outcome = result.Outcome, Detail = result.Detail, SandboxId = result.SandboxId, At = now };
        Prune(now);
        try
        {
            await state.WriteOrReloadAsync(this);
        }
        catch (InconsistentStateException e)
        {
            // Another activation wrote first (a membership change): its record wins; the caller retries and reaches it.
            DeactivateOnIdle();
            throw new BrokerException(ErrorCodes.ConcurrentUpdate, $"issue '{Key}' was updated concurrently; retry", e) { RetryAfterSeconds = 0 };
        }
        logger.LogInformation("Issue {ClaimKey}: delivery {DeliveryId} ({Event}, updated_at {UpdatedAt:o}): {Outcome} {Detail}",
            Key, intent.DeliveryId, intent.Event, intent.UpdatedAt, result.Outcome, result.Detail);
        return result;
    }

    public Task<IssueTrack> GetState() =>
        Task.FromResult(new IssueTrack(S.LastUpdatedAt, S.LastKind, S.LastDeliveryId, S.Applied.Count));

    /// <summary>Why the intent must not be applied, or null. Touches are never stale: they change nothing when no lease is active.</summary>
    private string? StaleReason(IssueIntent intent)
    {
        if (intent.Kind == IssueIntentKind.Touch || S.LastUpdatedAt is not { } last)
        {
            return null;
        }
        if (intent.UpdatedAt < last)
        {
            return $"updated_at {intent.UpdatedAt:o} is older than {last:o} already applied ({Format(S.LastKind)})";
        }
        if (intent.UpdatedAt == last && intent.Kind == IssueIntentKind.Acquire && S.LastKind == IssueIntentKind.Release)
        {
            return $"updated_at {intent.UpdatedAt:o} equals that of the release already applied; a release wins a tie";
        }
        return null;
    }

    private async Task<IssueApplyResult> Effect(IssueIntent intent)
    {
        // The webhook's keys belong to the webhook's tenant: a tenant's own acquire of the same key is another claim.
        var claim = GrainFactory.GetClaim(intent.Tenant, Key);
        switch (intent.Kind)
        {
            case IssueIntentKind.Acquire:
            {
                var acquired = await RetryConcurrent(() => claim.Acquire(intent.Acquire!));
                var how = acquired.Outcome switch
                {
                    AcquireOutcome.Repeat => "already held",
                    AcquireOutcome.Warm => "acquired (warm)",
                    _ => "acquired (cold)",
                };
                return new IssueApplyResult(IssueApplyOutcome.Applied,
                    $"{how}: lease {acquired.Lease.Number}, sandbox {acquired.Lease.SandboxId} ({acquired.Lease.SandboxName ?? acquired.Sandbox.Name})",
                    acquired.Lease.SandboxId);
            }
            case IssueIntentKind.Release:
            {
                var ended = await RetryConcurrent(() => claim.Release($"github {intent.Event} (delivery {intent.DeliveryId})"));
                return ended is null
                    ? new IssueApplyResult(IssueApplyOutcome.NoActiveClaim, "no active lease to release")
                    : new IssueApplyResult(IssueApplyOutcome.Applied, $"released: lease {ended.Number}, sandbox {ended.SandboxId}", ended.SandboxId);
            }
            default:
                try
                {
                    var touched = await RetryConcurrent(() => claim.Touch());
                    return new IssueApplyResult(IssueApplyOutcome.Applied, $"touched: lease {touched.Number}", touched.SandboxId);
                }
                catch (BrokerException e) when (e.Code == ErrorCodes.LeaseNotActive)
                {
                    return new IssueApplyResult(IssueApplyOutcome.NoActiveClaim, "no active lease to touch");
                }
        }
    }

    /// <summary>A claim write that lost to another activation is retried; the retry reaches the winner.</summary>
    private static async Task<T> RetryConcurrent<T>(Func<Task<T>> call)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (BrokerException e) when (e.Code == ErrorCodes.ConcurrentUpdate && attempt < 4)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(25 * attempt));
            }
        }
    }

    private void Prune(DateTimeOffset now)
    {
        var cutoff = now - RememberFor;
        foreach (var old in S.Applied.Where(a => a.Value.At < cutoff).Select(a => a.Key).ToList())
        {
            S.Applied.Remove(old);
        }
        if (S.Applied.Count > MaxRemembered)
        {
            foreach (var old in S.Applied.OrderBy(a => a.Value.At).Take(S.Applied.Count - MaxRemembered).Select(a => a.Key).ToList())
            {
                S.Applied.Remove(old);
            }
        }
    }

    private static string Format(IssueIntentKind? kind) => kind?.ToString().ToLowerInvariant() ?? "none";
}
