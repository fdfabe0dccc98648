namespace SandboxBroker.Grains;

/// <summary>
/// What a pool stores: its configuration, nothing else. What it hands out is in memory (<see cref="PoolLists"/>,
/// <see cref="PoolCounts"/>) and read back from the index at activation: every sandbox writes its status into
/// broker_sandboxes in the same statement as its own state, before its provider is called, so the index knows every
/// ready and provisioning sandbox of the pool, and a write of the pool per checkout would only repeat it.
/// </summary>
[GenerateSerializer]
public sealed class PoolState
{
    /// <summary>Null until the pool is created (configured pools are created on first use).</summary>
    [Id(0)] public PoolConfig? Config { get; set; }
}

/// <summary>The sandboxes a pool hands out (ready, oldest first) and those it is creating to hand out, in memory.</summary>
public sealed class PoolLists
{
    /// <summary>Ready sandboxes, oldest first: each is handed out once.</summary>
    public List<string> Ready { get; } = [];

    /// <summary>Sandboxes the pool is creating to stay warm, with when the create started.</summary>
    public Dictionary<string, DateTimeOffset> Provisioning { get; } = new(StringComparer.Ordinal);

    /// <summary>The ready ids as a set: a notice about a sandbox the pool does not list (most of them) must not scan a list
    /// of thousands. Every change of <see cref="Ready"/> goes through the methods below.</summary>
    private readonly HashSet<string> _readyIds = new(StringComparer.Ordinal);

    private HashSet<string> ReadyIds => _readyIds;

    public IEnumerable<string> Listed => Ready.Concat(Provisioning.Keys);

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
}
