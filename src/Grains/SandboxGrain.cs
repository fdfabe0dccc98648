using Orleans.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

[GenerateSerializer]
public sealed class SandboxState
{
    [Id(0)] public SandboxStatus Status { get; set; }
    [Id(1)] public SandboxSpec? Spec { get; set; }
    [Id(2)] public string? ExternalId { get; set; }
    [Id(3)] public string? ClaimKey { get; set; }
    [Id(4)] public long LeaseNumber { get; set; }
    [Id(5)] public string? Tenant { get; set; }
    [Id(6)] public string? Owner { get; set; }
    [Id(7)] public string? LeaseName { get; set; }
    [Id(8)] public DateTimeOffset? LeaseExpiresAt { get; set; }
    [Id(9)] public DateTimeOffset CreatedAt { get; set; }
    [Id(10)] public DateTimeOffset UpdatedAt { get; set; }
    [Id(11)] public Dictionary<string, string> Connection { get; set; } = new();
    [Id(12)] public string? LastError { get; set; }
    [Id(13)] public int DeleteAttempts { get; set; }
}

/// <summary>
/// One sandbox. Its id is persisted in 'provisioning' before the provider's create is called (and the
/// provider sandbox carries it as a label), so a crash mid-create leaves something the reconciler finds.
/// A sandbox is deleted at the provider only after its record says so, and deletion is retried with
/// backoff (a timer) and across restarts (a reminder) until the provider confirms.
/// </summary>
public sealed class SandboxGrain(
    [PersistentState("sandbox", StorageNames.Broker)] IPersistentState<SandboxState> state,
    SandboxProviderRegistry providers,
    IBrokerJournal journal,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    ILogger<SandboxGrain> logger) : Grain, ISandboxGrain, IRemindable
{
    private const string DeleteReminder = "delete";
    private const int CreateAttempts = 3;
    private static readonly TimeSpan ProviderCallTimeout = TimeSpan.FromMinutes(2);

    private IGrainTimer? _retryTimer;
    private bool _deleting;

    /// <summary>Created by this activation: a cold create's lease, which follows at once, need not ask the provider again.</summary>
    private bool _justCreated;

    private string Id => this.GetPrimaryKeyString();
    private SandboxState S => state.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (S.Spec is not null && S.Status == SandboxStatus.Deleting)
        {
            ScheduleDeleteAttempt(TimeSpan.Zero);
        }
        return Task.CompletedTask;
    }

    public async Task<SandboxInfo> Provision(SandboxSpec spec)
    {
        if (S.Spec is null)
        {
            var now = time.GetUtcNow();
            S.Spec = spec;
            S.Status = SandboxStatus.Provisioning;
            S.CreatedAt = now;
            S.UpdatedAt = now;
            await state.WriteOrReloadAsync(this);
            await Record("sandbox.provisioning", null, SandboxStatus.Provisioning);
        }
        switch (S.Status)
        {
            case SandboxStatus.Provisioning:
                await CreateAtProvider();
                return Info();
            case SandboxStatus.Ready or SandboxStatus.Leased:
                return Info();
            default:
                throw new BrokerException(ErrorCodes.ProviderError, $"sandbox {Id} is {SandboxLifecycle.Format(S.Status)}: {S.LastError}");
        }
    }

    public async Task<SandboxInfo> Lease(SandboxLeaseRequest request)
    {
        RequireExists();
        if (S.Status == SandboxStatus.Leased && S.ClaimKey == request.ClaimKey && S.LeaseNumber == request.LeaseNumber)
        {
            return Info();
        }
        if (S.Status != SandboxStatus.Ready)
        {
            throw new BrokerException(ErrorCodes.Conflict, $"sandbox {Id} is {SandboxLifecycle.Format(S.Status)}{(S.ClaimKey is null ? "" : $" (claim {S.ClaimKey})")}, not ready");
        }
        await PrepareForLease(request.ClaimKey);
        S.ClaimKey = request.ClaimKey;
        S.LeaseNumber = request.LeaseNumber;
        S.Tenant = request.Tenant;
        S.Owner = request.Owner;
        S.LeaseName = request.Name;
        S.LeaseExpiresAt = request.ExpiresAt;
        await MoveTo(SandboxStatus.Leased, "sandbox.leased", request.ClaimKey);
        return Info();
    }

    public async Task Release(string claimKey, string reason)
    {
        if (S.Spec is null || S.ClaimKey != claimKey)
        {
            return; // Not this claim's sandbox (any more): nothing to give back.
        }
        if (S.Status == SandboxStatus.Leased)
        {
            S.LastError = null;
            S.Status = SandboxStatus.Releasing; // recorded, then straight on to deleting in the same write
            await Record("sandbox.releasing", SandboxStatus.Leased, SandboxStatus.Releasing, claimKey, reason);
            await BeginDeletion(reason, SandboxStatus.Releasing);
        }
        else if (S.Status == SandboxStatus.Releasing)
        {
            await BeginDeletion(reason, SandboxStatus.Releasing);
        }
    }

    public async Task Discard(string reason)
    {
        if (S.Spec is null)
        {
            return;
        }
        switch (S.Status)
        {
            case SandboxStatus.Provisioning or SandboxStatus.Ready or SandboxStatus.Failed or SandboxStatus.Stale:
                await BeginDeletion(reason, S.Status);
                break;
            case SandboxStatus.Releasing:
                await BeginDeletion(reason, SandboxStatus.Releasing);
                break;
            case SandboxStatus.Deleting:
                ScheduleDeleteAttempt(TimeSpan.Zero); // a sweep asked: try again now
                break;
            case SandboxStatus.Leased:
                throw new BrokerException(ErrorCodes.Conflict, $"sandbox {Id} is leased to claim {S.ClaimKey}; release the claim instead");
        }
    }

    public async Task<SandboxInfo?> ResumeProvisioning()
    {
        if (S.Spec is null)
        {
            return null;
        }
        if (S.Status == SandboxStatus.Provisioning)
        {
            logger.LogInformation("Resuming the interrupted create of sandbox {SandboxId}", Id);
            await CreateAtProvider();
        }
        return Info();
    }

    public async Task MarkStale(string reason)
    {
        if (S.Spec is null || !SandboxLifecycle.CanMove(S.Status, SandboxStatus.Stale))
        {
            return;
        }
        var claim = S.Status == SandboxStatus.Leased ? S.ClaimKey : null;
        S.LastError = reason;
        await MoveTo(SandboxStatus.Stale, "sandbox.stale", actor: "reconciler", reason);
        await UnregisterDeleteReminder();
        if (claim is not null)
        {
            await GrainFactory.GetGrain<IClaimGrain>(claim).SandboxLost(Id, reason);
        }
    }

    public Task<SandboxInfo?> Get() => Task.FromResult(S.Spec is null ? null : Info());

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != DeleteReminder)
        {
            return;
        }
        if (S.Spec is null || S.Status is SandboxStatus.Deleted or SandboxStatus.Stale)
        {
            await UnregisterDeleteReminder(); // fired again after the work was done: nothing to do
            return;
        }
        if (S.Status == SandboxStatus.Deleting)
        {
            await TryDelete();
        }
    }

    private async Task CreateAtProvider()
    {
        var spec = S.Spec!;
        var labels = new Dictionary<string, string>(spec.Labels)
        {
            [BrokerLabels.Deployment] = options.Value.DeploymentId,
            [BrokerLabels.SandboxId] = Id,
            [BrokerLabels.Pool] = spec.Pool,
        };
        var provider = providers.Get(spec.Provider);
        Exception? last = null;
        for (var attempt = 1; attempt <= CreateAttempts; attempt++)
        {
            try
            {
                using var timeout = new CancellationTokenSource(ProviderCallTimeout);
                var created = await provider.CreateAsync(new ProviderCreateRequest(Id, spec.Name, spec.Template, labels), timeout.Token);
                S.ExternalId = created.ExternalId;
                S.Connection = new Dictionary<string, string>(created.Connection);
                S.LastError = null;
                await MoveTo(SandboxStatus.Ready, "sandbox.ready");
                _justCreated = true;
                return;
            }
            catch (Exception e) when (e is ProviderException { Transient: true } or TimeoutException or OperationCanceledException or HttpRequestException)
            {
                last = e;
                logger.LogWarning(e, "Create of sandbox {SandboxId} at {Provider} failed (attempt {Attempt})", Id, spec.Provider, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt * attempt));
            }
            catch (Exception e) when (e is ProviderException or BrokerException)
            {
                last = e;
                break;
            }
        }
        S.LastError = last?.Message;
        await MoveTo(SandboxStatus.Failed, "sandbox.failed", detail: last?.Message);
        // The provider may hold half a sandbox: delete whatever carries this id.
        await BeginDeletion("create failed", SandboxStatus.Failed);
        throw new BrokerException(
            last is ProviderException { Transient: true } or TimeoutException or OperationCanceledException or HttpRequestException
                ? ErrorCodes.ProviderUnavailable
                : ErrorCodes.ProviderError,
            $"could not create sandbox {Id} at provider '{spec.Provider}': {last?.Message}") { RetryAfterSeconds = 5 };
    }

    /// <summary>
    /// Before a ready sandbox is leased, makes sure the provider still has it running: a sandbox that waited in the
    /// pool may have been stopped (Daytona's auto-stop: it is started), failed (it is deleted, and the claim takes
    /// another) or vanished (it becomes stale, and the claim takes another). Then, where the provider can relabel,
    /// the sandbox gets the claim-key label (cold creates carry it from the start).
    /// </summary>
    private async Task PrepareForLease(string claimKey)
    {
        var spec = S.Spec!;
        var provider = providers.Get(spec.Provider);
        using var timeout = new CancellationTokenSource(ProviderCallTimeout);
        var createdForThisClaim = spec.Labels.TryGetValue(BrokerLabels.ClaimKey, out var labelled) && labelled == claimKey;
        if (!(_justCreated && createdForThisClaim))
        {
            ProviderSandbox? sandbox;
            try
            {
                sandbox = await provider.GetAsync(Id, S.ExternalId, timeout.Token);
            }
            catch (ProviderException e)
            {
                throw Unavailable(e);
            }
            switch (sandbox?.State)
            {
                case null:
                    S.LastError = "the provider no longer has this sandbox";
                    await MoveTo(SandboxStatus.Stale, "sandbox.stale", actor: "lease", S.LastError);
                    throw new BrokerException(ErrorCodes.Conflict, $"sandbox {Id} no longer exists at provider '{spec.Provider}'");
                case ProviderSandboxState.Failed:
                    await FailBeforeLease("the provider reports the sandbox failed");
                    break;
                case ProviderSandboxState.Stopped or ProviderSandboxState.Creating:
                    try
                    {
                        logger.LogInformation("Starting {State} sandbox {SandboxId} before leasing it", sandbox.State, Id);
                        await provider.StartAsync(Id, S.ExternalId, timeout.Token);
                    }
                    catch (ProviderException e) when (!e.Transient)
                    {
                        await FailBeforeLease($"could not start: {e.Message}");
                    }
                    catch (ProviderException e)
                    {
                        throw Unavailable(e);
                    }
                    break;
            }
        }
        _justCreated = false;
        if (provider is ISandboxLabelUpdater updater && !createdForThisClaim)
        {
            try
            {
                await updater.SetLabelsAsync(Id, S.ExternalId, new Dictionary<string, string> { [BrokerLabels.ClaimKey] = claimKey }, timeout.Token);
            }
            catch (Exception e) when (e is ProviderException or OperationCanceledException)
            {
                // The label helps people find the claim's sandbox at the provider; ownership rests on the sandbox-id label.
                logger.LogWarning(e, "Could not label sandbox {SandboxId} with claim {ClaimKey}", Id, claimKey);
            }
        }

        BrokerException Unavailable(ProviderException e) =>
            new(e.Transient ? ErrorCodes.ProviderUnavailable : ErrorCodes.ProviderError, $"cannot check sandbox {Id} at provider '{spec.Provider}': {e.Message}")
            { RetryAfterSeconds = 5 };
    }

    private async Task FailBeforeLease(string reason)
    {
        S.LastError = reason;
        await MoveTo(SandboxStatus.Failed, "sandbox.failed", actor: "lease", reason);
        await BeginDeletion(reason, SandboxStatus.Failed);
        throw new BrokerException(ErrorCodes.Conflict, $"sandbox {Id} cannot be leased: {reason}");
    }

    private async Task BeginDeletion(string reason, SandboxStatus from)
    {
        S.Status = from;
        S.DeleteAttempts = 0;
        await MoveTo(SandboxStatus.Deleting, "sandbox.deleting", detail: reason);
        // The reminder survives a crash; the timer retries quickly while this activation lives.
        await this.RegisterOrUpdateReminder(DeleteReminder, options.Value.RetryReminderPeriod, options.Value.RetryReminderPeriod);
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
            await MoveTo(SandboxStatus.Deleted, "sandbox.deleted");
            await UnregisterDeleteReminder();
            _retryTimer?.Dispose();
            _retryTimer = null;
        }
        catch (Exception e) when (e is not InconsistentStateException)
        {
            S.DeleteAttempts++;
            S.LastError = e.Message;
            var delay = Backoff(S.DeleteAttempts);
            logger.LogWarning(e, "Delete of sandbox {SandboxId} failed (attempt {Attempt}); retrying in {Delay}", Id, S.DeleteAttempts, delay);
            await state.WriteOrReloadAsync(this);
            await Record("sandbox.delete-failed", SandboxStatus.Deleting, SandboxStatus.Deleting, detail: e.Message);
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

    private async Task UnregisterDeleteReminder()
    {
        var reminder = await this.GetReminder(DeleteReminder);
        if (reminder is not null)
        {
            await this.UnregisterReminder(reminder);
        }
    }

    /// <summary>The one place a status changes: validated, persisted, journaled, and told to the pool.</summary>
    private async Task MoveTo(SandboxStatus to, string @event, string? actor = null, string? detail = null)
    {
        var from = S.Status;
        SandboxLifecycle.Ensure(Id, from, to);
        S.Status = to;
        S.UpdatedAt = time.GetUtcNow();
        await state.WriteOrReloadAsync(this);
        await Record(@event, from, to, actor, detail);
        try
        {
            await GrainFactory.GetGrain<IPoolGrain>(S.Spec!.Pool).OnSandboxStatus(Id, to);
        }
        catch (Exception e)
        {
            // The pool recounts on its own schedule; a missed notice only delays replenishment.
            logger.LogWarning(e, "Could not tell pool {Pool} that sandbox {SandboxId} is {Status}", S.Spec!.Pool, Id, to);
        }
    }

    private async Task Record(string @event, SandboxStatus? from, SandboxStatus to, string? actor = null, string? detail = null)
    {
        var spec = S.Spec!;
        try
        {
            await journal.WriteAsync(
                new AuditEvent("sandbox", Id, @event, from is null ? null : SandboxLifecycle.Format(from.Value), SandboxLifecycle.Format(to), actor,
                    detail is null ? null : System.Text.Json.JsonSerializer.Serialize(new { detail }), S.UpdatedAt),
                new SandboxRow(Id, spec.Pool, spec.Provider, SandboxLifecycle.Format(to), S.LeaseName ?? spec.Name, S.ExternalId,
                    S.Tenant, S.Owner, S.ClaimKey, S.CreatedAt, S.UpdatedAt, S.LeaseExpiresAt));
        }
        catch (Exception e)
        {
            // The grain state is the truth and is already written; the index is rebuildable.
            logger.LogError(e, "Journal write for sandbox {SandboxId} ({Event}) failed", Id, @event);
        }
    }

    private void RequireExists()
    {
        if (S.Spec is null)
        {
            throw new BrokerException(ErrorCodes.NotFound, $"sandbox {Id} does not exist");
        }
    }

    private SandboxInfo Info()
    {
        var spec = S.Spec!;
        return new SandboxInfo(Id, spec.Pool, spec.Provider, S.Status, S.LeaseName ?? spec.Name, S.ExternalId, S.ClaimKey, S.Tenant, S.Owner,
            S.CreatedAt, S.UpdatedAt, S.LeaseExpiresAt, spec.Labels, S.Connection, S.LastError, S.DeleteAttempts);
    }
}
