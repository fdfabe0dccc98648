using System.Net;

namespace SandboxBroker.Client;

/// <summary><c>/v1/pools</c>: configuration and levels; <see cref="PutAsync"/> needs the admin scope.</summary>
public sealed class PoolsClient
{
    private readonly BrokerHttp _http;

    internal PoolsClient(BrokerHttp http) => _http = http;

    public async Task<IReadOnlyList<Pool>> ListAsync(CancellationToken ct = default) =>
        (await _http.SendAsync<PoolList>(HttpMethod.Get, "v1/pools", null, idempotent: true, "list pools", ct)).Value.Items;

    public async Task<Pool> GetAsync(string name, CancellationToken ct = default) =>
        (await _http.SendAsync<Pool>(HttpMethod.Get, "v1/pools/" + Paths.Segment(name), null, idempotent: true, "get pool", ct)).Value;

    /// <summary>Creates the pool or changes the settings given (a PUT of the same settings twice changes nothing more).</summary>
    public async Task<PoolWriteResult> PutAsync(string name, PoolSettings settings, CancellationToken ct = default)
    {
        var answer = await _http.SendAsync<Pool>(HttpMethod.Put, "v1/pools/" + Paths.Segment(name), settings, idempotent: true, "set pool", ct);
        return new PoolWriteResult(answer.Value, answer.Status == HttpStatusCode.Created);
    }
}
