using Microsoft.Extensions.Logging;
using SandboxBroker.Grains.Options;

namespace SandboxBroker.Grains;

/// <summary>A claim's new lease: the steps of an acquire that finds no active lease, each with its undo.</summary>
public sealed partial class ClaimGrain
{
    /// <summary>
    /// A new lease, as a sequence of steps, each with its undo: admit at the tenant (its quotas and the owner's limit),
    /// reserve the name, take a sandbox from the pool, store the lease, then create (cold) and lease the sandbox. A failure
    /// before the lease is stored undoes what was done, newest first; once it is stored, a failure ends the lease instead
    /// (which gives back the admission and the name) and the sandbox goes back to the pool or to deletion.
    /// </summary>
    private async Task<AcquireResult> LeaseNew(AcquireRequest request)
    {
        var plan = await PlanLease(request);
        var undo = new UndoSteps(logger, Id);
        try
        {
            var tenant = grains.Tenant(Tenant);
            await tenant.Admit(Key, plan.PoolName, plan.Config.MaxTotal, LeaseRules.CountedOwner(request.Owner, Key));
            undo.Add("forget at tenant", () => tenant.Forget(Key));
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
                var lease = await StoreLease(plan, request, checkout);
                if (await LeaseSandbox(plan, checkout, lease, lastAttempt: attempt >= 3) is { } sandbox)
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

    /// <summary>
    /// Stores the lease naming the checked-out sandbox (with its audit row and index row), before any sandbox is touched.
    /// Undo when another activation wrote first (nothing was stored; the caller's retry reaches the winner): the sandbox
    /// goes back to the pool untouched. After another failure the outcome is unknown, and the pool takes the sandbox back
    /// after its grace if no lease holds it.
    /// </summary>
    private async Task<Lease> StoreLease(LeasePlan plan, AcquireRequest request, PoolCheckout checkout)
    {
        var now = time.GetUtcNow();
        var lease = new Lease(Key, S.LeaseCount + 1, checkout.SandboxId, plan.PoolName, request.Tenant, request.Owner, plan.Name,
            now, now + plan.Ttl, plan.Idle, now, LeaseStatus.Active, null, null, request.Labels ?? new Dictionary<string, string>());
        try
        {
            await Save(() =>
            {
                S.Active = lease;
                S.Tenant = Tenant;
                S.LeaseCount = lease.Number;
                Audit("lease.acquired", lease, LeaseStatus.Active, request.Actor, checkout.Warm ? "warm" : "cold");
            });
            return lease;
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
