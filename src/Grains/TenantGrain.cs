using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// Enforces one tenant's quotas (see <see cref="ITenantGrain"/>). Nothing is written on the acquire path: the claims
/// counted are in memory, read back from the claim index (written with each claim's state) when the grain activates,
/// so an admission costs one in-memory grain call. A claim admitted a while ago that holds no active lease (its acquire
/// crashed, or its forget was lost) is forgotten when the tenant is at a limit, as the owner grain does. What this
/// cannot see: a claim admitted but not yet stored when this grain's silo dies is not recounted, so for that moment a
/// tenant may exceed a limit by the acquires then in flight.
/// </summary>
public sealed class TenantGrain(
    TenantQuotaStore store,
    BrokerIndex index,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    ILogger<TenantGrain> logger) : Grain, ITenantGrain
{
    /// <summary>An admitted claim gets this long to store its lease before it can be presumed abandoned.</summary>
    private static readonly TimeSpan AdmitGrace = TimeSpan.FromMinutes(2);

    private readonly Dictionary<string, (string Pool, DateTimeOffset Since)> _active = new(StringComparer.Ordinal);
    private TenantQuota? _quota;

    private string Tenant => this.GetPrimaryKeyString();
    private TenantDefaults Defaults => options.Value.Tenants;
    private bool Exempt => Defaults.IsExempt(Tenant);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (!TenantName.IsValid(Tenant))
        {
            throw new BrokerException(ErrorCodes.InvalidArgument, $"'{Tenant}' is not a tenant: {TenantName.Rule}") { Field = "tenant" };
        }
        _quota = await store.GetAsync(Tenant, cancellationToken) is { } row
            ? new TenantQuota(row.MaxActiveLeases, row.MaxSandboxesPerPool, row.AllowedPools)
            : null;
        var now = time.GetUtcNow();
        foreach (var (claimId, pool) in await index.ListActiveClaimsAsync(Tenant, cancellationToken))
        {
            _active[ClaimId.Parse(claimId).ClaimKey] = (pool, now);
        }
    }

    public async Task Admit(string claimKey, string pool, int poolMaxTotal)
    {
        if (_active.ContainsKey(claimKey))
        {
            return;
        }
        if (_quota?.AllowedPools is { } allowed && !allowed.Contains(pool, StringComparer.Ordinal))
        {
            throw new BrokerException(ErrorCodes.PoolNotAllowed, $"tenant '{Tenant}' may not use pool '{pool}' (its quota allows {Describe(allowed)})") { Field = "pool" };
        }
        if (Exceeded(pool, poolMaxTotal) is not null)
        {
            await ForgetAbandoned();
        }
        if (Exceeded(pool, poolMaxTotal) is { } why)
        {
            throw new BrokerException(ErrorCodes.TenantQuotaExceeded, why);
        }
        _active[claimKey] = (pool, time.GetUtcNow());
    }

    public Task Forget(string claimKey)
    {
        _active.Remove(claimKey);
        return Task.CompletedTask;
    }

    public Task<TenantUsage> GetUsage() => Task.FromResult(Usage());

    public async Task<TenantUsage> SetQuota(TenantQuota? quota)
    {
        if (quota?.Problem() is { } problem)
        {
            throw new BrokerException(ErrorCodes.InvalidArgument, problem.Reason) { Field = problem.Field };
        }
        if (quota is null)
        {
            await store.DeleteAsync(Tenant, CancellationToken.None);
        }
        else
        {
            await store.UpsertAsync(Tenant, quota.MaxActiveLeases, quota.MaxSandboxesPerPool, quota.AllowedPools, CancellationToken.None);
        }
        _quota = quota;
        logger.LogInformation("Tenant {Tenant}: quota {Quota}", Tenant, (object?)quota ?? "the defaults");
        return Usage();
    }

    /// <summary>Why one more active lease in the pool would break a limit; null when it would not.</summary>
    private string? Exceeded(string pool, int poolMaxTotal)
    {
        if (MaxActiveLeases is { } max && _active.Count >= max)
        {
            return $"tenant '{Tenant}' holds {_active.Count} active leases; its quota max_active_leases is {max}. Release one first";
        }
        if (MaxInPool(poolMaxTotal) is { } perPool && _active.Values.Count(a => a.Pool == pool) is var inPool && inPool >= perPool)
        {
            var source = _quota?.MaxSandboxesPerPool is null ? $"by default {Defaults.PoolShare.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)} of the pool's max total of {poolMaxTotal}" : "its quota";
            return $"tenant '{Tenant}' holds {inPool} sandboxes of pool '{pool}'; max_sandboxes_per_pool is {perPool} ({source}). Release one first";
        }
        return null;
    }

    private int? MaxActiveLeases => _quota?.MaxActiveLeases ?? (Exempt || Defaults.MaxActiveLeases <= 0 ? null : Defaults.MaxActiveLeases);

    private int? MaxInPool(int poolMaxTotal) =>
        _quota?.MaxSandboxesPerPool ?? (DefaultShare is { } share ? (int)Math.Ceiling(poolMaxTotal * share) : null);

    private double? DefaultShare => Exempt || Defaults.PoolShare >= 1 ? null : Defaults.PoolShare;

    private TenantUsage Usage() => new(Tenant, _quota, MaxActiveLeases, _quota?.MaxSandboxesPerPool,
        _quota?.MaxSandboxesPerPool is null ? DefaultShare : null, _quota?.AllowedPools, _active.Count,
        _active.Values.GroupBy(a => a.Pool, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal));

    private static string Describe(IReadOnlyList<string> pools) => pools.Count == 0 ? "no pool" : string.Join(", ", pools);

    private async Task ForgetAbandoned()
    {
        var cutoff = time.GetUtcNow() - AdmitGrace;
        foreach (var key in _active.Where(a => a.Value.Since < cutoff).Select(a => a.Key).ToList())
        {
            if (!await GrainFactory.GetClaim(Tenant, key).HasActiveLease())
            {
                logger.LogWarning("Tenant {Tenant} forgets claim {ClaimKey}: counted but holds no active lease", Tenant, key);
                _active.Remove(key);
            }
        }
    }
}
