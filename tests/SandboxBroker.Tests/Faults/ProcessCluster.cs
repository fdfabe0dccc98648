using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Faults;

/// <summary>
/// One OS process the harness started: `dotnet X.dll --Key=value ...` with stdout and stderr appended to a log
/// file (through `sh -c exec`, so the recorded pid is the program's own). Stopped only by its pid.
/// </summary>
public sealed class ChildProcess
{
    private readonly Process _process;

    private ChildProcess(string name, Process process, string logPath)
    {
        Name = name;
        _process = process;
        LogPath = logPath;
        Pid = process.Id;
    }

    public string Name { get; }
    public int Pid { get; }
    public string LogPath { get; }
    public bool HasExited => _process.HasExited;
    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    public static ChildProcess Start(string name, string program, IEnumerable<string> args, IReadOnlyDictionary<string, string> environment,
        string workingDirectory, string logPath)
    {
        var start = new ProcessStartInfo("/bin/sh", ["-c", "exec \"$0\" \"$@\" >>\"$FAULTS_LOG\" 2>&1", program, .. args])
        {
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        // Nothing of the caller's broker configuration leaks in (BROKER_POSTGRES would even win over the arguments).
        foreach (var variable in start.Environment.Keys.Where(k => k.StartsWith("BROKER_", StringComparison.Ordinal) || k.StartsWith("Orleans__", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(variable);
        }
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        start.Environment["FAULTS_LOG"] = logPath;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {name}");
        return new ChildProcess(name, process, logPath);
    }

    /// <summary>kill -9.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: false);
            }
        }
        catch (InvalidOperationException)
        {
            // exited meanwhile
        }
    }

    /// <summary>SIGTERM (a graceful stop), then waits; SIGKILL when it has not exited within <paramref name="grace"/>. True when it stopped by itself.</summary>
    public async Task<bool> TerminateAsync(TimeSpan grace)
    {
        if (_process.HasExited)
        {
            return true;
        }
        using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false }))
        {
            await kill!.WaitForExitAsync();
        }
        using var timeout = new CancellationTokenSource(grace);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            Kill();
            await _process.WaitForExitAsync();
            return false;
        }
    }

    public Task WaitForExitAsync(CancellationToken ct = default) => _process.WaitForExitAsync(ct);

    public string LogTail(int lines = 30)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return string.Join(Environment.NewLine, reader.ReadToEnd().Split('\n').TakeLast(lines));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }
}

/// <summary>
/// A private Postgres for one harness run, through deploy/pg.sh with its own data directory and port, so it can be
/// restarted in immediate mode without disturbing anyone's shared server. Runs as `postgres` when the tests run as root
/// (pg.sh's rule), so its directory must be reachable by that user.
/// </summary>
public sealed class PrivatePostgres
{
    public const string Database = "broker";

    private readonly string _repo;
    private readonly string _dataDir;
    private readonly int _port;
    private readonly Action<string> _log;

    private PrivatePostgres(string repo, string dataDir, int port, Action<string> log)
    {
        _repo = repo;
        _dataDir = dataDir;
        _port = port;
        _log = log;
    }

    public string ConnectionString => $"Host=127.0.0.1;Port={_port};Database={Database};Username=broker;Password=broker;Timeout=15";

    public string LogPath => _dataDir + "-run/postgres.log";

    public static async Task<PrivatePostgres> StartAsync(string repo, string directory, Action<string> log)
    {
        var pg = new PrivatePostgres(repo, Path.Combine(directory, "pg"), TestPorts.Free(), log);
        await pg.PgShAsync("start");
        return pg;
    }

    /// <summary>`pg_ctl stop -m immediate` (no checkpoint, clients cut off: a crash as far as recovery goes), down for a while, then start.</summary>
    public async Task RestartImmediateAsync(TimeSpan down)
    {
        await PgCtlAsync("stop", "-D", _dataDir, "-m", "immediate", "-w", "-t", "60");
        await Task.Delay(down);
        await PgShAsync("start");
    }

    public async Task StopAsync()
    {
        try
        {
            await PgCtlAsync("stop", "-D", _dataDir, "-m", "fast", "-w", "-t", "60");
        }
        catch (InvalidOperationException e)
        {
            _log($"stopping the private Postgres: {e.Message}");
            // Last resort, by the pid the server recorded (never by name).
            var pidFile = Path.Combine(_dataDir, "postmaster.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var pid))
            {
                try
                {
                    Process.GetProcessById(pid).Kill();
                }
                catch (ArgumentException)
                {
                    // gone
                }
            }
        }
    }

    private Task PgShAsync(string command) =>
        ProcessCluster.RunAsync("bash", [Path.Combine(_repo, "deploy", "pg.sh"), command], new Dictionary<string, string>
        {
            ["BROKER_PG_DATA"] = _dataDir,
            ["BROKER_PG_PORT"] = _port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["BROKER_PG_DB"] = Database,
        }, TimeSpan.FromSeconds(120));

    private Task PgCtlAsync(params string[] args)
    {
        var pgCtl = Path.Combine(PgBin(), "pg_ctl");
        return Environment.IsPrivilegedProcess
            ? ProcessCluster.RunAsync("runuser", ["-u", "postgres", "--", pgCtl, .. args], new Dictionary<string, string>(), TimeSpan.FromSeconds(90))
            : ProcessCluster.RunAsync(pgCtl, args, new Dictionary<string, string>(), TimeSpan.FromSeconds(90));
    }

    /// <summary>The same PostgreSQL pg.sh picks: BROKER_PG_BIN, else version 15, else the newest installed.</summary>
    private static string PgBin()
    {
        if (Environment.GetEnvironmentVariable("BROKER_PG_BIN") is { Length: > 0 } bin)
        {
            return bin;
        }
        if (File.Exists("/usr/lib/postgresql/15/bin/pg_ctl"))
        {
            return "/usr/lib/postgresql/15/bin";
        }
        return Directory.EnumerateDirectories("/usr/lib/postgresql")
            .Select(d => Path.Combine(d, "bin"))
            .Where(d => File.Exists(Path.Combine(d, "pg_ctl")))
            .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
            .First();
    }
}

/// <summary>What the harness cluster is made of.</summary>
/// <param name="GatewayHostsSilo">The gateway is a silo too (Gateway:HostsSilo, the one-process shape), beside the separate silos.</param>
public sealed record ProcessClusterOptions(int Silos = 3, IReadOnlyDictionary<string, string>? SiloSettings = null, bool GatewayHostsSilo = false);

/// <summary>
/// Postgres, silos and a gateway as separate OS processes on loopback, as users run them, from the dlls in the test's
/// output directory. Every child's pid is recorded; Dispose stops them all by pid (never by name) and the private
/// Postgres, and removes the run's directory unless <see cref="KeepArtifacts"/> is set.
/// </summary>
public sealed class ProcessCluster : IAsyncDisposable
{
    public const string AdminToken = "faults-admin-token-0123456789abcdef";

    private readonly Action<string> _log;
    private readonly List<ChildProcess> _started = [];
    private readonly SiloSlot[] _silos;
    private readonly int _gatewayPort;
    private readonly SiloSlot? _gatewaySilo;
    private readonly string _clusterId;
    private readonly IReadOnlyDictionary<string, string> _siloSettings;
    private ChildProcess? _gateway;
    private int _generation;

    private ProcessCluster(string directory, PrivatePostgres postgres, ProcessClusterOptions options, Action<string> log)
    {
        Directory = directory;
        Postgres = postgres;
        _log = log;
        _clusterId = "faults-" + Path.GetFileName(directory)[^8..];
        _silos = Enumerable.Range(0, options.Silos).Select(_ => new SiloSlot(TestPorts.Free(), TestPorts.Free(), TestPorts.Free())).ToArray();
        _gatewayPort = TestPorts.Free();
        _gatewaySilo = options.GatewayHostsSilo ? new SiloSlot(TestPorts.Free(), TestPorts.Free(), 0) : null;
        _siloSettings = options.SiloSettings ?? new Dictionary<string, string>();
        SandboxRoot = Path.Combine(directory, "sandboxes");
        System.IO.Directory.CreateDirectory(SandboxRoot);
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "logs"));
    }

    public string Directory { get; }
    public PrivatePostgres Postgres { get; }
    public string SandboxRoot { get; }
    public string GatewayUrl => $"http://127.0.0.1:{_gatewayPort}";
    public int SiloCount => _silos.Length;

    /// <summary>Keep the run's directory (logs, Postgres data, sandboxes) after Dispose, e.g. when a check failed.</summary>
    public bool KeepArtifacts { get; set; }

    public static async Task<ProcessCluster> StartAsync(ProcessClusterOptions options, Action<string> log)
    {
        var directory = Path.Combine(Path.GetTempPath(), "sandboxbroker-faults", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(directory);
        // Postgres runs as the `postgres` user when we are root: it must reach its data directory under here.
        foreach (var dir in OperatingSystem.IsWindows() ? [] : new[] { Path.GetDirectoryName(directory)!, directory })
        {
            if (OperatingSystem.IsWindows())
            {
                continue;
            }
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                      UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        PrivatePostgres? postgres = null;
        ProcessCluster? cluster = null;
        try
        {
            postgres = await PrivatePostgres.StartAsync(RepoRoot(), directory, log);
            cluster = new ProcessCluster(directory, postgres, options, log);
            // The first silo applies the schema alone; the others and the gateway then start together.
            cluster.StartSilo(0);
            await cluster.WaitSiloReadyAsync(0);
            for (var i = 1; i < options.Silos; i++)
            {
                cluster.StartSilo(i);
            }
            cluster.StartGateway();
            for (var i = 1; i < options.Silos; i++)
            {
                await cluster.WaitSiloReadyAsync(i);
            }
            await cluster.WaitGatewayReadyAsync(options.Silos);
            return cluster;
        }
        catch
        {
            if (cluster is not null)
            {
                cluster.KeepArtifacts = true;
                await cluster.DisposeAsync();
            }
            else if (postgres is not null)
            {
                await postgres.StopAsync();
            }
            throw;
        }
    }

    public bool SiloRunning(int i) => _silos[i].Process is { HasExited: false };

    public void StartSilo(int i)
    {
        var slot = _silos[i];
        if (slot.Process is { HasExited: false })
        {
            throw new InvalidOperationException($"silo {i} is running");
        }
        var name = $"silo-{i + 1}";
        string[] args =
        [
            $"--Orleans:ClusterId={_clusterId}",
            $"--Orleans:ServiceId={_clusterId}",
            $"--Orleans:SiloPort={slot.SiloPort}",
            $"--Orleans:GatewayPort={slot.GatewayPort}",
            $"--Http:Port={slot.HttpPort}",
            $"--Providers:Local:Root={SandboxRoot}",
            "--Dashboard:Password=faults",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:SandboxBroker=Information",
            "--Logging:LogLevel:Orleans.Runtime.Silo=Information",
            .. _siloSettings.Select(kv => $"--{kv.Key}={kv.Value}"),
        ];
        slot.Process = Start(name, "SandboxBroker.Silo.dll", args);
    }

    public void KillSilo(int i) => _silos[i].Process?.Kill();

    public async Task<bool> StopSiloAsync(int i, TimeSpan grace) => _silos[i].Process is not { } process || await process.TerminateAsync(grace);

    public void StartGateway()
    {
        if (_gateway is { HasExited: false })
        {
            throw new InvalidOperationException("the gateway is running");
        }
        string[] args =
        [
            $"--Orleans:ClusterId={_clusterId}",
            $"--Orleans:ServiceId={_clusterId}",
            $"--Gateway:Urls={GatewayUrl}",
            $"--Auth:AdminToken={AdminToken}",
            "--RateLimit:Enabled=false",
            "--Logging:LogLevel:Default=Warning",
            .. (_gatewaySilo is { } silo
                ?
                [
                    "--Gateway:HostsSilo=true",
                    $"--Orleans:SiloPort={silo.SiloPort}",
                    $"--Orleans:GatewayPort={silo.GatewayPort}",
                    $"--Providers:Local:Root={SandboxRoot}",
                    "--Dashboard:Password=faults",
                    "--Logging:LogLevel:SandboxBroker=Information",
                    "--Logging:LogLevel:Orleans.Runtime.Silo=Information",
                    .. _siloSettings.Select(kv => $"--{kv.Key}={kv.Value}"),
                ]
                : Array.Empty<string>()),
        ];
        _gateway = Start("gateway", "SandboxBroker.Gateway.dll", args);
    }

    public void KillGateway() => _gateway?.Kill();

    /// <summary>Until the silo answers /readyz (an active member, Postgres reachable). A silo that exits fails the wait.</summary>
    public Task WaitSiloReadyAsync(int i, TimeSpan? within = null) =>
        WaitUntilAsync($"silo-{i + 1} is ready", async http =>
        {
            var process = _silos[i].Process!;
            if (process.HasExited)
            {
                throw new InvalidOperationException($"silo-{i + 1} exited with {process.ExitCode}:{Environment.NewLine}{process.LogTail()}");
            }
            using var response = await http.GetAsync($"http://127.0.0.1:{_silos[i].HttpPort}/readyz");
            return response.IsSuccessStatusCode;
        }, within ?? TimeSpan.FromSeconds(120));

    /// <summary>Until the gateway answers /readyz and sees at least <paramref name="silos"/> active silos.</summary>
    public Task WaitGatewayReadyAsync(int silos, TimeSpan? within = null) =>
        WaitUntilAsync($"the gateway sees {silos} silos", async http =>
        {
            if (_gateway is { HasExited: true } gateway)
            {
                throw new InvalidOperationException($"the gateway exited with {gateway.ExitCode}:{Environment.NewLine}{gateway.LogTail()}");
            }
            using var response = await http.GetAsync($"{GatewayUrl}/readyz");
            if (!response.IsSuccessStatusCode)
            {
                return false;
            }
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return body.RootElement.TryGetProperty("silos", out var count) && count.GetInt32() >= silos;
        }, within ?? TimeSpan.FromSeconds(120));

    /// <summary>An HTTP client on the gateway with the admin token.</summary>
    public HttpClient AdminClient(TimeSpan timeout)
    {
        var client = new HttpClient { BaseAddress = new Uri(GatewayUrl), Timeout = timeout };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        return client;
    }

    /// <summary>The sandbox ids the local provider holds: directories with metadata under the shared root.</summary>
    public IReadOnlyList<string> ProviderSandboxes() =>
        System.IO.Directory.EnumerateDirectories(SandboxRoot)
            .Where(d => File.Exists(Path.Combine(d, "sandbox.json")))
            .Select(d => Path.GetFileName(d))
            .ToList();

    public string LogTails(int lines = 15) =>
        string.Join(Environment.NewLine, _started.GroupBy(p => p.Name).Select(g => g.Last())
            .Select(p => $"----- {p.Name} (pid {p.Pid}{(p.HasExited ? $", exited {p.ExitCode}" : "")}) {p.LogPath}{Environment.NewLine}{p.LogTail(lines)}"));

    public async ValueTask DisposeAsync()
    {
        // Gateway first, then silos; every process this cluster started, by pid.
        foreach (var process in _started.AsEnumerable().Reverse())
        {
            process.Kill();
        }
        foreach (var process in _started)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _log($"{process.Name} (pid {process.Pid}) did not exit after SIGKILL");
            }
        }
        await Postgres.StopAsync();
        if (KeepArtifacts)
        {
            _log($"kept the run's directory (logs, Postgres data, sandboxes): {Directory}");
        }
        else
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log($"could not remove {Directory}: {e.Message}");
            }
        }
    }

    private ChildProcess Start(string name, string dll, string[] args)
    {
        var generation = Interlocked.Increment(ref _generation);
        var process = ChildProcess.Start(name, "dotnet", [Path.Combine(AppContext.BaseDirectory, dll), .. args],
            new Dictionary<string, string>
            {
                ["BROKER_POSTGRES"] = Postgres.ConnectionString,
                ["DOTNET_gcServer"] = "0", // two cores, five processes: workstation GC keeps each one small
            },
            Directory, Path.Combine(Directory, "logs", $"{name}.{generation}.log"));
        lock (_started)
        {
            _started.Add(process);
        }
        _log($"started {name} (pid {process.Pid})");
        return process;
    }

    private static async Task WaitUntilAsync(string what, Func<HttpClient, Task<bool>> condition, TimeSpan within)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                if (await condition(http))
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                // not up yet
            }
            if (Stopwatch.GetElapsedTime(started) > within)
            {
                throw new TimeoutException($"timed out after {within.TotalSeconds:F0}s waiting until {what}");
            }
            await Task.Delay(250);
        }
    }

    /// <summary>Runs a tool to completion; a non-zero exit throws with its output.</summary>
    internal static async Task RunAsync(string program, string[] args, IReadOnlyDictionary<string, string> environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program, args)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} did not finish within {timeout.TotalSeconds:F0}s");
        }
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited with {process.ExitCode}: {await stdout} {await stderr}");
        }
    }

    /// <summary>The checkout the tests were built from (deploy/pg.sh lives there).</summary>
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "deploy", "pg.sh")) && File.Exists(Path.Combine(dir.FullName, "SandboxBroker.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no checkout (deploy/pg.sh) above {AppContext.BaseDirectory}");
    }

    private sealed class SiloSlot(int siloPort, int gatewayPort, int httpPort)
    {
        public int SiloPort { get; } = siloPort;
        public int GatewayPort { get; } = gatewayPort;
        public int HttpPort { get; } = httpPort;
        public ChildProcess? Process { get; set; }
    }
}
