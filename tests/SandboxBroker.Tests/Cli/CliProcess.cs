using System.Diagnostics;
using System.Text.Json;

namespace SandboxBroker.Tests.Cli;

/// <summary>What one run of the CLI did.</summary>
public sealed record CliRun(int ExitCode, string Stdout, string Stderr)
{
    public JsonElement Json()
    {
        Assert.True(ExitCode == 0, $"exit {ExitCode}: {Stderr}");
        return JsonDocument.Parse(Stdout).RootElement.Clone();
    }

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// Runs the built CLI (`dotnet sandboxbroker.dll …`, copied beside the tests by the project reference) as a separate
/// process, as a user would. The caller's SANDBOXBROKER_* variables and config file never leak in: the config file is
/// one of the test's own (absent unless the test writes it).
/// </summary>
public sealed class CliProcess(string url) : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("sandboxbroker-cli-").FullName;

    public string ConfigPath => Path.Combine(_home, "config.json");

    public Task<CliRun> RunAsync(params string[] args) => RunAsync(args, new Dictionary<string, string>());

    /// <summary>Runs with --url set to the gateway unless the arguments or environment give one.</summary>
    public async Task<CliRun> RunAsync(string[] args, IReadOnlyDictionary<string, string> environment, bool withUrl = true)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "sandboxbroker.dll");
        string[] all = withUrl && !args.Contains("--url") ? [.. args, "--url", url] : args;
        var start = new ProcessStartInfo("dotnet", [dll, .. all])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _home,
        };
        foreach (var variable in start.Environment.Keys.Where(k => k.StartsWith("SANDBOXBROKER_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(variable);
        }
        start.Environment["SANDBOXBROKER_CONFIG"] = ConfigPath;
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the CLI");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new TimeoutException($"sandboxbroker {string.Join(' ', all)} did not finish");
        }
        return new CliRun(process.ExitCode, await stdout, await stderr);
    }

    public void Dispose() => Directory.Delete(_home, recursive: true);
}
