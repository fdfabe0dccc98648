using Orleans.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Persistence;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// One sandbox. Its id is persisted in 'provisioning' before the provider's create is called (and the
/// provider sandbox carries it as a label), so a crash mid-create leaves something the reconciler finds.
/// A sandbox is deleted at the provider only after its record says so, and deletion is retried with
/// backoff: by a timer while the activation lives, and by the deletion sweep (<see cref="SweeperGrain"/>) through the
/// wake time in its index row when it does not, until the provider confirms. No reminder per sandbox.
/// </summary>
public sealed partial class SandboxGrain(
    [PersistentState(SandboxGrain.StateName, StorageNames.Broker)] IPersistentState<SandboxState> state,
    [FromKeyedServices(StorageNames.Broker)] IGrainStorage storage,
    SandboxProviderRegistry providers,
    ConnectionSecrets secrets,
    IJointWrites jointWrites,
    IOptions<BrokerOptions> options,
    GrainReferences grains,
    TimeProvider time,
    ILogger<SandboxGrain> logger) : Grain, ISandboxGrain
{
    private const string StateName = "sandbox";
    private const int CreateAttempts = 3;
    private static readonly TimeSpan ProviderCallTimeout = TimeSpan.FromMinutes(2);

    private IGrainTimer? _retryTimer;
    private bool _deleting;

    /// <summary>This activation's state writes under way (a read interleaves with them).</summary>
    private int _writing;

    /// <summary>Created by this activation: a cold create's lease, which follows at once, need not ask the provider again.</summary>
    private bool _justCreated;

    /// <summary>When this activation last saw the provider confirm the sandbox running (its create, or a check before a lease).</summary>
    private DateTimeOffset? _confirmedAt;

    private string Id => this.GetPrimaryKeyString();
    private SandboxState S => state.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (S.Spec is not null && S.Status == SandboxStatus.Deleting)
        {
            ScheduleDeleteAttempt(TimeSpan.Zero);
        }
        return Task.CompletedTask;
    }

    public async Task<SandboxInfo> Provision(SandboxSpec spec)
    {
        if (S.Spec is null)
        {
            // A new record starts in provisioning (the state's initial status) and is stored before the provider is called.
            var now = time.GetUtcNow();
            S.Spec = spec;
            S.CreatedAt = now;
            S.UpdatedAt = now;
            Record("sandbox.provisioning", null, SandboxStatus.Provisioning);
            await Store();
        }
        switch (S.Status)
        {
            case SandboxStatus.Provisioning:
                await CreateAtProvider();
                return Info();
            case SandboxStatus.Ready or SandboxStatus.Leased:
                return Info();
            default:
                throw new BrokerException(ErrorCodes.ProviderError, $"sandbox {Id} is {SandboxLifecycle.Format(S.Status)}: {S.LastError}");
        }
    }

    public Task<SandboxInfo> Lease(SandboxLeaseRequest request) => LeaseFor(request, jointWrite: null);

    public async Task<SandboxInfo?> LeaseJointly(SandboxLeaseRequest request, string jointWrite) =>
        jointWrites.Holds(jointWrite) ? await LeaseFor(request, jointWrite) : null;

    private async Task<SandboxInfo> LeaseFor(SandboxLeaseRequest request, string? jointWrite)
    {
        RequireExists();
        if (S.Status == SandboxStatus.Leased && S.ClaimKey == request.ClaimKey && S.Tenant == request.Tenant && S.LeaseNumber == request.LeaseNumber)
        {
            return Info();
        }
        if (S.Status != SandboxStatus.Ready)
        {
            throw new BrokerException(ErrorCodes.Conflict, $"sandbox {Id} is {SandboxLifecycle.Format(S.Status)}{(S.ClaimKey is null ? "" : $" (claim {S.ClaimKey})")}, not ready");
        }
        await PrepareForLease(request.ClaimKey);
        await HoldForLease(request.ExpiresAt);
        S.ClaimKey = request.ClaimKey;
        S.LeaseNumber = request.LeaseNumber;
        S.Tenant = request.Tenant;
        S.Owner = request.Owner;
        S.LeaseName = request.Name;
        S.LeaseExpiresAt = request.ExpiresAt;
        if (jointWrite is not null)
        {
            S.JoinNextWrite(new JointWriteMark(jointWrite, Holds: false)); // the claim's lease is stored with this write, or neither is
        }
        await MoveTo(SandboxStatus.Leased, "sandbox.leased", request.ClaimKey);
        return Info();
    }

    public async Task Release(string claimId, string reason)
    {
        if (S.Spec is not null && S.ClaimKey is null)
        {
            // Never leased, yet a lease named it: its acquire stored the lease and then failed before this sandbox's
            // `leased` write landed, and the discard that follows such a failure did not go through either (Postgres
            // was down). The release may have named this sandbox to its caller as released, so it must not go back to
            // the pool, where a pool that lost its memory of handing it out would list it again.
            await Discard(reason);
            return;
        }
        // The holder is the claim's id (tenant and key): two tenants may use the same key.
        if (S.Spec is null || S.ClaimKey is null || S.Tenant is null || ClaimId.Of(S.Tenant, S.ClaimKey) != claimId)
        {
            return; // Not this claim's sandbox (any more): nothing to give back.
        }
        // Straight from leased to deleting, in one write: the claim's own write has already ended the lease. (Releasing
        // remains for records written before, which go on the same way.)
        if (S.Status is SandboxStatus.Leased or SandboxStatus.Releasing)
        {
            S.LastError = null;
            await BeginDeletion(reason, actor: claimId);
        }
    }

    public async Task Discard(string reason)
    {
        if (S.Spec is null)
        {
            return;
        }
        switch (S.Status)
        {
            case SandboxStatus.Provisioning or SandboxStatus.Ready or SandboxStatus.Failed or SandboxStatus.Stale or SandboxStatus.Releasing:
                await BeginDeletion(reason);
                break;
            case SandboxStatus.Deleting:
                ScheduleDeleteAttempt(TimeSpan.Zero); // a sweep asked: try again now
                break;
            case SandboxStatus.Leased:
                throw new BrokerException(ErrorCodes.Conflict, $"sandbox {Id} is leased to claim {S.ClaimKey}; release the claim instead");
        }
    }

    public async Task<SandboxInfo?> ResumeProvisioning()
    {
        if (S.Spec is null)
        {
            return null;
        }
        if (S.Status == SandboxStatus.Provisioning)
        {
            logger.LogInformation("Resuming the interrupted create of sandbox {SandboxId}", Id);
            await CreateAtProvider();
        }
        return Info();
    }

    public async Task MarkStale(string reason)
    {
        if (S.Spec is null || !SandboxLifecycle.CanMove(S.Status, SandboxStatus.Stale))
        {
            return;
        }
        var claim = S.Status == SandboxStatus.Leased && S.Tenant is not null ? S.ClaimKey : null;
        S.LastError = reason;
        await MoveTo(SandboxStatus.Stale, "sandbox.stale", actor: "reconciler", reason);
        if (claim is not null)
        {
            await GrainFactory.GetClaim(S.Tenant!, claim).SandboxLost(Id, reason);
        }
    }

    public async Task<SandboxInfo?> Get()
    {
        var stored = await ReadStored();
        return stored.Spec is null ? null : Info(stored);
    }

    public Task Wake()
    {
        if (S.Spec is not null && S.Status == SandboxStatus.Deleting && !_deleting)
        {
            ScheduleDeleteAttempt(TimeSpan.Zero); // the attempt runs as a turn of its own
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// The one place a status changes: validated, persisted with its audit event and index row (one statement), and
    /// told to the pool.
    /// </summary>
    private async Task MoveTo(SandboxStatus to, string @event, string? actor = null, string? detail = null)
    {
        var from = S.Status;
        SandboxLifecycle.Ensure(Id, from, to);
        S.Status = to;
        S.UpdatedAt = time.GetUtcNow();
        Record(@event, from, to, actor, detail);
        await Store();
        try
        {
            await grains.Pool(S.Spec!.Pool).OnSandboxStatus(Id, from, to, S.StoredBy);
        }
        catch (Exception e)
        {
            // The pool recounts on its own schedule; a missed notice only delays replenishment.
            logger.LogWarning(e, "Could not tell pool {Pool} that sandbox {SandboxId} is {Status}", S.Spec!.Pool, Id, to);
        }
    }

    /// <summary>Records an audit event, written with the next state write (the change it belongs to).</summary>
    private void Record(string @event, SandboxStatus? from, SandboxStatus to, string? actor = null, string? detail = null) =>
        S.Record(new AuditEvent("sandbox", Id, @event, from is null ? null : SandboxLifecycle.Format(from.Value), SandboxLifecycle.Format(to), actor,
            detail is null ? null : System.Text.Json.JsonSerializer.Serialize(new { detail }), S.UpdatedAt));

    /// <summary>
    /// A read answers what Postgres holds, not this activation's memory. During a membership change a second activation
    /// of the sandbox can live on another silo; the one left over keeps the state it last saw, and its writes fail on the
    /// version, but a read from memory would not: the fault harness found one still saying ready after the sandbox had
    /// been leased, released and deleted through the other, and the pool's Return trusts this answer to put a sandbox
    /// back among the ready ones. The record is read beside the activation's state, never into it: reads interleave with
    /// the grain's other turns, whose changes and writes stay theirs. A stored version past this activation's while none
    /// of its own writes is under way marks it as the leftover: it leaves.
    /// </summary>
    private async Task<SandboxState> ReadStored()
    {
        var none = new SandboxState();
        var stored = new GrainState<SandboxState>(none);
        await storage.ReadStateAsync(StateName, this.GetGrainId(), stored);
        if (_writing == 0 && StateWrites.Version(stored.ETag) > StateWrites.Version(state.Etag))
        {
            logger.LogWarning("Sandbox {SandboxId} was changed by another activation (version {Version} stored, {Held} held); this one leaves",
                Id, stored.ETag, state.Etag);
            DeactivateOnIdle();
        }
        return stored.State ?? none;
    }

    /// <summary>Stores the state; the activation is dropped when that fails (<see cref="StateWrites.WriteOrReloadAsync{T}"/>).</summary>
    private async Task Store()
    {
        _writing++;
        try
        {
            await state.WriteOrReloadAsync(this);
        }
        finally
        {
            _writing--;
        }
    }

    private void RequireExists()
    {
        if (S.Spec is null)
        {
            throw new BrokerException(ErrorCodes.NotFound, $"sandbox {Id} does not exist");
        }
    }

    private SandboxInfo Info() => Info(S);

    private SandboxInfo Info(SandboxState s)
    {
        var spec = s.Spec!;
        return new SandboxInfo(Id, spec.Pool, spec.Provider, s.Status, s.LeaseName ?? spec.Name, s.ExternalId, s.ClaimKey, s.Tenant, s.Owner,
            s.CreatedAt, s.UpdatedAt, s.LeaseExpiresAt, spec.Labels, secrets.Open(Id, s.Connection), s.LastError, s.DeleteAttempts);
    }
}
