using System.Security.Claims;

namespace SandboxBroker.Gateway.Auth;

/// <summary>Who is calling: a token's tenant and scopes.</summary>
public sealed record Caller(string TokenId, string Tenant, IReadOnlyList<string> Scopes)
{
    public const string AdminTenant = "admin";

    public bool IsAdmin => Scopes.Contains(TokenScopes.Admin);

    /// <summary>The tenant whose data this caller may see; null for an admin, who sees all.</summary>
    public string? TenantFilter => IsAdmin ? null : Tenant;

    public ClaimsPrincipal ToPrincipal(string scheme)
    {
        var claims = new List<Claim> { new(ClaimTypes.NameIdentifier, TokenId), new(ClaimNames.Tenant, Tenant) };
        claims.AddRange(Scopes.Select(s => new Claim(ClaimNames.Scope, s)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme));
    }

    public static Caller From(ClaimsPrincipal user) => new(
        user.FindFirstValue(ClaimTypes.NameIdentifier) ?? throw new InvalidOperationException("the request is not authenticated"),
        user.FindFirstValue(ClaimNames.Tenant)!,
        user.FindAll(ClaimNames.Scope).Select(c => c.Value).ToArray());

    public static class ClaimNames
    {
        public const string Tenant = "tenant";
        public const string Scope = "scope";
    }
}

/// <summary>What a token may do: "claims" (claims and sandboxes of its tenant) and "admin" (everything).</summary>
public static class TokenScopes
{
    public const string Claims = "claims";
    public const string Admin = "admin";
}

public static class CallerExtensions
{
    public static Caller Caller(this HttpContext context) => Auth.Caller.From(context.User);
}
