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
        if (!_state.IsLoaded && NeedsState(context))
        {
            await Load();
        }
        await context.Invoke();
    }

    private static bool NeedsState(IIncomingGrainCallContext context) => context.InterfaceMethod?.Name switch
    {
        nameof(Owns) or nameof(HasActiveLease) => false,
        nameof(Acquire) => !(context.Request.GetArgument(0) is AcquireRequest request && MayGuessNew(request)),
        _ => true,
    };

    /// <summary>The state as loaded, or (not loaded yet) a copy of what is stored, read beside the activation's.</summary>
    private async Task<ClaimState> Stored()
    {
        if (_state.IsLoaded)
        {
            return S;
        }
        var stored = new LazyState<ClaimState>(storage, StateName, this.GetGrainId());
        await stored.ReadStateAsync();
        return stored.State;
    }

    /// <summary>Reads the stored state; the deadline timer runs from then on while a lease is active.</summary>
    private async Task Load()
    {
        await _state.ReadStateAsync();
        ArmDeadlineTimer();
    }
}
