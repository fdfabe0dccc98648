using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using SandboxBroker.Storage;

namespace SandboxBroker.Silo.Metrics;

/// <summary>
/// The "SandboxBroker.Levels" meter: sandboxes per pool by level and leases by status, as the cluster holds them (every
/// silo reports the same figures; take one silo's, or the max). Read from the pool grains and the claim index every
/// <see cref="SiloMetricsSettings.LevelsRefresh"/>, so a scrape never waits on the cluster.
/// </summary>
public sealed class BrokerLevels : BackgroundService
{
    public const string Name = "SandboxBroker.Levels";

    private readonly IGrainFactory _grains;
    private readonly BrokerIndex _index;
    private readonly TimeProvider _time;
    private readonly TimeSpan _refresh;
    private readonly ILogger<BrokerLevels> _logger;
    private readonly Meter _meter = new(Name);
    private volatile Snapshot _snapshot = new([], new Dictionary<string, long>());

    public BrokerLevels(IGrainFactory grains, BrokerIndex index, TimeProvider time, IOptions<SiloMetricsSettings> settings, ILogger<BrokerLevels> logger)
    {
        _grains = grains;
        _index = index;
        _time = time;
        _refresh = settings.Value.LevelsRefresh;
        _logger = logger;
        _meter.CreateObservableGauge("sandboxbroker.pool.sandboxes", ObservePools, "{sandbox}",
            "Sandboxes per pool by level (ready, provisioning, leased, deleting).");
        _meter.CreateObservableGauge("sandboxbroker.leases", ObserveLeases, "{lease}",
            "Claim keys in the index by the status of their latest lease (active, expired, released).");
    }

    private sealed record Snapshot(IReadOnlyList<PoolStatus> Pools, IReadOnlyDictionary<string, long> Leases);

    private IEnumerable<Measurement<long>> ObservePools()
    {
        foreach (var pool in _snapshot.Pools)
        {
            var name = new KeyValuePair<string, object?>("pool", pool.Config.Name);
            yield return new(pool.Levels.Ready, name, new("level", "ready"));
            yield return new(pool.Levels.Provisioning, name, new("level", "provisioning"));
            yield return new(pool.Levels.Leased, name, new("level", "leased"));
            yield return new(pool.Levels.Deleting, name, new("level", "deleting"));
        }
    }

    private IEnumerable<Measurement<long>> ObserveLeases() =>
        _snapshot.Leases.Select(kv => new Measurement<long>(kv.Value, new KeyValuePair<string, object?>("status", kv.Key)));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The first figures after one period: at start the silo is not yet a member that can call grains.
        using var timer = new PeriodicTimer(_refresh, _time);
        while (await WaitAsync(timer, stoppingToken))
        {
            try
            {
                var names = await _grains.GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).List();
                var pools = await Task.WhenAll(names.Order(StringComparer.Ordinal).Select(n => _grains.GetGrain<IPoolGrain>(n).GetStatus()));
                var leases = await _index.CountClaimsByStatusAsync(null, stoppingToken);
                _snapshot = new Snapshot(pools, leases);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The silo may not be an active member yet, or Postgres may be away: keep the last figures, try again.
                _logger.LogDebug("Could not refresh the level gauges: {Error}", e.Message);
            }
        }
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public override void Dispose()
    {
        _meter.Dispose();
        base.Dispose();
    }
}
