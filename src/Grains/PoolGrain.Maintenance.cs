using Microsoft.Extensions.Logging;

namespace SandboxBroker.Grains;

/// <summary>A pool's upkeep: what its reminder and a shrink do (stuck creates resumed, hand-outs taken back, counts set again from the index, strays and surplus discarded).</summary>
public sealed partial class PoolGrain
{
    /// <summary>
    /// Reads back from the index the pool's ready sandboxes (oldest first) and those being created, then the counts of the
    /// rest. A ready sandbox an active lease names is not listed but counted as handed out: the acquire that stored the
    /// lease may still lease it, and if it never does, <see cref="Maintain"/> deletes it after the grace, as it does any
    /// sandbox handed out and never leased. Listing it would let another lease take a sandbox the first one answers with.
    /// </summary>
    private async Task LoadFromIndex()
    {
        var now = time.GetUtcNow();
        var leased = await index.ListLeasedSandboxIdsAsync(Name, CancellationToken.None);
        foreach (var (sandboxId, status, since) in await index.ListReadyAndProvisioningAsync(Name, CancellationToken.None))
        {
            var ready = status == SandboxLifecycle.Format(SandboxStatus.Ready);
            if (ready && leased.Contains(sandboxId))
            {
                _counts.HandOut(sandboxId, now);
            }
            else if (ready)
            {
                L.AddReady(sandboxId);
            }
            else
            {
                L.Provisioning[sandboxId] = since;
            }
        }
        await Recount();
    }

    /// <summary>Sets the counts from the index (what the pool does not list, by status).</summary>
    private async Task Recount()
    {
        var listed = Listed().ToHashSet(StringComparer.Ordinal);
        using var pending = _counts.BeginRecount(); // a failed read must not leave it collecting moves
        var live = await index.CountLiveAsync(Name, listed, CancellationToken.None);
        listed.UnionWith(Listed()); // a create begun meanwhile: the pool's own, whatever the index said
        _counts.Recount(pending, live, listed);
    }

    private IEnumerable<string> Listed() => L.Ready.Concat(L.Provisioning.Keys).Concat(_counts.HandedOut.Keys);

    /// <summary>
    /// Looks again at sandboxes not heard of for <paramref name="age"/>: creates a crash interrupted are resumed, sandboxes
    /// handed out to an acquire that never leased them and ready ones no pool lists are discarded; then the counts are set
    /// again from the index and the pool is topped up.
    /// </summary>
    private async Task Maintain(TimeSpan age)
    {
        var cutoff = time.GetUtcNow() - age;
        var resume = new List<(string, SandboxSpec)>();
        var abandoned = new List<string>();
        foreach (var (id, _) in L.Provisioning.Where(p => p.Value <= cutoff).ToList())
        {
            var info = await GrainFactory.GetGrain<ISandboxGrain>(id).Get();
            if (!L.Provisioning.ContainsKey(id))
            {
                continue; // the sandbox reported meanwhile (the grain is reentrant)
            }
            switch (info?.Status)
            {
                case null or SandboxStatus.Provisioning:
                    L.Provisioning[id] = time.GetUtcNow();
                    resume.Add((id, SpecFor(id, S.Config!)));
                    break;
                case SandboxStatus.Ready:
                    L.Provisioning.Remove(id);
                    L.AddReady(id);
                    break;
                default:
                    L.Provisioning.Remove(id); // counted by its status at the recount below
                    break;
            }
        }
        foreach (var (id, at) in _counts.HandedOut.Where(c => c.Value <= cutoff).ToList())
        {
            var info = await GrainFactory.GetGrain<ISandboxGrain>(id).Get();
            if (!_counts.IsHandedOut(id))
            {
                continue;
            }
            if (info is null || !SandboxLifecycle.IsLive(info.Status))
            {
                _counts.TakeBack(id); // a cold reservation whose create never began, or gone
            }
            else if (info.Status == SandboxStatus.Ready && age > TimeSpan.Zero)
            {
                // Not handed out again: the acquire that took it failed somewhere, and a lease it stored may name this
                // sandbox (a release of that key answers with it). Deleting it costs one warm sandbox; reusing it could
                // hand out a sandbox a caller was told is released.
                _counts.TakeBack(id);
                abandoned.Add(id);
                logger.LogInformation("Pool {Pool} discards sandbox {SandboxId}: handed out at {At} but never leased", Name, id, at);
            }
            else if (info.Status != SandboxStatus.Ready && info.Status != SandboxStatus.Provisioning)
            {
                _counts.TakeBack(id); // leased or on its way out: counted by its status at the recount below
            }
        }
        var listed = Listed().ToList();
        var stray = age > TimeSpan.Zero
            ? await index.ListStrayReadyAsync(Name, listed, time.GetUtcNow() - age, CancellationToken.None)
            : [];
        await Recount();
        Replenish();
        foreach (var (id, spec) in resume)
        {
            _ = CreateInBackground(id, spec);
        }
        // Ready, but listed by no pool (shrunk away, a checkout a crash lost): nobody would hand it out.
        _ = DiscardInBackground([.. stray.Union(abandoned)], "ready but in no pool's list, or handed out and never leased");
    }

    /// <summary>
    /// Sends the sandboxes to deletion one after another. The first failure ends the round: it is the silo stopping or
    /// Postgres away, which the next call would meet too (a silo stopping after a large shrink logged one warning per
    /// sandbox, tens of thousands). What is left is ready and in no pool's list, so a later Maintain finds it as stray.
    /// </summary>
    private async Task DiscardInBackground(IReadOnlyList<string> ids, string reason)
    {
        for (var i = 0; i < ids.Count; i++)
        {
            try
            {
                await GrainFactory.GetGrain<ISandboxGrain>(ids[i]).Discard(reason);
            }
            catch (Exception e)
            {
                logger.LogWarning("Pool {Pool} could not discard sandbox {SandboxId}, {Left} more left to the next maintenance: {Error}",
                    Name, ids[i], ids.Count - i - 1, e.Message);
                return;
            }
        }
    }

    /// <summary>
    /// After a shrink below the live count, ready sandboxes leave the pool (newest first) until what is left fits the new
    /// max total; they count as deleting from now on.
    /// </summary>
    private List<string> TakeSurplus()
    {
        var config = S.Config!;
        var surplus = new List<string>();
        for (var excess = Total - config.MaxTotal; excess > 0 && L.Ready.Count > 0; excess--)
        {
            var id = L.TakeNewestReady();
            _counts.Leave(id);
            surplus.Add(id);
        }
        return surplus;
    }
}
