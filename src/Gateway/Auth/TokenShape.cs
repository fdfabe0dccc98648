using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Auth;

/// <summary>
/// What a minted token looks like: <see cref="ApiTokenStore.SecretPrefix"/> and 43 base64url characters (32 random bytes).
/// Anything else cannot be a stored token, so it is refused before any cache or database lookup.
/// </summary>
public static class TokenShape
{
    public const int Length = 4 + 43;

    public static bool IsMinted(string secret) =>
        secret.Length == Length
        && secret.StartsWith(ApiTokenStore.SecretPrefix, StringComparison.Ordinal)
        && secret.AsSpan(ApiTokenStore.SecretPrefix.Length).ContainsAnyExcept(Base64UrlChars) is false;

    private static readonly System.Buffers.SearchValues<char> Base64UrlChars =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
}
