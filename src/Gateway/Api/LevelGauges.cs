using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Api;

/// <summary>Fills the level gauges when Prometheus scrapes, from the pool grains and the sandbox index, at most every few seconds.</summary>
public sealed class LevelGauges(IClusterClient client, BrokerIndex index, BrokerMetrics metrics, TimeProvider time, ILogger<LevelGauges> logger)
{
    private static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(5);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private DateTimeOffset _last = DateTimeOffset.MinValue;

    public async Task RefreshAsync(CancellationToken ct)
    {
        if (!await _gate.WaitAsync(0, ct))
        {
            return; // another scrape is refreshing
        }
        try
        {
            if (time.GetUtcNow() - _last < MinInterval)
            {
                return;
            }
            _last = time.GetUtcNow();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            foreach (var pool in await Pools.ListAsync(client))
            {
                var levels = pool.Levels;
                metrics.PoolSandboxes.WithLabels(pool.Config.Name, "ready").Set(levels.Ready);
                metrics.PoolSandboxes.WithLabels(pool.Config.Name, "provisioning").Set(levels.Provisioning);
                metrics.PoolSandboxes.WithLabels(pool.Config.Name, "leased").Set(levels.Leased);
                metrics.PoolSandboxes.WithLabels(pool.Config.Name, "deleting").Set(levels.Deleting);
            }
            foreach (var (status, count) in await index.CountSandboxesByStatusAsync(null, timeout.Token))
            {
                metrics.Sandboxes.WithLabels(status).Set(count);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            logger.LogWarning(e, "Could not refresh the level gauges");
        }
        finally
        {
            _gate.Release();
        }
    }
}
