using System.Net;
using SandboxBroker.Tests.Faults;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Samples;

/// <summary>
/// One real silo as users run it (SandboxBroker.Silo.dll, its own process) on a fresh database of the test Postgres:
/// what an internal service joins as an Orleans client, and what Prometheus scrapes.
/// </summary>
public sealed class SiloProcessFixture : IAsyncLifetime
{
    public const string ClusterId = "sample-cluster";
    public const string DashboardPassword = "test";

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "sandboxbroker-tests", Guid.NewGuid().ToString("N"));
    private ChildProcess? _silo;

    public TestDatabase Database { get; private set; } = null!;
    public string HttpUrl { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Database = await TestDatabase.CreateAsync();
        Directory.CreateDirectory(_directory);
        var httpPort = TestPorts.Free();
        HttpUrl = $"http://127.0.0.1:{httpPort}";
        _silo = ChildProcess.Start("silo", "dotnet",
        [
            Path.Combine(AppContext.BaseDirectory, "SandboxBroker.Silo.dll"),
            $"--Orleans:ClusterId={ClusterId}",
            $"--Orleans:ServiceId={ClusterId}",
            $"--Orleans:SiloPort={TestPorts.Free()}",
            $"--Orleans:GatewayPort={TestPorts.Free()}",
            $"--Http:Port={httpPort}",
            $"--Providers:Local:Root={Path.Combine(_directory, "sandboxes")}",
            $"--Dashboard:Password={DashboardPassword}",
            "--Dashboard:CounterUpdateInterval=00:00:01",
            "--Metrics:LevelsRefresh=00:00:01",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:SandboxBroker.Silo.DashboardMetricReader=Information",
        ], new Dictionary<string, string> { ["BROKER_POSTGRES"] = Database.ConnectionString, ["DOTNET_gcServer"] = "0" },
            _directory, Path.Combine(_directory, "silo.log"));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        await Eventually.TrueAsync(async () =>
        {
            Assert.False(_silo.HasExited, $"the silo exited ({_silo.ExitCode}):\n{_silo.LogTail()}");
            try
            {
                return (await http.GetAsync($"{HttpUrl}/readyz")).StatusCode == HttpStatusCode.OK;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet, or still starting (the host answers once Orleans has joined the cluster).
                return false;
            }
        }, "the silo process is ready", TimeSpan.FromSeconds(120));
    }

    /// <summary>Runs the Orleans-client sample as its own process against this silo, configured as the README says.</summary>
    public Task<(int ExitCode, string Error, string Output)> RunSampleAsync(params string[] args) =>
        StartupTests.RunProgram("SandboxBroker.Samples.OrleansClient.dll",
            [$"--Orleans:ClusterId={ClusterId}", $"--Orleans:ServiceId={ClusterId}", .. args],
            new Dictionary<string, string> { ["BROKER_POSTGRES"] = Database.ConnectionString });

    public string SiloLog(int lines = 40) => _silo?.LogTail(lines) ?? "";

    public async Task DisposeAsync()
    {
        if (_silo is not null)
        {
            await _silo.TerminateAsync(TimeSpan.FromSeconds(20));
        }
        await Database.DisposeAsync();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class SiloProcessCollection : ICollectionFixture<SiloProcessFixture>
{
    public const string Name = "silo-process";
}
