using System.Collections.Concurrent;

namespace SandboxBroker.LoadGen;

/// <summary>The share of each operation in the mix scenario, in percent.</summary>
public sealed record MixWeights(int Repeat, int Acquire, int Release)
{
    public static MixWeights Default { get; } = new(70, 20, 10);

    /// <summary>Parses "repeat=70,acquire=20,release=10".</summary>
    public static MixWeights Parse(string text)
    {
        int repeat = 0, acquire = 0, release = 0;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2);
            if (kv.Length != 2 || !int.TryParse(kv[1], out var v) || v < 0)
            {
                throw new FormatException($"mix part '{part}' is not name=percent");
            }
            switch (kv[0])
            {
                case "repeat": repeat = v; break;
                case "acquire": acquire = v; break;
                case "release": release = v; break;
                default: throw new FormatException($"mix knows repeat, acquire and release, not '{kv[0]}'");
            }
        }
        if (repeat + acquire + release != 100)
        {
            throw new FormatException("mix percentages must add up to 100");
        }
        return new MixWeights(repeat, acquire, release);
    }

    public override string ToString() => $"repeat={Repeat},acquire={Acquire},release={Release}";
}

/// <summary>One measured run: what to do, how fast and for how long.</summary>
public sealed record ScenarioSpec(string Scenario, double Rate, TimeSpan Duration, TimeSpan Warmup, int Keys, MixWeights Mix)
{
    public static readonly string[] Names = ["warm", "repeat", "release", "mix"];

    public string Label => Scenario switch
    {
        "repeat" or "mix" when Keys == 1 => $"{Scenario} (hot key)",
        "repeat" or "mix" => $"{Scenario} ({Keys} keys)",
        _ => Scenario,
    };

    /// <summary>Parses a plan entry such as "warm@1000", "repeat@10000:keys=1000", "repeat-hot@10000", "mix@2000:keys=500".</summary>
    public static ScenarioSpec ParsePlanEntry(string entry, TimeSpan duration, TimeSpan warmup, int defaultKeys, MixWeights mix)
    {
        var parts = entry.Split(':', StringSplitOptions.TrimEntries);
        var head = parts[0].Split('@', 2);
        if (head.Length != 2 || !double.TryParse(head[1], System.Globalization.CultureInfo.InvariantCulture, out var rate) || rate <= 0)
        {
            throw new FormatException($"plan entry '{entry}' is not scenario@rate[:keys=N]");
        }
        var name = head[0];
        var keys = defaultKeys;
        if (name.EndsWith("-hot", StringComparison.Ordinal))
        {
            name = name[..^4];
            keys = 1;
        }
        foreach (var option in parts.Skip(1))
        {
            var kv = option.Split('=', 2);
            if (kv is ["keys", var k] && int.TryParse(k, out var n) && n > 0)
            {
                keys = n;
            }
            else if (kv is ["duration", var d])
            {
                duration = Durations.Parse(d);
            }
            else
            {
                throw new FormatException($"plan entry '{entry}': unknown option '{option}' (keys=N, duration=T)");
            }
        }
        if (!Names.Contains(name))
        {
            throw new FormatException($"plan entry '{entry}': scenario must be one of {string.Join(", ", Names)} (or repeat-hot, mix-hot)");
        }
        return new ScenarioSpec(name, rate, duration, warmup, keys, mix);
    }
}

/// <summary>How the runner treats the system under test around the measured window.</summary>
public sealed record RunnerOptions(
    int MaxInFlight,
    TimeSpan DrainTimeout,
    TimeSpan Ramp,
    TimeSpan PoolReadyTimeout,
    int SetupConcurrency,
    bool Cleanup,
    IReadOnlyDictionary<string, int> CpuPids);

/// <summary>
/// Prepares a scenario (pool filled, keys held), measures it with the open-loop driver, reads the Postgres
/// counters and the CPU split around it, and cleans up (releases what it acquired) afterwards.
/// </summary>
public sealed class ScenarioRunner(RunnerOptions options, TimeProvider time, Action<string> log)
{
    public async Task<ScenarioResult> RunAsync(IClaimsBackend backend, ScenarioSpec spec, CancellationToken ct)
    {
        var tag = $"{time.GetUtcNow():yyyyMMddHHmmss}{Random.Shared.Next(0x1000, 0xffff):x4}";
        var prefix = $"bench:{tag}/{spec.Scenario}/";
        var pace = new PaceSpec(spec.Rate, spec.Duration, spec.Warmup, options.MaxInFlight, options.DrainTimeout, options.Ramp);
        var startedAt = time.GetUtcNow();
        void Say(string m) => log($"[{backend.Target} {spec.Label} @{spec.Rate:0}/s] {m}");

        // --- setup (not measured) --------------------------------------------------------------------------
        var held = spec.Scenario switch
        {
            "repeat" or "mix" => spec.Keys,
            "release" => (int)pace.TotalOps,
            _ => 0,
        };
        var newAcquires = spec.Scenario switch
        {
            "warm" => pace.TotalOps,
            // A release with nothing acquired yet to release becomes an acquire: count both shares.
            "mix" => (long)Math.Ceiling(pace.TotalOps * (spec.Mix.Acquire + spec.Mix.Release) / 100.0),
            _ => 0,
        };
        var needReady = (int)Math.Min(int.MaxValue, held + (long)Math.Ceiling(newAcquires * 1.03) + (newAcquires > 0 ? 50 : 0));
        Say($"filling the pool to {needReady} ready sandboxes");
        var fill = await backend.FillPoolAsync(needReady, options.PoolReadyTimeout, Say, ct);
        Say(fill.Reached
            ? $"pool ready: {fill.ReadyAfter} ready ({fill.ReadyAfter - fill.ReadyBefore} new in {fill.Seconds:0.0}s)"
            : $"pool NOT filled within {options.PoolReadyTimeout.TotalSeconds:0}s: {fill.ReadyAfter}/{needReady} ready; measuring anyway (the refill rate is the limit)");

        var heldKeys = Enumerable.Range(0, held).Select(i => prefix + "k" + i).ToArray();
        if (held > 0)
        {
            Say($"acquiring {held} keys to hold (closed loop, {options.SetupConcurrency} at a time)");
            var failures = await ForAllAsync(heldKeys, (k, i, c) => backend.AcquireAsync(k, "bench-" + i, c), "setup acquire", Say, ct);
            if (failures > 0)
            {
                Say($"{failures} of {held} setup acquires failed");
            }
        }
        await WaitQuietAsync(backend, Say, ct);

        // --- the operation --------------------------------------------------------------------------------
        var acquiredNew = new ConcurrentQueue<string>();
        var attempted = new ConcurrentQueue<string>();
        var released = new ConcurrentQueue<string>();   // a timed-out acquire may still have succeeded at the server
        var releasedUpTo = -1L;
        Func<long, CancellationToken, ValueTask<OpResult>> operation = spec.Scenario switch
        {
            "warm" => async (seq, c) =>
            {
                var key = prefix + "n" + seq;
                attempted.Enqueue(key);
                var r = await backend.AcquireAsync(key, "bench-n" + seq, c);
                if (r.IsOk)
                {
                    acquiredNew.Enqueue(key);
                }
                return r;
            },
            "repeat" => (seq, c) =>
            {
                var i = spec.Keys == 1 ? 0 : Random.Shared.Next(spec.Keys);
                return backend.AcquireAsync(heldKeys[i], "bench-" + i, c);
            },
            "release" => (seq, c) =>
            {
                Interlocked.Exchange(ref releasedUpTo, seq);
                return backend.ReleaseAsync(heldKeys[seq], c);
            },
            "mix" => async (seq, c) =>
            {
                var roll = Random.Shared.Next(100);
                if (roll < spec.Mix.Release && acquiredNew.TryDequeue(out var victim))
                {
                    released.Enqueue(victim);
                    return await backend.ReleaseAsync(victim, c);
                }
                if (roll < spec.Mix.Release + spec.Mix.Acquire)
                {
                    var key = prefix + "n" + seq;
                    attempted.Enqueue(key);
                    var r = await backend.AcquireAsync(key, "bench-n" + seq, c);
                    if (r.IsOk)
                    {
                        acquiredNew.Enqueue(key);
                    }
                    return r with { Op = "acquire_new" };
                }
                var i = spec.Keys == 1 ? 0 : Random.Shared.Next(spec.Keys);
                return await backend.AcquireAsync(heldKeys[i], "bench-" + i, c) with { Op = "acquire_repeat" };
            },
            _ => throw new ArgumentException($"unknown scenario {spec.Scenario}"),
        };

        // --- measure ---------------------------------------------------------------------------------------
        var settle = await backend.FlushPostgresStatsAsync(ct);
        if (settle > TimeSpan.Zero)
        {
            Say($"waiting {settle.TotalSeconds:0}s for Postgres sessions to publish their counters");
            await Task.Delay(settle, time, ct);
        }
        var pgBefore = await TryReadCountersAsync(backend.StatsConnectionString, Say, ct);
        var statementsBefore = backend.ClientStatements;
        var cpu = new CpuSampler(options.CpuPids, time);
        CpuSampler.Sample? cpuStart = null, cpuEnd = null;
        var pgStart = time.GetTimestamp();
        Say($"running: {pace.WarmupOps} warm-up + {pace.MeasuredOps} measured operations");
        var rec = await new OpenLoopDriver(time).RunAsync(pace, operation, Say, () => cpuStart = cpu.Take(), () => cpuEnd = cpu.Take(), ct);

        IReadOnlyDictionary<string, long> levelsAfter;
        try
        {
            levelsAfter = await backend.PoolLevelsAsync(ct);
        }
        catch (Exception e) when (e is HttpRequestException or InvalidOperationException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            // An overloaded broker may not answer now; the measurement stands without the levels.
            Say($"cannot read the pool levels after the run: {e.Message}");
            levelsAfter = new Dictionary<string, long>();
        }
        settle = await backend.FlushPostgresStatsAsync(ct);
        if (settle > TimeSpan.Zero)
        {
            Say($"waiting {settle.TotalSeconds:0}s for Postgres sessions to publish their counters");
            await Task.Delay(settle, time, ct);
        }
        var pgAfter = await TryReadCountersAsync(backend.StatsConnectionString, Say, ct);
        var statements = backend.ClientStatements is { } s ? s - (statementsBefore ?? 0) : (long?)null;
        var pg = pgBefore is not null && pgAfter is not null
            ? PostgresCounters.Delta(pgBefore, pgAfter, rec.TotalOk, time.GetElapsedTime(pgStart).TotalSeconds, statements)
            : null;

        var result = ScenarioResult.From(backend.Target, spec, pace, startedAt, prefix, rec, fill, levelsAfter, pg,
            cpuStart is not null && cpuEnd is not null ? cpu.Between(cpuStart, cpuEnd) : null);
        Say(result.OneLine());
        foreach (var statement in pg?.TopStatements?.Take(3) ?? [])
        {
            Say(FormattableString.Invariant(
                $"  pg {statement.ExecMicrosPerOp:0} µs/op in {statement.CallsPerOp:0.00}/op × {statement.ExecMicrosPerCall:0} µs ({statement.BlocksHitPerCall:0} buffers): {Abbreviated(statement.Query)}"));
        }
        foreach (var (table, t) in pg?.Tables.Where(t => t.Value.Vacuums + t.Value.Analyzes > 0) ?? [])
        {
            Say(FormattableString.Invariant(
                $"  pg {table}: {t.Vacuums} vacuum(s), {t.Analyzes} analyze(s) ended in the window ({t.DeadRowsAtStart:N0} dead rows at its start, {t.HotUpdated:N0} of {t.Updated:N0} updates HOT)"));
        }

        // --- clean up (not measured) ----------------------------------------------------------------------
        try
        {
            await CleanupAsync();
        }
        catch (Exception e) when (e is HttpRequestException or InvalidOperationException or Npgsql.NpgsqlException
                                      or TaskCanceledException && !ct.IsCancellationRequested)
        {
            Say($"cleanup failed ({e.Message}); leases left behind expire after their TTL");
        }
        return result;

        async Task CleanupAsync()
        {
            if (options.Cleanup)
            {
                var toRelease = spec.Scenario == "release"
                    ? heldKeys.Skip((int)Interlocked.Read(ref releasedUpTo) + 1).ToList()
                    : heldKeys.Concat(spec.Scenario == "mix" ? attempted.Except(released) : attempted).ToList();
                if (backend is BaselineBackend baseline)
                {
                    await baseline.ReleaseAllAsync(prefix, ct);
                    // Publish the cleanup's counters now (closing the sessions does). A session left idle in the pool may
                    // hold them for up to 10 s, into the next window, and with two baselines that window is the other
                    // baseline's, whose own flush does not close this backend's sessions.
                    await baseline.FlushPostgresStatsAsync(ct);
                }
                else if (toRelease.Count > 0)
                {
                    Say($"cleanup: releasing {toRelease.Count} keys");
                    await ForAllAsync(toRelease, (k, _, c) => backend.ReleaseAsync(k, c), "cleanup release", Say, ct);
                }
                await WaitQuietAsync(backend, Say, ct);
                await VacuumAsync(backend.StatsConnectionString, Say, ct);
            }
        }
    }

    /// <summary>
    /// Vacuums and analyzes the target's tables once its cleanup is done, outside every window. Otherwise autovacuum works
    /// through this target's writes (the scenario's and its cleanup's) a minute later, in the next target's window: in a full
    /// run the baselines' leftovers were vacuumed in the broker's window, a second of a core on two cores at 1,000 leases a
    /// second (round 21). Each target still pays for the autovacuum of its own window's writes.
    /// </summary>
    private async Task VacuumAsync(string connectionString, Action<string> say, CancellationToken ct)
    {
        try
        {
            var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString)
            {
                Pooling = false, ApplicationName = "sandboxbroker-loadgen-vacuum", CommandTimeout = 600,
            };
            await using var connection = new Npgsql.NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync(ct);
            var tables = new List<string>();
            await using (var list = new Npgsql.NpgsqlCommand(
                "SELECT quote_ident(t.schemaname) || '.' || quote_ident(t.relname) FROM pg_stat_user_tables t " +
                "JOIN pg_class c ON c.oid = t.relid WHERE pg_has_role(c.relowner, 'USAGE') ORDER BY 1", connection))
            await using (var reader = await list.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct))
                {
                    tables.Add(reader.GetString(0));
                }
            }
            if (tables.Count == 0)
            {
                return;
            }
            var started = time.GetTimestamp();
            await using var vacuum = new Npgsql.NpgsqlCommand($"VACUUM (ANALYZE) {string.Join(", ", tables)}", connection);
            await vacuum.ExecuteNonQueryAsync(ct);
            say(FormattableString.Invariant(
                $"vacuumed {tables.Count} tables of {connection.Database} in {time.GetElapsedTime(started).TotalSeconds:0.0}s, so their autovacuum does not fall in the next window"));
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException or ArgumentException)
        {
            say($"cannot vacuum the target's tables ({e.Message}); autovacuum may work through them in the next window");
        }
    }

    /// <summary>Runs <paramref name="op"/> for every key, a few at a time (closed loop); answers the failure count.</summary>
    private async Task<long> ForAllAsync(IReadOnlyList<string> keys, Func<string, int, CancellationToken, ValueTask<OpResult>> op,
        string what, Action<string> say, CancellationToken ct)
    {
        long next = -1, failures = 0, done = 0;
        var errors = new ConcurrentDictionary<string, long>();
        var started = time.GetTimestamp();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var progress = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    await Task.Delay(TimeSpan.FromSeconds(2), time, stop.Token);
                    var secs = time.GetElapsedTime(started).TotalSeconds;
                    say($"{what}: {Interlocked.Read(ref done)}/{keys.Count} ({Interlocked.Read(ref done) / secs:0}/s), {Interlocked.Read(ref failures)} failed");
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);
        var workers = Enumerable.Range(0, options.SetupConcurrency).Select(async _ =>
        {
            long i;
            while ((i = Interlocked.Increment(ref next)) < keys.Count)
            {
                var r = await op(keys[(int)i], (int)i, ct);
                if (!r.IsOk)
                {
                    Interlocked.Increment(ref failures);
                    errors.AddOrUpdate(r.Error!, 1, (_, n) => n + 1);
                }
                Interlocked.Increment(ref done);
            }
        }).ToArray();
        await Task.WhenAll(workers);
        await stop.CancelAsync();
        await progress;
        if (!errors.IsEmpty)
        {
            say($"{what} errors: {string.Join(", ", errors.Select(e => $"{e.Key}={e.Value}"))}");
        }
        return failures;
    }

    /// <summary>Waits (up to a minute) until the pool has nothing provisioning or deleting, so background work
    /// of the setup or of the last cleanup does not run inside the measured window.</summary>
    private async Task WaitQuietAsync(IClaimsBackend backend, Action<string> say, CancellationToken ct)
    {
        if (!backend.SettlesInBackground)
        {
            return;
        }
        var started = time.GetTimestamp();
        var lastSay = started;
        while (true)
        {
            var levels = await backend.PoolLevelsAsync(ct);
            var busy = levels.GetValueOrDefault("provisioning") + levels.GetValueOrDefault("deleting");
            if (busy == 0)
            {
                return;
            }
            if (time.GetElapsedTime(started) > TimeSpan.FromSeconds(120))
            {
                say($"pool still busy after 120s ({levels.GetValueOrDefault("provisioning")} provisioning, {levels.GetValueOrDefault("deleting")} deleting); going on");
                return;
            }
            if (time.GetElapsedTime(lastSay) > TimeSpan.FromSeconds(5))
            {
                say($"waiting for the pool to settle: {levels.GetValueOrDefault("provisioning")} provisioning, {levels.GetValueOrDefault("deleting")} deleting");
                lastSay = time.GetTimestamp();
            }
            await Task.Delay(TimeSpan.FromMilliseconds(500), time, ct);
        }
    }

    /// <summary>A statement's start and end: the end tells the broker's write shapes apart (a joint write ends with its check).</summary>
    private static string Abbreviated(string query) => query.Length <= 130 ? query : $"{query[..75]} … {query[^50..]}";

    private static async Task<PostgresCounters?> TryReadCountersAsync(string connectionString, Action<string> say, CancellationToken ct)
    {
        try
        {
            return await PostgresCounters.ReadAsync(connectionString, ct);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException or ArgumentException)
        {
            say($"cannot read the Postgres counters ({e.Message}); statements per operation are left out");
            return null;
        }
    }
}
