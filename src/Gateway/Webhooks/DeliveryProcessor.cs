using Microsoft.Extensions.Options;
using SandboxBroker.Gateway.Api;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Webhooks;

/// <summary>
/// Processes recorded deliveries: takes waiting ones under a lease (several gateways share the work, none holds a
/// delivery another holds), maps each to an intent and applies it through the issue's grain, then marks it processed,
/// ignored or failed. Woken at once by <see cref="DeliverySignal"/> and otherwise every <see cref="WebhookSettings.PollInterval"/>,
/// so deliveries recorded before a restart, or by a gateway that does not process, are found. Errors are retried with a
/// doubling wait up to <see cref="WebhookSettings.MaxAttempts"/>; then the delivery is failed with the error (a redelivery
/// from GitHub, or the admin retry, queues it again). Also deletes finished deliveries past their retention.
/// </summary>
public sealed class DeliveryProcessor(
    WebhookDeliveryStore store,
    DeliverySignal signal,
    IClusterClient client,
    IOptions<WebhookSettings> options,
    BrokerMetrics metrics,
    TimeProvider time,
    ILogger<DeliveryProcessor> logger) : BackgroundService
{
    private readonly string _worker = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    private WebhookSettings Settings => options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Settings.ProcessDeliveries)
        {
            logger.LogInformation("Webhook delivery processing is off here (Webhooks:GitHub:ProcessDeliveries=false); deliveries are only recorded");
            return;
        }
        await Task.Yield();
        logger.LogInformation("Webhook delivery processor {Worker} started", _worker);
        var nextCleanup = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (time.GetUtcNow() >= nextCleanup)
                {
                    await PruneAsync(stoppingToken);
                    nextCleanup = time.GetUtcNow() + Settings.CleanupInterval;
                }
                var batch = await store.ClaimBatchAsync(_worker, Settings.BatchSize, Settings.LeaseDuration, stoppingToken);
                if (batch.Count > 0)
                {
                    await Parallel.ForEachAsync(batch,
                        new ParallelOptions { MaxDegreeOfParallelism = Settings.MaxParallel, CancellationToken = stoppingToken },
                        async (delivery, _) => await ProcessAsync(delivery));
                    continue; // there may be more waiting
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Webhook delivery processor {Worker}: a pass failed; trying again after the poll interval", _worker);
            }
            try
            {
                await signal.WaitAsync(Settings.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>
    /// One delivery, start to mark. Marks are written even while stopping (CancellationToken.None): what was applied is
    /// recorded; a delivery left unmarked comes back when its lease runs out, and its grain applies it only once.
    /// </summary>
    private async Task ProcessAsync(ClaimedDelivery delivery)
    {
        MappedEvent mapped;
        try
        {
            mapped = IssueEventMapper.Map(delivery.Event, delivery.Payload, Settings);
        }
        catch (InvalidPayloadException e)
        {
            await CompleteAsync(delivery, DeliveryStatus.Failed, null, e.Message);
            return;
        }
        if (mapped is IgnoredEvent ignored)
        {
            await CompleteAsync(delivery, DeliveryStatus.Ignored, ignored.Reason, null);
            return;
        }
        var issue = (IssueEvent)mapped;
        var tenant = Settings.Tenant;
        var intent = new IssueIntent(delivery.DeliveryId, issue.Kind, issue.UpdatedAt, tenant, issue.Description,
            issue.Kind == IssueIntentKind.Acquire
                ? new AcquireRequest(Settings.Pool, tenant, issue.ClaimKey, Settings.Ttl, Settings.IdleTimeout, issue.Labels, issue.Name,
                    Actor: $"github-delivery:{delivery.DeliveryId}")
                : null);
        try
        {
            var result = await client.GetGrain<IGitHubIssueGrain>(issue.ClaimKey).Apply(intent);
            var status = result.Outcome switch
            {
                IssueApplyOutcome.Stale => DeliveryStatus.Ignored,
                IssueApplyOutcome.NoActiveClaim when issue.Kind == IssueIntentKind.Touch => DeliveryStatus.Ignored,
                _ => DeliveryStatus.Processed,
            };
            await CompleteAsync(delivery, status, $"{issue.ClaimKey}: {result.Detail}", null);
        }
        catch (Exception e)
        {
            var error = $"{issue.Description} on {issue.ClaimKey}: {Describe(e)}";
            if (IsPermanent(e) || delivery.Attempts >= Settings.MaxAttempts)
            {
                logger.LogWarning("Webhook delivery {DeliveryId} failed after {Attempts} attempt(s): {Error}", delivery.DeliveryId, delivery.Attempts, error);
                await CompleteAsync(delivery, DeliveryStatus.Failed, null, error);
                return;
            }
            var wait = Settings.RetryDelay * Math.Pow(2, Math.Min(delivery.Attempts - 1, 10));
            logger.LogInformation("Webhook delivery {DeliveryId} attempt {Attempts} failed, retrying in {Wait}: {Error}",
                delivery.DeliveryId, delivery.Attempts, wait, error);
            metrics.CountWebhookDone("retried");
            await TryMark(() => store.PostponeAsync(delivery.DeliveryId, _worker, time.GetUtcNow() + wait, error, CancellationToken.None), delivery);
        }
    }

    private async Task CompleteAsync(ClaimedDelivery delivery, string status, string? outcome, string? error)
    {
        if (await TryMark(() => store.CompleteAsync(delivery.DeliveryId, _worker, status, outcome, error, CancellationToken.None), delivery))
        {
            metrics.CountWebhookDone(status, time.GetUtcNow() - delivery.ReceivedAt);
            logger.LogInformation("Webhook delivery {DeliveryId} ({Event}.{Action}, {Repository}) {Status}: {Outcome}{Error}",
                delivery.DeliveryId, delivery.Event, delivery.Action, delivery.Repository, status, outcome, error);
        }
    }

    /// <summary>A mark that finds the delivery no longer held (its lease ran out and another took it) is left to the other.</summary>
    private async Task<bool> TryMark(Func<Task<bool>> mark, ClaimedDelivery delivery)
    {
        try
        {
            if (await mark())
            {
                return true;
            }
            logger.LogWarning("Webhook delivery {DeliveryId} was no longer held by {Worker} when marked; its new holder marks it", delivery.DeliveryId, _worker);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Webhook delivery {DeliveryId}: could not record the result; it is processed again after its lease", delivery.DeliveryId);
        }
        return false;
    }

    private async Task PruneAsync(CancellationToken ct)
    {
        var cutoff = time.GetUtcNow() - Settings.EffectiveRetention;
        var pruned = await store.PruneAsync(cutoff, ct);
        if (pruned > 0)
        {
            logger.LogInformation("Deleted {Count} webhook deliveries received before {Cutoff:o}", pruned, cutoff);
        }
    }

    /// <summary>Errors a retry cannot fix: the request itself is refused.</summary>
    private static bool IsPermanent(Exception e) =>
        e is BrokerException { Code: ErrorCodes.InvalidArgument or ErrorCodes.Forbidden or ErrorCodes.TtlTooLong or ErrorCodes.NotFound };

    private static string Describe(Exception e) => e switch
    {
        BrokerException b => $"{b.Code}: {b.Message}",
        TimeoutException => "the cluster did not answer in time",
        OrleansException o => $"the cluster is not reachable: {o.Message}",
        _ => $"{e.GetType().Name}: {e.Message}",
    };
}
