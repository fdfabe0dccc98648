namespace SandboxBroker.Grains;

/// <summary>
/// What a pool stores: its configuration and the sandboxes it hands out (ready) or is creating to hand out. Nothing
/// that grows with the leases it has handed out: those it counts (<see cref="PoolCounts"/>), corrected from the index.
/// </summary>
[GenerateSerializer]
public sealed class PoolState
{
    /// <summary>Null until the pool is created (configured pools are created on first use).</summary>
    [Id(0)] public PoolConfig? Config { get; set; }

    /// <summary>Ready sandboxes, oldest first: each is handed out once.</summary>
    [Id(1)] public List<string> Ready { get; set; } = [];

    /// <summary>Sandboxes the pool is creating to stay warm, with when the create started.</summary>
    [Id(2)] public Dictionary<string, DateTimeOffset> Provisioning { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The ready ids as a set: a notice about a sandbox the pool does not list (most of them) must not scan a list
    /// of thousands. Built on first use; every change of <see cref="Ready"/> goes through the methods below.</summary>
    [NonSerialized] private HashSet<string>? _readyIds;

    private HashSet<string> ReadyIds => _readyIds ??= new HashSet<string>(Ready, StringComparer.Ordinal);

    public bool AddReady(string sandboxId, bool first = false)
    {
        if (!ReadyIds.Add(sandboxId))
        {
            return false;
        }
        if (first)
        {
            Ready.Insert(0, sandboxId);
        }
        else
        {
            Ready.Add(sandboxId);
        }
        return true;
    }

    public bool RemoveReady(string sandboxId) => ReadyIds.Remove(sandboxId) && Ready.Remove(sandboxId);

    public string TakeOldestReady() => Take(0);

    public string TakeNewestReady() => Take(Ready.Count - 1);

    private string Take(int index)
    {
        var id = Ready[index];
        Ready.RemoveAt(index);
        ReadyIds.Remove(id);
        return id;
    }

    /// <summary>A copy sharing no collection with this one (the configuration is an immutable record).</summary>
    public PoolState Snapshot() => new()
    {
        Config = Config,
        Ready = [.. Ready],
        Provisioning = new(Provisioning, StringComparer.Ordinal),
    };
}
