using System.Net;
using System.Net.Http.Json;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Api;

/// <summary>The Sandbox-API-Broker contract existing lab clients use: POST /v1/allocate with X-Track-ID.</summary>
[Collection(ApiCollection.Name)]
public sealed class CompatApiTests(ApiFixture fixture)
{
    private BrokerGateway Gateway => fixture.Gateway;

    private static HttpRequestMessage Track(HttpMethod method, string url, string track, string header = "X-Track-ID")
    {
        var request = new HttpRequestMessage(method, url);
        request.Headers.Add(header, track);
        return request;
    }

    [Fact]
    public async Task Allocate_get_and_mark_for_deletion_end_with_the_sandbox_deleted_at_the_provider()
    {
        var client = Gateway.Client(await Gateway.MintTokenAsync(ApiFixture.NewTenant()));
        var track = "track-" + Guid.NewGuid().ToString("N")[..10];

        using var allocate = Track(HttpMethod.Post, "/v1/allocate", track);
        allocate.Headers.Add("X-Instruqt-Track-ID", "intro-to-k8s");
        allocate.Headers.Add("Idempotency-Key", "retry-1");
        using var allocated = await client.SendAsync(allocate);
        Assert.Equal(HttpStatusCode.Created, allocated.StatusCode);
        var body = await allocated.JsonAsync();
        var sandboxId = body.Str("sandbox_id");
        Assert.False(string.IsNullOrEmpty(body.Str("name")));
        Assert.False(string.IsNullOrEmpty(body.Str("external_id")));
        var allocatedAt = body.GetProperty("allocated_at").GetInt64();
        Assert.InRange(allocatedAt, DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds());
        Assert.True(body.GetProperty("expires_at").GetInt64() > allocatedAt);
        Assert.Contains(sandboxId, fixture.Broker.ProviderSandboxes());

        // The same track again: 200, the same sandbox, for as long as the lease lives.
        using var again = await client.SendAsync(Track(HttpMethod.Post, "/v1/allocate", track, "X-Instruqt-Sandbox-ID"));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(sandboxId, (await again.JsonAsync()).Str("sandbox_id"));

        using var get = await client.SendAsync(Track(HttpMethod.Get, $"/v1/sandboxes/{sandboxId}", track));
        var details = await get.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("allocated", details.Str("status"));
        Assert.Equal(track, details.Str("allocated_to_track"));
        Assert.Equal(allocatedAt, details.GetProperty("allocated_at").GetInt64());

        await (await client.SendAsync(Track(HttpMethod.Get, $"/v1/sandboxes/{sandboxId}", "another-track"))).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");
        await (await client.SendAsync(Track(HttpMethod.Get, "/v1/sandboxes/doesnotexist0000", track))).AssertErrorAsync(HttpStatusCode.NotFound, "NOT_FOUND");
        await (await client.SendAsync(Track(HttpMethod.Post, $"/v1/sandboxes/{sandboxId}/mark-for-deletion", "another-track"))).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");

        using var mark = await client.SendAsync(Track(HttpMethod.Post, $"/v1/sandboxes/{sandboxId}/mark-for-deletion", track));
        var marked = await mark.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, mark.StatusCode);
        Assert.Equal(sandboxId, marked.Str("sandbox_id"));
        Assert.Equal("pending_deletion", marked.Str("status"));
        Assert.True(marked.GetProperty("deletion_requested_at").GetInt64() >= allocatedAt);

        await Eventually.TrueAsync(() => Task.FromResult(!fixture.Broker.ProviderSandboxes().Contains(sandboxId)), "the provider deletes the sandbox");
        // The record says deleted once its write is stored, a moment after the provider's delete.
        await Eventually.TrueAsync(async () =>
        {
            using var after = await client.SendAsync(Track(HttpMethod.Get, $"/v1/sandboxes/{sandboxId}", track));
            return (await after.JsonAsync()).Str("status") == "deleted";
        }, "the sandbox reads as deleted");

        // After termination the track gets a new sandbox: re-creation is never blocked.
        using var next = await client.SendAsync(Track(HttpMethod.Post, "/v1/allocate", track));
        Assert.Equal(HttpStatusCode.Created, next.StatusCode);
        Assert.NotEqual(sandboxId, (await next.JsonAsync()).Str("sandbox_id"));
    }

    [Fact]
    public async Task Allocate_without_a_track_is_a_400_naming_the_header()
    {
        var error = await (await Gateway.Admin().PostAsync("/v1/allocate", null)).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT");
        Assert.Equal("X-Track-ID", error.Str("field"));
    }

    [Fact]
    public async Task Five_hundred_concurrent_allocates_of_one_track_give_one_sandbox()
    {
        var client = Gateway.Admin();
        var track = "storm-" + Guid.NewGuid().ToString("N")[..10];
        var before = fixture.Broker.ProviderSandboxes().ToHashSet();
        var responses = await Task.WhenAll(Enumerable.Range(0, 500).Select(async _ =>
        {
            using var response = await client.SendAsync(Track(HttpMethod.Post, "/v1/allocate", track));
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));
        Assert.All(responses, r => Assert.True(r.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK, r.Body));
        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        var ids = responses.Select(r => System.Text.Json.JsonDocument.Parse(r.Body).RootElement.GetProperty("sandbox_id").GetString()).Distinct().ToList();
        var sandboxId = Assert.Single(ids);
        // The provider created exactly that one sandbox for the storm.
        Assert.Equal([sandboxId!], fixture.Broker.ProviderSandboxes().Except(before).ToList());
    }
}

/// <summary>A gateway whose allocate pool is empty with policy fail, and whose tenants may make few requests.</summary>
public sealed class CompatLimitsTests
{
    [Fact]
    public async Task An_empty_pool_with_policy_fail_answers_409_with_retry_after_and_a_tenant_over_its_rate_gets_429()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1, settings: new Dictionary<string, string?>
        {
            ["Broker:Pools:empty:MinReady"] = "0",
            ["Broker:Pools:empty:MaxTotal"] = "1",
            ["Broker:Pools:empty:OnEmpty"] = "Fail",
        });
        await using var gateway = await BrokerGateway.StartAsync(broker, new Dictionary<string, string>
        {
            ["Compat:Pool"] = "empty",
            ["RateLimit:PermitsPerSecond"] = "1",
            ["RateLimit:Burst"] = "3",
        });
        var client = gateway.Client(await gateway.MintTokenAsync("lab"));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/allocate");
        request.Headers.Add("X-Track-ID", "track-1");
        using var empty = await client.SendAsync(request);
        var error = await empty.AssertErrorAsync(HttpStatusCode.Conflict, "NO_SANDBOXES_AVAILABLE");
        Assert.True(error.GetProperty("retry_after").GetInt32() > 0);
        Assert.Equal(error.GetProperty("retry_after").GetInt32().ToString(), empty.Headers.GetValues("Retry-After").Single());
        Assert.Empty(broker.ProviderSandboxes());

        HttpResponseMessage? limited = null;
        for (var i = 0; i < 20 && limited is null; i++)
        {
            var response = await client.GetAsync("/v1/pools");
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited = response;
            }
        }
        Assert.NotNull(limited);
        await limited.AssertErrorAsync(HttpStatusCode.TooManyRequests, "RATE_LIMITED");
        Assert.True(int.Parse(limited.Headers.GetValues("Retry-After").Single()) >= 1);
        // Another tenant has its own bucket.
        Assert.Equal(HttpStatusCode.OK, (await gateway.Client(await gateway.MintTokenAsync("other")).GetAsync("/v1/pools")).StatusCode);
    }
}
