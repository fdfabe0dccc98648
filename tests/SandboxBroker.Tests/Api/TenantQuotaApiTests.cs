using System.Net;
using System.Net.Http.Json;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Api;

/// <summary>Quotas per tenant, set by an admin: one tenant at its quota gets a clear error while the others go on.</summary>
[Collection(ApiCollection.Name)]
public sealed class TenantQuotaApiTests(ApiFixture fixture)
{
    private BrokerGateway Gateway => fixture.Gateway;

    private static string Claim(string key) => $"/v1/claims/{ApiAssert.Key(key)}";

    [Fact]
    public async Task A_tenant_at_its_active_lease_quota_is_refused_clearly_while_another_tenant_still_acquires()
    {
        var admin = Gateway.Admin();
        var a = ApiFixture.NewTenant();
        var alice = Gateway.Client(await Gateway.MintTokenAsync(a));
        var bob = Gateway.Client(await Gateway.MintTokenAsync(ApiFixture.NewTenant()));
        using (var set = await admin.PutAsJsonAsync($"/v1/admin/tenants/{a}/quota", new { max_active_leases = 2 }))
        {
            Assert.Equal(HttpStatusCode.OK, set.StatusCode);
            Assert.Equal(2, (await set.JsonAsync()).GetProperty("max_active_leases").GetInt32());
        }

        var first = ApiFixture.NewKey();
        Assert.Equal(HttpStatusCode.Created, (await alice.PutAsJsonAsync(Claim(first), new { })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await alice.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { })).StatusCode);
        var refused = await (await alice.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { })).AssertErrorAsync(HttpStatusCode.Conflict, "TENANT_QUOTA_EXCEEDED");
        Assert.Contains("max_active_leases", refused.Str("message"));
        // A repeat of a held key is not a new lease: still answered.
        Assert.Equal(HttpStatusCode.OK, (await alice.PutAsJsonAsync(Claim(first), new { })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await bob.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { })).StatusCode);

        using (var usage = await admin.GetAsync($"/v1/admin/tenants/{a}/quota"))
        {
            var view = await usage.JsonAsync();
            Assert.Equal(2, view.GetProperty("active_leases").GetInt32());
            Assert.Equal(2, view.GetProperty("active_leases_by_pool").GetProperty("default").GetInt32());
        }
        // A release makes room at once; clearing the quota lifts the limit.
        Assert.Equal(HttpStatusCode.OK, (await alice.DeleteAsync(Claim(first))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await alice.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { })).StatusCode);
        await (await alice.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { })).AssertErrorAsync(HttpStatusCode.Conflict, "TENANT_QUOTA_EXCEEDED");
        using (var cleared = await admin.DeleteAsync($"/v1/admin/tenants/{a}/quota"))
        {
            Assert.Equal(System.Text.Json.JsonValueKind.Null, (await cleared.JsonAsync()).GetProperty("quota").ValueKind);
        }
        Assert.Equal(HttpStatusCode.Created, (await alice.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { })).StatusCode);
    }

    [Fact]
    public async Task By_default_one_tenant_holds_at_most_half_a_pool_and_the_rest_is_left_for_others()
    {
        var admin = Gateway.Admin();
        var pool = "half-" + Guid.NewGuid().ToString("N")[..8];
        using (var created = await admin.PutAsJsonAsync($"/v1/pools/{pool}", new { provider = "local", min_ready = 0, max_total = 4 }))
        {
            Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        }
        var alice = Gateway.Client(await Gateway.MintTokenAsync(ApiFixture.NewTenant()));
        var bob = Gateway.Client(await Gateway.MintTokenAsync(ApiFixture.NewTenant()));

        Assert.Equal(HttpStatusCode.Created, (await alice.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { pool })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await alice.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { pool })).StatusCode);
        var refused = await (await alice.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { pool })).AssertErrorAsync(HttpStatusCode.Conflict, "TENANT_QUOTA_EXCEEDED");
        Assert.Contains("max_sandboxes_per_pool is 2", refused.Str("message"));
        Assert.Equal(HttpStatusCode.Created, (await bob.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { pool })).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await bob.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { pool })).StatusCode);
    }

    [Fact]
    public async Task A_pool_the_quota_does_not_allow_is_refused_with_POOL_NOT_ALLOWED()
    {
        var admin = Gateway.Admin();
        var tenant = ApiFixture.NewTenant();
        var client = Gateway.Client(await Gateway.MintTokenAsync(tenant));
        (await admin.PutAsJsonAsync($"/v1/admin/tenants/{tenant}/quota", new { allowed_pools = new[] { "scarce" } })).Dispose();

        var refused = await (await client.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { })).AssertErrorAsync(HttpStatusCode.Forbidden, "POOL_NOT_ALLOWED");
        Assert.Contains("'default'", refused.Str("message"));
        var compat = new HttpRequestMessage(HttpMethod.Post, "/v1/allocate");
        compat.Headers.Add("X-Track-ID", ApiFixture.NewKey("track"));
        await (await client.SendAsync(compat)).AssertErrorAsync(HttpStatusCode.Forbidden, "POOL_NOT_ALLOWED");
        // The pool it may use answers as a pool does (scarce holds no ready sandbox: none available).
        await (await client.PutAsJsonAsync(Claim(ApiFixture.NewKey()), new { pool = "scarce" })).AssertErrorAsync(HttpStatusCode.Conflict, "NO_SANDBOXES_AVAILABLE");
    }

    [Fact]
    public async Task A_bad_quota_is_a_400_naming_the_field_and_changes_nothing()
    {
        var admin = Gateway.Admin();
        var tenant = ApiFixture.NewTenant();
        (await admin.PutAsJsonAsync($"/v1/admin/tenants/{tenant}/quota", new { max_active_leases = 3 })).Dispose();
        foreach (var (body, field) in new (object, string)[]
                 {
                     (new { max_active_leases = -1 }, "max_active_leases"),
                     (new { max_sandboxes_per_pool = -5 }, "max_sandboxes_per_pool"),
                     (new { allowed_pools = new[] { "Not A Pool" } }, "allowed_pools"),
                     (new { max_active_leases = "many" }, "max_active_leases"),
                     (new { unknown = 1 }, "unknown"),
                 })
        {
            var error = await (await admin.PutAsJsonAsync($"/v1/admin/tenants/{tenant}/quota", body)).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT");
            Assert.Equal(field, error.Str("field"));
        }
        Assert.Equal("tenant", (await (await admin.GetAsync("/v1/admin/tenants/Not%20A%20Tenant/quota")).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
        Assert.Equal(3, (await (await admin.GetAsync($"/v1/admin/tenants/{tenant}/quota")).JsonAsync()).GetProperty("max_active_leases").GetInt32());
        var tenantToken = Gateway.Client(await Gateway.MintTokenAsync(tenant));
        await (await tenantToken.PutAsJsonAsync($"/v1/admin/tenants/{tenant}/quota", new { max_active_leases = 100 })).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");
    }
}
