using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using SandboxBroker.Grains.Options;
using SandboxBroker.Persistence;

namespace SandboxBroker.Grains;

/// <summary>A claim's new lease: the steps of an acquire that finds no active lease, each with its undo.</summary>
public sealed partial class ClaimGrain
{
    /// <summary>
    /// Only an acquire without a sandbox name guesses: a name is reserved for the key (idempotently), and undoing a wrong
    /// guess would free the name of the key's lease.
    /// </summary>
    private static bool MayGuessNew(AcquireRequest request) => request.ExpectNew && request.Name is null;

    /// <summary>
    /// A new lease for a key its caller expects to be new, leased without reading the key's state first: the lease's
    /// write is then a first write, which Postgres refuses where the key has a row. A new key's lease costs one round trip
    /// and one transaction less (at low load, one of its two). A wrong guess (the key holds a lease, or history) fails on
    /// that check with nothing stored, and is undone like any failed step: the sandbox goes back to the pool, the tenant
    /// forgets only what this acquire counted. Null: the state was read and holds the key's row; the acquire goes on as
    /// for any key. A failure for a key that has no row is the answer.
    /// </summary>
    private async Task<AcquireResult?> LeaseGuessingNew(AcquireRequest request)
    {
        try
        {
            return await LeaseNew(request);
        }
        catch (Exception e) when (!_state.IsLoaded)
        {
            // Nothing of this lease is stored (a write's outcome in doubt is read back here, as an activation would).
            await Load();
            if (!_state.RecordExists)
            {
                throw;
            }
            logger.LogDebug("Claim {ClaimId} was not new ({Reason}); acquiring from its stored state", Id, e.Message);
            return null;
        }
    }

    /// <summary>
    /// A new lease, as a sequence of steps, each with its undo: admit at the tenant (its quotas and the owner's limit),
    /// reserve the name, take a sandbox from the pool, then store the lease and lease the sandbox: together for a warm
    /// sandbox on this silo (<see cref="LeaseWarm"/>), else the lease first and then the sandbox, created first when cold.
    /// A failure before the lease is stored undoes what was done, newest first; once it is stored, a failure ends the lease
    /// instead (which gives back the admission and the name) and the sandbox goes back to the pool or to deletion.
    /// </summary>
    private async Task<AcquireResult> LeaseNew(AcquireRequest request)
    {
        var plan = await PlanLease(request);
        var undo = new UndoSteps(logger, Id);
        try
        {
            var tenant = grains.Tenant(Tenant);
            if (await tenant.Admit(Key, plan.PoolName, plan.Config.MaxTotal, LeaseRules.CountedOwner(request.Owner, Key)))
            {
                undo.Add("forget at tenant", () => tenant.Forget(Key)); // counted before (a lease this acquire did not know of): kept
            }
            if (plan.Name is { } name)
            {
                var names = GrainFactory.GetSandboxName(Tenant, name);
                await names.Reserve(Key);
                undo.Add("free name", () => names.Free(Key));
            }
            // A warm sandbox can turn out not to be ready (a pool restored from an older write): take another.
            for (var attempt = 1; ; attempt++)
            {
                var checkout = await plan.Pool.Checkout(Id);
                var lastAttempt = attempt >= 3;
                var leased = checkout.Warm && Options.JointLeaseWrites
                    ? await LeaseWarm(plan, request, checkout, lastAttempt)
                    : await StoreThenLease(plan, request, checkout, lastAttempt);
                if (leased is (var lease, var sandbox))
                {
                    _sandbox = sandbox;
                    ArmDeadlineTimer();
                    return new AcquireResult(lease, checkout.Warm ? AcquireOutcome.Warm : AcquireOutcome.Cold, sandbox);
                }
            }
        }
        catch when (S.Active is null)
        {
            // No lease is stored (or it was ended, which gave back the same: the undo repeats it harmlessly). A lease still
            // stored keeps its admission and name until it ends.
            await undo.RunAsync();
            throw;
        }
    }

    /// <summary>What a new lease needs before anything is taken: the pool's rules applied to the request.</summary>
    private sealed record LeasePlan(string PoolName, IPoolGrain Pool, PoolConfig Config, TimeSpan Ttl, TimeSpan? Idle, string? Name);

    private async Task<LeasePlan> PlanLease(AcquireRequest request)
    {
        var poolName = request.Pool ?? BrokerOptions.DefaultPool;
        var pool = grains.Pool(poolName);
        var config = await pool.GetConfig();
        return new LeasePlan(poolName, pool, config, LeaseRules.EffectiveTtl(request.Ttl, config), request.IdleTimeout ?? config.IdleTimeout,
            request.Name is null ? null : ClaimNames.Render(request.Name, Key));
    }

    /// <summary>The lease stored first, then its sandbox leased (created first when cold). Null: take another sandbox.</summary>
    private async Task<(Lease, SandboxInfo)?> StoreThenLease(LeasePlan plan, AcquireRequest request, PoolCheckout checkout, bool lastAttempt)
    {
        var lease = NewLease(plan, request, checkout);
        await StoreLease(plan, request, checkout, lease);
        return await LeaseSandbox(plan, checkout, lease, lastAttempt) is { } sandbox ? (lease, sandbox) : null;
    }

    /// <summary>
    /// A warm sandbox leased and the lease naming it stored in one transaction (a joint write, <see cref="IJointWrites"/>):
    /// the lease's write is held in this silo's writer while the sandbox is checked and relabelled, and the sandbox's
    /// `leased` write takes it along. So a crash leaves both or neither, and the acquire waits for one commit instead of two.
    /// A sandbox on another silo finds no held write and does nothing: the lease is then stored alone and the sandbox
    /// leased after it, as <see cref="StoreThenLease"/> does. Null: the sandbox was not available, take another.
    /// </summary>
    private async Task<(Lease, SandboxInfo)?> LeaseWarm(LeasePlan plan, AcquireRequest request, PoolCheckout checkout, bool lastAttempt)
    {
        var lease = NewLease(plan, request, checkout);
        var joint = $"{Id}#{lease.Number}";
        var sandbox = grains.Sandbox(checkout.SandboxId);
        S.JoinNextWrite(new JointWriteMark(joint, Holds: true));
        var stored = StoreLease(plan, request, checkout, lease);
        SandboxInfo? info = null;
        Exception? failed = null;
        try
        {
            if (await Task.WhenAny(stored, jointWrites.WhenHeld(joint)) == stored)
            {
                jointWrites.Withdraw(joint); // forgets the wait
                await stored; // failed before it reached the writer: nothing stored, memory put back
            }
            info = await sandbox.LeaseJointly(LeaseRequestFor(lease), joint);
        }
        catch (Exception e)
        {
            failed = e;
        }
        if (failed is not null && jointWrites.Withdraw(joint))
        {
            // The sandbox failed before its write: nothing is stored, and a write of its arriving late fails.
            await IgnoreFailure(stored);
            return await WarmNotLeased(plan, checkout, failed, lastAttempt);
        }
        // Still held: the sandbox answered without a write of its own (it is on another silo, or was already leased for
        // this lease), and the lease is stored alone. Otherwise the sandbox's write took it along.
        jointWrites.Release(joint);
        await stored; // when this fails (memory is put back) neither write is stored, or the outcome is unknown as for any write
        if (failed is not null)
        {
            // Stored together: the lease stands and its sandbox is leased; only the answer was lost. A retry is a repeat.
            ArmDeadlineTimer();
            ExceptionDispatchInfo.Throw(failed);
        }
        if (info is null)
        {
            return await LeaseSandbox(plan, checkout, lease, lastAttempt) is { } leased ? (lease, leased) : null;
        }
        return (lease, info);
    }

    /// <summary>
    /// A warm sandbox's joint lease failed before anything was stored (the lease's write withdrawn). Not available: it goes
    /// back to the pool and the claim takes another (null). Otherwise, the error; the sandbox (which nobody was told of) is
    /// discarded, as it failed the provider's check or did not answer.
    /// </summary>
    private async Task<(Lease, SandboxInfo)?> WarmNotLeased(LeasePlan plan, PoolCheckout checkout, Exception failed, bool lastAttempt)
    {
        if (failed is BrokerException { Code: ErrorCodes.Conflict } && !lastAttempt)
        {
            logger.LogWarning("Claim {ClaimId}: warm sandbox {SandboxId} was not available ({Reason}); taking another", Id, checkout.SandboxId, failed.Message);
            await plan.Pool.Return(checkout.SandboxId);
            return null;
        }
        if (failed is not BrokerException)
        {
            logger.LogWarning(failed, "Claim {ClaimId}: leasing sandbox {SandboxId} failed before anything was stored", Id, checkout.SandboxId);
        }
        await Try(() => grains.Sandbox(checkout.SandboxId).Discard("the acquire that reserved it failed"), "discard the sandbox");
        ExceptionDispatchInfo.Throw(failed);
        return null;
    }

    private static async Task IgnoreFailure(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception)
        {
            // Its failure is known and handled by the caller.
        }
    }

    private Lease NewLease(LeasePlan plan, AcquireRequest request, PoolCheckout checkout)
    {
        var now = time.GetUtcNow();
        return new Lease(Key, S.LeaseCount + 1, checkout.SandboxId, plan.PoolName, request.Tenant, request.Owner, plan.Name,
            now, now + plan.Ttl, plan.Idle, now, LeaseStatus.Active, null, null, request.Labels ?? new Dictionary<string, string>());
    }

    /// <summary>
    /// Stores the lease naming the checked-out sandbox (with its audit row and index row), before any sandbox is touched.
    /// Undo when another activation wrote first (nothing was stored; the caller's retry reaches the winner): the sandbox
    /// goes back to the pool untouched. After another failure the outcome is unknown, and the pool takes the sandbox back
    /// after its grace if no lease holds it.
    /// </summary>
    private async Task StoreLease(LeasePlan plan, AcquireRequest request, PoolCheckout checkout, Lease lease)
    {
        try
        {
            await Save(() =>
            {
                S.Active = lease;
                S.Tenant = Tenant;
                S.LeaseCount = lease.Number;
                Audit("lease.acquired", lease, LeaseStatus.Active, request.Actor, checkout.Warm ? "warm" : "cold");
            });
        }
        catch (BrokerException e) when (e.Code == ErrorCodes.ConcurrentUpdate)
        {
            await Try(() => plan.Pool.Return(checkout.SandboxId), "give back the sandbox");
            throw;
        }
    }

    /// <summary>
    /// Creates (cold) and leases the sandbox of a stored lease. Null: a warm sandbox was not available, the stored lease
    /// is withdrawn and the sandbox given back, take another. On any other failure the lease is ended (its undo) and the
    /// sandbox goes to deletion, never back to the pool: the ended lease names it, and a release of the key answers with
    /// that lease, so a caller may have been told this sandbox is released.
    /// </summary>
    private async Task<SandboxInfo?> LeaseSandbox(LeasePlan plan, PoolCheckout checkout, Lease lease, bool lastAttempt)
    {
        var sandbox = grains.Sandbox(checkout.SandboxId);
        try
        {
            if (!checkout.Warm)
            {
                var labels = new Dictionary<string, string>(lease.Labels) { [BrokerLabels.ClaimKey] = Key };
                await sandbox.Provision(new SandboxSpec(plan.PoolName, plan.Config.Provider, plan.Config.Template,
                    plan.Name ?? $"sbx-{plan.PoolName}-{checkout.SandboxId[..8]}", labels));
            }
            return await sandbox.Lease(LeaseRequestFor(lease));
        }
        catch (BrokerException e) when (e.Code == ErrorCodes.Conflict && checkout.Warm && !lastAttempt)
        {
            logger.LogWarning("Claim {ClaimId}: warm sandbox {SandboxId} was not available ({Reason}); taking another", Id, checkout.SandboxId, e.Message);
            await Save(() => S.Active = null);
            await plan.Pool.Return(checkout.SandboxId);
            return null;
        }
        catch (BrokerException e)
        {
            // The sandbox's answer (not available, the provider failed): it was not leased to this key. (A sandbox leased
            // to another key refuses the discard.)
            await EndActive(LeaseStatus.Released, $"could not lease a sandbox: {e.Message}");
            await Try(() => sandbox.Discard("the lease that named it ended before it was leased"), "discard the sandbox");
            throw;
        }
        catch (Exception e)
        {
            // The sandbox grain did not answer (its silo died, a timeout, an unexpected error): the sandbox may never have
            // been created, or it may have been leased with only the answer lost. The lease must not stay active naming it:
            // it is ended with the sandbox recorded as unreleased in the same write, so whichever activation comes next
            // releases it (a separate write could lose to that activation's and be forgotten, leaving it leased to nobody).
            logger.LogWarning(e, "Claim {ClaimId}: leasing sandbox {SandboxId} failed; ending the lease", Id, checkout.SandboxId);
            await Try(() => EndActive(LeaseStatus.Released, $"could not lease a sandbox: {e.Message}", releaseUncertain: true), "end the lease");
            // Leased after all, it refuses the discard, and the release recorded above deletes it.
            await Try(() => sandbox.Discard("the acquire that reserved it failed"), "discard the sandbox");
            throw;
        }
    }
}
