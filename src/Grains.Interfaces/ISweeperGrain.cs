namespace SandboxBroker;

/// <summary>
/// The deadline and deletion sweep of one pool, keyed by the pool's name and driven by one reminder: it wakes the pool's
/// claims and sandboxes whose wake time (in their index rows) has passed, so a lease still ends at its deadline, and a
/// deletion is still retried, when the silo that held them died. One reminder per pool instead of one per lease and per
/// sandbox; waking twice is harmless.
/// </summary>
[Alias("SandboxBroker.ISweeperGrain")]
public interface ISweeperGrain : IGrainWithStringKey
{
    /// <summary>Makes sure the sweep's reminder is registered (the pool calls it when it activates). Idempotent.</summary>
    [Alias("Start")]
    Task Start();

    /// <summary>Sweeps now: wakes every claim and sandbox of the pool that is due.</summary>
    [Alias("Sweep")]
    Task<SweepReport> Sweep();
}

/// <summary>What one sweep woke, and how many wake calls failed (they are due again at the next sweep).</summary>
[GenerateSerializer, Immutable]
[Alias("SandboxBroker.SweepReport")]
public sealed record SweepReport(int ClaimsWoken, int SandboxesWoken, int Errors);
