using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SandboxBroker.LoadGen;

/// <summary>Latency percentiles in milliseconds.</summary>
public sealed record LatencySummary(long Count, double P50, double P90, double P95, double P99, double P999, double Max, double Mean)
{
    public static LatencySummary Of(LatencyHistogram h) => new(h.Count, Ms(h.Percentile(50)), Ms(h.Percentile(90)),
        Ms(h.Percentile(95)), Ms(h.Percentile(99)), Ms(h.Percentile(99.9)), Ms(h.Max), Math.Round(h.Mean / 1000.0, 3));

    private static double Ms(long micros) => Math.Round(micros / 1000.0, 3);
}

/// <summary>A target of issue 7 for a scenario, and whether the run met it.</summary>
public sealed record Goal(double MinThroughput, double MaxP99Ms, bool Met);

/// <summary>Everything one measured run produced; written as JSON (snake_case).</summary>
public sealed record ScenarioResult(
    string Target,
    string Scenario,
    string Label,
    int Keys,
    string? Mix,
    double RateOffered,
    double DurationSeconds,
    double WarmupSeconds,
    double WarmupRampSeconds,
    DateTimeOffset StartedAt,
    string KeyPrefix,
    long Scheduled,
    long Completed,
    long Ok,
    long ErrorCount,
    IReadOnlyDictionary<string, long> Errors,
    IReadOnlyDictionary<string, long> Outcomes,
    double ThroughputPerSecond,
    LatencySummary LatencyMs,
    LatencySummary ServiceMs,
    IReadOnlyDictionary<string, LatencySummary> ByOp,
    long MaxInFlight,
    double MaxDispatchLagMs,
    long WarmupOk,
    long WarmupErrors,
    PoolFill PoolFill,
    IReadOnlyDictionary<string, long> PoolLevelsAfter,
    PostgresDelta? Postgres,
    CpuSplit? Cpu,
    IReadOnlyDictionary<string, double>? CpuMicrosPerOp,
    Goal? Goal,
    LatencySummary? ErrorServiceMs = null)
{
    public static ScenarioResult From(string target, ScenarioSpec spec, PaceSpec pace, DateTimeOffset startedAt, string prefix,
        RunRecording rec, PoolFill fill, IReadOnlyDictionary<string, long> levelsAfter, PostgresDelta? pg, CpuSplit? cpu)
    {
        var errors = rec.Errors.Values.Sum();
        var throughput = Math.Round(rec.Ok / rec.MeasuredSeconds, 1);
        var latency = LatencySummary.Of(rec.Latency);
        var goal = GoalFor(spec, throughput, latency, errors);
        return new ScenarioResult(target, spec.Scenario, spec.Label, spec.Keys, spec.Scenario == "mix" ? spec.Mix.ToString() : null,
            spec.Rate, spec.Duration.TotalSeconds, spec.Warmup.TotalSeconds, Math.Min(pace.Ramp.TotalSeconds, spec.Warmup.TotalSeconds), startedAt, prefix,
            rec.Scheduled, rec.Completed, rec.Ok, errors,
            new SortedDictionary<string, long>(rec.Errors, StringComparer.Ordinal),
            new SortedDictionary<string, long>(rec.Outcomes, StringComparer.Ordinal),
            throughput, latency, LatencySummary.Of(rec.Service),
            new SortedDictionary<string, LatencySummary>(rec.ByOp.ToDictionary(p => p.Key, p => LatencySummary.Of(p.Value)), StringComparer.Ordinal),
            rec.MaxInFlight, Math.Round(rec.MaxDispatchLagMicros / 1000.0, 3), rec.WarmupOk, rec.WarmupErrors,
            fill, levelsAfter, pg, cpu, PerOp(cpu, rec), goal, rec.ErrorService.Count > 0 ? LatencySummary.Of(rec.ErrorService) : null);
    }

    /// <summary>CPU time per successful operation of each process group (µs): robust to a busy neighbour in a way
    /// throughput is not, and it says how many operations a second the machine's cores could carry.</summary>
    private static IReadOnlyDictionary<string, double>? PerOp(CpuSplit? cpu, RunRecording rec)
    {
        if (cpu is null || rec.Ok == 0)
        {
            return null;
        }
        var perSecond = rec.Ok / rec.MeasuredSeconds;
        return new SortedDictionary<string, double>(
            cpu.Cores.Where(c => c.Key is not ("machine_busy" or "other"))
                .ToDictionary(c => c.Key, c => Math.Round(c.Value / perSecond * 1_000_000, 1)),
            StringComparer.Ordinal);
    }

    /// <summary>
    /// The target a scenario is held to, by its offered rate (for the broker through HTTP; shown for the baselines as
    /// well): repeats at 10,000/s with p99 ≤ 20 ms (issue 7); new warm leases at 1,000/s with p99 ≤ 100 ms, below that
    /// the offered rate with p99 ≤ 50 ms, and releases the offered rate with p99 ≤ 30 ms (issue 15). Above 1,000/s offered
    /// the target is a share of the sustained rate, which one scenario cannot judge: none.
    /// </summary>
    public static Goal? GoalFor(ScenarioSpec spec, double throughput, LatencySummary latency, long errors)
    {
        (double Rate, double P99)? target = spec.Scenario switch
        {
            "repeat" => (10_000, 20),
            "warm" when spec.Rate == 1_000 => (1_000, 100),
            "warm" when spec.Rate < 1_000 => (spec.Rate, 50),
            "release" when spec.Rate <= 1_000 => (spec.Rate, 30),
            _ => null,
        };
        return target is { } t ? new Goal(t.Rate, t.P99, throughput >= t.Rate * 0.99 && latency.P99 <= t.P99 && errors == 0) : null;
    }

    public string OneLine()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"{Ok}/{Scheduled} ok, {ThroughputPerSecond:0}/s, latency p50 {LatencyMs.P50:0.0} p95 {LatencyMs.P95:0.0} p99 {LatencyMs.P99:0.0} max {LatencyMs.Max:0.0} ms");
        sb.Append(ErrorCount == 0 ? ", no errors" : $", {ErrorCount} errors ({string.Join(", ", Errors.Select(e => $"{e.Key}={e.Value}"))})");
        if (ErrorServiceMs is { } refused)
        {
            sb.Append(CultureInfo.InvariantCulture, $" answered in p50 {refused.P50:0.0} p99 {refused.P99:0.0} ms");
        }
        if (Postgres is { } pg)
        {
            if (pg.StatementsPerOp is { } statements)
            {
                sb.Append(CultureInfo.InvariantCulture, $", {statements:0.00} pg statements/op");
            }
            sb.Append(CultureInfo.InvariantCulture, $", {pg.TransactionsPerOp:0.00} pg transactions/op, {pg.RowWritesPerOp:0.00} row writes/op");
            if (pg.Wal is { } wal)
            {
                sb.Append(CultureInfo.InvariantCulture, $", WAL {wal.BytesPerOp:0} B/op ({wal.FullPageImagesPerOp:0.00} full pages/op)");
            }
        }
        if (Goal is { } g)
        {
            sb.Append(g.Met ? " [target met]" : $" [target missed: ≥{g.MinThroughput:0}/s, p99 ≤ {g.MaxP99Ms:0} ms, no errors]");
        }
        return sb.ToString();
    }

    public static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };
}

/// <summary>Broker figures over one baseline's figures for one scenario (throughput: higher is better; latency and
/// Postgres work: lower is better). <see cref="Baseline"/> names the baseline ("baseline" or "baseline-fair").</summary>
public sealed record Ratio(string Label, double? Throughput, double? P50, double? P99, double? TransactionsPerOp, double? RowWritesPerOp,
    double? StatementsPerOp = null, string Baseline = "baseline")
{
    public static Ratio Of(ScenarioResult broker, ScenarioResult baseline)
    {
        static double? Div(double? a, double? b) => a is { } x && b is { } y && y > 0 ? Math.Round(x / y, 2) : null;
        return new Ratio(broker.Label,
            Div(broker.ThroughputPerSecond, baseline.ThroughputPerSecond),
            Div(broker.LatencyMs.P50, baseline.LatencyMs.P50),
            Div(broker.LatencyMs.P99, baseline.LatencyMs.P99),
            Div(broker.Postgres?.TransactionsPerOp, baseline.Postgres?.TransactionsPerOp),
            Div(broker.Postgres?.RowWritesPerOp, baseline.Postgres?.RowWritesPerOp),
            Div(broker.Postgres?.StatementsPerOp, baseline.Postgres?.StatementsPerOp),
            baseline.Target);
    }
}

/// <summary>What `compare` writes: the machine, every run, and the ratios.</summary>
public sealed record CompareReport(MachineInfo Machine, IReadOnlyList<ScenarioResult> Results, IReadOnlyList<Ratio> Ratios, IReadOnlyList<string> NotMeasured);

public sealed record MachineInfo(int Cores, string? CpuModel, long? MemoryMb, string Os, string Dotnet, string? Postgres)
{
    public static async Task<MachineInfo> ReadAsync(string? statsConnectionString, CancellationToken ct)
    {
        string? cpu = null;
        long? mem = null;
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
            var memLine = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            if (memLine is not null)
            {
                mem = long.Parse(memLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
            }
        }
        catch (IOException)
        {
        }
        string? pg = null;
        if (statsConnectionString is not null)
        {
            try
            {
                var b = new Npgsql.NpgsqlConnectionStringBuilder(statsConnectionString) { Pooling = false };
                await using var c = new Npgsql.NpgsqlConnection(b.ConnectionString);
                await c.OpenAsync(ct);
                await using var cmd = new Npgsql.NpgsqlCommand("SHOW server_version", c);
                pg = (string?)await cmd.ExecuteScalarAsync(ct);
            }
            catch (Npgsql.NpgsqlException)
            {
            }
        }
        return new MachineInfo(Environment.ProcessorCount, cpu, mem, System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription, pg);
    }
}

/// <summary>Fixed-width text tables for the terminal and for docs/BENCHMARKS.md.</summary>
public static class Tables
{
    public static string Results(IEnumerable<ScenarioResult> results)
    {
        var rows = new List<string[]>
        {
            new[] { "target", "scenario", "offered/s", "ok/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "pg stmt/op", "pg xact/op", "pg row writes/op", "cpu cores used", "cpu µs/op", "target" },
        };
        foreach (var r in results)
        {
            rows.Add([
                r.Target, r.Label, F(r.RateOffered, "0"), F(r.ThroughputPerSecond, "0"), F(r.LatencyMs.P50), F(r.LatencyMs.P95),
                F(r.LatencyMs.P99), F(r.LatencyMs.Max), r.ErrorCount == 0 ? "0" : $"{r.ErrorCount} ({string.Join(" ", r.Errors.Select(e => $"{e.Key}={e.Value}"))})",
                r.Postgres?.StatementsPerOp is { } st ? F(st, "0.00") : "-",
                r.Postgres is { } p ? F(p.TransactionsPerOp, "0.00") : "-", r.Postgres is { } q ? F(q.RowWritesPerOp, "0.00") : "-",
                r.Cpu is { } c ? string.Join(" ", c.Cores.Where(k => k.Value >= 0.01).Select(k => $"{k.Key}={k.Value:0.00}")) : "-",
                r.CpuMicrosPerOp is { } u ? string.Join(" ", u.Where(k => k.Value >= 0.5).Select(k => $"{k.Key}={k.Value:0}")) : "-",
                r.Goal is { } g ? (g.Met ? "met" : "missed") : "",
            ]);
        }
        return Markdown(rows);
    }

    public static string Ratios(IEnumerable<Ratio> ratios)
    {
        var rows = new List<string[]> { new[] { "scenario", "baseline", "throughput broker/baseline", "p50 broker/baseline", "p99 broker/baseline", "pg stmt/op broker/baseline", "pg xact/op broker/baseline", "pg row writes/op broker/baseline" } };
        foreach (var r in ratios)
        {
            rows.Add([r.Label, r.Baseline, X(r.Throughput), X(r.P50), X(r.P99), X(r.StatementsPerOp), X(r.TransactionsPerOp), X(r.RowWritesPerOp)]);
        }
        return Markdown(rows);
    }

    private static string F(double v, string format = "0.0") => v.ToString(format, CultureInfo.InvariantCulture);
    private static string X(double? v) => v is { } x ? x.ToString("0.00", CultureInfo.InvariantCulture) + "×" : "-";

    private static string Markdown(List<string[]> rows)
    {
        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        var sb = new StringBuilder();
        for (var r = 0; r < rows.Count; r++)
        {
            sb.Append("| ").AppendJoin(" | ", rows[r].Select((c, i) => c.PadRight(widths[i]))).AppendLine(" |");
            if (r == 0)
            {
                sb.Append("| ").AppendJoin(" | ", widths.Select(w => new string('-', w))).AppendLine(" |");
            }
        }
        return sb.ToString();
    }
}
