using Orleans.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Persistence;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// One tenant's claim key (grain id <c>{tenant}/{claim key}</c>, see <see cref="ClaimId"/>). A single activation
/// serializes check-and-create: the sandbox id is decided here and persisted (ETag-guarded) before it is returned. A
/// write that loses to another activation (a stale ETag during a membership change) gives back what it took and
/// deactivates; the caller's retry reaches the winner. Leases end by themselves: every call checks the deadline, a
/// timer fires at it while the activation lives, and the deadline sweep (<see cref="SweeperGrain"/>) wakes the claim by
/// the wake time its index row carries when it does not (its silo died). No reminder per lease. Ended leases become
/// bounded history, pruned after a retention period.
/// </summary>
public sealed partial class ClaimGrain(
    [FromKeyedServices(StorageNames.Broker)] IGrainStorage storage,
    IOptions<BrokerOptions> options,
    GrainReferences grains,
    IJointWrites jointWrites,
    IClusterMembershipService membership,
    TimeProvider time,
    ILogger<ClaimGrain> logger) : Grain, IClaimGrain, IIncomingGrainCallFilter
{
    private const string StateName = "claim";

    /// <summary>Read on first need (<see cref="Invoke"/>), not at activation: see <see cref="LeaseGuessingNew"/>.</summary>
    private LazyState<ClaimState> _state = null!;
    private IGrainTimer? _deadlineTimer;
    /// <summary>The active lease's sandbox as last seen; null until confirmed in this activation.</summary>
    private SandboxInfo? _sandbox;
    /// <summary>The lease whose touch was last audited, and when: later touches within TouchAuditInterval are not.</summary>
    private (long Lease, DateTimeOffset At)? _touchAudited;
    /// <summary>The cluster's membership when this activation started (see <see cref="LivedThroughMembershipChange"/>).</summary>
    private MembershipVersion _membershipAtActivation;

    /// <summary>The grain id, <c>{tenant}/{claim key}</c>: what the index, the audit log and the sandboxes know the claim by.</summary>
    private string Id => this.GetPrimaryKeyString();
    /// <summary>The tenant the key belongs to, by construction (part of the id).</summary>
    private string Tenant { get; set; } = "";
    /// <summary>The claim key as its tenant names it.</summary>
    private string Key { get; set; } = "";
    private ClaimState S => _state.State;
    private BrokerOptions Options => options.Value;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (Tenant, Key) = ClaimId.Parse(Id);
        _membershipAtActivation = membership.CurrentSnapshot.Version;
        _state = new LazyState<ClaimState>(storage, StateName, this.GetGrainId());
        return Task.CompletedTask;
    }

    public async Task<AcquireResult> Acquire(AcquireRequest request)
    {
        LeaseRules.ValidateRequest(request);
        if (request.Tenant != Tenant)
        {
            throw new BrokerException(ErrorCodes.InvalidArgument, $"an acquire for tenant '{request.Tenant}' reached a claim of tenant '{Tenant}'") { Field = "tenant" };
        }
        if (!_state.IsLoaded && await LeaseGuessingNew(request) is { } guessed)
        {
            return guessed;
        }
        await RetryUnreleased();
        if (await CurrentLease() is { } active)
        {
            return new AcquireResult(active, AcquireOutcome.Repeat, _sandbox!);
        }
        // None, or its sandbox was lost (stale, or taken while this grain was down) and the lease has ended: lease anew.
        return await LeaseNew(request);
    }

    public Task<Lease?> Get() => CurrentLease();

    public async Task<Lease> Touch()
    {
        var lease = await RequireActive();
        var updated = lease with { LastActivityAt = time.GetUtcNow() };
        var audited = _touchAudited is { } last && last.Lease == updated.Number && updated.LastActivityAt - last.At < Options.TouchAuditInterval;
        await Save(() =>
        {
            S.Active = updated;
            if (!audited)
            {
                Audit("lease.touched", updated, updated.Status);
            }
        });
        if (!audited)
        {
            _touchAudited = (updated.Number, updated.LastActivityAt);
        }
        ArmDeadlineTimer();
        return updated;
    }

    public async Task<Lease> Extend(TimeSpan ttl)
    {
        var lease = await RequireActive();
        if (ttl <= TimeSpan.Zero)
        {
            throw new BrokerException(ErrorCodes.InvalidArgument, "ttl must be positive") { Field = "ttl_seconds" };
        }
        var pool = await grains.Pool(lease.Pool).GetConfig();
        var now = time.GetUtcNow();
        LeaseRules.EffectiveTtl(ttl, pool);
        var expiresAt = now + ttl > lease.ExpiresAt ? now + ttl : lease.ExpiresAt;
        var updated = lease with { ExpiresAt = expiresAt, LastActivityAt = now };
        await Save(() =>
        {
            S.Active = updated;
            Audit("lease.extended", updated, updated.Status);
        });
        ArmDeadlineTimer();
        return updated;
    }

    public async Task<Lease?> Release(string reason)
    {
        await ExpireIfDue();
        if (S.Active is null)
        {
            // "Nothing to release" comes from memory: it is stamped with a write first, so an activation left over from a
            // membership change, whose memory another activation has moved past (a lease acquired there), fails on the
            // ETag instead of answering it, and the caller's retry reaches the live one.
            if (_state.RecordExists)
            {
                await Save(() => { });
            }
            return null;
        }
        return await EndActive(LeaseStatus.Released, string.IsNullOrWhiteSpace(reason) ? "released" : reason);
    }

    public async Task<IReadOnlyList<Lease>> History()
    {
        return await CurrentLease() is { } active ? [active, .. S.History] : S.History;
    }

    public async Task<bool> Owns(string sandboxId) => (await Stored()).Active?.SandboxId == sandboxId;

    public async Task<bool> HasActiveLease() => (await Stored()).Active is not null;

    public async Task SandboxLost(string sandboxId, string reason)
    {
        if (S.Active?.SandboxId == sandboxId)
        {
            await EndActive(LeaseStatus.Released, $"sandbox lost: {reason}");
        }
    }

    public async Task Wake()
    {
        await ExpireIfDue();
        await RetryUnreleased();
        var now = time.GetUtcNow();
        var pruned = LeaseRules.Prune(S.History, Options.HistoryLimit, Options.HistoryRetention, now);
        if (S.Active is null && pruned.Count == 0 && S.Unreleased.Count == 0)
        {
            // Nothing left to remember: the row and its index row go, and re-acquiring the key starts afresh.
            if (_state.RecordExists)
            {
                await _state.ClearStateAsync();
            }
            DeactivateOnIdle();
            return;
        }
        if (pruned.Count != S.History.Count || S.WakeAt is { } wake && wake <= now)
        {
            await Save(() => S.History = pruned); // also moves the wake time on
        }
    }

    /// <summary>
    /// The sandbox behind the active lease, confirmed once per activation (after a crash between persisting
    /// the lease and leasing the sandbox, this finishes the job). Null when the sandbox was lost: the lease is ended.
    /// </summary>
    private async Task<SandboxInfo?> ConfirmSandbox(Lease active)
    {
        if (_sandbox is not null)
        {
            return _sandbox;
        }
        try
        {
            var sandbox = await grains.Sandbox(active.SandboxId).Lease(LeaseRequestFor(active));
            // Stamped with a write: an activation that confirms a lease must be the one that stores it. During a membership
            // change two activations can briefly coexist; if the other one ends this lease (its own lease call's answer
            // lost), one of the two writes fails on the ETag, instead of this one answering a lease whose sandbox the other
            // is deleting. (FaultTests saw an active lease naming a deleted sandbox.) Once per activation, never on LeaseNew.
            await Save(() => { });
            _sandbox = sandbox;
            return _sandbox;
        }
        catch (BrokerException e) when (e.Code is ErrorCodes.Conflict or ErrorCodes.NotFound)
        {
            logger.LogWarning("Claim {ClaimId}: sandbox {SandboxId} of the active lease is not available: {Reason}", Id, active.SandboxId, e.Message);
            await EndActive(LeaseStatus.Released, $"sandbox lost: {e.Message}");
            return null;
        }
    }

    /// <summary>
    /// The active lease, if any, once its deadline is checked and its sandbox confirmed: no answer names a sandbox
    /// that is not leased to this key (after a crash between persisting the lease and leasing the sandbox).
    /// </summary>
    private async Task<Lease?> CurrentLease()
    {
        await ExpireIfDue();
        if (S.Active is { } active && await ConfirmSandbox(active) is null)
        {
            return null;
        }
        return S.Active;
    }

    private async Task<Lease> RequireActive() =>
        await CurrentLease() ?? throw new BrokerException(ErrorCodes.LeaseNotActive, $"claim '{Key}' has no active lease");

    /// <summary>
    /// Applies a change and writes it. A failed write puts memory back as it was (calls that interleave until the
    /// activation is dropped answer what is stored, never a change nobody acknowledged); a stale ETag means
    /// another activation won.
    /// </summary>
    private async Task Save(Action change)
    {
        var (tenant, active, history, count, unreleased, wake) = (S.Tenant, S.Active, S.History, S.LeaseCount, S.Unreleased, S.WakeAt);
        change();
        S.WakeAt = NextWake();
        var guessed = !_state.IsLoaded;
        try
        {
            // A guessed state's failed write is the guess found wrong (or in doubt): the acquire reads the state and goes
            // on in this activation (LeaseGuessingNew), which is then what Postgres holds.
            await (guessed ? _state.WriteStateAsync() : _state.WriteOrReloadAsync(this));
        }
        catch (Exception e)
        {
            (S.Tenant, S.Active, S.History, S.LeaseCount, S.Unreleased, S.WakeAt) = (tenant, active, history, count, unreleased, wake);
            S.ForgetAudit();
            if (e is InconsistentStateException && guessed)
            {
                throw new BrokerException(ErrorCodes.ConcurrentUpdate, $"claim '{Key}' is not new", e) { RetryAfterSeconds = 0 };
            }
            if (e is InconsistentStateException)
            {
                logger.LogWarning("Claim {ClaimId}: another activation wrote first; deactivating this one", Id);
                throw new BrokerException(ErrorCodes.ConcurrentUpdate, $"claim '{Key}' was updated concurrently; retry", e) { RetryAfterSeconds = 0 };
            }
            throw;
        }
    }

    /// <summary>
    /// When the deadline sweep must wake this claim, should its activation be gone: at the active lease's deadline; a
    /// lease-check period from now while a release did not reach its sandbox; when the oldest ended lease passes
    /// retention (to prune it, and forget the key once nothing is left). Stored with the state and in its index row.
    /// </summary>
    private DateTimeOffset? NextWake()
    {
        var now = time.GetUtcNow();
        DateTimeOffset? wake = S.Active is { } active ? active.DeadlineAt
            : S.History.Count > 0 ? S.History.Min(l => l.EndedAt ?? now) + Options.HistoryRetention
            : null;
        if (S.Unreleased.Count > 0 && (wake is null || wake > now + Options.LeaseCheckPeriod))
        {
            wake = now + Options.LeaseCheckPeriod;
        }
        return wake;
    }

    private SandboxLeaseRequest LeaseRequestFor(Lease lease) =>
        new(Key, lease.Number, lease.Tenant, lease.Owner, lease.ExpiresAt, lease.SandboxName);

    /// <summary>Records an audit event, written with the state change it belongs to.</summary>
    private void Audit(string @event, Lease lease, LeaseStatus status, string? actor = null, string? detail = null) =>
        S.Record(new AuditEvent("claim", Id, @event, null, SandboxLifecycle.Format(status), actor,
            System.Text.Json.JsonSerializer.Serialize(new { lease = lease.Number, sandbox_id = lease.SandboxId, detail }), time.GetUtcNow()));

    private async Task Try(Func<Task> action, string what)
    {
        try
        {
            await action();
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Claim {ClaimId}: could not {What}", Id, what);
        }
    }
}
