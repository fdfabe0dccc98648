using Microsoft.Extensions.Time.Testing;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Providers;

/// <summary>What only the e2b provider does, against a local test double of E2B's REST API (the rest: ProviderContractTests).</summary>
public sealed class E2BProviderTests
{
    private const string Section = "Providers:E2B";

    private static Dictionary<string, string> Labels(string sandboxId) => new()
    {
        [BrokerLabels.Deployment] = "dep-1",
        [BrokerLabels.SandboxId] = sandboxId,
        [BrokerLabels.ClaimKey] = "github:octo/repo#42", // characters that need encoding in the metadata query
        ["note"] = "100%41 sure", // an escape that decodes to something else when a client encodes one time too few
    };

    [Fact]
    public async Task Create_is_secured_and_listing_by_metadata_finds_values_that_look_like_escapes()
    {
        await using var e2b = await E2BTestDouble.StartNewAsync();
        await using var services = ProviderServices.Build(ProviderServices.Http(Section, e2b.Url));
        var provider = services.Provider("e2b");

        var a = await provider.CreateAsync(new ProviderCreateRequest("sbx-a", "a", "python-3", Labels("sbx-a")), CancellationToken.None);
        await provider.CreateAsync(new ProviderCreateRequest("sbx-b", "b", null, Labels("sbx-b")), CancellationToken.None);
        await provider.CreateAsync(new ProviderCreateRequest("sbx-c", "c", null, Labels("sbx-c")), CancellationToken.None);
        var again = await provider.CreateAsync(new ProviderCreateRequest("sbx-a", "a", "python-3", Labels("sbx-a")), CancellationToken.None);

        var created = e2b.Find(a.ExternalId)!;
        Assert.True(created.Secure);
        Assert.Equal(created.EnvdAccessToken, a.Connection["envd_access_token"]);
        Assert.Equal(created.EnvdAccessToken, again.Connection["envd_access_token"]); // found again: the token from GET /sandboxes/{id}
        var listed = await provider.ListAllAsync(new Dictionary<string, string> { ["note"] = "100%41 sure", [BrokerLabels.ClaimKey] = "github:octo/repo#42" });
        Assert.Equal(["sbx-a", "sbx-b", "sbx-c"], listed.Select(s => s.SandboxId).Order());
        Assert.Equal(3, e2b.RequestCount("POST /sandboxes"));
    }

    [Fact]
    public async Task A_lease_sets_the_timer_to_its_length_up_to_the_team_maximum_and_resumes_a_paused_sandbox()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var e2b = await E2BTestDouble.StartNewAsync(clock);
        e2b.MaxTimeoutSeconds = 3600;
        var settings = ProviderServices.Http(Section, e2b.Url);
        settings[$"{Section}:TimeoutSeconds"] = "600";
        settings[$"{Section}:MaxTimeoutSeconds"] = "3600";
        settings[$"{Section}:LeaseMarginSeconds"] = "60";
        await using var services = ProviderServices.Build(settings);
        var provider = services.Provider("e2b");
        var timer = Assert.IsAssignableFrom<ISandboxLeaseTimer>(provider);
        var warm = await provider.CreateAsync(new ProviderCreateRequest("sbx-w", "w", null, Labels("sbx-w")), CancellationToken.None);
        Assert.Equal((600, true), (e2b.Find(warm.ExternalId)!.Timeout, e2b.Find(warm.ExternalId)!.AutoPause));

        clock.Advance(TimeSpan.FromMinutes(11)); // the warm sandbox's timer ran out while it waited: E2B paused it
        Assert.Equal("paused", e2b.Find(warm.ExternalId)!.State);
        var connection = await timer.HoldUntilAsync("sbx-w", warm.ExternalId, DateTimeOffset.UtcNow.AddMinutes(20), CancellationToken.None);

        var held = e2b.Find(warm.ExternalId)!;
        Assert.Equal("running", held.State);
        Assert.InRange(held.EndAt - clock.GetUtcNow(), TimeSpan.FromMinutes(20), TimeSpan.FromMinutes(22));
        Assert.Equal(held.EnvdAccessToken, connection["envd_access_token"]);

        // A lease longer than the plan allows gets the maximum, not a refusal.
        await timer.HoldUntilAsync("sbx-w", warm.ExternalId, DateTimeOffset.UtcNow.AddHours(3), CancellationToken.None);
        Assert.Equal(clock.GetUtcNow().AddHours(1), e2b.Find(warm.ExternalId)!.EndAt);
    }

    [Fact]
    public async Task A_three_hour_lease_outlives_the_one_hour_timer_and_once_it_ends_the_timer_takes_over()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var e2b = await E2BTestDouble.StartNewAsync(clock);
        e2b.MaxTimeoutSeconds = 3600;
        var settings = ProviderServices.Http(Section, e2b.Url);
        settings[$"{Section}:MaxTimeoutSeconds"] = "3600";
        settings[$"{Section}:AutoPause"] = "false";
        settings["Broker:Pools:e2b:Provider"] = "e2b";
        settings["Broker:Pools:e2b:MinReady"] = "0";
        await using var broker = await BrokerCluster.StartAsync(silos: 1, settings);
        var claim = broker.Grains.GetClaim("t", "track:e2b/long");
        var reconciler = broker.Grains.GetGrain<IReconcilerGrain>("e2b");

        var lease = await claim.Acquire(new AcquireRequest("e2b", "t", "o", Ttl: TimeSpan.FromHours(3)));
        var id = lease.Sandbox.ExternalId!;
        Assert.Equal(e2b.Find(id)!.EnvdAccessToken, lease.Sandbox.Connection["envd_access_token"]);
        // The token is in the lease's answer, but the stored state holds it sealed: a copy of the database opens nothing.
        Assert.Equal(0, await broker.Database.ScalarAsync<int>(
            "SELECT coalesce((SELECT position(convert_to($2, 'UTF8') IN payload) FROM broker_grain_state WHERE state_name = 'sandbox' AND grain_key = $1), -1)",
            lease.Sandbox.SandboxId, e2b.Find(id)!.EnvdAccessToken!));

        // Three and a half hours at E2B's clock, a reconcile every 50 minutes (its period is 10).
        for (var step = 1; step <= 4; step++)
        {
            clock.Advance(TimeSpan.FromMinutes(50));
            Assert.Equal("running", e2b.Find(id)?.State);
            await reconciler.Reconcile();
        }
        Assert.Equal("running", e2b.Find(id)?.State);

        // The lease ends; E2B refuses the deletes for now. Nothing extends the timer any more, and E2B's own ends it.
        e2b.FailNext(100_000, 503, "DELETE");
        await claim.Release("done");
        await reconciler.Reconcile();
        clock.Advance(TimeSpan.FromMinutes(61));
        Assert.Null(e2b.Find(id));
    }

    [Fact]
    public async Task Safe_calls_are_retried_on_5xx_and_429_and_the_breaker_opens_after_repeated_failures()
    {
        await using var e2b = await E2BTestDouble.StartNewAsync();
        await using var services = ProviderServices.Build(ProviderServices.Http(Section, e2b.Url, breakerMinimumThroughput: 8));
        var provider = services.Provider("e2b");
        var x = await provider.CreateAsync(new ProviderCreateRequest("sbx-x", "x", null, Labels("sbx-x")), CancellationToken.None);

        e2b.FailNext(1, 502);
        e2b.FailNext(1, 429);
        Assert.NotNull(await provider.GetAsync("sbx-x", x.ExternalId, CancellationToken.None));
        Assert.Equal(3, e2b.RequestCount($"GET /sandboxes/{x.ExternalId}"));

        // Now E2B fails every call: after enough failures the breaker opens and calls stop reaching it.
        e2b.FailNext(1000, 503);
        var first = await Assert.ThrowsAsync<ProviderException>(() => provider.GetAsync("sbx-y", "y", CancellationToken.None));
        Assert.True(first.Transient);
        var open = await Assert.ThrowsAsync<ProviderException>(() => provider.GetAsync("sbx-y", "y", CancellationToken.None));
        Assert.True(open.Transient);
        Assert.Contains("circuit breaker is open", open.Message, StringComparison.Ordinal);
        var calls = e2b.Requests.Count;
        await Assert.ThrowsAsync<ProviderException>(() => provider.CreateAsync(new ProviderCreateRequest("sbx-z", "z", null, Labels("sbx-z")), CancellationToken.None));
        Assert.Equal(calls, e2b.Requests.Count);
    }
}
