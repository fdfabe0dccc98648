namespace SandboxBroker.Client;

/// <summary><c>/v1/admin/tokens</c> (admin scope). Minting is not idempotent: a lost answer is not retried, since it would mint a second token.</summary>
public sealed class TokensClient
{
    private readonly BrokerHttp _http;

    internal TokensClient(BrokerHttp http) => _http = http;

    public async Task<MintedToken> CreateAsync(TokenRequest request, CancellationToken ct = default) =>
        (await _http.SendAsync<MintedToken>(HttpMethod.Post, "v1/admin/tokens", request, idempotent: false, "create token", ct)).Value;

    public async Task<IReadOnlyList<ApiToken>> ListAsync(string? tenant = null, CancellationToken ct = default) =>
        (await _http.SendAsync<TokenList>(HttpMethod.Get, Paths.Query("v1/admin/tokens", ("tenant", tenant)), null, idempotent: true, "list tokens", ct))
        .Value.Items;

    /// <summary>Revokes a token (a repeat answers it again); NOT_FOUND for an unknown id.</summary>
    public async Task<ApiToken> RevokeAsync(string tokenId, CancellationToken ct = default) =>
        (await _http.SendAsync<ApiToken>(HttpMethod.Delete, "v1/admin/tokens/" + Paths.Segment(tokenId), null, idempotent: true, "revoke token", ct)).Value;
}
