using SandboxBroker.Gateway.Api;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Auth;

/// <summary>What a token may be minted with (shared by the admin endpoint and the command line).</summary>
public static class TokenRules
{
    public static string Tenant(string? tenant) =>
        TenantName.IsValid(tenant) ? tenant : throw ApiError.BadRequest("tenant", TenantName.Rule).ToException();

    /// <summary>
    /// A tenant a token may be minted for: not <see cref="Caller.AdminTenant"/> (the environment admin token's, so an
    /// operator's log line never mixes the two) and not the webhook's tenant, whose claims only signed GitHub deliveries
    /// may change.
    /// </summary>
    public static string MintableTenant(string? tenant, string webhookTenant)
    {
        var t = Tenant(tenant);
        return t == Caller.AdminTenant || string.Equals(t, webhookTenant, StringComparison.Ordinal)
            ? throw ApiError.BadRequest("tenant", $"tenant '{t}' is reserved (the admin token's and the GitHub webhook's tenants cannot be minted)").ToException()
            : t;
    }

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
