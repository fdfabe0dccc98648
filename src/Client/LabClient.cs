namespace SandboxBroker.Client;

/// <summary>
/// The lab clients' contract (Sandbox-API-Broker): the track id is the claim key. Allocation is idempotent per track,
/// and so is mark-for-deletion, so both are retried.
/// </summary>
public sealed class LabClient
{
    public const string TrackHeader = "X-Track-ID";

    private readonly BrokerHttp _http;

    internal LabClient(BrokerHttp http) => _http = http;

    public async Task<LabAllocation> AllocateAsync(string trackId, CancellationToken ct = default) =>
        (await _http.SendAsync<LabAllocation>(HttpMethod.Post, "v1/allocate", null, idempotent: true, "allocate", ct, Track(trackId))).Value;

    public async Task<LabSandbox> GetSandboxAsync(string trackId, string sandboxId, CancellationToken ct = default) =>
        (await _http.SendAsync<LabSandbox>(HttpMethod.Get, "v1/sandboxes/" + Paths.Segment(sandboxId), null, idempotent: true, "get lab sandbox", ct,
            Track(trackId))).Value;

    public async Task<LabDeletion> MarkForDeletionAsync(string trackId, string sandboxId, CancellationToken ct = default) =>
        (await _http.SendAsync<LabDeletion>(HttpMethod.Post, "v1/sandboxes/" + Paths.Segment(sandboxId) + "/mark-for-deletion", null,
            idempotent: true, "mark for deletion", ct, Track(trackId))).Value;

    private static Dictionary<string, string> Track(string trackId) => new() { [TrackHeader] = trackId };
}
