using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Auth;

/// <summary>
/// Turns a bearer secret into a caller. Only SHA-256 hashes are compared (the admin token in constant time).
/// What a wrong token may cost is bounded before Postgres is asked: a secret not shaped like a minted token is refused
/// at once, and a secret Postgres did not know is remembered as unknown for <see cref="AuthSettings.MissCacheTtl"/>.
/// Validated tokens are cached for <see cref="AuthSettings.CacheTtl"/>, so a known caller costs no round trip either.
/// Both caches are bounded: at their size they are emptied, which costs lookups, never memory.
/// </summary>
public sealed class TokenValidator(ApiTokenStore store, IOptions<AuthSettings> settings, TimeProvider time)
{
    private readonly byte[]? _adminHash = settings.Value.AdminToken is { } admin ? ApiTokenStore.Hash(admin) : null;
    private readonly ConcurrentDictionary<string, (Caller Caller, DateTimeOffset Until)> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _misses = new(StringComparer.Ordinal);

    public async Task<Caller?> ValidateAsync(string secret, CancellationToken ct)
    {
        var hash = ApiTokenStore.Hash(secret);
        if (IsAdmin(hash))
        {
            return AdminCaller;
        }
        if (!TokenShape.IsMinted(secret))
        {
            return null;
        }
        var key = Convert.ToHexString(hash);
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(key, out var cached) && cached.Until > now)
        {
            return cached.Caller;
        }
        if (_misses.TryGetValue(key, out var missUntil) && missUntil > now)
        {
            return null;
        }
        var token = await store.FindLiveAsync(hash, ct);
        if (token is null)
        {
            _cache.TryRemove(key, out _);
            Remember(_misses, key, now + settings.Value.MissCacheTtl);
            return null;
        }
        _misses.TryRemove(key, out _);
        var caller = new Caller(token.TokenId, token.Tenant, token.Scopes);
        var until = now + settings.Value.CacheTtl;
        Remember(_cache, key, (caller, token.ExpiresAt is { } expires && expires < until ? expires : until));
        return caller;
    }

    /// <summary>
    /// True when the secret is the admin token or a token validated recently: a caller the gateway trusts without any
    /// lookup, so the per-address limit on untrusted requests does not apply to it.
    /// </summary>
    public bool IsTrustedWithoutLookup(string secret)
    {
        var hash = ApiTokenStore.Hash(secret);
        return IsAdmin(hash)
            || (TokenShape.IsMinted(secret) && _cache.TryGetValue(Convert.ToHexString(hash), out var cached) && cached.Until > time.GetUtcNow());
    }

    /// <summary>Forgets a revoked token at once in this gateway (others notice within the cache TTL).</summary>
    public void Forget(string tokenId)
    {
        foreach (var entry in _cache.Where(e => e.Value.Caller.TokenId == tokenId))
        {
            _cache.TryRemove(entry.Key, out _);
        }
    }

    private static Caller AdminCaller => new("admin-env", Caller.AdminTenant, [TokenScopes.Claims, TokenScopes.Admin]);

    private bool IsAdmin(byte[] hash) => _adminHash is not null && CryptographicOperations.FixedTimeEquals(hash, _adminHash);

    private void Remember<T>(ConcurrentDictionary<string, T> cache, string key, T value)
    {
        if (cache.Count >= settings.Value.MaxCachedTokens)
        {
            cache.Clear();
        }
        cache[key] = value;
    }
}
