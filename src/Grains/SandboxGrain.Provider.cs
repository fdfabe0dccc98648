using Microsoft.Extensions.Logging;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Grains;

/// <summary>A sandbox's calls to its provider before it is handed out: the create, and the check before a lease.</summary>
public sealed partial class SandboxGrain
{
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
                S.Connection = secrets.Seal(Id, created.Connection);
                S.LastError = null;
                _confirmedAt = time.GetUtcNow();
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
    /// another) or vanished (it becomes stale, and the claim takes another). Not asked when this activation saw the
    /// provider confirm it running within <see cref="BrokerOptions.LeaseRecheckAfter"/>. Then, where the provider can relabel,
    /// the sandbox gets the claim-key label (cold creates carry it from the start).
    /// </summary>
    private async Task PrepareForLease(string claimKey)
    {
        var spec = S.Spec!;
        var provider = providers.Get(spec.Provider);
        using var timeout = new CancellationTokenSource(ProviderCallTimeout);
        var createdForThisClaim = spec.Labels.TryGetValue(BrokerLabels.ClaimKey, out var labelled) && labelled == claimKey;
        if (!(_justCreated && createdForThisClaim) && !ConfirmedWithin(options.Value.LeaseRecheckAfter))
        {
            ProviderSandboxState? state;
            try
            {
                state = provider.Capability<ISandboxStateReader>() is { } reader
                    ? await reader.GetStateAsync(Id, S.ExternalId, timeout.Token)
                    : (await provider.GetAsync(Id, S.ExternalId, timeout.Token))?.State;
            }
            catch (ProviderException e)
            {
                throw Unavailable(e);
            }
            switch (state)
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
                        logger.LogInformation("Starting {State} sandbox {SandboxId} before leasing it", state, Id);
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
                case ProviderSandboxState.Running:
                    _confirmedAt = time.GetUtcNow();
                    break;
            }
        }
        _justCreated = false;
        if (provider.Capability<ISandboxLabelUpdater>() is { } updater && !createdForThisClaim)
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

    private bool ConfirmedWithin(TimeSpan window) => _confirmedAt is { } at && window > TimeSpan.Zero && time.GetUtcNow() - at <= window;

    /// <summary>
    /// A provider with its own timer (E2B) is told the lease's deadline, so it does not stop the sandbox mid-lease; the
    /// connection details it answers (the access token the lease needs) replace the ones from create.
    /// </summary>
    private async Task HoldForLease(DateTimeOffset until)
    {
        var spec = S.Spec!;
        if (providers.Get(spec.Provider).Capability<ISandboxLeaseTimer>() is not { } timer)
        {
            return;
        }
        using var timeout = new CancellationTokenSource(ProviderCallTimeout);
        try
        {
            S.Connection = secrets.Seal(Id, await timer.HoldUntilAsync(Id, S.ExternalId, until, timeout.Token));
        }
        catch (ProviderException e) when (!e.Transient)
        {
            await FailBeforeLease($"could not hold it for the lease: {e.Message}");
        }
        catch (ProviderException e)
        {
            throw new BrokerException(ErrorCodes.ProviderUnavailable, $"cannot hold sandbox {Id} at provider '{spec.Provider}': {e.Message}") { RetryAfterSeconds = 5 };
        }
    }

    /// <summary>
    /// The reconciler's call while the lease lives: keeps the provider's timer ahead of the lease's deadline, and at least
    /// two reconcile periods ahead (a claim extended since the lease began keeps its sandbox; the next reconcile goes on).
    /// </summary>
    public async Task HoldLease()
    {
        if (S.Spec is null || S.Status != SandboxStatus.Leased || providers.Get(S.Spec.Provider).Capability<ISandboxLeaseTimer>() is not { } timer)
        {
            return;
        }
        var floor = time.GetUtcNow() + 2 * options.Value.ReconcileInterval;
        var until = S.LeaseExpiresAt is { } deadline && deadline > floor ? deadline : floor;
        using var timeout = new CancellationTokenSource(ProviderCallTimeout);
        await timer.HoldUntilAsync(Id, S.ExternalId, until, timeout.Token);
    }

    private async Task FailBeforeLease(string reason)
    {
        S.LastError = reason;
        await MoveTo(SandboxStatus.Failed, "sandbox.failed", actor: "lease", reason);
        await BeginDeletion(reason);
        throw new BrokerException(ErrorCodes.Conflict, $"sandbox {Id} cannot be leased: {reason}");
    }
}
