using System.Security.Cryptography;
using Orleans.Concurrency;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Grains;

[GenerateSerializer]
public sealed class PoolState
{
    /// <summary>Null until the pool is created (configured pools are created on first use).</summary>
    [Id(0)] public PoolConfig? Config { get; set; }

    /// <summary>Ready sandboxes, oldest first: each is handed out once.</summary>
    [Id(1)] public List<string> Ready { get; set; } = [];

    /// <summary>Sandboxes the pool is creating to stay warm, with when the create started.</summary>
    [Id(2)] public Dictionary<string, DateTimeOffset> Provisioning { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Sandboxes handed to claims (warm, or reserved for a cold create), with when.</summary>
    [Id(3)] public Dictionary<string, DateTimeOffset> CheckedOut { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Sandboxes on their way out; they still exist at the provider, so they count against max total.</summary>
    [Id(4)] public HashSet<string> Deleting { get; set; } = new(StringComparer.Ordinal);

    public int Total => Ready.Count + Provisioning.Count + CheckedOut.Count + Deleting.Count;

    /// <summary>A copy sharing no collection with this one (the configuration is an immutable record).</summary>
    public PoolState Snapshot() => new()
    {
        Config = Config,
        Ready = [.. Ready],
        Provisioning = new(Provisioning, StringComparer.Ordinal),
        CheckedOut = new(CheckedOut, StringComparer.Ordinal),
        Deleting = new(Deleting, StringComparer.Ordinal),
    };
}

/// <summary>
/// One pool. Keeps MinReady sandboxes warm with at most MaxConcurrentCreates creates in flight, never
/// more than MaxTotal live, and hands each ready sandbox out once. State changes only inside grain turns; the
/// creates themselves run in the background and report back through <see cref="OnSandboxStatus"/>, so the pool
/// keeps answering.
/// <para>
/// What the pool stores is a hint the sandboxes can always correct, so only one kind of change must be durable
/// before the pool acts on it: a new sandbox id, written before its create starts or before a cold checkout
/// answers (else a crash would forget a sandbox being created). Warm checkouts and status notices change memory
/// and answer at once; a flush every <see cref="BrokerOptions.PoolFlushInterval"/> writes them together and
/// starts the creates that top the pool up. A crash before the flush loses nothing that matters: a checked-out
/// id still stored as ready is refused by its sandbox grain (ready → leased happens once, persisted there) and
/// the claim takes another; a notice lost is found again by <see cref="Maintain"/>, which asks the sandboxes.
/// (Before this, every checkout waited for a write of the whole pool state, and the pool capped warm acquires
/// at its write rate.)
/// </para>
/// <para>
/// The writes are group-committed: the grain is reentrant, each call changes the state synchronously (before
/// its first await) and a caller that needs durability waits for a write that starts after its change. One
/// write is in flight at a time; the calls that arrive meanwhile share the next one. A write stores a snapshot,
/// never the live state: the storage provider serializes after its own awaits, off the grain's turn, while the
/// next calls already change the live state (serializing that raced them: "collection was modified", or worse a
/// torn write, an id moving from provisioning to ready stored in neither).
/// </para>
/// </summary>
[Reentrant]
public sealed class PoolGrain(
    [PersistentState("pool", StorageNames.Broker)] IPersistentState<PoolState> state,
    IOptions<BrokerOptions> options,
    SandboxProviderRegistry providers,
    TimeProvider time,
    ILogger<PoolGrain> logger) : Grain, IPoolGrain, IRemindable
{
    private const string MaintainReminder = "maintain";

    /// <summary>A checked-out or provisioning sandbox not heard of for this long is looked at again.</summary>
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(2);

    private string Name => this.GetPrimaryKeyString();

    /// <summary>The live state; <c>state.State</c> holds only the snapshot being (or last) written.</summary>
    private PoolState _live = new();
    private PoolState S => _live;

    /// <summary>The callers waiting for the next write (it includes every change made before it starts).</summary>
    private TaskCompletionSource? _nextWrite;

    /// <summary>The loop writing the state; null when no write is wanted.</summary>
    private Task? _writer;

    /// <summary>Changes in memory that no write has started to store yet (the flush timer writes them).</summary>
    private bool _dirty;

    /// <summary>A write failed and this activation is on its way out: nothing more is written from its memory.</summary>
    private bool _dropped;

    private IGrainTimer? _flushTimer;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _live = state.State.Snapshot();
        if (S.Config is null && options.Value.ConfiguredPools.Contains(Name))
        {
            S.Config = options.Value.PoolConfigFor(Name);
            await PersistAsync();
            await GrainFactory.GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).Add(Name);
        }
        _flushTimer = this.RegisterGrainTimer(static (self, _) => self.Flush(), this,
            new GrainTimerCreationOptions { DueTime = options.Value.PoolFlushInterval, Period = options.Value.PoolFlushInterval, Interleave = true });
        if (S.Config is not null)
        {
            // The reminder brings the pool back after a silo dies, so replenishment carries on.
            await this.RegisterOrUpdateReminder(MaintainReminder, options.Value.RetryReminderPeriod, options.Value.RetryReminderPeriod);
            await Maintain(TimeSpan.Zero);
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _flushTimer?.Dispose();
        if (_dirty && !_dropped)
        {
            try
            {
                await PersistAsync(); // stored, but no new creates from an activation on its way out
            }
            catch (Exception e)
            {
                logger.LogWarning("Pool {Pool} could not store its state on deactivation: {Error}", Name, e.Message);
            }
        }
    }

    public Task<PoolConfig> GetConfig() => Task.FromResult(RequireConfig());

    public Task<PoolStatus> GetStatus() =>
        Task.FromResult(new PoolStatus(RequireConfig(), new PoolLevels(S.Ready.Count, S.Provisioning.Count, S.CheckedOut.Count, S.Deleting.Count, S.Total)));

    public async Task<PoolConfig> Configure(PoolConfig config)
    {
        config = config with { Name = Name };
        PoolConfigValidator.Validate(config, providers.Contains);
        var isNew = S.Config is null;
        S.Config = config;
        var surplus = TakeSurplus();
        await SaveAndReplenish();
        if (isNew)
        {
            await GrainFactory.GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).Add(Name);
            await this.RegisterOrUpdateReminder(MaintainReminder, options.Value.RetryReminderPeriod, options.Value.RetryReminderPeriod);
        }
        // In the background: a shrink by thousands must not hold the caller (their ids are already stored as deleting,
        // and Maintain discards again any that is still ready).
        _ = DiscardInBackground(surplus, "pool shrunk");
        logger.LogInformation("Pool {Pool} configured: provider {Provider}, min ready {MinReady}, max total {MaxTotal}",
            Name, config.Provider, config.MinReady, config.MaxTotal);
        return config;
    }

    public async Task<PoolCheckout> Checkout(string claimKey)
    {
        var config = RequireConfig();
        string id;
        bool warm;
        if (S.Ready.Count > 0)
        {
            id = S.Ready[0];
            S.Ready.RemoveAt(0);
            warm = true;
        }
        else if (config.OnEmpty == OnEmptyPolicy.Create && S.Total < config.MaxTotal)
        {
            id = NewSandboxId();
            warm = false;
        }
        else
        {
            var why = config.OnEmpty == OnEmptyPolicy.Fail
                ? $"pool '{Name}' has no ready sandbox ({S.Provisioning.Count} being created)"
                : $"pool '{Name}' is at its max total of {config.MaxTotal} sandboxes";
            throw new BrokerException(ErrorCodes.NoSandboxesAvailable, why) { RetryAfterSeconds = 5 };
        }
        S.CheckedOut[id] = time.GetUtcNow();
        if (warm)
        {
            _dirty = true; // stored by the next flush: the sandbox grain, not this write, keeps the id from going out twice
            return new PoolCheckout(id, warm, config);
        }
        // A new id is about to be created: it is stored first, like the pool's own creates (the fault harness saw a
        // cold reservation lost with a flush that failed, and its sandbox, created anyway, unknown to the pool).
        await PersistAsync();
        return new PoolCheckout(id, warm, config);
    }

    public async Task Return(string sandboxId)
    {
        if (!S.CheckedOut.ContainsKey(sandboxId))
        {
            return;
        }
        // Asked before anything changes: when the sandbox does not answer (its silo died), the id stays checked out
        // and Maintain looks at it after the grace. (Removing it first lost it from the pool's count for good: the
        // fault harness found a ready sandbox the pool no longer knew.)
        var info = await GrainFactory.GetGrain<ISandboxGrain>(sandboxId).Get();
        if (!S.CheckedOut.Remove(sandboxId))
        {
            return; // a status notice placed it meanwhile (the grain is reentrant)
        }
        switch (info?.Status)
        {
            case SandboxStatus.Ready:
                S.Ready.Insert(0, sandboxId); // untouched: the next claim can have it
                break;
            case SandboxStatus.Leased:
                S.CheckedOut[sandboxId] = time.GetUtcNow(); // another claim has it (a checkout this pool lost in a crash)
                break;
            case { } status when SandboxLifecycle.IsLive(status):
                S.Deleting.Add(sandboxId);
                break;
        }
        await SaveAndReplenish();
    }

    public Task OnSandboxStatus(string sandboxId, SandboxStatus status)
    {
        var changed = status switch
        {
            SandboxStatus.Ready => S.Provisioning.Remove(sandboxId) && AddReady(sandboxId),
            SandboxStatus.Leased => S.Ready.Remove(sandboxId) | S.Provisioning.Remove(sandboxId) | S.CheckedOut.TryAdd(sandboxId, time.GetUtcNow()),
            SandboxStatus.Releasing or SandboxStatus.Deleting or SandboxStatus.Failed => Forget(sandboxId) | S.Deleting.Add(sandboxId),
            SandboxStatus.Deleted or SandboxStatus.Stale => Forget(sandboxId),
            _ => false,
        };
        _dirty |= changed; // stored (and the pool topped up) by the next flush
        return Task.CompletedTask;
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == MaintainReminder && S.Config is not null)
        {
            await Maintain(Grace);
        }
    }

    private bool AddReady(string sandboxId)
    {
        S.Ready.Add(sandboxId);
        return true;
    }

    private bool Forget(string sandboxId) =>
        S.Ready.Remove(sandboxId) | S.Provisioning.Remove(sandboxId) | S.CheckedOut.Remove(sandboxId) | S.Deleting.Remove(sandboxId);

    /// <summary>
    /// Persists the pool, then starts creates until ready + provisioning reaches MinReady, within MaxTotal
    /// and the create concurrency. New ids are written before any create starts.
    /// </summary>
    private async Task SaveAndReplenish()
    {
        var started = new List<(string Id, SandboxSpec Spec)>();
        if (S.Config is { } config)
        {
            var wanted = config.MinReady - S.Ready.Count - S.Provisioning.Count;
            var room = config.MaxTotal - S.Total;
            var slots = config.MaxConcurrentCreates - S.Provisioning.Count;
            var count = Math.Min(wanted, Math.Min(room, slots));
            var now = time.GetUtcNow();
            for (var i = 0; i < count; i++)
            {
                var id = NewSandboxId();
                S.Provisioning[id] = now;
                started.Add((id, SpecFor(id, config)));
            }
        }
        await PersistAsync();
        foreach (var (id, spec) in started)
        {
            _ = CreateInBackground(id, spec);
        }
    }

    /// <summary>Stores what changed since the last write and tops the pool up; a failed write is logged (and drops the activation).</summary>
    private async Task Flush()
    {
        if (!_dirty || _writer is not null || _dropped)
        {
            return; // nothing new, or a write is under way (the next tick takes what it leaves)
        }
        try
        {
            await SaveAndReplenish();
        }
        catch (Exception e)
        {
            logger.LogWarning("Pool {Pool} could not store its state: {Error}", Name, e.Message);
        }
    }

    /// <summary>Completes once a write that started after this call has stored the state (group commit).</summary>
    private Task PersistAsync()
    {
        _nextWrite ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var durable = _nextWrite.Task;
        _writer ??= WriteLoop();
        return durable;
    }

    private async Task WriteLoop()
    {
        // Runs on the grain's scheduler, so it interleaves only at awaits, like any other call.
        while (_nextWrite is { } batch)
        {
            _nextWrite = null;
            _dirty = false; // this write stores every change made so far
            try
            {
                state.State = _live.Snapshot();
                await state.WriteOrReloadAsync(this);
                batch.SetResult();
            }
            catch (Exception e)
            {
                _dropped = true; // WriteOrReloadAsync drops the activation: the next one starts from what is stored
                batch.SetException(e);
            }
        }
        _writer = null;
    }

    /// <summary>Runs one create; touches no pool state (the sandbox reports back through OnSandboxStatus).</summary>
    private async Task CreateInBackground(string id, SandboxSpec spec)
    {
        try
        {
            await GrainFactory.GetGrain<ISandboxGrain>(id).Provision(spec);
        }
        catch (Exception e)
        {
            logger.LogWarning("Pool {Pool} could not create sandbox {SandboxId}: {Error}", Name, id, e.Message);
        }
    }

    /// <summary>
    /// Looks again at sandboxes not heard of for <paramref name="age"/>: creates a crash interrupted are
    /// resumed, sandboxes checked out by an acquire that never leased them come back, and then the pool is
    /// topped up.
    /// </summary>
    private async Task Maintain(TimeSpan age)
    {
        var cutoff = time.GetUtcNow() - age;
        var resume = new List<(string, SandboxSpec)>();
        foreach (var (id, _) in S.Provisioning.Where(p => p.Value <= cutoff).ToList())
        {
            var info = await GrainFactory.GetGrain<ISandboxGrain>(id).Get();
            if (!S.Provisioning.ContainsKey(id))
            {
                continue; // the sandbox reported meanwhile (the grain is reentrant)
            }
            switch (info?.Status)
            {
                case null or SandboxStatus.Provisioning:
                    S.Provisioning[id] = time.GetUtcNow();
                    resume.Add((id, SpecFor(id, S.Config!)));
                    break;
                case SandboxStatus.Ready:
                    S.Provisioning.Remove(id);
                    S.Ready.Add(id);
                    break;
                case var status when SandboxLifecycle.IsLive(status.Value):
                    S.Provisioning.Remove(id);
                    S.Deleting.Add(id);
                    break;
                default:
                    S.Provisioning.Remove(id);
                    break;
            }
        }
        foreach (var (id, at) in S.CheckedOut.Where(c => c.Value <= cutoff).ToList())
        {
            var info = await GrainFactory.GetGrain<ISandboxGrain>(id).Get();
            if (!S.CheckedOut.ContainsKey(id))
            {
                continue;
            }
            if (info is null)
            {
                S.CheckedOut.Remove(id); // a cold reservation whose create never began
            }
            else if (info.Status == SandboxStatus.Ready && age > TimeSpan.Zero)
            {
                S.CheckedOut.Remove(id);
                S.Ready.Add(id);
                logger.LogInformation("Pool {Pool} takes back sandbox {SandboxId}: checked out at {At} but never leased", Name, id, at);
            }
            else if (!SandboxLifecycle.IsLive(info.Status))
            {
                S.CheckedOut.Remove(id);
            }
        }
        var discard = new List<string>();
        foreach (var id in S.Deleting.ToList())
        {
            var info = await GrainFactory.GetGrain<ISandboxGrain>(id).Get();
            if (S.Deleting.Contains(id) && (info is null || !SandboxLifecycle.IsLive(info.Status)))
            {
                S.Deleting.Remove(id);
            }
            else if (info?.Status is SandboxStatus.Ready or SandboxStatus.Failed or SandboxStatus.Stale)
            {
                discard.Add(id); // taken out of the pool but its discard never arrived (a crash, a failed call)
            }
        }
        await SaveAndReplenish();
        foreach (var (id, spec) in resume)
        {
            _ = CreateInBackground(id, spec);
        }
        _ = DiscardInBackground(discard, "left the pool");
    }

    /// <summary>Sends the sandboxes to deletion one after another; a failure is logged (Maintain tries again).</summary>
    private async Task DiscardInBackground(IReadOnlyList<string> ids, string reason)
    {
        foreach (var id in ids)
        {
            try
            {
                await GrainFactory.GetGrain<ISandboxGrain>(id).Discard(reason);
            }
            catch (Exception e)
            {
                logger.LogWarning("Pool {Pool} could not discard sandbox {SandboxId}: {Error}", Name, id, e.Message);
            }
        }
    }

    /// <summary>
    /// After a shrink below the live count, ready sandboxes leave the pool (newest first) until what is left fits
    /// the new max total. (They still count while they are deleted, so the loop counts the excess instead of
    /// re-reading the total; re-reading it took every ready sandbox.)
    /// </summary>
    private List<string> TakeSurplus()
    {
        var config = S.Config!;
        var surplus = new List<string>();
        for (var excess = S.Total - config.MaxTotal; excess > 0 && S.Ready.Count > 0; excess--)
        {
            var id = S.Ready[^1];
            S.Ready.RemoveAt(S.Ready.Count - 1);
            S.Deleting.Add(id);
            surplus.Add(id);
        }
        return surplus;
    }

    private SandboxSpec SpecFor(string id, PoolConfig config) =>
        new(Name, config.Provider, config.Template, $"sbx-{Name}-{id[..8]}", new Dictionary<string, string>());

    private PoolConfig RequireConfig() =>
        S.Config ?? throw new BrokerException(ErrorCodes.NotFound, $"pool '{Name}' does not exist") { Field = "pool" };

    private static string NewSandboxId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
}
