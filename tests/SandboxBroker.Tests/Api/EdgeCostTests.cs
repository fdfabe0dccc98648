using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Npgsql;
using Orleans.Runtime;
using SandboxBroker.Storage;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Api;

/// <summary>
/// What an unauthenticated or made-up request may cost: no Postgres write for an unknown token, no lookup at all for a
/// token of the wrong shape or one already found unknown, a per-address limit before authentication, no pool grain for
/// a pool nobody created, bounded /metrics labels, reserved tenants and a long enough admin token.
/// Each test runs a gateway of its own (on the shared cluster) with the limits it is about.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class EdgeCostTests(ApiFixture fixture)
{
    [Fact]
    public async Task A_flood_of_made_up_tokens_writes_nothing_and_known_misses_and_malformed_tokens_are_not_looked_up()
    {
        await using var gateway = await BrokerGateway.StartAsync(fixture.Broker, new Dictionary<string, string> { ["RateLimit:Address:Burst"] = "1000000" });
        var http = gateway.Anonymous();
        var real = await gateway.MintTokenAsync(ApiFixture.NewTenant(), "claims");
        var shaped = Enumerable.Range(0, 400).Select(_ => MadeUpMintedShape()).ToList();
        var malformed = Enumerable.Range(0, 400).Select(i => i % 2 == 0 ? Guid.NewGuid().ToString("N") : "sbk_" + Guid.NewGuid().ToString("N")).ToList();

        // While this transaction holds SHARE on the token table, any UPDATE of it (even one matching no row) waits, so a
        // request whose token lookup wrote would hang; reads pass.
        await using (var locked = await LockTokensAsync("SHARE"))
        {
            await AllUnauthenticatedAsync(http, shaped.Concat(malformed));
        }

        // With ACCESS EXCLUSIVE even a read of the table waits: tokens already found unknown and tokens no mint could have
        // made are answered without one.
        await using (var locked = await LockTokensAsync("ACCESS EXCLUSIVE"))
        {
            await AllUnauthenticatedAsync(http, shaped.Concat(malformed));
        }

        // The real token still works, and its use is stamped.
        using var ok = await Get(http, "/v1/pools", real);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(1L, await fixture.Broker.Database.ScalarAsync<long>(
            "SELECT count(*) FROM broker_api_tokens WHERE token_hash = $1 AND last_used_at IS NOT NULL", ApiTokenStore.Hash(real)));
    }

    [Fact]
    public async Task Anonymous_and_failed_requests_over_an_address_limit_are_refused_before_any_token_lookup()
    {
        await using var gateway = await BrokerGateway.StartAsync(fixture.Broker, new Dictionary<string, string>
        {
            ["RateLimit:Address:Burst"] = "20",
            ["RateLimit:Address:Permits"] = "1",
            ["RateLimit:Address:Period"] = "01:00:00",
            ["Auth:CacheTtl"] = "01:00:00",
        });
        var http = gateway.Anonymous();
        var tenantToken = await fixture.Gateway.MintTokenAsync(ApiFixture.NewTenant(), "claims");
        using (var first = await Get(http, "/v1/pools", tenantToken))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode); // one permit: a token this gateway had not validated yet
        }
        // The rest of the burst (the start's readiness probes took a few): anonymous and made-up tokens, 401 until it is spent.
        var refused = 0;
        while (true)
        {
            using var response = await Get(http, "/v1/pools", refused % 2 == 0 ? null : MadeUpMintedShape());
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                break;
            }
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.True(++refused < 20, "the burst of 20 is spent");
        }

        // Over the limit, a new token would need a lookup: with the token table locked against reads, the 429 shows it got none.
        await using (var locked = await LockTokensAsync("ACCESS EXCLUSIVE"))
        {
            using var limited = await Get(http, "/v1/pools", MadeUpMintedShape());
            var error = await limited.AssertErrorAsync(HttpStatusCode.TooManyRequests, "RATE_LIMITED");
            Assert.True(error.GetProperty("retry_after").GetInt32() >= 1);
            Assert.NotNull(limited.Headers.RetryAfter);
            using var anonymous = await Get(http, "/healthz", null);
            await anonymous.AssertErrorAsync(HttpStatusCode.TooManyRequests, "RATE_LIMITED");

            // Callers the gateway already trusts pass: the admin token and a token it validated.
            using var admin = await Get(http, "/v1/pools", BrokerGateway.AdminToken);
            Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
            using var tenant = await Get(http, "/v1/pools", tenantToken);
            Assert.Equal(HttpStatusCode.OK, tenant.StatusCode);
        }
    }

    [Fact]
    public async Task Ten_thousand_made_up_pool_names_activate_no_pool_grain()
    {
        await using var gateway = await BrokerGateway.StartAsync(fixture.Broker, new Dictionary<string, string> { ["RateLimit:Enabled"] = "false" });
        var http = gateway.Client(await fixture.Gateway.MintTokenAsync(ApiFixture.NewTenant(), "claims"));
        var admin = gateway.Admin();
        var prefix = "madeup-" + Guid.NewGuid().ToString("N")[..6] + "-";

        await Parallel.ForEachAsync(Enumerable.Range(0, 10_000), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            var pool = prefix + i;
            if (i % 2 == 0)
            {
                using var response = await admin.GetAsync($"/v1/pools/{pool}", ct);
                await response.AssertErrorAsync(HttpStatusCode.NotFound, "NOT_FOUND");
            }
            else
            {
                using var response = await http.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey("pools"))}", new { pool }, ct);
                var error = await response.AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT");
                Assert.Equal("pool", error.Str("field"));
            }
        });

        var management = fixture.Broker.Grains.GetGrain<IManagementGrain>(0);
        var activations = await management.GetDetailedGrainStatistics();
        // The configured pools are active: the query sees pool grains.
        Assert.Contains(activations, a => a.GrainType.Contains(nameof(Grains.PoolGrain), StringComparison.Ordinal));
        Assert.DoesNotContain(activations, a => a.GrainId.Key.ToString()!.StartsWith(prefix, StringComparison.Ordinal));

        // A pool created through the API is known at once, and one that exists answers as before.
        var created = prefix + "real";
        using var put = await admin.PutAsJsonAsync($"/v1/pools/{created}", new { min_ready = 0, max_total = 1 });
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        using var get = await admin.GetAsync($"/v1/pools/{created}");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
    }

    [Fact]
    public async Task Metrics_answer_GET_only_with_bounded_method_labels_and_behind_a_token_when_one_is_set()
    {
        const string MetricsToken = "metrics-scrape-token";
        await using var gateway = await BrokerGateway.StartAsync(fixture.Broker, new Dictionary<string, string> { ["Metrics:Token"] = MetricsToken });
        var http = gateway.Anonymous();
        foreach (var verb in new[] { "FOOBAR", "BREW", "PROPFIND" })
        {
            using var odd = await http.SendAsync(new HttpRequestMessage(new HttpMethod(verb), "/v1/pools"));
            Assert.True((int)odd.StatusCode is >= 400 and < 500, $"{verb}: {(int)odd.StatusCode}");
        }
        using var posted = await Get(http, "/metrics", MetricsToken, HttpMethod.Post);
        await posted.AssertErrorAsync(HttpStatusCode.MethodNotAllowed, "METHOD_NOT_ALLOWED");
        using var anonymous = await Get(http, "/metrics", null);
        await anonymous.AssertErrorAsync(HttpStatusCode.Unauthorized, "UNAUTHENTICATED");
        using var wrong = await Get(http, "/metrics", "not-the-metrics-token");
        await wrong.AssertErrorAsync(HttpStatusCode.Unauthorized, "UNAUTHENTICATED");

        using var scraped = await Get(http, "/metrics", MetricsToken);
        Assert.Equal(HttpStatusCode.OK, scraped.StatusCode);
        var text = await scraped.Content.ReadAsStringAsync();
        Assert.Contains("broker_http_requests_total{", text);
        Assert.Contains("method=\"other\"", text);
        Assert.DoesNotContain("FOOBAR", text);
        Assert.DoesNotContain("PROPFIND", text);
        Assert.Contains("route=\"/metrics\"", text); // routes are labelled by template
    }

    [Fact]
    public async Task Reserved_tenants_cannot_be_minted()
    {
        var admin = fixture.Gateway.Admin();
        foreach (var tenant in new[] { "admin", "github" })
        {
            using var response = await admin.PostAsJsonAsync("/v1/admin/tokens", new { tenant, scopes = new[] { "claims" } });
            var error = await response.AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT");
            Assert.Equal("tenant", error.Str("field"));
            Assert.Contains("reserved", error.Str("message"));
        }
        var listed = await (await admin.GetAsync("/v1/admin/tokens?tenant=github")).JsonAsync();
        Assert.Empty(listed.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public void A_short_admin_token_stops_the_gateway_with_a_clear_error()
    {
        var e = Assert.Throws<StartupException>(() => SandboxBroker.Gateway.Program.Build(
        [
            "--Gateway:Urls=http://127.0.0.1:0",
            $"--Postgres:ConnectionString={fixture.Broker.Database.ConnectionString}",
            "--Auth:AdminToken=only-twenty-chars-xx",
        ]));
        Assert.Contains("at least 32 characters", e.Message);
    }

    private static string MadeUpMintedShape() =>
        ApiTokenStore.SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static async Task AllUnauthenticatedAsync(HttpClient http, IEnumerable<string> tokens) =>
        await Parallel.ForEachAsync(tokens, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (token, ct) =>
        {
            using var response = await Get(http, "/v1/pools", token);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        });

    private static Task<HttpResponseMessage> Get(HttpClient http, string path, string? token, HttpMethod? method = null)
    {
        var request = new HttpRequestMessage(method ?? HttpMethod.Get, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return http.SendAsync(request);
    }

    /// <summary>A transaction holding a lock on the token table until disposed (rolled back).</summary>
    private async Task<IAsyncDisposable> LockTokensAsync(string mode)
    {
        var connection = await fixture.Broker.Database.DataSource.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using (var command = new NpgsqlCommand($"LOCK TABLE broker_api_tokens IN {mode} MODE", connection, transaction))
        {
            await command.ExecuteNonQueryAsync();
        }
        return new Locked(connection, transaction);
    }

    private sealed class Locked(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await transaction.RollbackAsync();
            await connection.DisposeAsync();
        }
    }
}
