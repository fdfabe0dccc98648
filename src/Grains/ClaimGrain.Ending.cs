using Microsoft.Extensions.Logging;

namespace SandboxBroker.Grains;

/// <summary>How a claim's lease ends: the write that ends it, then the sandbox, the tenant's count and the name let go.</summary>
public sealed partial class ClaimGrain
{
    /// <summary>Ends the active lease once its deadline (TTL, or idle timeout since the last touch) has passed.</summary>
    private async Task ExpireIfDue()
    {
        if (S.Active is { } active && LeaseRules.IsDue(active, time.GetUtcNow()))
        {
            var reason = active.IdleTimeout is { } idle && active.LastActivityAt + idle <= active.ExpiresAt ? "idle timeout" : "ttl";
            await EndActive(LeaseStatus.Expired, reason);
        }
    }

    /// <summary>While the activation lives, the lease ends on time (the deadline sweep covers the rest).</summary>
    private void ArmDeadlineTimer()
    {
        _deadlineTimer?.Dispose();
        if (S.Active is not { } active)
        {
            return;
        }
        var due = active.DeadlineAt - time.GetUtcNow();
        _deadlineTimer = this.RegisterGrainTimer(
            static (self, _) => self.ExpireIfDue(),
            this,
            new GrainTimerCreationOptions { DueTime = due > TimeSpan.Zero ? due : TimeSpan.Zero, Period = Timeout.InfiniteTimeSpan });
    }

    /// <summary>Ends the active lease: history first (persisted), then the sandbox goes to deletion and the tenant's counts (its own and the owner's) drop.</summary>
    /// <param name="releaseUncertain">The sandbox may be leased to this key without an answer having said so: it is
    /// recorded as unreleased in the same write that ends the lease, and forgotten once its release goes through.</param>
    private async Task<Lease> EndActive(LeaseStatus status, string reason, bool releaseUncertain = false)
    {
        var active = S.Active!;
        var now = time.GetUtcNow();
        var ended = LeaseRules.End(active, status, reason, now);
        await Save(() =>
        {
            S.Active = null;
            S.History = LeaseRules.Prune([ended, .. S.History], Options.HistoryLimit, Options.HistoryRetention, now);
            if (releaseUncertain)
            {
                S.Unreleased = [.. S.Unreleased, active.SandboxId];
            }
            Audit(status == LeaseStatus.Expired ? "lease.expired" : "lease.released", ended, status, detail: reason);
        });
        _sandbox = null;
        _deadlineTimer?.Dispose();
        _deadlineTimer = null;
        // Best effort, each on its own and at once (independent grains, so their writes can share a batch): a failure here
        // leaves work the sweep (the sandbox), the reconciler and the tenant's check at a limit finish. The sandbox may well be leased
        // to this key (the call that leased it failed only on its way back, as its silo stopped): it is remembered, so it
        // does not stay leased with nobody holding it.
        var release = TryRelease(active.SandboxId, reason);
        var untenant = Try(() => grains.Tenant(Tenant).Forget(Key), "forget at tenant");
        var free = active.SandboxName is { } name
            ? Try(() => GrainFactory.GetSandboxName(Tenant, name).Free(Key), "free name")
            : Task.CompletedTask;
        var released = await release;
        if (released && releaseUncertain)
        {
            await Try(() => Save(() => S.Unreleased = S.Unreleased.Where(id => id != active.SandboxId).ToList()), "forget the released sandbox");
        }
        else if (!released && !releaseUncertain)
        {
            await Try(() => Save(() => S.Unreleased = [.. S.Unreleased, active.SandboxId]), "remember the unreleased sandbox");
        }
        await Task.WhenAll(untenant, free);
        return ended;
    }

    /// <summary>
    /// Asks the sandbox to end this key's lease; false when it could not be asked. A broker error is the sandbox's answer
    /// (nothing to retry) and is only logged, as every step after the lease's end is best effort.
    /// </summary>
    private async Task<bool> TryRelease(string sandboxId, string reason)
    {
        try
        {
            await grains.Sandbox(sandboxId).Release(Id, reason);
            return true;
        }
        catch (BrokerException e)
        {
            logger.LogWarning(e, "Claim {ClaimId}: sandbox {SandboxId} refused the release", Id, sandboxId);
            return true;
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Claim {ClaimId}: could not release sandbox {SandboxId}; the sweep wakes the claim to try again", Id, sandboxId);
            return false;
        }
    }

    /// <summary>Releases again the sandboxes whose release did not go through; forgets those the sandbox answered for.</summary>
    private async Task RetryUnreleased()
    {
        if (S.Unreleased.Count == 0)
        {
            return;
        }
        var answered = new List<string>();
        foreach (var id in S.Unreleased.Where(id => id != S.Active?.SandboxId))
        {
            if (await TryRelease(id, "released again: the first release did not reach the sandbox"))
            {
                answered.Add(id);
            }
        }
        if (answered.Count > 0)
        {
            await Save(() => S.Unreleased = S.Unreleased.Except(answered).ToList());
        }
    }
}
