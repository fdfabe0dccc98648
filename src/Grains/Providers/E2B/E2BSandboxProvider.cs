using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Providers.Http;

namespace SandboxBroker.Grains.Providers.E2B;

/// <summary>
/// E2B's platform REST API (e2b-dev/E2B spec/openapi.yml), with the <c>X-API-Key</c> header:
/// <c>POST /sandboxes</c> (templateID, timeout in seconds, autoPause, secure, metadata; 201),
/// <c>GET /v2/sandboxes?metadata=&amp;state=running,paused&amp;limit=&amp;nextToken=</c> (the next page's token comes back in
/// the <c>x-next-token</c> header), <c>GET|DELETE /sandboxes/{id}</c>, <c>POST /sandboxes/{id}/pause</c> and
/// <c>POST /sandboxes/{id}/connect {timeout}</c>, which resumes a paused sandbox and only ever extends a running one's
/// timer (it replaces the deprecated <c>/resume</c>). The broker's labels are the sandbox's metadata. Create is idempotent
/// by the broker's sandbox-id metadata. E2B cannot change metadata after create, so warm sandboxes keep the labels they
/// were created with. E2B's timer would kill a sandbox mid-lease: every lease sets it (<see cref="HoldUntilAsync"/>).
/// </summary>
public sealed class E2BSandboxProvider(
    IHttpClientFactory clients,
    IOptions<E2BProviderOptions> options,
    TimeProvider time,
    ILogger<E2BSandboxProvider> logger) : ISandboxProvider, ISandboxLeaseTimer
{
    public const string ProviderName = "e2b";

    private readonly ProviderHttp _http = new(ProviderName, clients);
    private E2BProviderOptions Options => options.Value;

    public string Name => ProviderName;

    public async Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken cancellationToken)
    {
        if (await FindAsync(request.SandboxId, cancellationToken) is { } existing)
        {
            logger.LogInformation("E2B sandbox {ExternalId} already holds broker sandbox {SandboxId}", existing.SandboxId, request.SandboxId);
            if (StateOf(existing) != ProviderSandboxState.Running)
            {
                await ConnectAsync(existing.SandboxId, WarmTimeout, cancellationToken);
            }
            // The listing carries no access token: the sandbox's own record does.
            return await GetAsync(request.SandboxId, existing.SandboxId, cancellationToken) ?? Map(existing with { State = "running" });
        }
        var body = new E2BNewSandbox(request.Template ?? Options.Template, WarmTimeout, Options.AutoPause, Options.Secure, request.Labels.ToDictionary());
        var created = await _http.SendAsync<E2BCreatedSandbox>(HttpMethod.Post, "sandboxes", body, "create sandbox", cancellationToken);
        logger.LogInformation("Created E2B sandbox {ExternalId} for broker sandbox {SandboxId}", created.SandboxId, request.SandboxId);
        return Map(new E2BSandbox(created.SandboxId, created.TemplateId, null, time.GetUtcNow(), null, "running",
            request.Labels.ToDictionary(), created.Domain, created.EnvdAccessToken));
    }

    public async Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var sandbox = externalId is null
            ? await FindAsync(sandboxId, cancellationToken)
            : await _http.SendOrNullAsync<E2BSandbox>(HttpMethod.Get, $"sandboxes/{Uri.EscapeDataString(externalId)}", null, "get sandbox", cancellationToken);
        return sandbox is null ? null : Map(sandbox);
    }

    public async IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var sandbox in ListRawAsync(labels, cancellationToken))
        {
            yield return Map(sandbox);
        }
    }

    public async Task StartAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var id = await RequireIdAsync(sandboxId, externalId, cancellationToken);
        await ConnectAsync(id, WarmTimeout, cancellationToken);
    }

    public async Task<IReadOnlyDictionary<string, string>> HoldUntilAsync(string sandboxId, string? externalId, DateTimeOffset until, CancellationToken cancellationToken)
    {
        var id = await RequireIdAsync(sandboxId, externalId, cancellationToken);
        var seconds = LeaseTimeout(until);
        var connected = await ConnectAsync(id, seconds, cancellationToken);
        logger.LogDebug("E2B sandbox {ExternalId} of broker sandbox {SandboxId} held for {Seconds} s (lease until {Until})", id, sandboxId, seconds, until);
        var token = connected.EnvdAccessToken;
        if (string.IsNullOrEmpty(token))
        {
            // The sandbox's own record carries the token (the listing does not).
            token = (await _http.SendOrNullAsync<E2BSandbox>(HttpMethod.Get, $"sandboxes/{Uri.EscapeDataString(id)}", null, "get sandbox", cancellationToken))?.EnvdAccessToken;
        }
        return Connection(id, connected.Domain, token);
    }

    public async Task StopAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var id = await RequireIdAsync(sandboxId, externalId, cancellationToken);
        // 409: already paused.
        await _http.SendAsync(HttpMethod.Post, $"sandboxes/{Uri.EscapeDataString(id)}/pause", null, "pause sandbox", cancellationToken, HttpStatusCode.Conflict);
    }

    public async Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var id = externalId ?? (await FindAsync(sandboxId, cancellationToken))?.SandboxId;
        if (id is null)
        {
            return;
        }
        await _http.SendAsync(HttpMethod.Delete, $"sandboxes/{Uri.EscapeDataString(id)}", null, "kill sandbox", cancellationToken, HttpStatusCode.NotFound);
        logger.LogInformation("Killed E2B sandbox {ExternalId} of broker sandbox {SandboxId}", id, sandboxId);
    }

    /// <summary>Resumes a paused sandbox, and extends (never shortens) a running one's timer to <paramref name="seconds"/> from now.</summary>
    private async Task<E2BCreatedSandbox> ConnectAsync(string externalId, int seconds, CancellationToken cancellationToken) =>
        await _http.SendOrNullAsync<E2BCreatedSandbox>(HttpMethod.Post, $"sandboxes/{Uri.EscapeDataString(externalId)}/connect", new E2BConnect(seconds),
            "connect sandbox", cancellationToken)
        ?? throw new ProviderException(Name, $"sandbox {externalId} does not exist", transient: false);

    private int MaxTimeout => Math.Max(1, Options.MaxTimeoutSeconds);

    private int WarmTimeout => Math.Clamp(Options.TimeoutSeconds, 1, MaxTimeout);

    /// <summary>The lease's remaining time plus a margin, capped at the team's maximum (the reconciler carries it further).</summary>
    private int LeaseTimeout(DateTimeOffset until)
    {
        var seconds = Math.Ceiling((until - time.GetUtcNow()).TotalSeconds) + Options.LeaseMarginSeconds;
        return (int)Math.Clamp(seconds, 1, MaxTimeout);
    }

    private async Task<string> RequireIdAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        externalId ?? (await FindAsync(sandboxId, cancellationToken))?.SandboxId
        ?? throw new ProviderException(Name, $"sandbox {sandboxId} does not exist", transient: false);

    private async Task<E2BSandbox?> FindAsync(string sandboxId, CancellationToken cancellationToken)
    {
        await foreach (var sandbox in ListRawAsync(new Dictionary<string, string> { [BrokerLabels.SandboxId] = sandboxId }, cancellationToken))
        {
            return sandbox;
        }
        return null;
    }

    private async IAsyncEnumerable<E2BSandbox> ListRawAsync(IReadOnlyDictionary<string, string> labels, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var metadata = MetadataQuery(labels);
        string? token = null;
        do
        {
            var path = $"v2/sandboxes?metadata={metadata}&state=running,paused&limit={Math.Clamp(Options.PageSize, 1, MaxPageSize)}" +
                       (token is null ? "" : $"&nextToken={Uri.EscapeDataString(token)}");
            using var response = await _http.SendRawAsync(HttpMethod.Get, path, null, cancellationToken);
            await _http.EnsureSuccessAsync(response, "list sandboxes", cancellationToken);
            var page = await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<List<E2BSandbox>>(response.Content, ProviderHttp.Json, cancellationToken) ?? [];
            token = response.Headers.TryGetValues("x-next-token", out var values) && values.FirstOrDefault() is { Length: > 0 } next ? next : null;
            foreach (var sandbox in page)
            {
                yield return sandbox;
            }
        }
        while (token is not null);
    }

    /// <summary>The spec's maximum page size (paginationLimit: maximum 100).</summary>
    private const int MaxPageSize = 100;

    /// <summary>
    /// The <c>metadata</c> query value as the published SDK sends it and the server reads it: each key and value
    /// URL-encoded (the spec: "each key and values must be URL encoded"), the pairs form-encoded
    /// (<c>URLSearchParams</c>, which encodes the '%' of the first pass again), and the whole encoded once more as a
    /// query parameter. The server undoes all three; with one pass fewer a value holding '%' (or an escape that decodes to
    /// something else) would match nothing.
    /// </summary>
    internal static string MetadataQuery(IReadOnlyDictionary<string, string> labels) =>
        Uri.EscapeDataString(string.Join('&', labels.Select(l =>
            $"{Uri.EscapeDataString(Uri.EscapeDataString(l.Key))}={Uri.EscapeDataString(Uri.EscapeDataString(l.Value))}")));

    private static ProviderSandboxState StateOf(E2BSandbox sandbox) => sandbox.State switch
    {
        "running" or null => ProviderSandboxState.Running,
        // Pausing ends in paused; connect resumes either.
        "paused" or "pausing" => ProviderSandboxState.Stopped,
        _ => ProviderSandboxState.Creating,
    };

    private Dictionary<string, string> Connection(string externalId, string? domain, string? envdAccessToken)
    {
        var connection = new Dictionary<string, string>
        {
            ["provider"] = Name,
            ["sandbox_id"] = externalId,
            // Sandbox ports are reached at https://{port}-{sandboxID}.{domain}.
            ["domain"] = domain ?? "e2b.app",
        };
        if (envdAccessToken is { Length: > 0 } token)
        {
            // Secured sandboxes: envd wants it in the X-Access-Token header.
            connection["envd_access_token"] = token;
        }
        return connection;
    }

    private ProviderSandbox Map(E2BSandbox sandbox)
    {
        var labels = sandbox.Metadata ?? new Dictionary<string, string>();
        return new ProviderSandbox(
            labels.GetValueOrDefault(BrokerLabels.SandboxId, sandbox.SandboxId),
            sandbox.SandboxId,
            sandbox.SandboxId,
            StateOf(sandbox),
            labels,
            Connection(sandbox.SandboxId, sandbox.Domain, sandbox.EnvdAccessToken),
            sandbox.StartedAt);
    }
}
