using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Tests.Infrastructure;

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
        Assert.Equal(ProviderSandboxState.Stopped, await Provider().GetStateAsync("abc123", null, CancellationToken.None));

        await provider.StartAsync("abc123", null, CancellationToken.None);
        using var second = Process.GetProcessById(Pid("abc123"));
        Assert.False(second.HasExited);
        Assert.Equal(ProviderSandboxState.Running, (await Provider().GetAsync("abc123", null, CancellationToken.None))!.State);
        Assert.Equal(ProviderSandboxState.Running, await Provider().GetStateAsync("abc123", null, CancellationToken.None));

        await provider.DeleteAsync("abc123", null, CancellationToken.None);
        Assert.True(second.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.Null(await Provider().GetStateAsync("abc123", null, CancellationToken.None));
    }

    [Fact]
    public async Task Acquire_starts_a_warm_sandbox_that_was_stopped_while_it_waited()
    {
        var (broker, provider, warm) = await OneWarmSandboxStoppedAtItsProvider(recheckAfter: "00:00:00");
        await using var _ = broker;
        Assert.Equal(ProviderSandboxState.Stopped, (await provider.GetAsync(warm, null, CancellationToken.None))!.State);

        var lease = await broker.Grains.GetClaim("t", "track:lp/1").Acquire(new AcquireRequest("lp", "t", "o"));

        Assert.Equal((AcquireOutcome.Warm, warm), (lease.Outcome, lease.Sandbox.SandboxId));
        Assert.Equal(ProviderSandboxState.Running, (await provider.GetAsync(warm, null, CancellationToken.None))!.State);
    }

    [Fact]
    public async Task A_warm_sandbox_confirmed_running_within_the_recheck_window_is_leased_without_asking_its_provider()
    {
        var (broker, provider, warm) = await OneWarmSandboxStoppedAtItsProvider(recheckAfter: "01:00:00");
        await using var _ = broker;

        var lease = await broker.Grains.GetClaim("t", "track:lp/1").Acquire(new AcquireRequest("lp", "t", "o"));

        // Created moments ago, so not asked: the lease went ahead without the provider check that would have started it
        // (the test above, with a window of zero, shows the check), and the provider was still relabelled.
        Assert.Equal((AcquireOutcome.Warm, warm), (lease.Outcome, lease.Sandbox.SandboxId));
        var atProvider = await provider.GetAsync(warm, null, CancellationToken.None);
        Assert.Equal(ProviderSandboxState.Stopped, atProvider!.State);
        Assert.Equal("track:lp/1", atProvider.Labels[BrokerLabels.ClaimKey]);
    }

    [Fact]
    public async Task Acquire_does_not_lease_a_warm_sandbox_that_vanished_at_its_provider_and_marks_it_stale()
    {
        var (broker, provider, warm) = await OneWarmSandboxStoppedAtItsProvider(recheckAfter: "00:00:00");
        await using var _ = broker;
        await provider.DeleteAsync(warm, null, CancellationToken.None); // gone behind the broker's back

        var lease = await broker.Grains.GetClaim("t", "track:lp/1").Acquire(new AcquireRequest("lp", "t", "o"));

        Assert.NotEqual(warm, lease.Sandbox.SandboxId);
        Assert.Equal(SandboxStatus.Stale, (await broker.Grains.GetGrain<ISandboxGrain>(warm).Get())!.Status);
    }

    /// <summary>A one-silo cluster whose pool "lp" has one ready sandbox, stopped at the provider behind the broker's back right after its create.</summary>
    private static async Task<(BrokerCluster Broker, ISandboxProvider Provider, string Warm)> OneWarmSandboxStoppedAtItsProvider(string recheckAfter)
    {
        var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?>
        {
            ["Broker:Pools:lp:Provider"] = "local",
            ["Broker:Pools:lp:MinReady"] = "1",
            ["Broker:LeaseRecheckAfter"] = recheckAfter,
        });
        var pool = broker.Grains.GetGrain<IPoolGrain>("lp");
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == 1, "the pool has a warm sandbox");
        var warm = (await broker.Database.ScalarAsync<string>("SELECT sandbox_id FROM broker_sandboxes WHERE pool = 'lp' AND status = 'ready'"))!;
        var provider = broker.SiloService<SandboxProviderRegistry>().Get("local");
        await provider.StopAsync(warm, null, CancellationToken.None);
        return (broker, provider, warm);
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
