using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>Bad start-up input: the silo says what is wrong in one line and exits non-zero, leaving nothing running.</summary>
public sealed class StartupTests
{
    private static Task<(int ExitCode, string Error)> RunSilo(Dictionary<string, string> environment) =>
        RunToExit("SandboxBroker.Silo.dll", [], environment);

    /// <summary>Runs one of the project's programs until it exits (at most a minute) and returns its exit code and stderr.</summary>
    internal static async Task<(int ExitCode, string Error)> RunToExit(string program, string[] args, Dictionary<string, string> environment)
    {
        var (code, error, _) = await RunProgram(program, args, environment);
        return (code, error);
    }

    /// <summary>Runs one of the project's programs until it exits (at most a minute): exit code, stderr, stdout.</summary>
    internal static async Task<(int ExitCode, string Error, string Output)> RunProgram(string program, string[] args, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, program), .. args])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, (await stderr).Trim(), (await stdout).Trim());
    }

    private static Dictionary<string, string> Ports() => new()
    {
        ["Orleans__SiloPort"] = TestPorts.Free().ToString(),
        ["Orleans__GatewayPort"] = TestPorts.Free().ToString(),
        ["Http__Port"] = TestPorts.Free().ToString(),
    };

    [Fact]
    public async Task Postgres_down_is_one_line_and_a_non_zero_exit()
    {
        var environment = Ports();
        environment["BROKER_POSTGRES"] = $"Host=127.0.0.1;Port={TestPorts.Free()};Database=x;Username=x;Password=x;Timeout=3";
        var (code, error) = await RunSilo(environment);
        Assert.Equal(2, code);
        Assert.StartsWith("sandboxbroker-silo: cannot reach Postgres at 127.0.0.1:", error);
        Assert.DoesNotContain('\n', error);
    }

    [Fact]
    public async Task A_malformed_connection_string_is_one_line_and_a_non_zero_exit()
    {
        var environment = Ports();
        environment["BROKER_POSTGRES"] = "this is not a connection string";
        var (code, error) = await RunSilo(environment);
        Assert.Equal(2, code);
        Assert.StartsWith("sandboxbroker-silo: the Postgres connection string is not valid", error);
    }

    [Fact]
    public async Task A_port_in_use_is_named_and_a_non_zero_exit()
    {
        using var occupied = new TcpListener(IPAddress.Loopback, 0);
        occupied.Start();
        var port = ((IPEndPoint)occupied.LocalEndpoint).Port;
        var environment = Ports();
        environment["Http__Port"] = port.ToString();
        var (code, error) = await RunSilo(environment);
        Assert.Equal(2, code);
        Assert.Equal($"sandboxbroker-silo: HTTP port (Http:Port) 127.0.0.1:{port} is already in use", error);
    }

    [Fact]
    public async Task A_dashboard_sample_interval_under_a_second_is_one_line_and_a_non_zero_exit()
    {
        var environment = Ports();
        environment["Dashboard__CounterUpdateInterval"] = "00:00:00.500";
        var (code, error) = await RunSilo(environment);
        Assert.Equal(2, code);
        Assert.Equal("sandboxbroker-silo: Dashboard:CounterUpdateInterval is 00:00:00.5000000; the dashboard samples at most once a second (e.g. 00:00:05)", error);
    }
}

/// <summary>The gateway, too, says what is wrong in one line.</summary>
public sealed class GatewayStartupTests
{
    [Fact]
    public async Task A_port_in_use_is_one_line_and_a_non_zero_exit()
    {
        using var occupied = new TcpListener(IPAddress.Loopback, 0);
        occupied.Start();
        var port = ((IPEndPoint)occupied.LocalEndpoint).Port;
        var (code, error) = await StartupTests.RunToExit("SandboxBroker.Gateway.dll", [$"--Gateway:Urls=http://127.0.0.1:{port}"], []);
        Assert.Equal(2, code);
        Assert.StartsWith("sandboxbroker-gateway: cannot listen:", error);
        Assert.DoesNotContain('\n', error);
    }
}
