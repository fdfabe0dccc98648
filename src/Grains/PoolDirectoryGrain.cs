using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;

namespace SandboxBroker.Grains;

[GenerateSerializer]
public sealed class PoolDirectoryState
{
    [Id(0)] public SortedSet<string> Pools { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>Lists pools: those created at run time (persisted here) and those configured at start.</summary>
public sealed class PoolDirectoryGrain(
    [PersistentState("pool-directory", StorageNames.AdoNet)] IPersistentState<PoolDirectoryState> state,
    IOptions<BrokerOptions> options) : Grain, IPoolDirectoryGrain
{
    public async Task Add(string pool)
    {
        if (state.State.Pools.Add(pool))
        {
            await state.WriteOrReloadAsync(this);
        }
    }

    public Task<IReadOnlyList<string>> List() =>
        Task.FromResult<IReadOnlyList<string>>(state.State.Pools.Union(options.Value.ConfiguredPools).Order(StringComparer.Ordinal).ToList());
}
