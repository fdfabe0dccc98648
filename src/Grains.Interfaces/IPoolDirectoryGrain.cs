namespace SandboxBroker;

/// <summary>The names of all pools (a single grain, key "all"), so pools can be listed.</summary>
[Alias("SandboxBroker.IPoolDirectoryGrain")]
public interface IPoolDirectoryGrain : IGrainWithStringKey
{
    public const string Key = "all";

    [Alias("Add")]
    Task Add(string pool);

    [Alias("List")]
    Task<IReadOnlyList<string>> List();
}
