using Orleans.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// One sandbox. Its id is persisted in 'provisioning' before the provider's create is called (and the
/// provider sandbox carries it as a label), so a crash mid-create leaves something the reconciler finds.
/// A sandbox is deleted at the provider only after its record says so, and deletion is retried with
/// backoff: by a timer while the activation lives, and by the deletion sweep (<see cref="SweeperGrain"/>) through the
/// wake time in its index row when it does not, until the provider confirms. No reminder per sandbox.
/// </summary>
public sealed class SandboxGrain(
    [PersistentState("sandbox", StorageNames.Broker)] IPersistentState<SandboxState> state,
    SandboxProviderRegistry providers,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    ILogger<SandboxGrain> logger) : Grain, ISandboxGrain
{
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
            // A new record starts in provisioning (the state's initial status) and is stored before the provider is called.
            var now = time.GetUtcNow();
            S.Spec = spec;
            S.CreatedAt = now;
            S.UpdatedAt = now;
            Record("sandbox.provisioning", null, SandboxStatus.Provisioning);
            await state.WriteOrReloadAsync(this);
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
        // Straight from leased to deleting, in one write: the claim's own write has already ended the lease. (Releasing
        // remains for records written before, which go on the same way.)
        if (S.Status is SandboxStatus.Leased or SandboxStatus.Releasing)
        {
            S.LastError = null;
            await BeginDeletion(reason, actor: claimKey);
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
            case SandboxStatus.Provisioning or SandboxStatus.Ready or SandboxStatus.Failed or SandboxStatus.Stale or SandboxStatus.Releasing:
                await BeginDeletion(reason);
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
        if (claim is not null)
        {
            await GrainFactory.GetGrain<IClaimGrain>(claim).SandboxLost(Id, reason);
        }
    }

    public Task<SandboxInfo?> Get() => Task.FromResult(S.Spec is null ? null : Info());

    public async Task Wake()
    {
        if (S.Spec is not null && S.Status == SandboxStatus.Deleting)
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
        await BeginDeletion("create failed");
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
        await BeginDeletion(reason);
        throw new BrokerException(ErrorCodes.Conflict, $"sandbox {Id} cannot be leased: {reason}");
    }

    private async Task BeginDeletion(string reason, string? actor = null)
    {
        S.DeleteAttempts = 0;
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
        }
        catch (Exception e) when (e is not InconsistentStateException)
        {
            S.DeleteAttempts++;
            S.LastError = e.Message;
            var delay = Backoff(S.DeleteAttempts);
            S.RetryAt = time.GetUtcNow() + delay; // the sweep's wake time, should this activation not live that long
            logger.LogWarning(e, "Delete of sandbox {SandboxId} failed (attempt {Attempt}); retrying in {Delay}", Id, S.DeleteAttempts, delay);
            Record("sandbox.delete-failed", SandboxStatus.Deleting, SandboxStatus.Deleting, detail: e.Message);
            await state.WriteOrReloadAsync(this);
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

    /// <summary>
    /// The one place a status changes: validated, persisted with its audit event and index row (one statement), and
    /// told to the pool.
    /// </summary>
    private async Task MoveTo(SandboxStatus to, string @event, string? actor = null, string? detail = null)
    {
        var from = S.Status;
        SandboxLifecycle.Ensure(Id, from, to);
        S.Status = to;
        S.UpdatedAt = time.GetUtcNow();
        Record(@event, from, to, actor, detail);
        await state.WriteOrReloadAsync(this);
        try
        {
            await GrainFactory.GetGrain<IPoolGrain>(S.Spec!.Pool).OnSandboxStatus(Id, from, to);
        }
        catch (Exception e)
        {
            // The pool recounts on its own schedule; a missed notice only delays replenishment.
            logger.LogWarning(e, "Could not tell pool {Pool} that sandbox {SandboxId} is {Status}", S.Spec!.Pool, Id, to);
        }
    }

    /// <summary>Records an audit event, written with the next state write (the change it belongs to).</summary>
    private void Record(string @event, SandboxStatus? from, SandboxStatus to, string? actor = null, string? detail = null) =>
        S.Record(new AuditEvent("sandbox", Id, @event, from is null ? null : SandboxLifecycle.Format(from.Value), SandboxLifecycle.Format(to), actor,
            detail is null ? null : System.Text.Json.JsonSerializer.Serialize(new { detail }), S.UpdatedAt));

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
