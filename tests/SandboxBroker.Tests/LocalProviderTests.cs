using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests;

/// <summary>What only the embedded provider does: a process in the workspace, and a stopped mark on disk (the rest: ProviderContractTests).</summary>
public sealed class LocalProviderTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sandboxbroker-local-" + Guid.NewGuid().ToString("N"));

    private LocalSandboxProvider Provider(string? command = null) =>
        new(Options.Create(new LocalProviderOptions { Root = _root, Command = command }), NullLogger<LocalSandboxProvider>.Instance);

    [Fact]
    public async Task The_command_runs_while_the_sandbox_runs_and_a_stop_is_remembered_across_instances()
    {
        var provider = Provider(command: "exec sleep 300");
        var labels = new Dictionary<string, string> { ["sandboxbroker.pool"] = "p1" };
        var created = await provider.CreateAsync(new ProviderCreateRequest("abc123", "sbx-p1-abc123", null, labels), CancellationToken.None);
        Assert.True(Directory.Exists(created.Connection["workspace"]));
        using var first = Process.GetProcessById(Pid("abc123"));
        Assert.False(first.HasExited);

        await provider.StopAsync("abc123", null, CancellationToken.None);
        Assert.True(first.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.Equal(ProviderSandboxState.Stopped, (await Provider().GetAsync("abc123", null, CancellationToken.None))!.State);

        await provider.StartAsync("abc123", null, CancellationToken.None);
        using var second = Process.GetProcessById(Pid("abc123"));
        Assert.False(second.HasExited);
        Assert.Equal(ProviderSandboxState.Running, (await Provider().GetAsync("abc123", null, CancellationToken.None))!.State);

        await provider.DeleteAsync("abc123", null, CancellationToken.None);
        Assert.True(second.WaitForExit(TimeSpan.FromSeconds(10)));
    }

    private int Pid(string sandboxId) => int.Parse(File.ReadAllText(Path.Combine(_root, sandboxId, "sandbox.pid")));

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
