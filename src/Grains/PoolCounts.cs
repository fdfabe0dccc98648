using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// The live sandboxes of a pool that it does not list as ready or provisioning, counted in memory: those handed out and
/// not yet leased (by id, so a return or a lease finds them), leased ones, and those on their way out. Kept by the
/// sandboxes' status notices, each a move from one status to another, and set again from the index by
/// <see cref="Recount"/> (a lost notice, a restart).
/// <para>
/// A recount reads the index while notices keep coming, so it must not count a move twice or lose one. Each notice
/// carries the transaction that stored its move, and the recount the snapshot it read in: a move that snapshot includes
/// is already in the count, whether its notice arrives before the count is applied or after. The moves heard while the
/// count was being read are applied again over it unless it includes them; the sandboxes the pool listed then were not
/// counted at all, so their moves count as they were heard.
/// </para>
/// </summary>
public sealed class PoolCounts
{
    private readonly Dictionary<string, DateTimeOffset> _handedOut = new(StringComparer.Ordinal);

    /// <summary>Taken out of the ready list to be deleted; counted as deleting before their own notice says so.</summary>
    private readonly HashSet<string> _leaving = new(StringComparer.Ordinal);

    /// <summary>The snapshot the last recount read in, and the sandboxes it did not count (the pool listed them).</summary>
    private CommitSnapshot? _countedAt;
    private IReadOnlySet<string> _notCounted = new HashSet<string>();

    /// <summary>The moves heard since each recount under way began reading.</summary>
    private readonly List<PendingRecount> _pending = [];

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
            Heard(new HeardMove(sandboxId, SandboxStatus.Ready, SandboxStatus.Deleting, SandboxStatus.Ready, WasListed: true, StoredBy: 0, Leave: true));
        }
    }

    /// <summary>A sandbox this pool no longer lists moved from one status to another.</summary>
    /// <param name="wasListed">It was in one of the pool's lists until this move (it now counts here by its new status).</param>
    /// <param name="storedBy">The transaction that stored the move (0: not known, or a move in memory only).</param>
    public void Move(string sandboxId, SandboxStatus from, SandboxStatus to, bool wasListed, ulong storedBy = 0)
    {
        var counted = from;
        if (_leaving.Remove(sandboxId))
        {
            (counted, wasListed) = (SandboxStatus.Deleting, false); // already counted as deleting
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
        var move = new HeardMove(sandboxId, from, to, counted, wasListed, storedBy, Leave: false);
        Heard(move);
        if (!InLastCount(move))
        {
            Apply(move.CountedFrom, to, wasListed);
        }
    }

    /// <summary>
    /// A recount begins reading the index: the moves heard from now on are kept until its count is applied, or until it is
    /// disposed (a read that failed: nothing keeps moves for a count that never comes).
    /// </summary>
    public PendingRecount BeginRecount()
    {
        var pending = new PendingRecount(this);
        _pending.Add(pending);
        return pending;
    }

    /// <summary>
    /// Sets the counts from the index, then applies again the moves heard while it was read that its snapshot does not
    /// include. <paramref name="notCounted"/>: the sandboxes the pool listed or had handed out when the read began, or lists
    /// now; the count left them out.
    /// </summary>
    public void Recount(PendingRecount pending, LiveCounts live, IReadOnlySet<string> notCounted)
    {
        _pending.Remove(pending);
        (_leased, _deleting, _unlisted) = (0, 0, 0);
        foreach (var (status, count) in live.ByStatus)
        {
            if (Enum.TryParse<SandboxStatus>(status, ignoreCase: true, out var parsed) && parsed is not (SandboxStatus.Ready or SandboxStatus.Provisioning))
            {
                Add(parsed, (int)count);
            }
        }
        // A sandbox the pool began to list while the index was read (a create just started) is the pool's, not unlisted.
        _unlisted = live.Waiting.Count(id => !notCounted.Contains(id));
        _countedAt = live.Snapshot;
        _notCounted = notCounted;
        _leaving.RemoveWhere(id => !notCounted.Contains(id)); // counted by what the index says they are
        foreach (var move in pending.Moves)
        {
            if (move.Leave)
            {
                // Listed as ready when the read began, so not in the count; otherwise the count has it by its status.
                if (notCounted.Contains(move.SandboxId))
                {
                    Add(SandboxStatus.Deleting, +1);
                }
            }
            else if (!notCounted.Contains(move.SandboxId))
            {
                // Counted by its status as of the snapshot: the move counts unless the snapshot already has it.
                if (!live.Snapshot.Includes(move.StoredBy))
                {
                    Apply(move.From, move.To, wasListed: false);
                }
            }
            else
            {
                Apply(move.CountedFrom, move.To, move.WasListed); // not in the count: as it was heard
            }
        }
    }

    /// <summary>The last recount counted this sandbox, in a snapshot that already holds this move.</summary>
    private bool InLastCount(HeardMove move) =>
        _countedAt is { } snapshot && !_notCounted.Contains(move.SandboxId) && snapshot.Includes(move.StoredBy);

    private void Heard(HeardMove move)
    {
        foreach (var pending in _pending)
        {
            pending.Moves.Add(move);
        }
    }

    private void Apply(SandboxStatus from, SandboxStatus to, bool wasListed)
    {
        if (!wasListed)
        {
            Add(from, -1);
        }
        Add(to, +1);
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

    /// <param name="From">The status the sandbox reported leaving.</param>
    /// <param name="CountedFrom">The status it was counted under here (deleting for one already leaving).</param>
    internal sealed record HeardMove(string SandboxId, SandboxStatus From, SandboxStatus To, SandboxStatus CountedFrom, bool WasListed, ulong StoredBy, bool Leave);

    /// <summary>A recount under way: the moves heard since it began reading.</summary>
    public sealed class PendingRecount(PoolCounts counts) : IDisposable
    {
        internal List<HeardMove> Moves { get; } = [];

        public void Dispose() => counts._pending.Remove(this);
    }
}
