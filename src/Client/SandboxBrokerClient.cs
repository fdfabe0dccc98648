using System.Net.Http.Headers;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace SandboxBroker.Client;

/// <summary>
/// The broker's REST API, one property per resource. From DI: <c>services.AddSandboxBrokerClient(o => ...)</c>; in a script:
/// <c>using var broker = new SandboxBrokerClient(new Uri("http://127.0.0.1:8080"), token);</c>. Either way every call goes
/// through <see cref="BrokerResilience"/> and throws <see cref="BrokerApiException"/> for the broker's error answers.
/// </summary>
public sealed class SandboxBrokerClient : IDisposable
{
    private readonly HttpClient? _owned;
    private readonly BrokerHttp _http;

    /// <summary>Over an HttpClient set up by the caller (base address, token, and <see cref="BrokerResilience"/> if wanted), e.g. from IHttpClientFactory.</summary>
    public SandboxBrokerClient(HttpClient http)
    {
        _http = new BrokerHttp(http);
        Claims = new ClaimsClient(_http);
        Sandboxes = new SandboxesClient(_http);
        Pools = new PoolsClient(_http);
        Admin = new AdminClient(_http);
        Tokens = new TokensClient(_http);
        WebhookDeliveries = new WebhookDeliveriesClient(_http);
        Lab = new LabClient(_http);
    }

    /// <summary>A client that owns its HttpClient, for scripts and tools.</summary>
    public SandboxBrokerClient(SandboxBrokerClientOptions options) : this(CreateHttpClient(options, out var owned)) => _owned = owned;

    public SandboxBrokerClient(Uri baseAddress, string? token) : this(new SandboxBrokerClientOptions { BaseAddress = baseAddress, Token = token })
    {
    }

    public ClaimsClient Claims { get; }
    public SandboxesClient Sandboxes { get; }
    public PoolsClient Pools { get; }
    public AdminClient Admin { get; }
    public TokensClient Tokens { get; }
    public WebhookDeliveriesClient WebhookDeliveries { get; }
    public LabClient Lab { get; }

    /// <summary>Sets what every client of the broker needs on its HttpClient: the base address and the token.</summary>
    public static void Prepare(HttpClient http, SandboxBrokerClientOptions options)
    {
        var address = options.BaseAddress.OriginalString.EndsWith('/') ? options.BaseAddress : new Uri(options.BaseAddress.OriginalString + "/");
        http.BaseAddress = address;
        http.Timeout = Timeout.InfiniteTimeSpan; // the pipeline's timeouts govern
        if (options.Token is { Length: > 0 } token)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    public void Dispose() => _owned?.Dispose();

    private static HttpClient CreateHttpClient(SandboxBrokerClientOptions options, out HttpClient owned)
    {
        var pipeline = BrokerResilience.Configure(new ResiliencePipelineBuilder<HttpResponseMessage>(), options).Build();
        owned = new HttpClient(new ResilienceHandler(pipeline) { InnerHandler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) } });
        Prepare(owned, options);
        return owned;
    }
}
