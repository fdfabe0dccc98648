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
/// It stores only its configuration. What it hands out and counts is in memory (<see cref="PoolLists"/>,
/// <see cref="PoolCounts"/>), kept by the sandboxes' notices and read back from the index at activation: a sandbox
/// stores itself (with its index row, in one statement) as provisioning before its provider is called and as ready
/// before it tells the pool, so the index holds every ready and provisioning sandbox of the pool. Checkouts and notices
/// change memory and answer at once; a timer every <see cref="BrokerOptions.PoolFlushInterval"/> starts the creates
/// that top the pool up. A crash loses nothing that matters: a handed-out id still ready at the index is handed out
/// again by the next activation and refused by its sandbox grain if it was leased meanwhile (ready → leased happens
/// once, stored there), and the claim takes another; a cold reservation is named by the claim's lease before the
/// create, and a create never begun leaves nothing at the provider.
/// </para>
/// <para>
/// The grain is reentrant: <see cref="CoalescedWrites{TState}"/> keeps one configuration write in flight.
/// </para>
/// </summary>
[Reentrant]
public sealed partial class PoolGrain(
    [PersistentState("pool", StorageNames.Broker)] IPersistentState<PoolState> state,
    IOptions<BrokerOptions> options,
    SandboxProviderRegistry providers,
    BrokerIndex index,
    GrainReferences grains,
    TimeProvider time,
    ILogger<PoolGrain> logger) : Grain, IPoolGrain, IRemindable
{
    private const string MaintainReminder = "maintain";

    /// <summary>A handed-out or provisioning sandbox not heard of for this long is looked at again.</summary>
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(2);

    private string Name => this.GetPrimaryKeyString();

    private CoalescedWrites<PoolState> _writes = null!;
    private PoolState S => _writes.Live;
    private readonly PoolLists _lists = new();
    private readonly PoolCounts _counts = new();

    private IGrainTimer? _topUpTimer;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _writes = new CoalescedWrites<PoolState>(state, this, s => new PoolState { Config = s.Config });
        if (S.Config is null && options.Value.ConfiguredPools.Contains(Name))
        {
            S.Config = options.Value.PoolConfigFor(Name);
            await _writes.PersistAsync();
            await GrainFactory.GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).Add(Name);
        }
        if (S.Config is not null)
        {
            StartTopUp();
            await LoadFromIndex();
            // The reminders bring the pool and its sweep back after a silo dies, so replenishment and expiry carry on.
            await this.RegisterOrUpdateReminder(MaintainReminder, options.Value.RetryReminderPeriod, options.Value.RetryReminderPeriod);
            await GrainFactory.GetGrain<ISweeperGrain>(Name).Start();
            await Maintain(TimeSpan.Zero);
        }
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _topUpTimer?.Dispose(); // nothing to store: the next activation reads the lists back from the index
        return Task.CompletedTask;
    }

    public Task<PoolConfig> GetConfig() => Task.FromResult(RequireConfig());

    public Task<PoolStatus> GetStatus() =>
        Task.FromResult(new PoolStatus(RequireConfig(), new PoolLevels(L.Ready.Count, L.Provisioning.Count,
            _counts.HandedOut.Count + _counts.Leased, _counts.Deleting, Total)));

    public async Task<PoolConfig> Configure(PoolConfig config)
    {
        config = config with { Name = Name };
        PoolConfigValidator.Validate(config, providers.Contains,
            (provider, template) => providers.Get(provider).Capability<ISandboxTemplateRule>()?.ProblemWith(template));
        var isNew = S.Config is null;
        S.Config = config;
        var surplus = TakeSurplus();
        await _writes.PersistAsync();
        Replenish();
        if (isNew)
        {
            StartTopUp();
            await GrainFactory.GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).Add(Name);
            await this.RegisterOrUpdateReminder(MaintainReminder, options.Value.RetryReminderPeriod, options.Value.RetryReminderPeriod);
            await GrainFactory.GetGrain<ISweeperGrain>(Name).Start();
        }
        // In the background: a shrink by thousands must not hold the caller (their ids are already out of the lists, and
        // Maintain discards any left ready that no pool lists).
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
        if (L.Ready.Count > 0)
        {
            id = L.TakeOldestReady();
            warm = true;
        }
        else if (config.OnEmpty == OnEmptyPolicy.Create && Total < config.MaxTotal)
        {
            id = NewSandboxId();
            warm = false;
        }
        else
        {
            var why = config.OnEmpty == OnEmptyPolicy.Fail
                ? $"pool '{Name}' has no ready sandbox ({L.Provisioning.Count} being created)"
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
                L.AddReady(sandboxId, first: true); // untouched: the next claim can have it
                break;
            case { } status:
                _counts.Move(sandboxId, status, status, wasListed: true); // counted by what it is now
                break;
        }
        Replenish();
    }

    public Task OnSandboxStatus(string sandboxId, SandboxStatus from, SandboxStatus to, ulong storedBy)
    {
        if (to == SandboxStatus.Ready && L.Provisioning.Remove(sandboxId))
        {
            L.AddReady(sandboxId);
            return Task.CompletedTask;
        }
        var listed = L.RemoveReady(sandboxId) | L.Provisioning.Remove(sandboxId);
        _counts.Move(sandboxId, from, to, listed, storedBy); // the pool is topped up by its next timer tick
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
    private int Total => L.Ready.Count + L.Provisioning.Count + _counts.Total;

    private PoolLists L => _lists;

    /// <summary>
    /// Starts creates until ready + provisioning reaches MinReady, within MaxTotal and the create concurrency. Nothing is
    /// stored first: each sandbox stores itself as provisioning (with its index row) before its provider is called.
    /// </summary>
    private void Replenish()
    {
        if (S.Config is not { } config || _writes.Dropped)
        {
            return;
        }
        var wanted = config.MinReady - L.Ready.Count - L.Provisioning.Count;
        var room = config.MaxTotal - Total;
        var slots = config.MaxConcurrentCreates - L.Provisioning.Count;
        var count = Math.Min(wanted, Math.Min(room, slots));
        var now = time.GetUtcNow();
        for (var i = 0; i < count; i++)
        {
            var id = NewSandboxId();
            L.Provisioning[id] = now;
            _ = CreateInBackground(id, SpecFor(id, config));
        }
    }

    /// <summary>Only a pool that exists has the timer: an activation for a name nobody created costs nothing while it lasts.</summary>
    private void StartTopUp() =>
        _topUpTimer ??= this.RegisterGrainTimer(static (self, _) => self.TopUp(), this,
            new GrainTimerCreationOptions { DueTime = options.Value.PoolFlushInterval, Period = options.Value.PoolFlushInterval, Interleave = true });

    private Task TopUp()
    {
        Replenish();
        return Task.CompletedTask;
    }

    /// <summary>Runs one create; touches no pool state (the sandbox reports back through OnSandboxStatus).</summary>
    private async Task CreateInBackground(string id, SandboxSpec spec)
    {
        try
        {
            await grains.Sandbox(id).Provision(spec);
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
