using System.Net;
using System.Net.Http.Json;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Api;

/// <summary>/v1/claims/{key} through HTTP against a real cluster.</summary>
[Collection(ApiCollection.Name)]
public sealed class ClaimApiTests(ApiFixture fixture)
{
    private readonly HttpClient _admin = fixture.Gateway.Admin();

    [Fact]
    public async Task Acquire_answers_201_with_a_new_lease_then_200_with_the_same_body()
    {
        var key = ApiFixture.NewKey("github:octo/repo#");
        using var first = await _admin.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(key)}", new { ttl_seconds = 600, labels = new { issue = "42" } });
        var firstBody = await first.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal($"/v1/claims/{ApiAssert.Key(key)}", first.Headers.Location?.OriginalString);
        Assert.Single(first.Headers.GetValues("X-Request-ID"));
        var lease = await first.JsonAsync();
        Assert.Equal(key, lease.Str("claim_key"));
        Assert.Equal("active", lease.Str("status"));
        Assert.Equal("42", lease.GetProperty("labels").Str("issue"));
        Assert.Equal("leased", lease.GetProperty("sandbox").Str("status"));
        var acquired = lease.GetProperty("acquired_at").GetDateTimeOffset();
        var expires = lease.GetProperty("expires_at").GetDateTimeOffset();
        Assert.Equal(TimeSpan.FromSeconds(600), expires - acquired);
        Assert.EndsWith("Z", lease.Str("acquired_at")); // RFC 3339 UTC

        using var again = await _admin.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(key)}", new { ttl_seconds = 600, labels = new { issue = "42" } });
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal("repeat", again.Headers.GetValues("X-Acquire-Outcome").Single());
        Assert.Equal(firstBody, await again.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Get_touch_extend_history_and_release_work_on_the_active_lease()
    {
        var key = ApiFixture.NewKey();
        var url = $"/v1/claims/{ApiAssert.Key(key)}";
        using var acquired = await _admin.PutAsJsonAsync(url, new { ttl_seconds = 60, idle_timeout_seconds = 30 });
        var sandboxId = (await acquired.JsonAsync()).Str("sandbox_id");

        using var get = await _admin.GetAsync(url);
        var got = await get.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(sandboxId, got.Str("sandbox_id"));
        Assert.Equal(sandboxId, got.GetProperty("sandbox").Str("sandbox_id"));
        Assert.Equal(30, got.GetProperty("idle_timeout_seconds").GetInt32());

        using var touch = await _admin.PostAsync($"{url}/touch", null);
        Assert.Equal(HttpStatusCode.OK, touch.StatusCode);
        Assert.True((await touch.JsonAsync()).GetProperty("last_activity_at").GetDateTimeOffset() >= got.GetProperty("last_activity_at").GetDateTimeOffset());

        using var extend = await _admin.PostAsJsonAsync($"{url}/extend", new { ttl_seconds = 3000 });
        var extended = await extend.JsonAsync();
        Assert.Equal(HttpStatusCode.OK, extend.StatusCode);
        Assert.True(extended.GetProperty("expires_at").GetDateTimeOffset() > got.GetProperty("expires_at").GetDateTimeOffset().AddSeconds(2000));

        using var release = await _admin.DeleteAsync($"{url}?reason=done");
        var released = await release.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, release.StatusCode);
        Assert.Contains("\"status\":\"released\"", released);
        Assert.Contains("\"end_reason\":\"done\"", released);

        using var releaseAgain = await _admin.DeleteAsync($"{url}?reason=done");
        Assert.Equal(HttpStatusCode.OK, releaseAgain.StatusCode);
        Assert.Equal(released, await releaseAgain.Content.ReadAsStringAsync());

        await (await _admin.GetAsync(url)).AssertErrorAsync(HttpStatusCode.NotFound, "NOT_FOUND");
        await (await _admin.PostAsync($"{url}/touch", null)).AssertErrorAsync(HttpStatusCode.Conflict, "LEASE_NOT_ACTIVE");

        using var history = await _admin.GetAsync($"{url}/history");
        var leases = (await history.JsonAsync()).GetProperty("leases");
        Assert.Equal(1, leases.GetArrayLength());
        Assert.Equal("released", leases[0].Str("status"));

        // A new acquire after release gets a new sandbox (re-creation after termination is never blocked).
        using var reacquired = await _admin.PutAsJsonAsync(url, new { });
        Assert.Equal(HttpStatusCode.Created, reacquired.StatusCode);
        Assert.NotEqual(sandboxId, (await reacquired.JsonAsync()).Str("sandbox_id"));
        Assert.Equal(2, (await (await _admin.GetAsync($"{url}/history")).JsonAsync()).GetProperty("leases").GetArrayLength());
    }

    [Fact]
    public async Task Bad_input_is_a_400_naming_the_field()
    {
        var url = $"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey())}";
        async Task Expect(HttpResponseMessage response, string field) =>
            Assert.Equal(field, (await response.AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));

        await Expect(await _admin.PutAsJsonAsync(url, new { ttl_seconds = -5 }), "ttl_seconds");
        await Expect(await _admin.PutAsJsonAsync(url, new { ttl_seconds = "soon" }), "ttl_seconds");
        await Expect(await _admin.PutAsJsonAsync(url, new { ttl = 5 }), "ttl");
        await Expect(await _admin.PutAsJsonAsync(url, new { idle_timeout_seconds = 0 }), "idle_timeout_seconds");
        await Expect(await _admin.PutAsync(url, new StringContent("""{"labels":{"team":null}}""", System.Text.Encoding.UTF8, "application/json")), "labels.team");
        await Expect(await _admin.PutAsync(url, new StringContent("[1,2]", System.Text.Encoding.UTF8, "application/json")), "body");
        await Expect(await _admin.PutAsJsonAsync(url, new { pool = "does-not-exist" }), "pool");
        await Expect(await _admin.PutAsJsonAsync(url, new { pool = "Not A Pool" }), "pool");
        var tooLong = await (await _admin.PutAsJsonAsync(url, new { ttl_seconds = 999_999 })).AssertErrorAsync(HttpStatusCode.BadRequest, "TTL_TOO_LONG");
        Assert.Equal("ttl_seconds", tooLong.Str("field")); // longer than the pool's max TTL
        await Expect(await _admin.PutAsync(url, new StringContent("{not json", System.Text.Encoding.UTF8, "application/json")), "body");
        var form = await (await _admin.PutAsync(url, new StringContent("x=1", System.Text.Encoding.UTF8, "application/x-www-form-urlencoded")))
            .AssertErrorAsync(HttpStatusCode.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE");
        Assert.Equal("content-type", form.Str("field"));
        await Expect(await _admin.PutAsJsonAsync("/v1/claims/bad%20key%21", new { }), "key");
        await Expect(await _admin.PostAsJsonAsync($"{url}/extend", new { }), "ttl_seconds");
        // Nothing was acquired by any of these.
        await (await _admin.GetAsync(url)).AssertErrorAsync(HttpStatusCode.NotFound, "NOT_FOUND");
    }

    [Fact]
    public async Task Unknown_routes_are_404_wrong_methods_405_and_large_bodies_413_in_the_error_shape()
    {
        await (await _admin.GetAsync("/v1/nothing-here")).AssertErrorAsync(HttpStatusCode.NotFound, "NOT_FOUND");
        await (await _admin.PatchAsync($"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey())}", null)).AssertErrorAsync(HttpStatusCode.MethodNotAllowed, "METHOD_NOT_ALLOWED");
        var huge = new string('x', 300 * 1024);
        await (await _admin.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey())}", new { labels = new { big = huge } }))
            .AssertErrorAsync(HttpStatusCode.RequestEntityTooLarge, "PAYLOAD_TOO_LARGE");
    }

    [Fact]
    public async Task A_caller_request_id_is_echoed_and_one_is_made_up_otherwise()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/pools");
        request.Headers.Add("X-Request-ID", "trace-abc-123");
        using var echoed = await _admin.SendAsync(request);
        Assert.Equal("trace-abc-123", echoed.Headers.GetValues("X-Request-ID").Single());

        using var made = await _admin.GetAsync("/v1/pools");
        using var madeNext = await _admin.GetAsync("/v1/pools");
        var id = made.Headers.GetValues("X-Request-ID").Single();
        var next = madeNext.Headers.GetValues("X-Request-ID").Single();
        Assert.StartsWith("req_", id);
        Assert.StartsWith("req_", next);
        Assert.NotEqual(id, next);
    }
}
