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
    public async Task Create_sends_snapshot_and_auto_stop_and_listing_skips_errored_sandboxes_already_deleted()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        var settings = ProviderServices.Http(Section, daytona.ApiUrl);
        settings[$"{Section}:AutoStopIntervalMinutes"] = "30";
        await using var services = ProviderServices.Build(settings);
        var provider = services.Provider("daytona");
        var deleted = daytona.Put(Labels("sbx-e"), state: "error", deleted: true);
        var replacement = daytona.Put(Labels("sbx-e"), createdAt: DateTimeOffset.UtcNow.AddHours(-2));

        var a = await provider.CreateAsync(new ProviderCreateRequest("sbx-a", "sbx-p-a", "my-snapshot", Labels("sbx-a")), CancellationToken.None);

        var created = daytona.Find(a.ExternalId)!;
        Assert.Equal(("sbx-a", "my-snapshot", 30), (created.Labels[BrokerLabels.SandboxId], created.Snapshot, created.AutoStopInterval));
        var listed = await provider.ListAllAsync(new Dictionary<string, string> { [BrokerLabels.Deployment] = "dep-1" });
        Assert.Equal(new[] { replacement.Id, a.ExternalId }.Order(), listed.Select(s => s.ExternalId).Order());
        Assert.Equal(replacement.Id, (await provider.GetAsync("sbx-e", null, CancellationToken.None))!.ExternalId);
        Assert.DoesNotContain(daytona.Requests, r => r.Contains("includeErroredDeleted", StringComparison.Ordinal));
        Assert.DoesNotContain(listed, s => s.ExternalId == deleted.Id);
        Assert.Equal(0, daytona.RequestCount("DELETE ")); // the errored one, already deleted, is not deleted again
    }

    [Fact]
    public async Task A_retried_create_whose_answer_was_lost_finds_its_sandbox_by_name_while_the_listing_lags()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        await using var services = ProviderServices.Build(ProviderServices.Http(Section, daytona.ApiUrl));
        var provider = services.Provider("daytona");
        daytona.ListingLag = TimeSpan.FromHours(1);
        daytona.LoseNextCreateAnswers(1);
        var lost = await Assert.ThrowsAsync<ProviderException>(() => provider.CreateAsync(new ProviderCreateRequest("sbx-r", "sbx-p-r", null, Labels("sbx-r")), CancellationToken.None));
        Assert.True(lost.Transient);

        var retried = await provider.CreateAsync(new ProviderCreateRequest("sbx-r", "sbx-p-r", null, Labels("sbx-r")), CancellationToken.None);

        var only = Assert.Single(daytona.Sandboxes);
        Assert.Equal((only.Id, "sbx-r"), (retried.ExternalId, retried.SandboxId));
        Assert.Equal(1, daytona.RequestCount("GET /api/sandbox/sbx-p-r"));

        // A name another broker sandbox holds is a clash, not this sandbox.
        var clash = await Assert.ThrowsAsync<ProviderException>(() => provider.CreateAsync(new ProviderCreateRequest("sbx-s", "sbx-p-r", null, Labels("sbx-s")), CancellationToken.None));
        Assert.False(clash.Transient);
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
    public async Task Create_starts_a_stopped_or_paused_sandbox_with_its_id_and_replaces_a_failed_one()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        var settings = ProviderServices.Http(Section, daytona.ApiUrl);
        settings[$"{Section}:StartWait"] = "00:00:05";
        await using var services = ProviderServices.Build(settings);
        var provider = services.Provider("daytona");
        var stopped = daytona.Put(Labels("sbx-s"), state: "stopped");
        var paused = daytona.Put(Labels("sbx-p"), state: "paused");
        var broken = daytona.Put(Labels("sbx-e"), state: "error");

        var s = await provider.CreateAsync(new ProviderCreateRequest("sbx-s", "s", null, Labels("sbx-s")), CancellationToken.None);
        var p = await provider.CreateAsync(new ProviderCreateRequest("sbx-p", "p", null, Labels("sbx-p")), CancellationToken.None);
        var e = await provider.CreateAsync(new ProviderCreateRequest("sbx-e", "e", null, Labels("sbx-e")), CancellationToken.None);

        Assert.Equal((stopped.Id, "started"), (s.ExternalId, daytona.Find(stopped.Id)!.State));
        Assert.Equal((paused.Id, "started", ProviderSandboxState.Running), (p.ExternalId, daytona.Find(paused.Id)!.State, p.State));
        Assert.NotEqual(broken.Id, e.ExternalId);
        Assert.Null(daytona.Find(broken.Id));
        Assert.Equal("started", daytona.Find(e.ExternalId)!.State);
    }

    [Fact]
    public async Task Acquire_starts_a_paused_warm_sandbox_replaces_a_failed_one_and_labels_it_with_the_claim()
    {
        await using var daytona = await DaytonaTestDouble.StartNewAsync();
        var settings = ProviderServices.Http(Section, daytona.ApiUrl);
        settings["Broker:Pools:dt:Provider"] = "daytona";
        settings["Broker:Pools:dt:MinReady"] = "2";
        settings[$"{Section}:StartWait"] = "00:00:05";
        await using var broker = await BrokerCluster.StartAsync(silos: 1, settings);
        var pool = broker.Grains.GetGrain<IPoolGrain>("dt");
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == 2, "the pool has two warm sandboxes");
        foreach (var warm in daytona.Sandboxes)
        {
            daytona.SetState(warm.Id, "paused"); // paused while they waited
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
