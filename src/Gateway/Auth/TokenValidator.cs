using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Auth;

/// <summary>
/// Turns a bearer secret into a caller. Only SHA-256 hashes are compared (the admin token in constant time);
/// validated tokens are cached for <see cref="AuthSettings.CacheTtl"/> so a request costs no Postgres round trip.
/// </summary>
public sealed class TokenValidator(ApiTokenStore store, IOptions<AuthSettings> settings, TimeProvider time)
{
    private const int MaxCachedTokens = 10_000;
    private readonly byte[]? _adminHash = settings.Value.AdminToken is { } admin ? ApiTokenStore.Hash(admin) : null;
    private readonly ConcurrentDictionary<string, (Caller Caller, DateTimeOffset Until)> _cache = new(StringComparer.Ordinal);

    public async Task<Caller?> ValidateAsync(string secret, CancellationToken ct)
    {
        var hash = ApiTokenStore.Hash(secret);
        if (_adminHash is not null && CryptographicOperations.FixedTimeEquals(hash, _adminHash))
        {
            return new Caller("admin-env", Caller.AdminTenant, [TokenScopes.Claims, TokenScopes.Admin]);
        }
        var key = Convert.ToHexString(hash);
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(key, out var cached) && cached.Until > now)
        {
            return cached.Caller;
        }
        var token = await store.FindLiveAsync(hash, ct);
        if (token is null)
        {
            _cache.TryRemove(key, out _);
            return null;
        }
        var caller = new Caller(token.TokenId, token.Tenant, token.Scopes);
        if (_cache.Count >= MaxCachedTokens)
        {
            _cache.Clear();
        }
        var until = now + settings.Value.CacheTtl;
        _cache[key] = (caller, token.ExpiresAt is { } expires && expires < until ? expires : until);
        return caller;
    }

    /// <summary>Forgets a revoked token at once in this gateway (others notice within the cache TTL).</summary>
    public void Forget(string tokenId)
    {
        foreach (var entry in _cache.Where(e => e.Value.Caller.TokenId == tokenId))
        {
            _cache.TryRemove(entry.Key, out _);
        }
    }
}
