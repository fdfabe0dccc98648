using Microsoft.Extensions.Logging;
using Orleans.Storage;

namespace SandboxBroker.Grains;

/// <summary>A sandbox's deletion: started once its record says so, retried with backoff until the provider confirms.</summary>
public sealed partial class SandboxGrain
{
    private async Task BeginDeletion(string reason, string? actor = null)
    {
        S.DeleteAttempts = 0;
        // Connection details can hold secrets (a postgres-schema password, an E2B access token) and are of no use to
        // anyone once the sandbox is on its way out: they are not kept past this write.
        S.Connection = new Dictionary<string, string>();
        // Stored as due now: should this activation die before its first attempt, the sweep finds it at once.
        S.RetryAt = time.GetUtcNow();
        await MoveTo(SandboxStatus.Deleting, "sandbox.deleting", actor, reason);
        ScheduleDeleteAttempt(TimeSpan.Zero);
    }

    private void ScheduleDeleteAttempt(TimeSpan due)
    {
        _retryTimer?.Dispose();
        _retryTimer = this.RegisterGrainTimer(
            static (self, ct) => self.TryDelete(),
            this,
            new GrainTimerCreationOptions { DueTime = due, Period = Timeout.InfiniteTimeSpan, KeepAlive = true });
    }

    private async Task TryDelete()
    {
        if (_deleting || S.Status != SandboxStatus.Deleting)
        {
            return;
        }
        _deleting = true;
        try
        {
            var spec = S.Spec!;
            using var timeout = new CancellationTokenSource(ProviderCallTimeout);
            await providers.Get(spec.Provider).DeleteAsync(Id, S.ExternalId, timeout.Token);
            S.LastError = null;
            S.RetryAt = null;
            await MoveTo(SandboxStatus.Deleted, "sandbox.deleted");
            _retryTimer?.Dispose();
            _retryTimer = null;
            // Nothing is left for this activation to do; left to idle collection, deleted sandboxes were half of a busy
            // silo's activations, held in memory for its collection age, and walked by Orleans' gauges every second.
            DeactivateOnIdle();
        }
        catch (Exception e) when (e is not InconsistentStateException)
        {
            S.DeleteAttempts++;
            S.LastError = e.Message;
            var delay = Backoff(S.DeleteAttempts);
            S.RetryAt = time.GetUtcNow() + delay; // the sweep's wake time, should this activation not live that long
            logger.LogWarning(e, "Delete of sandbox {SandboxId} failed (attempt {Attempt}); retrying in {Delay}", Id, S.DeleteAttempts, delay);
            Record("sandbox.delete-failed", SandboxStatus.Deleting, SandboxStatus.Deleting, detail: e.Message);
            await Store();
            ScheduleDeleteAttempt(delay);
        }
        finally
        {
            _deleting = false;
        }
    }

    private TimeSpan Backoff(int attempt)
    {
        var min = options.Value.DeleteRetryMin;
        var max = options.Value.DeleteRetryMax;
        var exponential = min * Math.Pow(2, Math.Min(attempt - 1, 20));
        var capped = exponential < max ? exponential : max;
        return capped * (0.8 + Random.Shared.NextDouble() * 0.4); // jitter
    }
}
