using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SandboxBroker.Gateway.Webhooks;
using SandboxBroker.Tests.Infrastructure;
using SandboxBroker.Tests.Webhooks;

namespace SandboxBroker.Tests.Api;

/// <summary>
/// A cluster and a gateway of their own for the bad-input sweep (nothing else moves the counts it compares), with
/// GitHub webhooks configured, and the things a refused request could wrongly change: a victim claim with an active
/// lease, a token, a recorded delivery. Also the names no request may create: a claim key, a track, a pool, a tenant.
/// </summary>
public sealed class BadInputFixture : IAsyncLifetime
{
    public const string WebhookSecret = "bad-input-secret";
    public const string WebhookRepository = "octo/bad-input";

    public BrokerCluster Broker { get; private set; } = null!;
    public BrokerGateway Gateway { get; private set; } = null!;

    /// <summary>No default credentials: every request sets its own.</summary>
    public HttpClient Http { get; private set; } = null!;

    public string VictimKey { get; } = ApiFixture.NewKey("victim");
    public string VictimSandbox { get; private set; } = "";
    public string VictimTokenId { get; private set; } = "";
    public string DeliveryId { get; private set; } = "";

    /// <summary>A claims-scope token of another tenant: admin operations refuse it with 403.</summary>
    public string TenantToken { get; private set; } = "";

    public string FreshKey { get; } = ApiFixture.NewKey("never");
    public string FreshTrack { get; } = "never-track-" + Guid.NewGuid().ToString("N")[..10];
    public string FreshPool { get; } = "never-" + Guid.NewGuid().ToString("N")[..8];
    public string FreshTenant { get; } = "never-" + Guid.NewGuid().ToString("N")[..8];

    public async Task InitializeAsync()
    {
        Broker = await BrokerCluster.StartAsync(silos: 1);
        Gateway = await BrokerGateway.StartAsync(Broker, new Dictionary<string, string>
        {
            ["Webhooks:GitHub:Secrets:0"] = WebhookSecret,
            ["Webhooks:GitHub:Repositories:0"] = WebhookRepository,
            ["Webhooks:GitHub:ProcessDeliveries"] = "false", // recorded deliveries stay as they are
            // The sweep sends thousands of anonymous and badly authenticated probes from one address: the per-address
            // limit (AddressLimitTests) would answer most of them 429 before the check they are about.
            ["RateLimit:Address:Burst"] = "1000000",
        });
        Http = Gateway.Anonymous();
        var admin = Gateway.Admin();

        using var acquired = await admin.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(VictimKey)}", new { labels = new { role = "victim" } });
        Assert.Equal(HttpStatusCode.Created, acquired.StatusCode);
        VictimSandbox = (await acquired.JsonAsync()).Str("sandbox_id");

        using var minted = await admin.PostAsJsonAsync("/v1/admin/tokens", new { tenant = "victim-tenant", name = "victim" });
        Assert.Equal(HttpStatusCode.Created, minted.StatusCode);
        VictimTokenId = (await minted.JsonAsync()).GetProperty("details").Str("token_id");
        TenantToken = await Gateway.MintTokenAsync("probe-tenant", "claims");

        // A delivery for a repository that is not configured: recorded as ignored, which the admin retry would change.
        DeliveryId = GitHubSender.NewDeliveryId();
        using var delivered = await SendWebhookAsync(GitHubSender.IssuePayload("opened", "octo/elsewhere", 1, DateTimeOffset.UtcNow), DeliveryId);
        Assert.Equal(HttpStatusCode.Accepted, delivered.StatusCode);

        // The index is written after the answers: wait until it shows the victim, so the state read later is settled.
        await Eventually.TrueAsync(async () =>
            (await (await admin.GetAsync("/v1/admin/stats")).JsonAsync()).GetProperty("claims").TryGetProperty("active", out var n) && n.GetInt64() == 1,
            "the index counts the victim's lease");
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Broker.DisposeAsync();
    }

    /// <summary>A request with the admin token unless told otherwise (null: no Authorization header).</summary>
    public HttpRequestMessage Request(HttpMethod method, string url, string? token = BrokerGateway.AdminToken)
    {
        var request = new HttpRequestMessage(method, url);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return request;
    }

    /// <summary>A GitHub delivery, signed with the configured secret unless <paramref name="signature"/> says otherwise.</summary>
    public HttpRequestMessage Webhook(string payload, string deliveryId, string eventName = "issues", string? signature = null,
        string contentType = "application/json")
    {
        var bytes = Encoding.UTF8.GetBytes(payload);
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks/github") { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        request.Headers.TryAddWithoutValidation(WebhookEndpoints.EventHeader, eventName);
        request.Headers.TryAddWithoutValidation(WebhookEndpoints.DeliveryHeader, deliveryId);
        var header = signature ?? GitHubSignature.Compute(WebhookSecret, bytes);
        if (header.Length > 0)
        {
            request.Headers.Add(GitHubSignature.Header, header);
        }
        return request;
    }

    public async Task<HttpResponseMessage> SendWebhookAsync(string payload, string deliveryId)
    {
        using var request = Webhook(payload, deliveryId);
        return await Http.SendAsync(request);
    }

    /// <summary>
    /// Everything a refused request could have changed, read through the API: the victim's lease (every field, the
    /// activity time included) and history, claim and sandbox counts, the index's sandboxes, pools with their
    /// configuration and levels, tokens (without last use), deliveries, and the names no request may create.
    /// </summary>
    public async Task<string> StateAsync()
    {
        var parts = new List<string>
        {
            await ReadAsync($"/v1/claims/{ApiAssert.Key(VictimKey)}"),
            await ReadAsync($"/v1/claims/{ApiAssert.Key(VictimKey)}/history"),
            await ReadAsync($"/v1/claims/{ApiAssert.Key(FreshKey)}/history"),
            await ReadAsync($"/v1/claims/{ApiAssert.Key(FreshTrack)}/history"),
            await ReadAsync($"/v1/pools/{FreshPool}"),
            await ReadAsync($"/v1/admin/tokens?tenant={FreshTenant}"),
            await ReadAsync($"/v1/admin/tenants/{FreshTenant}/quota"),
            await ReadAsync("/v1/admin/stats"),
            await ReadAsync("/v1/pools"),
            await ReadAsync("/v1/sandboxes?limit=500"),
            await ReadAsync("/v1/admin/webhooks/deliveries?limit=1000"),
        };
        parts.Add(await ReadAsync("/v1/admin/tokens", json =>
        {
            foreach (var token in json["items"]!.AsArray())
            {
                token!.AsObject().Remove("last_used_at"); // a probe with a valid token uses it
            }
        }));
        return string.Join("\n", parts);
    }

    private async Task<string> ReadAsync(string url, Action<JsonNode>? trim = null)
    {
        using var request = Request(HttpMethod.Get, url);
        using var response = await Http.SendAsync(request);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        if (json["error"] is JsonObject error)
        {
            error.Remove("request_id"); // differs on every answer; the rest is the state
        }
        trim?.Invoke(json);
        return $"{url} {(int)response.StatusCode} {json.ToJsonString()}";
    }
}
