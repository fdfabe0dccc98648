using SandboxBroker.Grains.Providers;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Providers;

/// <summary>The daytona provider against a local test double of Daytona's REST API.</summary>
public sealed class DaytonaProviderTests
{
    private const string Section = "Providers:Daytona";

    private static Dictionary<string, string> Labels(string sandboxId) => new()
    {
        [BrokerLabels.Deployment] = "dep-1",
        [BrokerLabels.SandboxId] = sandboxId,
        [BrokerLabels.Pool] = "p",
    };

    [Fact]
    public async Task Create_carries_labels_and_is_idempotent_list_pages_by_labels_and_delete_removes()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        var settings = ProviderServices.Http(Section, daytona.ApiUrl);
        settings[$"{Section}:AutoStopIntervalMinutes"] = "30";
        await using var services = ProviderServices.Build(settings);
        var provider = services.Provider("daytona");

        var a = await provider.CreateAsync(new ProviderCreateRequest("sbx-a", "sbx-p-a", "my-snapshot", Labels("sbx-a")), CancellationToken.None);
        await provider.CreateAsync(new ProviderCreateRequest("sbx-b", "sbx-p-b", null, Labels("sbx-b")), CancellationToken.None);
        await provider.CreateAsync(new ProviderCreateRequest("sbx-c", "sbx-p-c", null, Labels("sbx-c")), CancellationToken.None);
        var again = await provider.CreateAsync(new ProviderCreateRequest("sbx-a", "sbx-p-a", "my-snapshot", Labels("sbx-a")), CancellationToken.None);
        daytona.Put(new Dictionary<string, string> { ["team"] = "other" });

        Assert.Equal(a.ExternalId, again.ExternalId);
        Assert.Equal(3, daytona.RequestCount("POST /api/sandbox"));
        var created = daytona.Find(a.ExternalId)!;
        Assert.Equal(("sbx-a", "dep-1", "my-snapshot", 30), (created.Labels[BrokerLabels.SandboxId], created.Labels[BrokerLabels.Deployment], created.Snapshot, created.AutoStopInterval));
        Assert.Equal(ProviderSandboxState.Running, a.State);

        var listed = await provider.ListAllAsync(new Dictionary<string, string> { [BrokerLabels.Deployment] = "dep-1" });
        Assert.Equal(["sbx-a", "sbx-b", "sbx-c"], listed.Select(s => s.SandboxId).Order());
        Assert.Contains(daytona.Requests, r => r.StartsWith("GET /api/sandbox?", StringComparison.Ordinal) && r.Contains("cursor=", StringComparison.Ordinal));

        await provider.DeleteAsync("sbx-a", a.ExternalId, CancellationToken.None);
        await provider.DeleteAsync("sbx-a", a.ExternalId, CancellationToken.None); // already gone: still succeeds
        await provider.DeleteAsync("sbx-b", null, CancellationToken.None); // found by its label
        Assert.Null(await provider.GetAsync("sbx-a", a.ExternalId, CancellationToken.None));
        Assert.Equal(2, daytona.Sandboxes.Count); // sbx-c and the foreign one
    }

    [Fact]
    public async Task Safe_calls_are_retried_on_5xx_and_429_creates_are_not_and_4xx_fails_at_once()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        await using var services = ProviderServices.Build(ProviderServices.Http(Section, daytona.ApiUrl));
        var provider = services.Provider("daytona");
        var x = await provider.CreateAsync(new ProviderCreateRequest("sbx-x", "x", null, Labels("sbx-x")), CancellationToken.None);

        daytona.FailNext(2, 503);
        Assert.NotNull(await provider.GetAsync("sbx-x", x.ExternalId, CancellationToken.None));
        Assert.Equal(3, daytona.RequestCount($"GET /api/sandbox/{x.ExternalId}"));

        daytona.FailNext(2, 429);
        Assert.Single(await provider.ListAllAsync(new Dictionary<string, string> { [BrokerLabels.Deployment] = "dep-1" }));

        daytona.FailNext(1, 500, "POST");
        var failed = await Assert.ThrowsAsync<ProviderException>(() => provider.CreateAsync(new ProviderCreateRequest("sbx-y", "y", null, Labels("sbx-y")), CancellationToken.None));
        Assert.True(failed.Transient);
        Assert.Equal(2, daytona.RequestCount("POST /api/sandbox")); // x, and y's one attempt
        await provider.CreateAsync(new ProviderCreateRequest("sbx-y", "y", null, Labels("sbx-y")), CancellationToken.None);
        Assert.Equal(2, daytona.Sandboxes.Count);

        daytona.FailNext(1, 400);
        var refused = await Assert.ThrowsAsync<ProviderException>(() => provider.GetAsync("sbx-x", x.ExternalId, CancellationToken.None));
        Assert.False(refused.Transient);
        Assert.Equal(4, daytona.RequestCount($"GET /api/sandbox/{x.ExternalId}"));
    }

    [Fact]
    public async Task Create_starts_a_stopped_sandbox_with_its_id_and_replaces_a_failed_one()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        await using var services = ProviderServices.Build(ProviderServices.Http(Section, daytona.ApiUrl));
        var provider = services.Provider("daytona");
        var stopped = daytona.Put(Labels("sbx-s"), state: "stopped");
        var broken = daytona.Put(Labels("sbx-e"), state: "error");

        var s = await provider.CreateAsync(new ProviderCreateRequest("sbx-s", "s", null, Labels("sbx-s")), CancellationToken.None);
        var e = await provider.CreateAsync(new ProviderCreateRequest("sbx-e", "e", null, Labels("sbx-e")), CancellationToken.None);

        Assert.Equal((stopped.Id, "started"), (s.ExternalId, daytona.Find(stopped.Id)!.State));
        Assert.NotEqual(broken.Id, e.ExternalId);
        Assert.Null(daytona.Find(broken.Id));
        Assert.Equal("started", daytona.Find(e.ExternalId)!.State);
    }

    [Fact]
    public async Task Acquire_starts_a_stopped_warm_sandbox_replaces_a_failed_one_and_labels_it_with_the_claim()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        var settings = ProviderServices.Http(Section, daytona.ApiUrl);
        settings["Broker:Pools:dt:Provider"] = "daytona";
        settings["Broker:Pools:dt:MinReady"] = "2";
        await using var broker = await BrokerCluster.StartAsync(silos: 1, settings);
        var pool = broker.Grains.GetGrain<IPoolGrain>("dt");
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == 2, "the pool has two warm sandboxes");
        foreach (var warm in daytona.Sandboxes)
        {
            daytona.SetState(warm.Id, "stopped"); // Daytona's auto-stop while they waited
        }

        var first = await broker.Grains.GetClaim("t", "track:dt/1").Acquire(new AcquireRequest("dt", "t", "o"));

        Assert.Equal(AcquireOutcome.Warm, first.Outcome);
        var started = daytona.Find(first.Sandbox.ExternalId!)!;
        Assert.Equal(("started", "track:dt/1"), (started.State, started.Labels[BrokerLabels.ClaimKey]));

        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == 2, "the pool is warm again");
        var waiting = await broker.Grains.GetGrain<ISandboxGrain>(await OldestReady(broker)).Get();
        daytona.SetState(waiting!.ExternalId!, "error", "disk full");

        var second = await broker.Grains.GetClaim("t", "track:dt/2").Acquire(new AcquireRequest("dt", "t", "o"));

        Assert.NotEqual(waiting.SandboxId, second.Sandbox.SandboxId);
        Assert.Equal("started", daytona.Find(second.Sandbox.ExternalId!)!.State);
        await Eventually.TrueAsync(() => daytona.Find(waiting.ExternalId!) is null, "the failed sandbox is deleted at Daytona");
        Assert.Equal(SandboxStatus.Deleted, (await broker.Grains.GetGrain<ISandboxGrain>(waiting.SandboxId).Get())!.Status);
    }

    [Fact]
    public async Task When_Daytona_hangs_the_breaker_opens_and_acquire_answers_PROVIDER_UNAVAILABLE_without_calling_it()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        var settings = ProviderServices.Http(Section, daytona.ApiUrl, breakerMinimumThroughput: 2, attemptTimeout: "00:00:00.500");
        settings[$"{Section}:MaxRetries"] = "1";
        settings[$"{Section}:TotalTimeout"] = "00:00:02";
        settings["Broker:Pools:dt:Provider"] = "daytona";
        settings["Broker:Pools:dt:MinReady"] = "0";
        await using var broker = await BrokerCluster.StartAsync(silos: 1, settings);
        daytona.Hang = true;

        var error = await Assert.ThrowsAsync<BrokerException>(() => broker.Grains.GetClaim("t", "track:dt/hang-1").Acquire(new AcquireRequest("dt", "t", "o")));

        Assert.Equal(ErrorCodes.ProviderUnavailable, error.Code);
        Assert.Contains("circuit breaker is open", error.Message, StringComparison.Ordinal);
        var calls = daytona.Requests.Count;
        var again = await Assert.ThrowsAsync<BrokerException>(() => broker.Grains.GetClaim("t", "track:dt/hang-2").Acquire(new AcquireRequest("dt", "t", "o")));
        Assert.Equal(ErrorCodes.ProviderUnavailable, again.Code);
        Assert.Equal(calls, daytona.Requests.Count); // the open breaker answered; Daytona was not called
        Assert.Null(await broker.Grains.GetClaim("t", "track:dt/hang-2").Get());
    }

    /// <summary>The pool hands out its oldest ready sandbox first; the index says which that is.</summary>
    private static async Task<string> OldestReady(BrokerCluster broker) =>
        (await broker.Database.ScalarAsync<string>(
            "SELECT sandbox_id FROM broker_sandboxes WHERE pool = 'dt' AND status = 'ready' ORDER BY updated_at LIMIT 1"))!;
}
