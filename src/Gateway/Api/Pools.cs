namespace SandboxBroker.Gateway.Api;

/// <summary>Reads every pool's status through the pool directory.</summary>
public static class Pools
{
    public static async Task<IReadOnlyList<PoolStatus>> ListAsync(IClusterClient client)
    {
        var names = await client.GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).List();
        var statuses = await Task.WhenAll(names.Order(StringComparer.Ordinal).Select(n => client.GetGrain<IPoolGrain>(n).GetStatus()));
        return statuses;
    }
}
