using SandboxBroker.Gateway.Api;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Auth;

/// <summary>What a token may be minted with (shared by the admin endpoint and the command line).</summary>
public static class TokenRules
{
    public static string Tenant(string? tenant) =>
        tenant is { Length: > 0 and <= 63 } t && t.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_')
            ? t
            : throw ApiError.BadRequest("tenant", "tenant is 1-63 characters of a-z, 0-9, '-' and '_'").ToException();

    public static IReadOnlyList<string> Scopes(IReadOnlyList<string>? scopes)
    {
        if (scopes is null || scopes.Count == 0)
        {
            return [TokenScopes.Claims];
        }
        var unknown = scopes.FirstOrDefault(s => !ApiTokenStore.KnownScopes.Contains(s));
        return unknown is null
            ? scopes.Distinct().ToArray()
            : throw ApiError.BadRequest("scopes", $"unknown scope '{unknown}'; scopes are {string.Join(", ", ApiTokenStore.KnownScopes)}").ToException();
    }
}
