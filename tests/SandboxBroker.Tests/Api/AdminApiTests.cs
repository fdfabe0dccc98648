using System.Net;
using System.Net.Http.Json;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Api;

/// <summary>Pools, sandbox listing, admin figures, metrics and the OpenAPI document.</summary>
[Collection(ApiCollection.Name)]
public sealed class AdminApiTests(ApiFixture fixture)
{
    private BrokerGateway Gateway => fixture.Gateway;

    [Fact]
    public async Task Pools_show_config_and_levels_and_an_admin_creates_and_changes_them()
    {
        var admin = Gateway.Admin();
        var name = "p-" + Guid.NewGuid().ToString("N")[..8];
        using var created = await admin.PutAsJsonAsync($"/v1/pools/{name}", new { min_ready = 1, max_total = 3, on_empty = "fail", default_ttl_seconds = 120 });
        var pool = await created.JsonAsync();
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(name, pool.Str("name"));
        Assert.Equal("fail", pool.GetProperty("config").Str("on_empty"));
        Assert.Equal(120, pool.GetProperty("config").GetProperty("default_ttl_seconds").GetInt32());

        await Eventually.TrueAsync(async () =>
            (await (await admin.GetAsync($"/v1/pools/{name}")).JsonAsync()).GetProperty("levels").GetProperty("ready").GetInt32() == 1,
            "the new pool warms one sandbox");

        using var changed = await admin.PutAsJsonAsync($"/v1/pools/{name}", new { max_total = 5 });
        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
        var config = (await changed.JsonAsync()).GetProperty("config");
        Assert.Equal(5, config.GetProperty("max_total").GetInt32());
        Assert.Equal(1, config.GetProperty("min_ready").GetInt32()); // fields left out keep their values

        var list = await (await admin.GetAsync("/v1/pools")).JsonAsync();
        Assert.Contains(list.GetProperty("items").EnumerateArray(), p => p.Str("name") == name);
        await (await admin.GetAsync("/v1/pools/no-such-pool")).AssertErrorAsync(HttpStatusCode.NotFound, "NOT_FOUND");
        Assert.Equal("on_empty", (await (await admin.PutAsJsonAsync($"/v1/pools/{name}", new { on_empty = "maybe" })).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
        Assert.Equal("min_ready", (await (await admin.PutAsJsonAsync($"/v1/pools/{name}", new { min_ready = 50 })).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
        Assert.Equal("provider", (await (await admin.PutAsJsonAsync($"/v1/pools/{name}", new { provider = "nowhere" })).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
    }

    [Fact]
    public async Task Sandbox_pages_follow_the_cursor_without_gaps_or_repeats_while_sandboxes_are_added()
    {
        var client = Gateway.Client(await Gateway.MintTokenAsync(ApiFixture.NewTenant()));
        async Task<string> Acquire() =>
            (await (await client.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey())}", new { })).JsonAsync()).Str("sandbox_id");
        var expected = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            expected.Add(await Acquire());
        }
        await Eventually.TrueAsync(async () => (await (await client.GetAsync("/v1/sandboxes?limit=500")).JsonAsync()).GetProperty("items").GetArrayLength() == 5, "the index lists the five");

        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await (await client.GetAsync($"/v1/sandboxes?limit=2{(cursor is null ? "" : $"&cursor={cursor}")}")).JsonAsync();
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(s => s.Str("sandbox_id")));
            cursor = page.GetProperty("next_cursor").GetString();
            if (pages++ == 0)
            {
                var added = await Acquire(); // a sandbox added mid-listing shows up at the end
                expected.Add(added);
                await Eventually.TrueAsync(async () => (await client.GetStringAsync("/v1/sandboxes?limit=500")).Contains(added), "the index lists the new one");
            }
        }
        while (cursor is not null);
        Assert.Equal(expected.Order(), seen.Order());
        Assert.Equal(seen.Count, seen.Distinct().Count());

        var leased = await (await client.GetAsync("/v1/sandboxes?status=leased&pool=default")).JsonAsync();
        Assert.Equal(6, leased.GetProperty("items").GetArrayLength());
        Assert.Equal("status", (await (await client.GetAsync("/v1/sandboxes?status=sleepy")).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
        Assert.Equal("limit", (await (await client.GetAsync("/v1/sandboxes?limit=0")).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
        Assert.Equal("cursor", (await (await client.GetAsync("/v1/sandboxes?cursor=garbage!")).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
    }

    [Fact]
    public async Task Stats_sync_and_cleanup_report_figures()
    {
        var admin = Gateway.Admin();
        var key = ApiFixture.NewKey();
        var sandboxId = (await (await admin.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(key)}", new { })).JsonAsync()).Str("sandbox_id");
        await Eventually.TrueAsync(async () =>
            (await (await admin.GetAsync("/v1/admin/stats")).JsonAsync()).GetProperty("sandboxes").TryGetProperty("leased", out var n) && n.GetInt64() >= 1,
            "stats count the leased sandbox");
        var stats = await (await admin.GetAsync("/v1/admin/stats")).JsonAsync();
        Assert.True(stats.GetProperty("claims").GetProperty("active").GetInt64() >= 1);
        Assert.Contains(stats.GetProperty("pools").EnumerateArray(), p => p.Str("name") == "default");

        // A sandbox at the provider that no record owns, with this deployment's labels, is found by sync.
        var report = await (await admin.PostAsync("/v1/admin/sync", null)).JsonAsync();
        var local = Assert.Single(report.GetProperty("providers").EnumerateArray(), p => p.Str("provider") == "local");
        Assert.True(local.GetProperty("seen").GetInt32() >= 1);
        Assert.Equal(0, local.GetProperty("errors").GetInt32());
        Assert.Contains(sandboxId, fixture.Broker.ProviderSandboxes()); // the owned one is left alone

        using var cleanup = await admin.PostAsync("/v1/admin/cleanup", null);
        Assert.Equal(HttpStatusCode.OK, cleanup.StatusCode);
        Assert.Equal(0, (await cleanup.JsonAsync()).GetProperty("errors").GetInt32());
    }

    [Fact]
    public async Task Metrics_count_requests_by_route_and_acquires_by_outcome()
    {
        var admin = Gateway.Admin();
        var url = $"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey())}";
        await admin.PutAsJsonAsync(url, new { });
        await admin.PutAsJsonAsync(url, new { });
        await admin.GetAsync("/v1/nothing");
        var metrics = await Gateway.Anonymous().GetStringAsync("/metrics");
        Assert.Contains("broker_http_requests_total{route=\"/v1/claims/{key}\",method=\"PUT\",status=\"201\"}", metrics);
        Assert.Contains("broker_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}", metrics);
        Assert.Contains("broker_acquire_duration_seconds_count{outcome=\"repeat\"}", metrics);
        Assert.Matches("broker_acquire_duration_seconds_count\\{outcome=\"(warm|cold)\"\\}", metrics);
        Assert.Contains("broker_pool_sandboxes{pool=\"default\",level=\"leased\"}", metrics);
        Assert.Contains("broker_errors_total{code=\"NOT_FOUND\"}", metrics);
    }
}
