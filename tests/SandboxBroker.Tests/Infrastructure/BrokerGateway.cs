using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// The real gateway (Program.Build, Kestrel on a loopback port) as an Orleans client of a <see cref="BrokerCluster"/>,
/// with an admin token from configuration, as BROKER_ADMIN_TOKEN gives one in production.
/// </summary>
public sealed class BrokerGateway : IAsyncDisposable
{
    public const string AdminToken = "test-admin-token-0123456789abcdef";

    private readonly WebApplication _app;
    private readonly List<HttpClient> _clients = [];

    private BrokerGateway(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<BrokerGateway> StartAsync(BrokerCluster broker, IDictionary<string, string>? settings = null,
        Action<WebApplicationBuilder>? customize = null)
    {
        var url = $"http://127.0.0.1:{TestPorts.Free()}";
        string[] args =
        [
            $"--Gateway:Urls={url}",
            $"--Postgres:ConnectionString={broker.Database.ConnectionString}",
            $"--Orleans:ClusterId={broker.Cluster.Options.ClusterId}",
            $"--Orleans:ServiceId={broker.Cluster.Options.ServiceId}",
            $"--Auth:AdminToken={AdminToken}",
            .. (settings ?? new Dictionary<string, string>()).Select(kv => $"--{kv.Key}={kv.Value}"),
        ];
        var app = SandboxBroker.Gateway.Program.Build(args, customize);
        await app.StartAsync();
        var gateway = new BrokerGateway(app, url);
        await Eventually.TrueAsync(async () => (await gateway.Anonymous().GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, "the gateway reaches the cluster");
        return gateway;
    }

    public HttpClient Anonymous() => Client(null);

    public HttpClient Admin() => Client(AdminToken);

    public HttpClient Client(string? token)
    {
        var client = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        _clients.Add(client);
        return client;
    }

    /// <summary>A new tenant token through the admin endpoint.</summary>
    public async Task<string> MintTokenAsync(string tenant, params string[] scopes)
    {
        using var response = await Admin().PostAsJsonAsync("/v1/admin/tokens", new { tenant, scopes });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.GetProperty("token").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Reads API answers: status, the error shape, JSON fields.</summary>
public static class ApiAssert
{
    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Asserts the status and the one error shape (code, message, request id equal to the X-Request-ID header); returns the error.</summary>
    public static async Task<JsonElement> AssertErrorAsync(this HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status} {code}, got {(int)response.StatusCode}: {text}");
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error").Clone();
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(response.Headers.GetValues("X-Request-ID").Single(), error.GetProperty("request_id").GetString());
        Assert.DoesNotContain("   at ", text); // never a stack trace
        return error;
    }

    public static string Str(this JsonElement element, string name) => element.GetProperty(name).GetString()!;

    public static HttpContent JsonBody(object value) => JsonContent.Create(value);

    public static string Key(string claimKey) => Uri.EscapeDataString(claimKey);
}
