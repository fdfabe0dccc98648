using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.Json;

namespace SandboxBroker.LoadGen;

/// <summary>
/// sandboxbroker-loadgen: open-loop load against a running broker (http), the same job directly on Postgres
/// (baseline: minimal, or with --fair the one that also writes the audit rows and the refill), or all of them in one
/// session with ratios (compare). See docs/BENCHMARKS.md.
/// </summary>
public static class Program
{
    private const string DefaultBaseline = "Host=127.0.0.1;Port=54329;Database=sandboxbroker_baseline;Username=broker;Password=broker";
    private const string DefaultBrokerDb = "Host=127.0.0.1;Port=54329;Database=sandboxbroker;Username=broker;Password=broker";
    private const string DefaultPlan = "warm@1000,repeat@10000,repeat-hot@10000,release@1000,mix@2000";

    public static async Task<int> Main(string[] args)
    {
        var root = BuildCommand();
        return await root.Parse(args).InvokeAsync();
    }

    private static Option<TimeSpan> DurationOption(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r =>
        {
            try
            {
                return Durations.Parse(r.Tokens.Single().Value);
            }
            catch (FormatException e)
            {
                r.AddError(e.Message);
                return default;
            }
        },
    };

    public static RootCommand BuildCommand()
    {
        // --- what to run ---
        var scenario = new Option<string>("--scenario") { Description = "warm | repeat | release | mix", DefaultValueFactory = _ => "repeat" };
        scenario.AcceptOnlyFromAmong(ScenarioSpec.Names);
        var rate = new Option<double>("--rate") { Description = "operations per second, scheduled open-loop", DefaultValueFactory = _ => 1000 };
        var duration = DurationOption("--duration", "measured time, e.g. 30s", TimeSpan.FromSeconds(30));
        var warmup = DurationOption("--warmup", "time run before measuring (not recorded): the --ramp, then the full rate", TimeSpan.FromSeconds(5));
        var ramp = DurationOption("--ramp", "how long the warm-up climbs linearly to the full rate (at most the warm-up; 0s: full rate at once)", TimeSpan.FromSeconds(3));
        var keys = new Option<int>("--keys") { Description = "keys held by repeat and mix (1 = one hot key)", DefaultValueFactory = _ => 1000 };
        var mix = new Option<string>("--mix") { Description = "mix shares in percent", DefaultValueFactory = _ => MixWeights.Default.ToString() };
        var plan = new Option<string>("--plan")
        {
            Description = "compare: comma-separated scenario@rate[:keys=N][:duration=T]; repeat-hot = repeat with one key",
            DefaultValueFactory = _ => DefaultPlan,
        };
        // --- how ---
        var maxInFlight = new Option<int>("--max-inflight") { Description = "cap on outstanding operations (the wait counts as latency)", DefaultValueFactory = _ => 4096 };
        var timeout = DurationOption("--timeout", "per-request timeout", TimeSpan.FromSeconds(10));
        var drain = DurationOption("--drain-timeout", "how long to wait for outstanding operations at the end", TimeSpan.FromSeconds(30));
        var readyTimeout = DurationOption("--pool-ready-timeout", "how long to wait for the pool to hold the ready sandboxes a scenario needs", TimeSpan.FromMinutes(5));
        var setupConcurrency = new Option<int>("--setup-concurrency") { Description = "concurrent requests while acquiring held keys and cleaning up", DefaultValueFactory = _ => 32 };
        var noCleanup = new Option<bool>("--no-cleanup") { Description = "leave the acquired leases in place" };
        var cpu = new Option<string[]>("--cpu") { Description = "name=pid of a process to include in the CPU split (repeatable), e.g. silo=1234", AllowMultipleArgumentsPerToken = true };
        var output = new Option<string?>("--out") { Description = "JSON output file (default: .artifacts/bench/<target>-<scenario>-<time>.json)" };
        var ttl = new Option<int>("--ttl") { Description = "lease TTL in seconds", DefaultValueFactory = _ => 600 };
        // --- broker ---
        var url = new Option<string>("--url") { Description = "the gateway", DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BROKER_URL") ?? "http://127.0.0.1:8080" };
        var token = new Option<string?>("--token") { Description = "bearer token (default: $BROKER_TOKEN, else $BROKER_ADMIN_TOKEN)" };
        var pool = new Option<string>("--pool") { Description = "the pool the benchmark configures and uses", DefaultValueFactory = _ => "bench" };
        var connections = new Option<int>("--connections") { Description = "max HTTP/1.1 connections to the gateway", DefaultValueFactory = _ => 256 };
        var brokerDb = new Option<string>("--broker-db")
        {
            Description = "the broker's Postgres database, for the counters (default: $BROKER_POSTGRES)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("BROKER_POSTGRES") is { Length: > 0 } s ? s : DefaultBrokerDb,
        };
        var settle = DurationOption("--pg-settle", "wait before reading the broker's Postgres counters (sessions publish them when idle, every 10 s)", TimeSpan.FromSeconds(11));
        var creates = new Option<int>("--max-concurrent-creates") { Description = "the benchmark pool's max_concurrent_creates", DefaultValueFactory = _ => 16 };
        // --- baseline ---
        var baselineDb = new Option<string>("--baseline-db") { Description = "the baseline's database (created when missing)", DefaultValueFactory = _ => DefaultBaseline };
        var baselinePool = new Option<int>("--baseline-pool-size") { Description = "max pooled Postgres connections of the baseline", DefaultValueFactory = _ => 32 };
        var fair = new Option<bool>("--fair")
        {
            Description = "baseline: the fair variant (target baseline-fair): an acquire also appends an audit row and inserts the refill, a release appends an audit row",
        };
        var baselines = new Option<string>("--baselines")
        {
            Description = "compare: which baselines run beside the broker, in this order: minimal, fair or both",
            DefaultValueFactory = _ => "minimal,fair",
        };

        Option[] common = [rate, duration, warmup, ramp, keys, mix, maxInFlight, timeout, drain, readyTimeout, setupConcurrency, noCleanup, cpu, output, ttl, pool];
        Option[] brokerOptions = [url, token, connections, brokerDb, settle, creates];
        Option[] baselineOptions = [baselineDb, baselinePool];

        var http = new Command("http", "Measure one scenario against a running broker through its REST API.");
        var baseline = new Command("baseline", "Measure one scenario on Postgres directly (no broker).");
        var compare = new Command("compare", "Run a plan of scenarios against the baseline and the broker in one session; print and write ratios.");
        foreach (var o in common)
        {
            http.Options.Add(o);
            baseline.Options.Add(o);
            compare.Options.Add(o);
        }
        http.Options.Add(scenario);
        baseline.Options.Add(scenario);
        baseline.Options.Add(fair);
        compare.Options.Add(plan);
        foreach (var o in brokerOptions)
        {
            http.Options.Add(o);
            compare.Options.Add(o);
        }
        foreach (var o in baselineOptions)
        {
            baseline.Options.Add(o);
            compare.Options.Add(o);
        }
        var skipBaseline = new Option<bool>("--skip-baseline") { Description = "compare: run the broker only" };
        var skipBroker = new Option<bool>("--skip-broker") { Description = "compare: run the baselines only" };
        compare.Options.Add(baselines);
        compare.Options.Add(skipBaseline);
        compare.Options.Add(skipBroker);

        RunnerOptions Runner(ParseResult p) => new(
            p.GetValue(maxInFlight), p.GetValue(drain), p.GetValue(ramp), p.GetValue(readyTimeout), p.GetValue(setupConcurrency), !p.GetValue(noCleanup),
            ParsePids(p.GetValue(cpu) ?? []));
        ScenarioSpec Spec(ParseResult p) => new(p.GetValue(scenario)!, p.GetValue(rate), p.GetValue(duration), p.GetValue(warmup),
            p.GetValue(keys), MixWeights.Parse(p.GetValue(mix)!));
        BrokerSettings Broker(ParseResult p)
        {
            var t = p.GetValue(token) ?? Environment.GetEnvironmentVariable("BROKER_TOKEN") ?? Environment.GetEnvironmentVariable("BROKER_ADMIN_TOKEN");
            if (string.IsNullOrEmpty(t))
            {
                throw new UsageException("no token: pass --token or set BROKER_TOKEN (or BROKER_ADMIN_TOKEN; run.sh prints it)");
            }
            var u = p.GetValue(url)!;
            return new BrokerSettings(new Uri(u.EndsWith('/') ? u : u + "/"), t, p.GetValue(pool)!, p.GetValue(ttl), p.GetValue(connections),
                p.GetValue(timeout), p.GetValue(brokerDb)!, p.GetValue(settle), p.GetValue(creates));
        }
        BaselineSettings Baseline(ParseResult p, BaselineVariant variant) =>
            new(p.GetValue(baselineDb)!, p.GetValue(pool)!, p.GetValue(ttl), p.GetValue(baselinePool), variant);

        http.SetAction((p, ct) => Guard(async () =>
        {
            await using var backend = new BrokerHttpBackend(Broker(p));
            return await RunOneAsync(backend, Spec(p), Runner(p), p.GetValue(output), p.GetValue(brokerDb), ct);
        }));
        baseline.SetAction((p, ct) => Guard(async () =>
        {
            await using var backend = await BaselineBackend.OpenAsync(Baseline(p, p.GetValue(fair) ? BaselineVariant.Fair : BaselineVariant.Minimal), ct);
            return await RunOneAsync(backend, Spec(p), Runner(p), p.GetValue(output), p.GetValue(baselineDb), ct);
        }));
        compare.SetAction((p, ct) => Guard(async () =>
        {
            var specs = p.GetValue(plan)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(e => ScenarioSpec.ParsePlanEntry(e, p.GetValue(duration), p.GetValue(warmup), p.GetValue(keys), MixWeights.Parse(p.GetValue(mix)!)))
                .ToList();
            var variants = p.GetValue(skipBaseline) ? [] : BaselineVariants.Parse(p.GetValue(baselines)!);
            return await CompareAsync(specs, variants.Select(v => Baseline(p, v)).ToList(), p.GetValue(skipBroker) ? null : Broker(p),
                Runner(p), p.GetValue(output), p.GetValue(brokerDb)!, ct);
        }));

        var root = new RootCommand("SandboxBroker load generator: open-loop load with latency percentiles, Postgres work per operation and a Postgres-only baseline.");
        root.Subcommands.Add(http);
        root.Subcommands.Add(baseline);
        root.Subcommands.Add(compare);
        return root;
    }

    private static async Task<int> RunOneAsync(IClaimsBackend backend, ScenarioSpec spec, RunnerOptions options, string? output,
        string? statsDb, CancellationToken ct)
    {
        var runner = new ScenarioRunner(options, TimeProvider.System, Log);
        var result = await runner.RunAsync(backend, spec, ct);
        Console.WriteLine();
        Console.Write(Tables.Results([result]));
        var path = output ?? DefaultPath($"{backend.Target}-{spec.Scenario}{(spec.Keys == 1 && spec.Scenario is "repeat" or "mix" ? "-hot" : "")}");
        await WriteJsonAsync(path, new { machine = await MachineInfo.ReadAsync(statsDb, ct), result }, ct);
        Console.WriteLine($"written {path}");
        return result.ErrorCount == 0 ? 0 : 1;
    }

    private static async Task<int> CompareAsync(IReadOnlyList<ScenarioSpec> specs, IReadOnlyList<BaselineSettings> baselineSettings,
        BrokerSettings? brokerSettings, RunnerOptions options, string? output, string brokerDb, CancellationToken ct)
    {
        var baselines = new List<BaselineBackend>();
        try
        {
            foreach (var settings in baselineSettings)
            {
                baselines.Add(await BaselineBackend.OpenAsync(settings, ct));
            }
            return await CompareAsync(specs, baselines, brokerSettings, options, output, brokerDb, ct);
        }
        finally
        {
            foreach (var b in baselines)
            {
                await b.DisposeAsync();
            }
        }
    }

    private static async Task<int> CompareAsync(IReadOnlyList<ScenarioSpec> specs, IReadOnlyList<BaselineBackend> baselines,
        BrokerSettings? brokerSettings, RunnerOptions options, string? output, string brokerDb, CancellationToken ct)
    {
        var runner = new ScenarioRunner(options, TimeProvider.System, Log);
        var results = new List<ScenarioResult>();
        var ratios = new List<Ratio>();
        await using var broker = brokerSettings is null ? null : new BrokerHttpBackend(brokerSettings);
        var path = output ?? DefaultPath("compare");
        var machine = await MachineInfo.ReadAsync(baselines.Count > 0 ? baselines[0].StatsConnectionString : brokerDb, ct);
        var failures = new List<string>();
        async Task<ScenarioResult?> Try(IClaimsBackend backend, ScenarioSpec spec)
        {
            try
            {
                return await runner.RunAsync(backend, spec, ct);
            }
            catch (Exception e) when (e is HttpRequestException or InvalidOperationException or Npgsql.NpgsqlException
                                          or TaskCanceledException && !ct.IsCancellationRequested)
            {
                // One scenario that cannot even start (e.g. the broker still digesting an overload) does not cost the others.
                var why = $"{backend.Target} {spec.Label} @{spec.Rate:0}/s: {e.Message}";
                failures.Add(why);
                Log("scenario failed: " + why);
                return null;
            }
        }
        foreach (var spec in specs)
        {
            // Each baseline, then the broker: the broker's figures are set against every baseline that measured the scenario.
            var measured = new List<ScenarioResult>();
            foreach (var baseline in baselines)
            {
                if (await Try(baseline, spec) is { } b)
                {
                    measured.Add(b);
                    results.Add(b);
                }
            }
            if (broker is not null && await Try(broker, spec) is { } s)
            {
                results.Add(s);
                ratios.AddRange(measured.Select(b => Ratio.Of(s, b)));
            }
            // Written after every scenario, so an interrupted session keeps what it measured.
            await WriteJsonAsync(path, new CompareReport(machine, results, ratios, failures), ct);
        }
        if (broker is not null)
        {
            // Stop keeping a large pool warm once the benchmark is over.
            try
            {
                await broker.FillPoolAsync(0, TimeSpan.FromSeconds(5), Log, ct);
            }
            catch (Exception e) when (e is HttpRequestException or InvalidOperationException or TaskCanceledException)
            {
                Log($"could not set the pool's min_ready back to 0: {e.Message}");
            }
        }
        Console.WriteLine();
        Console.Write(Tables.Results(results));
        if (ratios.Count > 0)
        {
            Console.WriteLine();
            Console.Write(Tables.Ratios(ratios));
        }
        foreach (var f in failures)
        {
            Console.WriteLine($"not measured: {f}");
        }
        await WriteJsonAsync(path, new CompareReport(machine, results, ratios, failures), ct);
        Console.WriteLine($"written {path}");
        return failures.Count == 0 && results.All(r => r.ErrorCount == 0) ? 0 : 1;
    }

    private static async Task<int> Guard(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (UsageException e)
        {
            await Console.Error.WriteLineAsync($"sandboxbroker-loadgen: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is HttpRequestException or Npgsql.NpgsqlException or InvalidOperationException or FormatException)
        {
            await Console.Error.WriteLineAsync($"sandboxbroker-loadgen: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("sandboxbroker-loadgen: cancelled");
            return 130;
        }
    }

    private static IReadOnlyDictionary<string, int> ParsePids(string[] values)
    {
        var result = new Dictionary<string, int>();
        foreach (var v in values.SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries)))
        {
            var kv = v.Split('=', 2);
            if (kv.Length != 2 || !int.TryParse(kv[1], out var pid))
            {
                throw new UsageException($"--cpu wants name=pid, not '{v}'");
            }
            result[kv[0]] = pid;
        }
        return result;
    }

    private static string DefaultPath(string name) =>
        Path.Combine(".artifacts", "bench", $"{name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");

    private static async Task WriteJsonAsync<T>(string path, T value, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        await using var file = File.Create(path);
        await JsonSerializer.SerializeAsync(file, value, ScenarioResult.Json, ct);
    }

    private static void Log(string message) => Console.Error.WriteLine($"{DateTime.Now:HH:mm:ss} {message}");
}

/// <summary>A mistake on the command line: one line, exit 2.</summary>
public sealed class UsageException(string message) : Exception(message);
