using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Providers.Http;

namespace SandboxBroker.Grains.Providers.Daytona;

/// <summary>
/// Daytona's REST API (https://www.daytona.io/docs, source: daytonaio/daytona apps/api SandboxController), with
/// <c>Authorization: Bearer &lt;api key&gt;</c>:
/// <c>POST /api/sandbox</c> (labels, snapshot, autoStopInterval; answers once started),
/// <c>GET /api/sandbox?labels=&lt;json&gt;&amp;limit=&amp;cursor=</c> (cursor paging: <c>{items, nextCursor}</c>),
/// <c>GET|DELETE /api/sandbox/{id}</c>, <c>POST /api/sandbox/{id}/start|stop</c>, <c>PUT /api/sandbox/{id}/labels</c>.
/// Sandbox states: started; stopped (after the auto-stop interval), archived and paused, which start on acquire; error and
/// build_failed; destroying and destroyed, which are gone; and transitions (creating, starting, stopping, pausing,
/// resuming, archiving, ...), which are waited out. Create is idempotent by the broker's sandbox-id label: an existing
/// sandbox is reused (started if stopped or paused), a failed one is deleted and replaced. Names are unique per
/// organisation and the listing is eventually consistent, so a retried create whose first attempt did reach Daytona can
/// miss it in the list and get 409 for its name: then the sandbox of that name is looked up and, if it carries this
/// broker id, is the answer.
/// </summary>
public sealed class DaytonaSandboxProvider(
    IHttpClientFactory clients,
    IOptions<DaytonaProviderOptions> options,
    TimeProvider time,
    ILogger<DaytonaSandboxProvider> logger) : ISandboxProvider, ISandboxLabelUpdater
{
    public const string ProviderName = "daytona";

    private readonly ProviderHttp _http = new(ProviderName, clients);
    private DaytonaProviderOptions Options => options.Value;

    public string Name => ProviderName;

    public async Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken cancellationToken)
    {
        var name = request.Name;
        if (await FindAsync(request.SandboxId, cancellationToken) is { } existing)
        {
            if (StateOf(existing) != ProviderSandboxState.Failed)
            {
                logger.LogInformation("Daytona sandbox {ExternalId} already holds broker sandbox {SandboxId}", existing.Id, request.SandboxId);
                return Map(await UntilStartedAsync(existing, cancellationToken));
            }
            // Daytona's documented behaviour: a sandbox in error does not recover by itself. Replace it.
            logger.LogWarning("Daytona sandbox {ExternalId} of broker sandbox {SandboxId} is in {State} ({Reason}); replacing it",
                existing.Id, request.SandboxId, existing.State, existing.ErrorReason);
            await DeleteByExternalIdAsync(existing.Id, cancellationToken);
            name = $"{request.Name}-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3))}";
        }
        var body = new DaytonaCreateSandbox(name, request.Template ?? Options.Snapshot, request.Labels.ToDictionary(),
            Options.AutoStopIntervalMinutes, Options.Target);
        var created = await CreateOrFindByNameAsync(request, body, cancellationToken);
        logger.LogInformation("Created Daytona sandbox {ExternalId} for broker sandbox {SandboxId} ({State})", created.Id, request.SandboxId, created.State);
        return Map(await UntilStartedAsync(created, cancellationToken));
    }

    public async Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var sandbox = externalId is null
            ? await FindAsync(sandboxId, cancellationToken)
            : await _http.SendOrNullAsync<DaytonaSandbox>(HttpMethod.Get, $"sandbox/{Uri.EscapeDataString(externalId)}", null, "get sandbox", cancellationToken);
        return sandbox is null || IsGone(sandbox) ? null : Map(sandbox);
    }

    public async IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var sandbox in ListRawAsync(labels, cancellationToken))
        {
            if (!IsGone(sandbox))
            {
                yield return Map(sandbox);
            }
        }
    }

    public async Task StartAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var sandbox = await RequireAsync(sandboxId, externalId, cancellationToken);
        await UntilStartedAsync(sandbox, cancellationToken);
    }

    public async Task StopAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var sandbox = await RequireAsync(sandboxId, externalId, cancellationToken);
        if (StateOf(sandbox) == ProviderSandboxState.Running)
        {
            await _http.SendAsync(HttpMethod.Post, $"sandbox/{Uri.EscapeDataString(sandbox.Id)}/stop", null, "stop sandbox", cancellationToken);
        }
    }

    public async Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var id = externalId ?? (await FindAsync(sandboxId, cancellationToken))?.Id;
        if (id is not null)
        {
            await DeleteByExternalIdAsync(id, cancellationToken);
            logger.LogInformation("Deleted Daytona sandbox {ExternalId} of broker sandbox {SandboxId}", id, sandboxId);
        }
    }

    public async Task SetLabelsAsync(string sandboxId, string? externalId, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        // PUT replaces the whole set: merge into what the sandbox carries now.
        var sandbox = await RequireAsync(sandboxId, externalId, cancellationToken);
        var merged = new Dictionary<string, string>(sandbox.Labels ?? new Dictionary<string, string>());
        foreach (var (key, value) in labels)
        {
            merged[key] = value;
        }
        await _http.SendAsync<DaytonaLabels>(HttpMethod.Put, $"sandbox/{Uri.EscapeDataString(sandbox.Id)}/labels", new DaytonaLabels(merged), "replace labels", cancellationToken);
    }

    private async Task<DaytonaSandbox> CreateOrFindByNameAsync(ProviderCreateRequest request, DaytonaCreateSandbox body, CancellationToken cancellationToken)
    {
        using var response = await _http.SendRawAsync(HttpMethod.Post, "sandbox", body, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Conflict || body.Name is null)
        {
            await _http.EnsureSuccessAsync(response, "create sandbox", cancellationToken);
            return await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<DaytonaSandbox>(response.Content, ProviderHttp.Json, cancellationToken)
                ?? throw new ProviderException(Name, "create sandbox: empty answer", transient: false);
        }
        // GET /api/sandbox/{idOrName} finds it by name, consistently, where the label listing may not yet.
        var named = await _http.SendOrNullAsync<DaytonaSandbox>(HttpMethod.Get, $"sandbox/{Uri.EscapeDataString(body.Name)}", null, "get sandbox by name", cancellationToken);
        if (named is not null && !IsGone(named) && named.Labels?.GetValueOrDefault(BrokerLabels.SandboxId) == request.SandboxId)
        {
            logger.LogInformation("Daytona sandbox {ExternalId} named {Name} already holds broker sandbox {SandboxId} (an earlier attempt of this create)",
                named.Id, body.Name, request.SandboxId);
            return named;
        }
        // Transient: a name held by a sandbox on its way out comes free; one held by another sandbox is a naming clash the caller sees.
        throw new ProviderException(Name, $"create sandbox: the name '{body.Name}' is taken by {(named is null ? "a sandbox not visible yet" : $"sandbox {named.Id} ({named.State})")}",
            transient: named is null || IsGone(named));
    }

    private Task DeleteByExternalIdAsync(string externalId, CancellationToken cancellationToken) =>
        _http.SendAsync(HttpMethod.Delete, $"sandbox/{Uri.EscapeDataString(externalId)}", null, "delete sandbox", cancellationToken, HttpStatusCode.NotFound);

    private async Task<DaytonaSandbox> RequireAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var sandbox = externalId is null
            ? await FindAsync(sandboxId, cancellationToken)
            : await _http.SendOrNullAsync<DaytonaSandbox>(HttpMethod.Get, $"sandbox/{Uri.EscapeDataString(externalId)}", null, "get sandbox", cancellationToken);
        return sandbox is null || IsGone(sandbox)
            ? throw new ProviderException(Name, $"sandbox {sandboxId} does not exist", transient: false)
            : sandbox;
    }

    /// <summary>The sandbox labelled with this broker id, errored ones included.</summary>
    private async Task<DaytonaSandbox?> FindAsync(string sandboxId, CancellationToken cancellationToken)
    {
        await foreach (var sandbox in ListRawAsync(new Dictionary<string, string> { [BrokerLabels.SandboxId] = sandboxId }, cancellationToken))
        {
            if (!IsGone(sandbox))
            {
                return sandbox;
            }
        }
        return null;
    }

    private async IAsyncEnumerable<DaytonaSandbox> ListRawAsync(IReadOnlyDictionary<string, string> labels, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var filter = Uri.EscapeDataString(JsonSerializer.Serialize(labels));
        string? cursor = null;
        do
        {
            // Not includeErroredDeleted: it brings back errored sandboxes already deleted, which would be deleted again and
            // could shadow their replacement in the lookup by broker id.
            var path = $"sandbox?labels={filter}&limit={Math.Clamp(Options.PageSize, 1, MaxPageSize)}" +
                       (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}");
            var page = await _http.SendAsync<JsonElement>(HttpMethod.Get, path, null, "list sandboxes", cancellationToken);
            List<DaytonaSandbox> items;
            if (page.ValueKind == JsonValueKind.Array)
            {
                // Older Daytona servers answer the unpaged list: one page.
                items = page.Deserialize<List<DaytonaSandbox>>(ProviderHttp.Json) ?? [];
                cursor = null;
            }
            else
            {
                var typed = page.Deserialize<DaytonaSandboxPage>(ProviderHttp.Json);
                items = typed?.Items ?? [];
                cursor = string.IsNullOrEmpty(typed?.NextCursor) ? null : typed.NextCursor;
            }
            foreach (var item in items)
            {
                yield return item;
            }
        }
        while (cursor is not null);
    }

    /// <summary>Starts a stopped sandbox and waits (bounded) until Daytona reports it started; an errored one is a failure.</summary>
    private async Task<DaytonaSandbox> UntilStartedAsync(DaytonaSandbox sandbox, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + Options.StartWait;
        var startAsked = false;
        while (true)
        {
            switch (StateOf(sandbox))
            {
                case ProviderSandboxState.Running:
                    return sandbox;
                case ProviderSandboxState.Failed:
                    throw new ProviderException(Name, $"sandbox {sandbox.Id} is in {sandbox.State}: {sandbox.ErrorReason}", transient: false);
                case ProviderSandboxState.Stopped when !startAsked && sandbox.State is "stopped" or "archived" or "paused":
                    logger.LogInformation("Starting stopped Daytona sandbox {ExternalId}", sandbox.Id);
                    sandbox = await _http.SendAsync<DaytonaSandbox>(HttpMethod.Post, $"sandbox/{Uri.EscapeDataString(sandbox.Id)}/start", null, "start sandbox", cancellationToken);
                    startAsked = true;
                    continue;
            }
            if (time.GetUtcNow() >= deadline)
            {
                throw new ProviderException(Name, $"sandbox {sandbox.Id} is still {sandbox.State} after {Options.StartWait}", transient: true);
            }
            await Task.Delay(Options.PollInterval, time, cancellationToken);
            sandbox = await _http.SendOrNullAsync<DaytonaSandbox>(HttpMethod.Get, $"sandbox/{Uri.EscapeDataString(sandbox.Id)}", null, "get sandbox", cancellationToken)
                ?? throw new ProviderException(Name, $"sandbox {sandbox.Id} disappeared while starting", transient: false);
        }
    }

    /// <summary>The spec's maximum page size (ListSandboxesQuery limit: maximum 200).</summary>
    private const int MaxPageSize = 200;

    private static bool IsGone(DaytonaSandbox sandbox) => sandbox.State is "destroyed" or "destroying";

    /// <summary>
    /// Stopped covers the states a start brings back (stopped, archived, paused) and the ones on their way there, which
    /// are waited out before the start; resuming and the other transitions are Creating: waited out until started.
    /// </summary>
    private static ProviderSandboxState StateOf(DaytonaSandbox sandbox) => sandbox.State switch
    {
        "started" => ProviderSandboxState.Running,
        "stopped" or "stopping" or "archived" or "archiving" or "paused" or "pausing" => ProviderSandboxState.Stopped,
        "error" or "build_failed" => ProviderSandboxState.Failed,
        _ => ProviderSandboxState.Creating,
    };

    private ProviderSandbox Map(DaytonaSandbox sandbox)
    {
        var labels = sandbox.Labels ?? new Dictionary<string, string>();
        return new ProviderSandbox(
            labels.GetValueOrDefault(BrokerLabels.SandboxId, sandbox.Id),
            sandbox.Id,
            sandbox.Name ?? sandbox.Id,
            StateOf(sandbox),
            labels,
            new Dictionary<string, string>
            {
                ["provider"] = Name,
                ["sandbox_id"] = sandbox.Id,
                ["api_url"] = Options.BaseAddress(DaytonaProviderOptions.DefaultBaseUrl).ToString(),
            },
            sandbox.CreatedAt);
    }
}
