using System.Security.Cryptography;
using Orleans.Concurrency;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// One pool. Keeps MinReady sandboxes warm with at most MaxConcurrentCreates creates in flight, never more than MaxTotal
/// live, and hands each ready sandbox out once. State changes only inside grain turns; the creates run in the background
/// and report back through <see cref="OnSandboxStatus"/>, so the pool keeps answering.
/// <para>
/// It stores only what it hands out: the ready list and the creates in flight (a new sandbox id is stored before its
/// create starts, else a crash would forget a sandbox being created). Everything else it knows of its sandboxes is a
/// count in memory (<see cref="PoolCounts"/>), kept by the sandboxes' notices and set again from the index, which the
/// sandboxes write in the same statement as their state. Checkouts and notices change memory and answer at once; a
/// flush every <see cref="BrokerOptions.PoolFlushInterval"/> writes the lists, when they changed, and starts the
/// creates that top the pool up. A crash before the flush loses nothing that matters: a checked-out id still stored as
/// ready is refused by its sandbox grain (ready → leased happens once, stored there) and the claim takes another.
/// A cold checkout is not stored: the claim stores the id in its lease before the create, and a create never begun
/// leaves nothing at the provider.
/// </para>
/// <para>
/// The grain is reentrant: <see cref="CoalescedWrites{TState}"/> keeps one write in flight and lets the changes made
/// meanwhile share the next one, each write storing a snapshot, never the live state.
/// </para>
/// </summary>
[Reentrant]
public sealed partial class PoolGrain(
    [PersistentState("pool", StorageNames.Broker)] IPersistentState<PoolState> state,
    IOptions<BrokerOptions> options,
    SandboxProviderRegistry providers,
    BrokerIndex index,
    TimeProvider time,
    ILogger<PoolGrain> logger) : Grain, IPoolGrain, IRemindable
{
    private const string MaintainReminder = "maintain";

    /// <summary>A handed-out or provisioning sandbox not heard of for this long is looked at again.</summary>
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(2);

    private string Name => this.GetPrimaryKeyString();

    private CoalescedWrites<PoolState> _writes = null!;
    private PoolState S => _writes.Live;
    private readonly PoolCounts _counts = new();

    /// <summary>The lists changed since the last write started (the flush timer writes them).</summary>
    private bool _dirty;

    private IGrainTimer? _flushTimer;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _writes = new CoalescedWrites<PoolState>(state, this, s => s.Snapshot());
        if (S.Config is null && options.Value.ConfiguredPools.Contains(Name))
        {
            S.Config = options.Value.PoolConfigFor(Name);
            await _writes.PersistAsync();
            await GrainFactory.GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).Add(Name);
        }
        _flushTimer = this.RegisterGrainTimer(static (self, _) => self.Flush(), this,
            new GrainTimerCreationOptions { DueTime = options.Value.PoolFlushInterval, Period = options.Value.PoolFlushInterval, Interleave = true });
        if (S.Config is not null)
        {
            await Recount();
            // The reminders bring the pool and its sweep back after a silo dies, so replenishment and expiry carry on.
            await this.RegisterOrUpdateReminder(MaintainReminder, options.Value.RetryReminderPeriod, options.Value.RetryReminderPeriod);
            await GrainFactory.GetGrain<ISweeperGrain>(Name).Start();
            await Maintain(TimeSpan.Zero);
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _flushTimer?.Dispose();
        if (_dirty && !_writes.Dropped)
        {
            try
            {
                await _writes.PersistAsync(); // stored, but no new creates from an activation on its way out
            }
            catch (Exception e)
            {
                logger.LogWarning("Pool {Pool} could not store its state on deactivation: {Error}", Name, e.Message);
            }
        }
    }

    public Task<PoolConfig> GetConfig() => Task.FromResult(RequireConfig());

    public Task<PoolStatus> GetStatus() =>
        Task.FromResult(new PoolStatus(RequireConfig(), new PoolLevels(S.Ready.Count, S.Provisioning.Count,
            _counts.HandedOut.Count + _counts.Leased, _counts.Deleting, Total)));

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
            await GrainFactory.GetGrain<ISweeperGrain>(Name).Start();
        }
        // In the background: a shrink by thousands must not hold the caller (their ids are already out of the stored
        // lists, and Maintain discards any left ready that no pool lists).
        _ = DiscardInBackground(surplus, "pool shrunk");
        logger.LogInformation("Pool {Pool} configured: provider {Provider}, min ready {MinReady}, max total {MaxTotal}",
            Name, config.Provider, config.MinReady, config.MaxTotal);
        return config;
    }

    public Task<PoolCheckout> Checkout(string claimKey)
    {
        var config = RequireConfig();
        string id;
        bool warm;
        if (S.Ready.Count > 0)
        {
            id = S.TakeOldestReady();
            warm = true;
            _dirty = true; // stored by the next flush: the sandbox grain, not this write, keeps the id from going out twice
        }
        else if (config.OnEmpty == OnEmptyPolicy.Create && Total < config.MaxTotal)
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
        _counts.HandOut(id, time.GetUtcNow());
        return Task.FromResult(new PoolCheckout(id, warm, config));
    }

    public async Task Return(string sandboxId)
    {
        if (!_counts.IsHandedOut(sandboxId))
        {
            return;
        }
        // Asked before anything changes: when the sandbox does not answer (its silo died), the id stays handed out and
        // Maintain looks at it after the grace.
        var info = await GrainFactory.GetGrain<ISandboxGrain>(sandboxId).Get();
        if (!_counts.TakeBack(sandboxId))
        {
            return; // a status notice placed it meanwhile (the grain is reentrant)
        }
        switch (info?.Status)
        {
            case SandboxStatus.Ready:
                S.AddReady(sandboxId, first: true); // untouched: the next claim can have it
                _dirty = true;
                break;
            case { } status:
                _counts.Move(sandboxId, status, status, wasListed: true); // counted by what it is now
                break;
        }
        await SaveAndReplenish();
    }

    public Task OnSandboxStatus(string sandboxId, SandboxStatus from, SandboxStatus to)
    {
        if (to == SandboxStatus.Ready && S.Provisioning.Remove(sandboxId))
        {
            S.AddReady(sandboxId);
            _dirty = true;
            return Task.CompletedTask;
        }
        var listed = S.RemoveReady(sandboxId) | S.Provisioning.Remove(sandboxId);
        _dirty |= listed; // stored (and the pool topped up) by the next flush
        _counts.Move(sandboxId, from, to, listed);
        return Task.CompletedTask;
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == MaintainReminder && S.Config is not null)
        {
            await GrainFactory.GetGrain<ISweeperGrain>(Name).Start();
            await Maintain(Grace);
        }
    }

    /// <summary>Every live sandbox of the pool: listed, handed out, or counted.</summary>
    private int Total => S.Ready.Count + S.Provisioning.Count + _counts.Total;

    /// <summary>
    /// Persists the lists, then starts creates until ready + provisioning reaches MinReady, within MaxTotal and the
    /// create concurrency. New ids are written before any create starts.
    /// </summary>
    private async Task SaveAndReplenish()
    {
        var started = new List<(string Id, SandboxSpec Spec)>();
        if (S.Config is { } config)
        {
            var wanted = config.MinReady - S.Ready.Count - S.Provisioning.Count;
            var room = config.MaxTotal - Total;
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
        if (_dirty || started.Count > 0)
        {
            _dirty = false; // the write about to start stores every change made so far
            await _writes.PersistAsync();
        }
        foreach (var (id, spec) in started)
        {
            _ = CreateInBackground(id, spec);
        }
    }

    /// <summary>Stores what changed since the last write and tops the pool up; a failed write is logged (and drops the activation).</summary>
    private async Task Flush()
    {
        if (_writes.Busy || _writes.Dropped)
        {
            return; // a write is under way (the next tick takes what it leaves), or this activation is on its way out
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

    private SandboxSpec SpecFor(string id, PoolConfig config) =>
        new(Name, config.Provider, config.Template, $"sbx-{Name}-{id[..8]}", new Dictionary<string, string>());

    private PoolConfig RequireConfig() =>
        S.Config ?? throw new BrokerException(ErrorCodes.NotFound, $"pool '{Name}' does not exist") { Field = "pool" };

    private static string NewSandboxId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
}
