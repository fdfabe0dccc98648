using System.Net;
using System.Net.Http.Json;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Api;

/// <summary>Bearer tokens, scopes and tenant isolation.</summary>
[Collection(ApiCollection.Name)]
public sealed class AuthApiTests(ApiFixture fixture)
{
    private BrokerGateway Gateway => fixture.Gateway;

    [Fact]
    public async Task Missing_or_wrong_tokens_are_401_and_a_missing_admin_scope_is_403()
    {
        var url = $"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey())}";
        using var missing = await Gateway.Anonymous().PutAsJsonAsync(url, new { });
        await missing.AssertErrorAsync(HttpStatusCode.Unauthorized, "UNAUTHENTICATED");
        Assert.Equal("Bearer", missing.Headers.WwwAuthenticate.Single().Scheme);
        await (await Gateway.Client("sbk_not-a-real-token").PutAsJsonAsync(url, new { })).AssertErrorAsync(HttpStatusCode.Unauthorized, "UNAUTHENTICATED");
        var basic = Gateway.Anonymous();
        basic.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", "YWRtaW46YWRtaW4=");
        await (await basic.GetAsync("/v1/pools")).AssertErrorAsync(HttpStatusCode.Unauthorized, "UNAUTHENTICATED");

        var tenant = Gateway.Client(await Gateway.MintTokenAsync(ApiFixture.NewTenant(), "claims"));
        await (await tenant.GetAsync("/v1/admin/stats")).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");
        await (await tenant.PostAsJsonAsync("/v1/admin/tokens", new { tenant = "someone" })).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");
        await (await tenant.PutAsJsonAsync("/v1/pools/default", new { min_ready = 0 })).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");
        Assert.Equal(HttpStatusCode.Created, (await tenant.PutAsJsonAsync(url, new { })).StatusCode);
    }

    [Fact]
    public async Task Tokens_are_stored_only_as_hashes_and_stop_working_when_revoked()
    {
        var tenantName = ApiFixture.NewTenant();
        using var created = await Gateway.Admin().PostAsJsonAsync("/v1/admin/tokens", new { tenant = tenantName, scopes = new[] { "claims" }, name = "ci" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var minted = await created.JsonAsync();
        var secret = minted.Str("token");
        var tokenId = minted.GetProperty("details").Str("token_id");

        // Postgres holds the SHA-256 of the secret, never the secret.
        await using (var db = Npgsql.NpgsqlDataSource.Create(fixture.Broker.Database.ConnectionString))
        {
            await using var command = db.CreateCommand("SELECT token_hash FROM broker_api_tokens WHERE token_id = $1");
            command.Parameters.Add(new Npgsql.NpgsqlParameter { Value = tokenId });
            var hash = (byte[])(await command.ExecuteScalarAsync())!;
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret)), hash);
            await using var all = db.CreateCommand("SELECT count(*) FROM broker_api_tokens t WHERE position(convert_to($1, 'UTF8') in t.token_hash) > 0 OR t.name = $1 OR t.tenant = $1");
            all.Parameters.Add(new Npgsql.NpgsqlParameter { Value = secret });
            Assert.Equal(0L, await all.ExecuteScalarAsync());
        }

        var client = Gateway.Client(secret);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/pools")).StatusCode);
        var listed = await (await Gateway.Admin().GetAsync($"/v1/admin/tokens?tenant={tenantName}")).JsonAsync();
        Assert.Equal(tokenId, Assert.Single(listed.GetProperty("items").EnumerateArray()).Str("token_id"));
        Assert.DoesNotContain(secret, listed.GetRawText());

        using var revoked = await Gateway.Admin().DeleteAsync($"/v1/admin/tokens/{tokenId}");
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, (await revoked.JsonAsync()).GetProperty("revoked_at").ValueKind);
        await (await client.GetAsync("/v1/pools")).AssertErrorAsync(HttpStatusCode.Unauthorized, "UNAUTHENTICATED");
        await (await Gateway.Admin().DeleteAsync("/v1/admin/tokens/tok_unknown")).AssertErrorAsync(HttpStatusCode.NotFound, "NOT_FOUND");
    }

    [Fact]
    public async Task An_expiring_token_stops_working_after_its_lifetime()
    {
        using var created = await Gateway.Admin().PostAsJsonAsync("/v1/admin/tokens", new { tenant = ApiFixture.NewTenant(), expires_in_seconds = 2 });
        var client = Gateway.Client((await created.JsonAsync()).Str("token"));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/pools")).StatusCode);
        await Eventually.TrueAsync(async () => (await client.GetAsync("/v1/pools")).StatusCode == HttpStatusCode.Unauthorized, "the expired token is refused");
    }

    [Fact]
    public async Task Minting_checks_tenant_and_scopes()
    {
        var admin = Gateway.Admin();
        Assert.Equal("tenant", (await (await admin.PostAsJsonAsync("/v1/admin/tokens", new { })).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
        Assert.Equal("tenant", (await (await admin.PostAsJsonAsync("/v1/admin/tokens", new { tenant = "Has Spaces" })).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
        Assert.Equal("scopes", (await (await admin.PostAsJsonAsync("/v1/admin/tokens", new { tenant = "ok", scopes = new[] { "root" } })).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT")).Str("field"));
    }

    [Fact]
    public async Task A_tenant_never_reads_or_changes_another_tenants_claims_or_sandboxes()
    {
        var alice = Gateway.Client(await Gateway.MintTokenAsync(ApiFixture.NewTenant()));
        var malloryTenant = ApiFixture.NewTenant();
        var mallory = Gateway.Client(await Gateway.MintTokenAsync(malloryTenant));
        var key = ApiFixture.NewKey("github:alice/repo#");
        var url = $"/v1/claims/{ApiAssert.Key(key)}";
        using var acquired = await alice.PutAsJsonAsync(url, new { });
        Assert.Equal(HttpStatusCode.Created, acquired.StatusCode);
        var sandboxId = (await acquired.JsonAsync()).Str("sandbox_id");

        // Alice's key is not in Mallory's namespace: every answer is the one an unused key gets, and none names Alice's.
        var unused = $"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey("github:alice/repo#"))}";
        foreach (var (what, send) in new (string, Func<string, Task<HttpResponseMessage>>)[]
                 {
                     ("get", u => mallory.GetAsync(u)),
                     ("touch", u => mallory.PostAsync($"{u}/touch", null)),
                     ("extend", u => mallory.PostAsJsonAsync($"{u}/extend", new { ttl_seconds = 60 })),
                     ("history", u => mallory.GetAsync($"{u}/history")),
                     ("release", u => mallory.DeleteAsync(u)),
                 })
        {
            using var theirs = await send(url);
            using var nobodys = await send(unused);
            Assert.True(theirs.StatusCode == nobodys.StatusCode, $"{what}: {theirs.StatusCode} for another tenant's key, {nobodys.StatusCode} for an unused one");
            Assert.Equal((await nobodys.JsonAsync()).GetProperty("error").Str("code"), (await theirs.JsonAsync()).GetProperty("error").Str("code"));
            Assert.DoesNotContain(sandboxId, await theirs.Content.ReadAsStringAsync());
        }
        await (await mallory.GetAsync($"/v1/sandboxes/{sandboxId}")).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");
        // Only an admin may name another tenant's namespace.
        await (await mallory.GetAsync($"{url}?tenant={malloryTenant}x")).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");

        // Mallory acquiring the same key gets a claim of her own, with another sandbox; Alice keeps hers.
        using var mine = await mallory.PutAsJsonAsync(url, new { });
        Assert.Equal(HttpStatusCode.Created, mine.StatusCode);
        Assert.NotEqual(sandboxId, (await mine.JsonAsync()).Str("sandbox_id"));
        Assert.Equal(sandboxId, (await (await alice.GetAsync(url)).JsonAsync()).Str("sandbox_id"));
        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync($"/v1/sandboxes/{sandboxId}")).StatusCode);
        await Eventually.TrueAsync(async () => (await alice.GetStringAsync("/v1/sandboxes?limit=500")).Contains(sandboxId), "alice's listing shows her sandbox");
        Assert.DoesNotContain(sandboxId, await mallory.GetStringAsync("/v1/sandboxes?limit=500"));
        // The admin reaches Alice's claim by naming her tenant.
        var aliceTenant = (await (await alice.GetAsync(url)).JsonAsync()).Str("tenant");
        Assert.Equal(sandboxId, (await (await Gateway.Admin().GetAsync($"{url}?tenant={aliceTenant}")).JsonAsync()).Str("sandbox_id"));
    }
}

/// <summary>The token command line works straight against Postgres, without a running cluster.</summary>
public sealed class TokenCommandTests
{
    [Fact]
    public async Task Tokens_minted_on_the_command_line_are_listed_accepted_by_the_gateway_and_revocable()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var environment = new Dictionary<string, string> { ["BROKER_POSTGRES"] = broker.Database.ConnectionString };
        var (code, error, secret) = await StartupTests.RunProgram("SandboxBroker.Gateway.dll", ["tokens", "create", "--tenant", "cli-tenant", "--name", "from the shell"], environment);
        Assert.True(code == 0, error);
        Assert.StartsWith("sbk_", secret);
        Assert.Contains("shown only now", error);

        var (listCode, _, listed) = await StartupTests.RunProgram("SandboxBroker.Gateway.dll", ["tokens", "list", "--tenant", "cli-tenant"], environment);
        Assert.Equal(0, listCode);
        var tokenId = Assert.Single(listed.Split('\n')).Split('\t')[0];
        Assert.DoesNotContain(secret, listed);

        await using var gateway = await BrokerGateway.StartAsync(broker);
        var client = gateway.Client(secret);
        using var acquired = await client.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key("cli:key")}", new { });
        Assert.Equal(HttpStatusCode.Created, acquired.StatusCode);
        Assert.Equal("cli-tenant", (await acquired.JsonAsync()).Str("tenant"));

        var (revokeCode, _, _) = await StartupTests.RunProgram("SandboxBroker.Gateway.dll", ["tokens", "revoke", tokenId], environment);
        Assert.Equal(0, revokeCode);
        var (badCode, badError, _) = await StartupTests.RunProgram("SandboxBroker.Gateway.dll", ["tokens", "create", "--tenant", "Bad Tenant"], environment);
        Assert.Equal(2, badCode);
        Assert.Contains("tenant", badError);
    }
}
