namespace SandboxBroker.LoadGen;

/// <summary>What one operation came to. <see cref="Error"/> is null on success; otherwise a code such as
/// <c>http_409_NO_SANDBOXES_AVAILABLE</c>, <c>http_429_RATE_LIMITED</c>, <c>timeout</c>.</summary>
public readonly record struct OpResult(string Op, string? Outcome, string? Error)
{
    public static OpResult Ok(string op, string? outcome) => new(op, outcome, null);
    public static OpResult Fail(string op, string error) => new(op, null, error);
    public bool IsOk => Error is null;
}

/// <summary>The operations a scenario needs from the system under test (the broker over HTTP, or the baseline on Postgres).</summary>
public interface IClaimsBackend : IAsyncDisposable
{
    /// <summary>"broker", "baseline" or "baseline-fair".</summary>
    string Target { get; }

    /// <summary>Acquires (or repeats) the claim of <paramref name="key"/> in the benchmark pool.</summary>
    ValueTask<OpResult> AcquireAsync(string key, string owner, CancellationToken ct);

    /// <summary>Releases the active claim of <paramref name="key"/>.</summary>
    ValueTask<OpResult> ReleaseAsync(string key, CancellationToken ct);

    /// <summary>Makes the benchmark pool hold at least <paramref name="ready"/> ready sandboxes (waits until it does, up to <paramref name="timeout"/>).</summary>
    Task<PoolFill> FillPoolAsync(int ready, TimeSpan timeout, Action<string> progress, CancellationToken ct);

    /// <summary>Counts of ready/leased/... in the benchmark pool.</summary>
    Task<IReadOnlyDictionary<string, long>> PoolLevelsAsync(CancellationToken ct);

    /// <summary>Where the backend keeps its data, for the Postgres counters (an Npgsql connection string to that database).</summary>
    string StatsConnectionString { get; }

    /// <summary>Makes the backend's own Postgres sessions publish their counters (the baseline closes its pooled sessions), and says how long to wait for sessions it cannot control.</summary>
    Task<TimeSpan> FlushPostgresStatsAsync(CancellationToken ct);

    /// <summary>True when the pool works in the background after a change (creates, deletes) that should settle before a measurement.</summary>
    bool SettlesInBackground { get; }

    /// <summary>Statements the client itself sent to Postgres so far (baseline only; null for the broker).</summary>
    long? ClientStatements { get; }
}

/// <summary>How the pool fill went: the ready count it reached and how long it took (the provider's refill rate).</summary>
public sealed record PoolFill(long ReadyBefore, long ReadyAfter, double Seconds, bool Reached);
