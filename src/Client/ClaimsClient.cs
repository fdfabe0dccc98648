using System.Net;

namespace SandboxBroker.Client;

/// <summary><c>/v1/claims/{key}</c>: the lease of one claim key. Every call here is safe to repeat, so each is retried.</summary>
public sealed class ClaimsClient
{
    private readonly BrokerHttp _http;

    internal ClaimsClient(BrokerHttp http) => _http = http;

    /// <summary>The key's sandbox: a new lease (Created), or the active one again (acquire is idempotent per key).</summary>
    public async Task<AcquireResult> AcquireAsync(string claimKey, AcquireOptions? options = null, CancellationToken ct = default)
    {
        var answer = await _http.SendAsync<Lease>(HttpMethod.Put, Path(claimKey), options ?? new AcquireOptions(), idempotent: true, "acquire", ct);
        return new AcquireResult(answer.Value, answer.Status == HttpStatusCode.Created, answer.Outcome);
    }

    /// <summary>The active lease and its sandbox; NOT_FOUND when the key has none.</summary>
    public async Task<Lease> GetAsync(string claimKey, CancellationToken ct = default) =>
        (await _http.SendAsync<Lease>(HttpMethod.Get, Path(claimKey), null, idempotent: true, "get claim", ct)).Value;

    /// <summary>Records activity, pushing the idle deadline out; LEASE_NOT_ACTIVE when there is no active lease.</summary>
    public async Task<Lease> TouchAsync(string claimKey, CancellationToken ct = default) =>
        (await _http.SendAsync<Lease>(HttpMethod.Post, Path(claimKey) + "/touch", null, idempotent: true, "touch", ct)).Value;

    /// <summary>Moves the TTL deadline to now + <paramref name="ttlSeconds"/> (a repeat moves it to the same place).</summary>
    public async Task<Lease> ExtendAsync(string claimKey, int ttlSeconds, CancellationToken ct = default) =>
        (await _http.SendAsync<Lease>(HttpMethod.Post, Path(claimKey) + "/extend", new ExtendBody(ttlSeconds), idempotent: true, "extend", ct)).Value;

    /// <summary>Releases the lease (its sandbox is deleted); a repeat answers the same released lease.</summary>
    public async Task<Lease> ReleaseAsync(string claimKey, string? reason = null, CancellationToken ct = default) =>
        (await _http.SendAsync<Lease>(HttpMethod.Delete, Paths.Query(Path(claimKey), ("reason", reason)), null, idempotent: true, "release", ct)).Value;

    /// <summary>The active lease, then the ended ones, newest first.</summary>
    public async Task<ClaimHistory> HistoryAsync(string claimKey, CancellationToken ct = default) =>
        (await _http.SendAsync<ClaimHistory>(HttpMethod.Get, Path(claimKey) + "/history", null, idempotent: true, "claim history", ct)).Value;

    private static string Path(string claimKey) => "v1/claims/" + Paths.Segment(claimKey);
}
