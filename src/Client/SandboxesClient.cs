namespace SandboxBroker.Client;

/// <summary><c>/v1/sandboxes</c>: one sandbox, or pages of them (a tenant sees its own, an admin all).</summary>
public sealed class SandboxesClient
{
    private readonly BrokerHttp _http;

    internal SandboxesClient(BrokerHttp http) => _http = http;

    public async Task<Sandbox> GetAsync(string sandboxId, CancellationToken ct = default) =>
        (await _http.SendAsync<Sandbox>(HttpMethod.Get, "v1/sandboxes/" + Paths.Segment(sandboxId), null, idempotent: true, "get sandbox", ct)).Value;

    /// <summary>One page in creation order; pass its NextCursor as the next query's Cursor.</summary>
    public async Task<SandboxPage> ListAsync(SandboxQuery? query = null, CancellationToken ct = default)
    {
        query ??= new SandboxQuery();
        var path = Paths.Query("v1/sandboxes", ("status", query.Status), ("pool", query.Pool), ("owner", query.Owner),
            ("limit", query.Limit?.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("cursor", query.Cursor));
        return (await _http.SendAsync<SandboxPage>(HttpMethod.Get, path, null, idempotent: true, "list sandboxes", ct)).Value;
    }

    /// <summary>Every page of the query, one request per page.</summary>
    public async IAsyncEnumerable<Sandbox> ListAllAsync(SandboxQuery? query = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        query ??= new SandboxQuery();
        for (string? cursor = query.Cursor; ;)
        {
            var page = await ListAsync(query with { Cursor = cursor }, ct);
            foreach (var sandbox in page.Items)
            {
                yield return sandbox;
            }
            if (page.NextCursor is null)
            {
                yield break;
            }
            cursor = page.NextCursor;
        }
    }
}
