using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>A silo leaving mid-storm: afterwards no key has two sandboxes and every provider sandbox has an owner or is on its way out.</summary>
public sealed class FaultTests
{
    [Fact]
    public async Task A_silo_stopped_during_acquires_leaves_one_sandbox_per_key_and_nothing_unowned()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 3);
        var keys = Enumerable.Range(0, 60).Select(i => $"github:octo/storm#{i}").ToList();

        async Task<AcquireResult?> AcquireWithRetry(string key)
        {
            for (var attempt = 0; attempt < 20; attempt++)
            {
                try
                {
                    return await broker.Grains.GetClaim("t", key).Acquire(new AcquireRequest("default", "t", "o"));
                }
                catch (Exception e) when (e is not BrokerException { Code: not (ErrorCodes.ConcurrentUpdate or ErrorCodes.Conflict) })
                {
                    await Task.Delay(250); // the silo left mid-call: a client retries
                }
            }
            return null;
        }

        var storm = Task.WhenAll(keys.SelectMany(k => Enumerable.Range(0, 5).Select(_ => AcquireWithRetry(k))));
        await Task.Delay(300);
        await broker.Cluster.StopSiloAsync(broker.Cluster.Silos[2]);
        var results = await storm;

        // Every key, asked again now, names one sandbox, the same one every caller got.
        foreach (var key in keys)
        {
            var now = await AcquireWithRetry(key);
            Assert.NotNull(now);
            var seen = results.Where(r => r?.Lease.ClaimKey == key).Select(r => r!.Sandbox.SandboxId).Distinct().ToList();
            Assert.True(seen.All(id => id == now!.Sandbox.SandboxId) || seen.Count == 0,
                $"{key}: callers saw {string.Join(", ", seen)}, the key now holds {now!.Sandbox.SandboxId}");
        }

        // Every sandbox at the provider is leased by a claim that holds it, ready in a pool, or being deleted.
        await Eventually.NoProblemAsync(async () =>
        {
            var unowned = new List<string>();
            foreach (var id in broker.ProviderSandboxes())
            {
                var info = await broker.Grains.GetGrain<ISandboxGrain>(id).Get();
                var owned = info?.Status switch
                {
                    SandboxStatus.Leased => await broker.Grains.GetClaim("t", info.ClaimKey!).Owns(id),
                    SandboxStatus.Ready or SandboxStatus.Provisioning or SandboxStatus.Deleting or SandboxStatus.Releasing => true,
                    _ => false,
                };
                if (!owned)
                {
                    var leases = info?.ClaimKey is { } k
                        ? string.Join(" | ", (await broker.Grains.GetClaim("t", k).History()).Select(l => $"#{l.Number} {l.SandboxId} {l.Status} {l.EndReason}"))
                        : "";
                    unowned.Add($"{id} ({info?.Status.ToString() ?? "no record"}{(info?.ClaimKey is { } key ? $", leased to {key}; the key's leases: {leases}" : "")})");
                }
            }
            return unowned.Count == 0 ? null : string.Join("; ", unowned);
        }, "every provider sandbox has a live owner or a pending deletion");
        var leased = 0;
        foreach (var id in broker.ProviderSandboxes())
        {
            leased += (await broker.Grains.GetGrain<ISandboxGrain>(id).Get())?.Status == SandboxStatus.Leased ? 1 : 0;
        }
        if (leased != keys.Count)
        {
            var why = new List<string>();
            foreach (var key in keys)
            {
                var leases = await broker.Grains.GetClaim("t", key).History();
                var current = leases.FirstOrDefault(l => l.Status == LeaseStatus.Active);
                var status = current is null ? null : (await broker.Grains.GetGrain<ISandboxGrain>(current.SandboxId).Get())?.Status;
                if (status != SandboxStatus.Leased)
                {
                    why.Add($"{key}: sandbox {current?.SandboxId ?? "none"} is {status?.ToString() ?? "unknown"}; leases: " +
                        string.Join(" | ", leases.Select(l => $"#{l.Number} {l.SandboxId} {l.Status} {l.EndReason}")));
                }
            }
            Assert.Fail($"{leased} provider sandboxes leased for {keys.Count} keys; {string.Join("; ", why)}");
        }
    }
}
