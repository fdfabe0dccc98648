using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;

namespace SandboxBroker.Grains;

[GenerateSerializer]
public sealed class OwnerState
{
    /// <summary>Claim keys with an active lease, and when each was admitted.</summary>
    [Id(0)] public Dictionary<string, DateTimeOffset> Active { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>
/// Enforces the per-owner limit on concurrently active leases. A single activation admits one claim
/// at a time, so concurrent acquires get exactly the limit. Entries a crashed acquire left behind are
/// found at the limit: a claim admitted a while ago that holds no active lease is forgotten.
/// </summary>
public sealed class OwnerGrain(
    [PersistentState("owner", StorageNames.Broker)] IPersistentState<OwnerState> state,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    ILogger<OwnerGrain> logger) : Grain, IOwnerGrain
{
    /// <summary>An admitted claim gets this long to persist its lease before it can be presumed abandoned.</summary>
    private static readonly TimeSpan AdmitGrace = TimeSpan.FromMinutes(2);

    private int Limit => options.Value.OwnerMaxActiveLeases;

    /// <summary>The owner's key is <c>{tenant}/{owner}</c>; its claims are that tenant's.</summary>
    private string Tenant => this.GetPrimaryKeyString()[..this.GetPrimaryKeyString().IndexOf('/')];

    public async Task Admit(string claimKey)
    {
        if (state.State.Active.ContainsKey(claimKey))
        {
            return;
        }
        if (state.State.Active.Count >= Limit)
        {
            await ForgetAbandoned();
        }
        if (state.State.Active.Count >= Limit)
        {
            throw new BrokerException(ErrorCodes.OwnerLimitReached,
                $"owner '{this.GetPrimaryKeyString()}' already holds {state.State.Active.Count} active leases (limit {Limit}); release one first");
        }
        state.State.Active[claimKey] = time.GetUtcNow();
        await state.WriteOrReloadAsync(this);
    }

    public async Task Forget(string claimKey)
    {
        if (state.State.Active.Remove(claimKey))
        {
            await state.WriteOrReloadAsync(this);
        }
    }

    public Task<OwnerUsage> GetUsage() =>
        Task.FromResult(new OwnerUsage(this.GetPrimaryKeyString(), Limit, state.State.Active.Keys.Order(StringComparer.Ordinal).ToList()));

    private async Task ForgetAbandoned()
    {
        var cutoff = time.GetUtcNow() - AdmitGrace;
        var candidates = state.State.Active.Where(a => a.Value < cutoff).Select(a => a.Key).ToList();
        var changed = false;
        foreach (var key in candidates)
        {
            if (!await GrainFactory.GetClaim(Tenant, key).HasActiveLease())
            {
                logger.LogWarning("Owner {Owner} forgets claim {ClaimKey}: admitted but holds no active lease", this.GetPrimaryKeyString(), key);
                state.State.Active.Remove(key);
                changed = true;
            }
        }
        if (changed)
        {
            await state.WriteOrReloadAsync(this);
        }
    }
}
