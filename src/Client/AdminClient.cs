namespace SandboxBroker.Client;

/// <summary><c>/v1/admin</c>: counts, reconcile and cleanup now (admin scope). Sync and cleanup only do what is due, so they are safe to repeat.</summary>
public sealed class AdminClient
{
    private readonly BrokerHttp _http;

    internal AdminClient(BrokerHttp http) => _http = http;

    public async Task<BrokerStats> StatsAsync(CancellationToken ct = default) =>
        (await _http.SendAsync<BrokerStats>(HttpMethod.Get, "v1/admin/stats", null, idempotent: true, "stats", ct)).Value;

    /// <summary>Reconciles every provider now: unowned provider sandboxes are deleted, vanished ones marked stale.</summary>
    public async Task<SyncReport> SyncAsync(CancellationToken ct = default) =>
        (await _http.SendAsync<SyncReport>(HttpMethod.Post, "v1/admin/sync", null, idempotent: true, "sync", ct)).Value;

    /// <summary>Expires overdue leases and retries every pending deletion now.</summary>
    public async Task<CleanupReport> CleanupAsync(CancellationToken ct = default) =>
        (await _http.SendAsync<CleanupReport>(HttpMethod.Post, "v1/admin/cleanup", null, idempotent: true, "cleanup", ct)).Value;
}
