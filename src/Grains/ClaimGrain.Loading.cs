using Microsoft.Extensions.Logging;

namespace SandboxBroker.Grains;

/// <summary>When a claim reads its state: on the first call that needs it, not at activation.</summary>
public sealed partial class ClaimGrain
{
    /// <summary>
    /// Calls work on the stored state: it is read before the first call of the activation that needs it. Not for an acquire
    /// that expects a new key (<see cref="AcquireRequest.ExpectNew"/>), and not for the reads that interleave with other
    /// calls: reading the state into the activation while an acquire works on its guess would swap the state under it,
    /// so they answer from a copy of what is stored (<see cref="Stored"/>).
    /// </summary>
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (!_state.IsLoaded)
        {
            if (NeedsState(context))
            {
                await Load();
            }
        }
        else if (LivedThroughMembershipChange && context.InterfaceMethod?.DeclaringType == typeof(IClaimGrain) && !ReadsBeside(context))
        {
            await LeaveAfterThisCall();
        }
        await context.Invoke();
    }

    private static bool NeedsState(IIncomingGrainCallContext context) => !ReadsBeside(context) && context.InterfaceMethod?.Name switch
    {
        nameof(Acquire) => !(context.Request.GetArgument(0) is AcquireRequest request && MayGuessNew(request)),
        _ => true,
    };

    /// <summary>The reads that interleave with other calls, and so read beside the activation's state (<see cref="Stored"/>).</summary>
    private static bool ReadsBeside(IIncomingGrainCallContext context) => context.InterfaceMethod?.Name is nameof(Owns) or nameof(HasActiveLease);

    /// <summary>
    /// A claim answers repeats and reads from memory, which only its own writes change. During a membership change a
    /// second activation can live on another silo for a while; the one left over keeps the lease it last saw: its writes
    /// fail on the stored version, but a repeat answered from memory would hand out a sandbox the other has released, and
    /// the reconciler's <see cref="Owns"/> would let it release a sandbox the other has leased. An activation that started
    /// before the cluster's membership last changed therefore trusts its memory no more: its next call checks the stored
    /// version first, and it leaves after that call, so the call after reaches the activation the directory now names.
    /// One read and one activation per key in use after a change; nothing while membership stays the same. (An activation
    /// started while a change is still spreading is not caught by this; its writes still fail on the version.)
    /// </summary>
    private bool LivedThroughMembershipChange => _state.IsLoaded && membership.CurrentSnapshot.Version != _membershipAtActivation;

    /// <summary>
    /// <see cref="LivedThroughMembershipChange"/>: another activation's newer version refuses the call (retried by the gateway,
    /// which then reaches the live activation); otherwise the call runs on the state this one holds, which is what is stored.
    /// </summary>
    private async Task LeaveAfterThisCall()
    {
        DeactivateOnIdle();
        var stored = await ReadStored();
        if (OvertakenBy(stored))
        {
            logger.LogWarning("Claim {ClaimId} was changed by another activation (version {Version} stored, {Held} held); this one leaves", Id, stored.Etag, _state.Etag);
            throw new BrokerException(ErrorCodes.ConcurrentUpdate, $"claim '{Key}' was updated by another activation; retry") { RetryAfterSeconds = 0 };
        }
    }

    /// <summary>
    /// The state as loaded, or (not loaded yet, or <see cref="LivedThroughMembershipChange"/>) a copy of what is stored, read
    /// beside the activation's: these reads interleave with other calls, whose state stays theirs.
    /// </summary>
    private async Task<ClaimState> Stored()
    {
        if (_state.IsLoaded && !LivedThroughMembershipChange)
        {
            return S;
        }
        var stored = await ReadStored();
        if (OvertakenBy(stored))
        {
            DeactivateOnIdle();
        }
        return stored.State;
    }

    /// <summary>
    /// Another activation stored a version past the one this activation loaded or last wrote (one of its own writes in
    /// flight could be that version, so not while one is).
    /// </summary>
    private bool OvertakenBy(LazyState<ClaimState> stored) =>
        _state.IsLoaded && !_state.IsWriting && StateWrites.Version(stored.Etag) > StateWrites.Version(_state.Etag);

    private async Task<LazyState<ClaimState>> ReadStored()
    {
        var stored = new LazyState<ClaimState>(storage, StateName, this.GetGrainId());
        await stored.ReadStateAsync();
        return stored;
    }

    /// <summary>Reads the stored state; the deadline timer runs from then on while a lease is active.</summary>
    private async Task Load()
    {
        await _state.ReadStateAsync();
        ArmDeadlineTimer();
    }
}
