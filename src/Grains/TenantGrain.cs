using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// Admits one tenant's new leases by its limits: its quotas (see <see cref="ITenantGrain"/>) and the per-owner limit
/// (<see cref="BrokerOptions.OwnerMaxActiveLeases"/>; an owner is a tenant's). Nothing is written on the acquire path:
/// the claims counted are in memory, read back from the claim index (written with each claim's state, owner included)
/// when the grain activates, so an admission costs one in-memory grain call. A claim admitted a while ago that holds no
/// active lease (its acquire crashed, or its forget was lost) is forgotten when a limit is reached. What this cannot
/// see: a claim admitted but not yet stored when this grain's silo dies is not recounted, so for that moment a tenant
/// or an owner may exceed a limit by the acquires then in flight.
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

    private readonly AdmittedClaims _active = new();
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
        foreach (var (claimId, pool, owner) in await index.ListActiveClaimsAsync(Tenant, cancellationToken))
        {
            var key = ClaimId.Parse(claimId).ClaimKey;
            _active.Add(key, new AdmittedClaims.Admitted(pool, LeaseRules.CountedOwner(owner, key), now));
        }
    }

    public async Task<bool> Admit(string claimKey, string pool, int poolMaxTotal, string? owner)
    {
        if (_active.Contains(claimKey))
        {
            return false;
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
        if (owner is not null && _active.OfOwner(owner).Count >= OwnerLimit)
        {
            await ForgetAbandoned(_active.OfOwner(owner));
        }
        if (owner is not null && _active.OfOwner(owner).Count is var held && held >= OwnerLimit)
        {
            throw new BrokerException(ErrorCodes.OwnerLimitReached,
                $"owner '{owner}' already holds {held} active leases (limit {OwnerLimit}); release one first");
        }
        _active.Add(claimKey, new AdmittedClaims.Admitted(pool, owner, time.GetUtcNow()));
        return true;
    }

    public Task Forget(string claimKey)
    {
        _active.Remove(claimKey);
        return Task.CompletedTask;
    }

    public Task<TenantUsage> GetUsage() => Task.FromResult(Usage());

    public Task<OwnerUsage> GetOwnerUsage(string owner) =>
        Task.FromResult(new OwnerUsage(owner, OwnerLimit, _active.OfOwner(owner).Order(StringComparer.Ordinal).ToList()));

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
        if (MaxInPool(poolMaxTotal) is { } perPool && _active.InPool(pool) is var inPool && inPool >= perPool)
        {
            var source = _quota?.MaxSandboxesPerPool is null ? $"by default {Defaults.PoolShare.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)} of the pool's max total of {poolMaxTotal}" : "its quota";
            return $"tenant '{Tenant}' holds {inPool} sandboxes of pool '{pool}'; max_sandboxes_per_pool is {perPool} ({source}). Release one first";
        }
        return null;
    }

    private int OwnerLimit => options.Value.OwnerMaxActiveLeases;

    private int? MaxActiveLeases => _quota?.MaxActiveLeases ?? (Exempt || Defaults.MaxActiveLeases <= 0 ? null : Defaults.MaxActiveLeases);

    private int? MaxInPool(int poolMaxTotal) =>
        _quota?.MaxSandboxesPerPool ?? (DefaultShare is { } share ? (int)Math.Ceiling(poolMaxTotal * share) : null);

    private double? DefaultShare => Exempt || Defaults.PoolShare >= 1 ? null : Defaults.PoolShare;

    private TenantUsage Usage() => new(Tenant, _quota, MaxActiveLeases, _quota?.MaxSandboxesPerPool,
        _quota?.MaxSandboxesPerPool is null ? DefaultShare : null, _quota?.AllowedPools, _active.Count,
        _active.PerPool.ToDictionary(StringComparer.Ordinal));

    private static string Describe(IReadOnlyList<string> pools) => pools.Count == 0 ? "no pool" : string.Join(", ", pools);

    /// <summary>Forgets claims admitted over the grace ago (among <paramref name="among"/>, else all) that hold no active lease.</summary>
    private async Task ForgetAbandoned(IEnumerable<string>? among = null)
    {
        foreach (var key in _active.AdmittedBefore(time.GetUtcNow() - AdmitGrace, among))
        {
            if (!await GrainFactory.GetClaim(Tenant, key).HasActiveLease())
            {
                logger.LogWarning("Tenant {Tenant} forgets claim {ClaimKey}: counted but holds no active lease", Tenant, key);
                _active.Remove(key);
            }
        }
    }
}
