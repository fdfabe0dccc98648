namespace SandboxBroker.Tests.Faults;

/// <summary>A property of the history that does not hold, with the operations that show it.</summary>
public sealed record Violation(string Key, string Kind, string Message, IReadOnlyList<Operation> Excerpt)
{
    public override string ToString() =>
        $"{Kind} on {Key}: {Message}{Environment.NewLine}" + string.Join(Environment.NewLine, Excerpt.Select(o => "    " + o));
}

/// <summary>The checker's verdict on a whole history.</summary>
/// <param name="Inconclusive">Keys whose search ran out of its step budget (neither proven nor refuted).</param>
/// <param name="ExplainedByUnknown">Keys whose history is linearizable only if some unknown operation took effect.</param>
public sealed record CheckResult(IReadOnlyList<Violation> Violations, int Keys, int Operations, IReadOnlyList<string> Inconclusive, int ExplainedByUnknown)
{
    public bool Valid => Violations.Count == 0;
}

/// <summary>
/// Checks a recorded history per claim key against the broker's promise, modelled as a single-copy register
/// holding "the key's live sandbox, or none":
/// <list type="bullet">
/// <item>an acquire answered 201 with s: the register was none and becomes s, an id the key never held before;</item>
/// <item>an acquire answered 200 with s, a touch or a read answered with s: the register holds s;</item>
/// <item>a release answered with s: the register held s (and becomes none) or already held none (a repeated
///   release answers the lease it released before);</item>
/// <item>a touch answered LEASE_NOT_ACTIVE, a release or read answered NOT_FOUND: the register holds none;</item>
/// <item>an unknown acquire may, once, at any point after its invocation, have set an empty register to some id
///   (one seen later in the key's history, or one never seen); an unknown release may have emptied it;</item>
/// <item>other failures took no effect.</item>
/// </list>
/// Leases never expire within a storm (the TTL is longer than the run), so nothing else empties the register.
/// The search is Wing &amp; Gong's: operations are linearized one by one, each only when no pending definite
/// operation completed before it was invoked; visited (linearized set, register) pairs are memoized.
/// Besides, an acknowledged release of s followed (after its completion) by any answer naming s as live is
/// reported as a release undone.
/// </summary>
public sealed class HistoryChecker(int stepBudgetPerKey = 5_000_000)
{
    private const int None = -1;
    private const int Anonymous = -2;

    public CheckResult Check(IEnumerable<Operation> history)
    {
        var operations = history.ToList();
        var violations = new List<Violation>();
        var inconclusive = new List<string>();
        var explainedByUnknown = 0;
        foreach (var key in operations.GroupBy(o => o.Key).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var ops = key.OrderBy(o => o.Invoked).ThenBy(o => o.Id).ToList();
            violations.AddRange(ReleasesUndone(key.Key, ops));
            var search = new KeySearch(key.Key, ops, stepBudgetPerKey);
            // The search recurses once per operation of the key: give it a deep stack.
            var result = SearchResult.BudgetExhausted;
            var thread = new Thread(() => result = search.Run(), maxStackSize: 256 * 1024 * 1024);
            thread.Start();
            thread.Join();
            switch (result)
            {
                case SearchResult.Linearizable:
                    break;
                case SearchResult.LinearizableWithUnknown:
                    explainedByUnknown++;
                    break;
                case SearchResult.BudgetExhausted:
                    inconclusive.Add(key.Key);
                    break;
                case SearchResult.NotLinearizable:
                    violations.Add(search.Describe());
                    break;
            }
        }
        return new CheckResult(violations, operations.Select(o => o.Key).Distinct().Count(), operations.Count, inconclusive, explainedByUnknown);
    }

    /// <summary>An acknowledged release of s, then (invoked after it completed) an answer naming s as the key's live sandbox.</summary>
    private static IEnumerable<Violation> ReleasesUndone(string key, List<Operation> ops)
    {
        foreach (var release in ops.Where(o => o is { Kind: OpKind.Release, Outcome: OpOutcome.Ok, SandboxId: not null }))
        {
            var undone = ops.FirstOrDefault(o => o.Invoked > release.Completed && o.Outcome == OpOutcome.Ok &&
                                                 o.Kind is OpKind.Acquire or OpKind.Touch or OpKind.Read && o.SandboxId == release.SandboxId);
            if (undone is not null)
            {
                yield return new Violation(key, "release undone",
                    $"sandbox {release.SandboxId} was released (#{release.Id}, acknowledged) and later answered as live (#{undone.Id})",
                    ops.Where(o => o.Invoked >= release.Invoked && o.Invoked <= undone.Invoked || o.Id == release.Id).Take(40).ToList());
            }
        }
    }

    private enum SearchResult { Linearizable, LinearizableWithUnknown, NotLinearizable, BudgetExhausted }

    /// <summary>What an operation requires of, and does to, the register.</summary>
    private enum Effect
    {
        /// <summary>201: none → a fresh id.</summary>
        AcquireNew,
        /// <summary>Holds the given id (acquire 200, touch, read).</summary>
        Holds,
        /// <summary>Holds none (touch LEASE_NOT_ACTIVE, release/read NOT_FOUND).</summary>
        Empty,
        /// <summary>Holds the id or none; becomes none.</summary>
        Release,
        /// <summary>May set an empty register to some id (optional).</summary>
        MaybeAcquire,
        /// <summary>May empty the register (optional).</summary>
        MaybeRelease,
    }

    private sealed record ModelOp(Operation Source, Effect Effect, int Sandbox, bool Optional)
    {
        public TimeSpan Invoked => Source.Invoked;
        public TimeSpan Completed => Optional ? TimeSpan.MaxValue : Source.Completed;
    }

    private sealed class KeySearch
    {
        private readonly string _key;
        private readonly List<Operation> _all;
        private readonly List<ModelOp> _ops; // the definite operations, in invocation order
        // Unknown operations of one kind are interchangeable: each may take effect once, at any point after its
        // invocation. So the search tracks how many of each kind it has used, not which: invoked-by-now minus used.
        private readonly List<TimeSpan> _maybeReleases;
        private readonly List<TimeSpan> _maybeAcquires;
        private readonly List<int> _candidateIds; // ids an unknown acquire may have created
        private readonly HashSet<string> _visited = new(StringComparer.Ordinal);
        private readonly int _budget;
        private int _steps;
        private bool _usedUnknown;
        private int _deepest = -1;
        private ulong[] _deepestBits = [];

        public KeySearch(string key, List<Operation> ops, int budget)
        {
            _key = key;
            _all = ops;
            _budget = budget;
            var ids = new Dictionary<string, int>(StringComparer.Ordinal);
            int Id(string? sandbox) => sandbox is null ? None : ids.TryGetValue(sandbox, out var i) ? i : ids[sandbox] = ids.Count;
            var models = new List<ModelOp>();
            foreach (var op in ops)
            {
                ModelOp? model = (op.Kind, op.Outcome) switch
                {
                    (OpKind.Acquire, OpOutcome.Ok) when op.SandboxId is not null =>
                        new ModelOp(op, op.Created ? Effect.AcquireNew : Effect.Holds, Id(op.SandboxId), false),
                    (OpKind.Acquire, OpOutcome.Unknown) => new ModelOp(op, Effect.MaybeAcquire, None, true),
                    (OpKind.Touch or OpKind.Read, OpOutcome.Ok) when op.SandboxId is not null => new ModelOp(op, Effect.Holds, Id(op.SandboxId), false),
                    (OpKind.Touch, OpOutcome.Fail) when op.Code == "LEASE_NOT_ACTIVE" => new ModelOp(op, Effect.Empty, None, false),
                    (OpKind.Release or OpKind.Read, OpOutcome.Fail) when op.Code == "NOT_FOUND" => new ModelOp(op, Effect.Empty, None, false),
                    (OpKind.Release, OpOutcome.Ok) when op.SandboxId is not null => new ModelOp(op, Effect.Release, Id(op.SandboxId), false),
                    (OpKind.Release, OpOutcome.Unknown) => new ModelOp(op, Effect.MaybeRelease, None, true),
                    _ => null, // other failures took no effect; an unknown touch or read changes nothing
                };
                if (model is not null)
                {
                    models.Add(model);
                }
            }
            _ops = models.Where(o => !o.Optional).ToList();
            _maybeReleases = models.Where(o => o.Effect == Effect.MaybeRelease).Select(o => o.Invoked).Order().ToList();
            _maybeAcquires = models.Where(o => o.Effect == Effect.MaybeAcquire).Select(o => o.Invoked).Order().ToList();
            // An unknown acquire can only have created an id seen later but never answered as new (201): a 201 would
            // need the id fresh.
            var answeredNew = _ops.Where(o => o.Effect == Effect.AcquireNew).Select(o => o.Sandbox).ToHashSet();
            _candidateIds = _ops.Where(o => o.Effect is Effect.Holds or Effect.Release && !answeredNew.Contains(o.Sandbox))
                .Select(o => o.Sandbox).Distinct().ToList();
            IdCount = ids.Count;
        }

        private int IdCount { get; }

        public SearchResult Run()
        {
            if (_ops.Count == 0)
            {
                return SearchResult.Linearizable;
            }
            try
            {
                var found = Search(new ulong[(_ops.Count + 63) / 64], 0, None, new ulong[Math.Max(1, (IdCount + 63) / 64)], 0, 0);
                return found ? (_usedUnknown ? SearchResult.LinearizableWithUnknown : SearchResult.Linearizable) : SearchResult.NotLinearizable;
            }
            catch (BudgetExhaustedException)
            {
                return SearchResult.BudgetExhausted;
            }
        }

        /// <summary>Depth-first: true when every definite operation can be linearized from here.</summary>
        private bool Search(ulong[] done, int doneCount, int register, ulong[] used, int releasesUsed, int acquiresUsed)
        {
            if (doneCount == _ops.Count)
            {
                _usedUnknown = releasesUsed + acquiresUsed > 0;
                return true;
            }
            if (++_steps > _budget)
            {
                throw new BudgetExhaustedException();
            }
            if (!_visited.Add(StateKey(done, register, used, releasesUsed, acquiresUsed)))
            {
                return false;
            }
            if (doneCount > _deepest)
            {
                _deepest = doneCount;
                _deepestBits = (ulong[])done.Clone();
            }
            // The earliest completion among pending operations bounds what may go next.
            var horizon = TimeSpan.MaxValue;
            for (var i = 0; i < _ops.Count; i++)
            {
                if (!IsSet(done, i) && _ops[i].Completed < horizon)
                {
                    horizon = _ops[i].Completed;
                }
            }
            // Definite operations first: most histories are linearizable without any unknown one.
            for (var i = 0; i < _ops.Count; i++)
            {
                var op = _ops[i];
                if (op.Invoked > horizon)
                {
                    break; // in invocation order
                }
                if (IsSet(done, i))
                {
                    continue;
                }
                foreach (var (next, nextUsed) in Apply(op, register, used))
                {
                    var nextDone = (ulong[])done.Clone();
                    Set(nextDone, i);
                    if (Search(nextDone, doneCount + 1, next, nextUsed, releasesUsed, acquiresUsed))
                    {
                        return true;
                    }
                }
            }
            // Then an unknown operation invoked by now, if one is left and it would change the register.
            if (register != None && Available(_maybeReleases, horizon) > releasesUsed &&
                Search(done, doneCount, None, used, releasesUsed + 1, acquiresUsed))
            {
                return true;
            }
            if (register == None && Available(_maybeAcquires, horizon) > acquiresUsed)
            {
                foreach (var id in _candidateIds.Where(id => !IsSet(used, id)))
                {
                    if (Search(done, doneCount, id, With(used, id), releasesUsed, acquiresUsed + 1))
                    {
                        return true;
                    }
                }
                if (Search(done, doneCount, Anonymous, used, releasesUsed, acquiresUsed + 1))
                {
                    return true;
                }
            }
            return false;
        }

        private static int Available(List<TimeSpan> invocations, TimeSpan horizon)
        {
            var count = 0;
            while (count < invocations.Count && invocations[count] <= horizon)
            {
                count++;
            }
            return count;
        }

        /// <summary>The register states a definite operation can lead to (none when it cannot happen in this state).</summary>
        private static IEnumerable<(int Register, ulong[] Used)> Apply(ModelOp op, int register, ulong[] used)
        {
            switch (op.Effect)
            {
                case Effect.AcquireNew when register == None && !IsSet(used, op.Sandbox):
                    yield return (op.Sandbox, With(used, op.Sandbox));
                    break;
                case Effect.Holds when register == op.Sandbox:
                case Effect.Empty when register == None:
                    yield return (register, used);
                    break;
                case Effect.Release when register == op.Sandbox || register == None:
                    yield return (None, used);
                    break;
            }
        }

        public Violation Describe()
        {
            // At the deepest point the search reached, the first definite operation it could not place.
            var stuck = Enumerable.Range(0, _ops.Count).Where(i => !IsSet(_deepestBits, i)).Select(i => _ops[i].Source).MinBy(o => o.Completed)!;
            var placed = Enumerable.Range(0, _ops.Count).Where(i => IsSet(_deepestBits, i)).Select(i => _ops[i].Source).ToList();
            var lastHeld = placed.Where(o => o.SandboxId is not null && o.Kind != OpKind.Release).MaxBy(o => o.Completed);
            var from = stuck.Invoked - TimeSpan.FromSeconds(10);
            var excerpt = _all.Where(o => o.Completed >= from && o.Invoked <= stuck.Completed || o.Id == lastHeld?.Id).TakeLast(40).ToList();
            var what = stuck switch
            {
                { Kind: OpKind.Acquire, Created: true } =>
                    $"#{stuck.Id} acquired a new sandbox {stuck.SandboxId} while the key may only have held {Describe(lastHeld)}, with no release that could have happened in between",
                { SandboxId: not null } => $"#{stuck.Id} ({stuck.Kind}) answered sandbox {stuck.SandboxId}, which the key cannot hold at that point (last: {Describe(lastHeld)})",
                _ => $"#{stuck.Id} ({stuck.Kind}) answered that the key holds no lease, which cannot be at that point (last: {Describe(lastHeld)})",
            };
            return new Violation(_key, "not linearizable", what, excerpt);
        }

        private static string Describe(Operation? held) => held is null ? "no sandbox" : $"sandbox {held.SandboxId} (#{held.Id})";

        private static string StateKey(ulong[] done, int register, ulong[] used, int releasesUsed, int acquiresUsed) =>
            string.Join(',', done) + "|" + register + "|" + string.Join(',', used) + "|" + releasesUsed + "|" + acquiresUsed;

        private static bool IsSet(ulong[] bits, int i) => i >= 0 && (bits[i >> 6] & (1UL << (i & 63))) != 0;

        private static void Set(ulong[] bits, int i) => bits[i >> 6] |= 1UL << (i & 63);

        private static ulong[] With(ulong[] bits, int i)
        {
            var copy = (ulong[])bits.Clone();
            Set(copy, i);
            return copy;
        }
    }

    private sealed class BudgetExhaustedException : Exception;
}
