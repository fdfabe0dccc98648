using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Npgsql;
using Xunit.Abstractions;

namespace SandboxBroker.Tests.Faults;

/// <summary>
/// The harness's knobs. The defaults are the short form the normal suite runs; tests/faults.sh sets the long form.
/// FAULTS_DURATION (s, the storm's least length), FAULTS_KEYS, FAULTS_WORKERS, FAULTS_ROUNDS (each round: one of
/// every fault, in a random order when there is more than one round), FAULTS_SEED, FAULTS_KEEP=1 (keep the run's
/// directory with every log), FAULTS_GATEWAY_HOSTS_SILO=1 (the gateway is a silo too, the one-process shape: its kill is
/// then a silo's death as well).
/// </summary>
public sealed record FaultSettings(TimeSpan Duration, int Keys, int Workers, int Rounds, int Seed, bool Keep, bool GatewayHostsSilo)
{
    public static FaultSettings FromEnvironment() => new(
        TimeSpan.FromSeconds(Number("FAULTS_DURATION", 30)),
        Number("FAULTS_KEYS", 20),
        Number("FAULTS_WORKERS", 6),
        Number("FAULTS_ROUNDS", 1),
        Number("FAULTS_SEED", Random.Shared.Next(1, 1_000_000)),
        Environment.GetEnvironmentVariable("FAULTS_KEEP") == "1",
        Environment.GetEnvironmentVariable("FAULTS_GATEWAY_HOSTS_SILO") == "1");

    private static int Number(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : fallback;
}

/// <summary>
/// "Exactly one sandbox per key, none left behind", checked the way distributed systems are: Postgres, three silos
/// and a gateway as separate OS processes, a storm of acquires, touches and releases over many keys through HTTP,
/// real faults during it (kill -9 of a silo, a graceful silo stop, Postgres restarted in immediate mode, the
/// gateway killed), each restarted; then the recorded history is checked per key against a single-copy register,
/// every acknowledged sandbox must have existed, and after a reconcile every provider sandbox must be owned by a
/// live record or gone; last, every acknowledged lease change must have its audit row and the broker's index tables must
/// agree with the grains (<see cref="IndexAuditChecker"/>).
/// </summary>
public sealed class ProcessFaultTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ReconcileGrace = TimeSpan.FromSeconds(5);

    /// <summary>How long the audit and index check reads differences again before it reports them (deletions finish asynchronously).</summary>
    private static readonly TimeSpan IndexSettle = TimeSpan.FromSeconds(60);

    private enum FaultKind { SiloKill, SiloStop, PostgresRestart, GatewayKill }

    [Fact]
    public async Task A_storm_through_silo_kills_a_silo_stop_a_Postgres_restart_and_a_gateway_kill_keeps_one_sandbox_per_key_and_leaves_none_behind()
    {
        var settings = FaultSettings.FromEnvironment();
        var clock = Stopwatch.StartNew();
        Log($"settings: {settings}");
        var random = new Random(settings.Seed);
        await using var cluster = await ProcessCluster.StartAsync(new ProcessClusterOptions(3, SiloSettings(), settings.GatewayHostsSilo), Log);
        cluster.KeepArtifacts = settings.Keep;
        Log($"cluster up after {clock.Elapsed.TotalSeconds:F1}s; run directory {cluster.Directory}");
        var problems = new List<string>();
        try
        {
            var history = new OperationHistory();
            var storm = new StormOptions(settings.Keys, settings.Workers, TimeSpan.FromSeconds(10), settings.Seed);
            using var driver = new StormDriver(cluster.GatewayUrl, ProcessCluster.AdminToken, history, storm);

            // ---- the storm, with faults ----
            using var stop = new CancellationTokenSource();
            var stormStarted = clock.Elapsed;
            var running = driver.RunAsync(stop.Token);
            await InjectFaultsAsync(cluster, history, settings, random);
            stop.Cancel();
            await running;
            var stormTime = clock.Elapsed - stormStarted;

            // ---- settle: everything up, then a definite read of every key (part of the history) ----
            await EnsureAllRunningAsync(cluster);
            foreach (var key in storm.KeyNames)
            {
                await ReadDefinitelyAsync(driver, key);
            }
            var operations = history.Operations;
            var historyFile = Path.Combine(cluster.Directory, "history.jsonl");
            await File.WriteAllLinesAsync(historyFile, operations.Select(o => JsonSerializer.Serialize(o)));
            Log($"history written to {historyFile} (kept with FAULTS_KEEP=1 or when a check fails)");

            // ---- the history, per key, against a single-copy register ----
            var checkClock = Stopwatch.StartNew();
            var verdict = new HistoryChecker().Check(operations);
            Log($"history checked in {checkClock.Elapsed.TotalSeconds:F1}s: {verdict.Keys} keys, {verdict.Operations} operations, " +
                $"{verdict.ExplainedByUnknown} keys needed an unknown operation to take effect, {verdict.Inconclusive.Count} inconclusive");
            problems.AddRange(verdict.Violations.Select(v => v.ToString()));
            problems.AddRange(verdict.Inconclusive.Select(k => $"the checker could not decide key {k} within its step budget"));

            // ---- a failure under faults is answered as one the client can act on (503 to retry), never a bare 500 ----
            var internalErrors = operations.Where(o => o.Status == 500).ToList();
            if (internalErrors.Count > 0)
            {
                var first = internalErrors[0];
                problems.Add($"{internalErrors.Count} operation(s) answered 500, the first op-{first.Id} ({first.Kind} {first.Key}); " +
                             "the gateway's log has the exception under that request id");
            }

            // ---- every acknowledged sandbox existed; every key's live sandbox exists now ----
            using var admin = cluster.AdminClient(TimeSpan.FromSeconds(30));
            problems.AddRange(await CheckAcknowledgedSandboxesAsync(cluster, admin, operations));

            // ---- after a reconcile, every provider sandbox is owned by a live record, or gone ----
            var (orphans, reconciles) = await CheckNothingLeftBehindAsync(cluster, admin);
            problems.AddRange(orphans);

            // ---- every acknowledged lifecycle change has its audit row; the index agrees with the grains ----
            // Last, once deletions and the reconcile are done: what still differs after the settle time is the index's fault.
            problems.AddRange(await new IndexAuditCheck(cluster.Postgres.ConnectionString, admin, Log).RunAsync(operations, storm.KeyNames, IndexSettle));

            Log($"storm {stormTime.TotalSeconds:F1}s, whole run {clock.Elapsed.TotalSeconds:F1}s, {reconciles} reconcile(s) after the storm");
            Log(history.Summary());
            Log($"faults injected ({history.Faults.Count}):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", history.Faults));
        }
        catch
        {
            cluster.KeepArtifacts = true;
            Log(cluster.LogTails());
            throw;
        }
        if (problems.Count > 0)
        {
            cluster.KeepArtifacts = true;
            await File.WriteAllLinesAsync(Path.Combine(cluster.Directory, "problems.txt"), [$"seed {settings.Seed}", .. problems]);
            Assert.Fail($"{problems.Count} problem(s) (seed {settings.Seed}):{Environment.NewLine}{string.Join(Environment.NewLine, problems.Take(20))}");
        }
    }

    /// <summary>Short periods so deletions, reminders and the reconciler act within the run; leases outlive it.</summary>
    private static Dictionary<string, string> SiloSettings() => new()
    {
        ["Orleans:MinimumReminderPeriod"] = "00:00:01",
        ["Broker:LeaseCheckPeriod"] = "00:00:05",
        ["Broker:RetryReminderPeriod"] = "00:00:02",
        ["Broker:DeleteRetryMin"] = "00:00:00.200",
        ["Broker:DeleteRetryMax"] = "00:00:02",
        ["Broker:ReconcileGrace"] = ReconcileGrace.ToString("c", CultureInfo.InvariantCulture),
        ["Broker:ReconcileInterval"] = "00:00:20",
        ["Broker:OwnerMaxActiveLeases"] = "100000",
        ["Broker:Pools:default:MinReady"] = "2",
        ["Broker:Pools:default:MaxTotal"] = "100000",
        ["Broker:Pools:default:DefaultTtl"] = "06:00:00",
    };

    /// <summary>
    /// Rounds of one fault of each kind (a fixed order in the short form, shuffled when there are several rounds), spread
    /// over the storm with a pause before each; every fault ends with the process back and ready.
    /// </summary>
    private async Task InjectFaultsAsync(ProcessCluster cluster, OperationHistory history, FaultSettings settings, Random random)
    {
        var plan = new List<FaultKind>();
        for (var round = 0; round < settings.Rounds; round++)
        {
            FaultKind[] kinds = [FaultKind.SiloKill, FaultKind.SiloStop, FaultKind.PostgresRestart, FaultKind.GatewayKill];
            if (settings.Rounds > 1)
            {
                random.Shuffle(kinds);
            }
            plan.AddRange(kinds);
        }
        var pause = settings.Duration / (plan.Count + 1);
        var started = history.Now;
        foreach (var fault in plan)
        {
            await Task.Delay(pause);
            var at = history.Now;
            var what = await InjectAsync(cluster, fault, random);
            history.AddFault(new FaultEvent(at, history.Now, what));
            Log($"fault at {at.TotalSeconds:F1}s..{history.Now.TotalSeconds:F1}s: {what}");
        }
        var rest = settings.Duration - (history.Now - started);
        await Task.Delay(rest > pause ? rest : pause);
    }

    private async Task<string> InjectAsync(ProcessCluster cluster, FaultKind fault, Random random)
    {
        switch (fault)
        {
            case FaultKind.SiloKill:
            {
                var silo = random.Next(cluster.SiloCount);
                cluster.KillSilo(silo);
                await Task.Delay(TimeSpan.FromSeconds(2));
                await RestartSiloAsync(cluster, silo);
                return $"kill -9 silo-{silo + 1}, restarted";
            }
            case FaultKind.SiloStop:
            {
                var silo = random.Next(cluster.SiloCount);
                var graceful = await cluster.StopSiloAsync(silo, TimeSpan.FromSeconds(45));
                await RestartSiloAsync(cluster, silo);
                return $"SIGTERM silo-{silo + 1} ({(graceful ? "stopped by itself" : "did not stop in 45s: killed")}), restarted";
            }
            case FaultKind.PostgresRestart:
                await cluster.Postgres.RestartImmediateAsync(TimeSpan.FromSeconds(2));
                return "Postgres stopped in immediate mode, down 2s, started";
            default:
                cluster.KillGateway();
                await Task.Delay(TimeSpan.FromSeconds(1));
                await RestartGatewayAsync(cluster);
                return "kill -9 gateway, restarted";
        }
    }

    /// <summary>Starts the silo again on its ports (a port still held makes it exit at once: try again).</summary>
    private static async Task RestartSiloAsync(ProcessCluster cluster, int silo)
    {
        for (var attempt = 1; ; attempt++)
        {
            cluster.StartSilo(silo);
            try
            {
                await cluster.WaitSiloReadyAsync(silo);
                return;
            }
            catch (InvalidOperationException) when (attempt < 5)
            {
                await Task.Delay(TimeSpan.FromSeconds(2));
            }
        }
    }

    private static async Task RestartGatewayAsync(ProcessCluster cluster)
    {
        for (var attempt = 1; ; attempt++)
        {
            cluster.StartGateway();
            try
            {
                await cluster.WaitGatewayReadyAsync(1);
                return;
            }
            catch (InvalidOperationException) when (attempt < 5)
            {
                await Task.Delay(TimeSpan.FromSeconds(2));
            }
        }
    }

    private static async Task EnsureAllRunningAsync(ProcessCluster cluster)
    {
        for (var i = 0; i < cluster.SiloCount; i++)
        {
            if (!cluster.SiloRunning(i))
            {
                await RestartSiloAsync(cluster, i);
            }
            await cluster.WaitSiloReadyAsync(i);
        }
        await cluster.WaitGatewayReadyAsync(cluster.SiloCount);
    }

    private static async Task ReadDefinitelyAsync(StormDriver driver, string key)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            var op = await driver.InvokeAsync(-1, key, OpKind.Read);
            if (op.Outcome == OpOutcome.Ok || op is { Outcome: OpOutcome.Fail, Code: "NOT_FOUND" })
            {
                return;
            }
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
        throw new InvalidOperationException($"no definite answer for GET of {key} after the storm");
    }

    /// <summary>
    /// Every sandbox an answer named existed: its record went through ready (its status is leased or later) and the
    /// audit log has its ready event; every key's live sandbox (its final read) exists at the provider, leased to the key.
    /// </summary>
    private async Task<List<string>> CheckAcknowledgedSandboxesAsync(ProcessCluster cluster, HttpClient admin, IReadOnlyList<Operation> operations)
    {
        var problems = new List<string>();
        // Answers that name a sandbox as live. (A repeated release answers the last ended lease, which may be one an
        // acquire that failed ended before its sandbox existed: release answers are left out.)
        var acknowledged = operations.Where(o => o is { Outcome: OpOutcome.Ok, SandboxId: not null, Kind: not OpKind.Release })
            .GroupBy(o => o.SandboxId!).ToDictionary(g => g.Key, g => g.First());
        HashSet<string> audited;
        await using (var dataSource = NpgsqlDataSource.Create(cluster.Postgres.ConnectionString))
        await using (var command = dataSource.CreateCommand(
                         "SELECT DISTINCT entity_id FROM broker_audit_log WHERE entity_type = 'sandbox' AND event = 'sandbox.ready'"))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            audited = [];
            while (await reader.ReadAsync())
            {
                audited.Add(reader.GetString(0));
            }
        }
        var missingAudit = new List<string>();
        foreach (var (id, first) in acknowledged)
        {
            var sandbox = await GetJsonAsync(admin, $"/v1/sandboxes/{id}");
            var status = sandbox?.GetProperty("status").GetString();
            if (status is not ("leased" or "releasing" or "deleting" or "deleted"))
            {
                problems.Add($"acknowledged sandbox {id} (first named by {first}) has no record past ready: {(sandbox is null ? "no record" : $"status {status}")}");
            }
            if (!audited.Contains(id))
            {
                missingAudit.Add(id);
            }
        }
        Log($"{acknowledged.Count} sandboxes named by acknowledged answers; all have a record past ready: {problems.Count == 0}; " +
            $"{missingAudit.Count} without a sandbox.ready audit event{(missingAudit.Count > 0 ? ": " + string.Join(", ", missingAudit.Take(5)) : "")}");
        // The audit row is written in the same statement as the state change it records: a missing one is a bug.
        if (missingAudit.Count > 0)
        {
            problems.Add($"{missingAudit.Count} acknowledged sandboxes have no sandbox.ready audit event, e.g. {string.Join(", ", missingAudit.Take(5))}");
        }
        var finals = operations.Where(o => o is { Worker: -1, Kind: OpKind.Read, Outcome: OpOutcome.Ok }).ToList();
        foreach (var read in finals)
        {
            if (!Directory.Exists(Path.Combine(cluster.SandboxRoot, read.SandboxId!, "workspace")))
            {
                problems.Add($"{read.Key} holds sandbox {read.SandboxId} but the provider does not have it");
            }
            var sandbox = await GetJsonAsync(admin, $"/v1/sandboxes/{read.SandboxId}");
            if (sandbox?.GetProperty("status").GetString() != "leased" || sandbox?.GetProperty("claim_key").GetString() != read.Key)
            {
                problems.Add($"{read.Key} holds sandbox {read.SandboxId}, whose record is not leased to it: {sandbox}");
            }
        }
        Log($"after the storm {finals.Count} of {operations.Select(o => o.Key).Distinct().Count()} keys hold a lease; each one's sandbox exists at the provider");
        return problems;
    }

    /// <summary>
    /// After the reconcile grace, POST /v1/admin/sync (repeated while deletions finish): every provider sandbox must be
    /// leased to a claim that holds it, or ready in the pool; anything else must be gone. The pool must account for
    /// every sandbox left (none it forgot).
    /// </summary>
    private async Task<(List<string> Problems, int Reconciles)> CheckNothingLeftBehindAsync(ProcessCluster cluster, HttpClient admin)
    {
        await Task.Delay(ReconcileGrace + TimeSpan.FromSeconds(1));
        var reconciles = 0;
        var unowned = new List<string>();
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            using (var sync = await admin.PostAsync("/v1/admin/sync", null))
            {
                var body = await sync.Content.ReadAsStringAsync();
                if (sync.IsSuccessStatusCode)
                {
                    reconciles++;
                    Log($"sync {reconciles}: {body}");
                }
                else
                {
                    Log($"sync answered {(int)sync.StatusCode}: {body}");
                }
            }
            unowned.Clear();
            foreach (var id in cluster.ProviderSandboxes())
            {
                var sandbox = await GetJsonAsync(admin, $"/v1/sandboxes/{id}");
                var status = sandbox?.GetProperty("status").GetString();
                var owned = status switch
                {
                    "ready" => true,
                    "leased" => await ClaimHoldsAsync(admin, sandbox!.Value.GetProperty("claim_key").GetString()!, id),
                    _ => false,
                };
                if (!owned)
                {
                    unowned.Add($"provider sandbox {id}: {(sandbox is null ? "no record" : $"status {status}, claim {sandbox.Value.GetProperty("claim_key")}")}");
                }
            }
            if (unowned.Count == 0 || deadline.Elapsed > TimeSpan.FromSeconds(90))
            {
                break;
            }
            await Task.Delay(TimeSpan.FromSeconds(3));
        }
        var problems = unowned.Select(u => $"left behind after {reconciles} reconcile(s): {u}").ToList();
        var left = cluster.ProviderSandboxes().Count;
        var pool = await GetJsonAsync(admin, "/v1/pools/default");
        var total = pool?.GetProperty("levels").GetProperty("total").GetInt32() ?? -1;
        if (left > total)
        {
            problems.Add($"the provider holds {left} sandboxes but the pool accounts for only {total}: {pool}");
        }
        Log($"after reconcile: {left} provider sandboxes, each leased to a claim that holds it or ready; pool levels {pool?.GetProperty("levels")}");
        return (problems, reconciles);
    }

    private static async Task<bool> ClaimHoldsAsync(HttpClient admin, string claimKey, string sandboxId) =>
        (await GetJsonAsync(admin, $"/v1/claims/{Uri.EscapeDataString(claimKey)}"))?.GetProperty("sandbox_id").GetString() == sandboxId;

    /// <summary>GET a JSON answer: null on 404; a 5xx or a timeout is retried (the cluster is settling).</summary>
    internal static async Task<JsonElement?> GetJsonAsync(HttpClient http, string path)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var response = await http.GetAsync(path);
                var text = await response.Content.ReadAsStringAsync();
                if (response.StatusCode == HttpStatusCode.NotFound)
                {
                    return null;
                }
                if (response.IsSuccessStatusCode)
                {
                    return JsonDocument.Parse(text).RootElement.Clone();
                }
                if ((int)response.StatusCode < 500 || attempt >= 10)
                {
                    throw new InvalidOperationException($"GET {path}: {(int)response.StatusCode} {text}");
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && attempt < 10)
            {
            }
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    private void Log(string message)
    {
        try
        {
            output.WriteLine($"[faults {DateTime.UtcNow:HH:mm:ss.fff}] {message}");
        }
        catch (InvalidOperationException)
        {
            // the test has ended
        }
    }
}
