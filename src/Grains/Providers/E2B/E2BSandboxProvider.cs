using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Providers.Http;

namespace SandboxBroker.Grains.Providers.E2B;

/// <summary>
/// E2B's platform REST API (https://e2b.dev/docs/api-reference), with the <c>X-API-Key</c> header:
/// <c>POST /sandboxes</c> (templateID, timeout in seconds, autoPause, metadata; 201),
/// <c>GET /v2/sandboxes?metadata=&lt;k=v&amp;...&gt;&amp;state=running,paused&amp;limit=&amp;nextToken=</c> (the next page's
/// token comes back in the <c>x-next-token</c> header), <c>GET|DELETE /sandboxes/{id}</c>,
/// <c>POST /sandboxes/{id}/pause</c> and <c>/resume</c>. The broker's labels are the sandbox's metadata. Create is
/// idempotent by the broker's sandbox-id metadata. E2B cannot change metadata after create, so warm sandboxes keep
/// the labels they were created with.
/// </summary>
public sealed class E2BSandboxProvider(
    IHttpClientFactory clients,
    IOptions<E2BProviderOptions> options,
    TimeProvider time,
    ILogger<E2BSandboxProvider> logger) : ISandboxProvider
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
            if (existing.State == "paused")
            {
                await ResumeAsync(existing.SandboxId, cancellationToken);
                existing = existing with { State = "running" };
            }
            return Map(existing);
        }
        var body = new E2BNewSandbox(request.Template ?? Options.Template, Options.TimeoutSeconds, Options.AutoPause, request.Labels.ToDictionary());
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
        await ResumeAsync(id, cancellationToken);
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

    private Task ResumeAsync(string externalId, CancellationToken cancellationToken) =>
        // 409: already running.
        _http.SendAsync(HttpMethod.Post, $"sandboxes/{Uri.EscapeDataString(externalId)}/resume", new E2BResume(Options.TimeoutSeconds, Options.AutoPause),
            "resume sandbox", cancellationToken, HttpStatusCode.Conflict);

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
        // "Metadata query used to filter the sandboxes (e.g. user=abc&app=prod). Each key and values must be URL encoded."
        var metadata = string.Join('&', labels.Select(l => $"{Uri.EscapeDataString(l.Key)}={Uri.EscapeDataString(l.Value)}"));
        string? token = null;
        do
        {
            var path = $"v2/sandboxes?metadata={Uri.EscapeDataString(metadata)}&state=running,paused&limit={Options.PageSize}" +
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

    private ProviderSandbox Map(E2BSandbox sandbox)
    {
        var labels = sandbox.Metadata ?? new Dictionary<string, string>();
        var connection = new Dictionary<string, string>
        {
            ["provider"] = Name,
            ["sandbox_id"] = sandbox.SandboxId,
            // Sandbox ports are reached at https://{port}-{sandboxID}.{domain}.
            ["domain"] = sandbox.Domain ?? "e2b.app",
        };
        if (sandbox.EnvdAccessToken is { Length: > 0 } token)
        {
            connection["envd_access_token"] = token;
        }
        return new ProviderSandbox(
            labels.GetValueOrDefault(BrokerLabels.SandboxId, sandbox.SandboxId),
            sandbox.SandboxId,
            sandbox.SandboxId,
            sandbox.State == "paused" ? ProviderSandboxState.Stopped : ProviderSandboxState.Running,
            labels,
            connection,
            sandbox.StartedAt);
    }
}
