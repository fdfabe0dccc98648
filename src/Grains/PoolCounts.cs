namespace SandboxBroker.Grains;

/// <summary>
/// The live sandboxes of a pool that it does not list as ready or provisioning, counted in memory: those handed out and
/// not yet leased (by id, so a return or a lease finds them), leased ones, and those on their way out. Kept by the
/// sandboxes' status notices, each a move from one status to another, and set again from the index by
/// <see cref="Recount"/> (a lost notice, a restart).
/// </summary>
public sealed class PoolCounts
{
    private readonly Dictionary<string, DateTimeOffset> _handedOut = new(StringComparer.Ordinal);

    /// <summary>Taken out of the ready list to be deleted; counted as deleting before their own notice says so.</summary>
    private readonly HashSet<string> _leaving = new(StringComparer.Ordinal);

    /// <summary>Handed out to a claim (warm, or reserved for a cold create), not yet heard of as leased.</summary>
    public IReadOnlyDictionary<string, DateTimeOffset> HandedOut => _handedOut;

    // Kept signed: notices are not ordered (a sandbox's "deleted" can overtake its "deleting"), so a count may dip below
    // zero for a moment and is read as zero; clamping it instead would lose the decrement for good.
    private int _leased;
    private int _deleting;
    private int _unlisted;

    public int Leased => Math.Max(0, _leased);

    public int Deleting => Math.Max(0, _deleting);

    /// <summary>Ready or provisioning at the index but in no list of this pool (a checkout a crash lost, a create it forgot).</summary>
    public int Unlisted => Math.Max(0, _unlisted);

    public int Total => _handedOut.Count + Leased + Deleting + Unlisted;

    public void HandOut(string sandboxId, DateTimeOffset at) => _handedOut[sandboxId] = at;

    public bool TakeBack(string sandboxId) => _handedOut.Remove(sandboxId);

    public bool IsHandedOut(string sandboxId) => _handedOut.ContainsKey(sandboxId);

    /// <summary>A ready sandbox taken out of the pool's list to be deleted (a shrink): it counts as deleting from now on.</summary>
    public void Leave(string sandboxId)
    {
        if (_leaving.Add(sandboxId))
        {
            Add(SandboxStatus.Deleting, +1);
        }
    }

    /// <summary>A sandbox this pool no longer lists moved from one status to another.</summary>
    /// <param name="wasListed">It was in one of the pool's lists until this move (it now counts here by its new status).</param>
    public void Move(string sandboxId, SandboxStatus from, SandboxStatus to, bool wasListed)
    {
        if (_leaving.Remove(sandboxId))
        {
            (from, wasListed) = (SandboxStatus.Deleting, false); // already counted as deleting
        }
        if (_handedOut.ContainsKey(sandboxId))
        {
            if (to is SandboxStatus.Provisioning or SandboxStatus.Ready)
            {
                return; // a cold create on its way to the claim that reserved it
            }
            _handedOut.Remove(sandboxId);
            wasListed = true;
        }
        if (!wasListed)
        {
            Add(from, -1);
        }
        Add(to, +1);
    }

    /// <summary>Sets the counts from the index: the pool's live sandboxes by status, less those it lists or has handed out.</summary>
    public void Recount(IReadOnlyDictionary<string, long> unlistedByStatus)
    {
        (_leased, _deleting, _unlisted) = (0, 0, 0);
        _leaving.Clear(); // counted by what the index says they are
        foreach (var (status, count) in unlistedByStatus)
        {
            if (Enum.TryParse<SandboxStatus>(status, ignoreCase: true, out var parsed))
            {
                Add(parsed, (int)count);
            }
        }
    }

    private void Add(SandboxStatus status, int delta)
    {
        switch (status)
        {
            case SandboxStatus.Leased:
                _leased += delta;
                break;
            case var s when SandboxLifecycle.IsPendingDeletion(s) || s == SandboxStatus.Failed:
                _deleting += delta;
                break;
            case SandboxStatus.Provisioning or SandboxStatus.Ready:
                _unlisted += delta;
                break;
        }
    }
}
